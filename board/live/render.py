"""Reads a view from the database and renders the partial an audience sees.

The same partials the pages render; the hub calls these in a worker thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from jinja2 import Environment

from board.accountability import alerts, commandlog, reviews
from board.domain.access import CITYWIDE, Actor, Role
from board.domain.flags import FLAG_LABELS
from board.domain.lifecycle import OPEN, WORKING, Status
from board.domain.places import PlaceRules
from board.domain.priorities import Deadlines, overdue
from board.live import cards, fragments
from board.live.audiences import Audience, sees
from board.storage import db
from board.storage.schema import events, jobs
from board.usecases import FINDINGS, queries
from board.usecases.queries import BoardView

TOUR_TZ = ZoneInfo("America/New_York")
TICKER = 12
# Not on the wall's ticker: noise, and what only supervisors read (review findings, the command
# log, close policies: a wall display cannot open those pages either).
WALL_QUIET = ("view_photo", "unit_position", "history", "review", "log_entry", "set_policy")


def utcnow() -> datetime:
    return datetime.now(UTC)


def tour_start(now: datetime) -> datetime:
    """NYPD tours: 23:00–07:00, 07:00–15:00, 15:00–23:00, local time."""
    local = now.astimezone(TOUR_TZ)
    start_hour = max((h for h in (7, 15, 23) if local.hour >= h), default=None)
    if start_hour is None:
        day = local - timedelta(days=1)
        start = day.replace(hour=23, minute=0, second=0, microsecond=0)
    else:
        start = local.replace(hour=start_hour, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


@dataclass(frozen=True)
class BoardScreen:
    """What every socket of one board audience shows: the jobs and units, and for supervisors
    the panel (alerts, review count, latest log entries, by partial name)."""

    view: BoardView
    panel: dict[str, Any]


@dataclass
class Renderer:
    """Reads a view from the database and renders its partial: run in a worker thread."""

    engine: sa.Engine
    geo: Any
    env: Environment
    tile_url: str | None = None
    clock: Callable[[], datetime] = utcnow
    places: PlaceRules = field(default_factory=PlaceRules)

    def _render(self, name: str, **context: Any) -> str:
        ctx = {"actor": None, "csrf": "", "now": self.clock(), "flashes": [], "kept": None,
               "FLAG_LABELS": FLAG_LABELS, "tile_url": self.tile_url, **context}
        return self.env.get_template(name).render(ctx).strip()

    def render(self, audience: Audience) -> str:
        kind = audience[0]
        if kind == "board":
            return self.board(*audience[1:])
        if kind == "my":
            return self.my(audience[1])
        if kind == "wall":
            return self.wall(audience[1])
        if kind == "review_count":
            return self.review_count(audience[1])
        if kind in ("reviews", "log"):
            return self.body(audience, self.view(audience))
        return self.city(audience[1])

    def board(self, precinct: str, mode: str, citywide: bool) -> str:
        return self.board_body(self.board_view(precinct, mode, citywide), mode)

    # Audiences followed by what changed (hub.VIEWED): the view, the whole, the difference.

    def view(self, audience: Audience, source: db.Source | None = None) -> Any:
        """The view, read in one snapshot (`source`: a connection whose read it joins)."""
        kind = audience[0]
        with db.read(source or self.engine) as conn:
            if kind == "board":
                return self.board_view(*audience[1:], source=conn)
            if kind == "reviews":
                return self.reviews_view(audience[1], audience[2], conn)
            return self.log_view(audience[1], conn)

    def body(self, audience: Audience, view: Any) -> str:
        kind = audience[0]
        if kind == "board":
            return self.board_body(view, audience[2])
        ctx = self._list_context(audience)
        if kind == "reviews":
            return "\n".join([self._render("partials/review_pending.html", queue=view, **ctx),
                              self._render("partials/review_rows.html", rows=view.rows, **ctx)])
        return self._render("partials/log_entries.html", entries=view, **ctx)

    def delta(self, audience: Audience, old: Any, new: Any) -> str | None:
        kind = audience[0]
        if kind == "board":
            return self.board_delta(old, new, audience[2])
        ctx = self._list_context(audience)
        if kind == "reviews":
            head = (self._render("partials/review_pending.html", queue=new, **ctx)
                    if (old.total, len(old.rows)) != (new.total, len(new.rows)) else None)
            rows = fragments.list_delta(
                "review-", "review-rows", old.rows, new.rows,
                lambda r: self._render("partials/review_row.html", r=r, **ctx),
                lambda: self._render("partials/review_rows.html", rows=new.rows, **ctx))
            return "\n".join(p for p in (head, rows) if p) or None
        return fragments.list_delta(
            "log-", "log-entries", old, new,
            lambda e: self._render("partials/log_entry.html", e=e, **ctx),
            lambda: self._render("partials/log_entries.html", entries=new, **ctx))

    def _list_context(self, audience: Audience) -> dict[str, Any]:
        """What the review queue's and the command log's partials need besides their rows."""
        kind, precinct, may_act = audience
        if kind == "reviews":
            return {"precinct": precinct, "can_review": may_act, "findings": FINDINGS}
        return {"precinct": precinct, "can_write": may_act, "linked": commandlog.linked}

    def reviews_view(self, precinct: str, can_review: bool, source: db.Source) -> reviews.Queue:
        role = Role.SUPERVISOR if can_review else Role.COMMANDER
        who = Actor(None, "live", role, frozenset({precinct}))
        return reviews.queue(source, who, precinct, self.clock())

    def log_view(self, precinct: str, source: db.Source) -> list[commandlog.Entry]:
        who = Actor(None, "live", Role.COMMANDER, frozenset({precinct}))
        return commandlog.entries(source, who, precinct)

    def review_count(self, scope: frozenset[str]) -> str:
        """The header's count: flagged closes waiting in these precincts."""
        n = reviews.count(self.engine, Actor(None, "live", Role.SUPERVISOR, scope))
        return self._render("partials/review_count.html", review_count=n)

    def board_view(self, precinct: str, mode: str, citywide: bool,
                   source: db.Source | None = None) -> BoardScreen:
        role = Role.SUPERVISOR if mode == "supervisor" else Role.COMMANDER
        who = Actor(None, "live", role, frozenset({CITYWIDE} if citywide else {precinct}))
        # One snapshot for the jobs and the panel: its alerts never name a job the lists
        # show closed. A supervisor's board also carries its alerts and latest log entries,
        # each its own partial swapped by id.
        with db.read(source or self.engine) as conn:
            view = queries.board(conn, who, precinct, self.clock(), self.places)
            panel = (alerts.supervisor_panel(conn, precinct, self.clock())
                     if mode == "supervisor" else {})
        return BoardScreen(view, panel)

    def board_body(self, screen: BoardScreen, mode: str) -> str:
        """The whole board: what every (re)connecting socket gets first."""
        body = self._render("partials/board_body.html", view=screen.view,
                            precinct=screen.view.precinct, mode=mode)
        return "\n".join([body, *(self._panel(screen, name) for name in screen.panel)])

    def board_delta(self, old: BoardScreen, new: BoardScreen, mode: str) -> str | None:
        """Only what changed between two views of a board (None: nothing did)."""
        parts = [fragments.board_delta(old.view, new.view, mode, self._render, self._card),
                 *(self._panel(new, name) for name in new.panel
                   if old.panel.get(name) != new.panel[name])]
        return "\n".join(p for p in parts if p) or None

    def _card(self, card: queries.Card, mode: str) -> str:
        """One job card, from the cache the pages use too (no CSRF token: board.js sends it)."""
        return cards.of(self.env).html(card, mode, self.clock(), "")

    def _panel(self, screen: BoardScreen, name: str) -> str:
        return self._render(f"partials/{name}.html", precinct=screen.view.precinct,
                            **screen.panel)

    def my(self, unit_id: int) -> str:
        who = Actor(None, "live", Role.OFFICER, frozenset({CITYWIDE}), unit_id)
        q = queries.officer_queue(self.engine, who, self.clock())
        return self._render("partials/my_queue.html", q=q, mode="officer")

    def wall(self, precinct: str) -> str:
        now = self.clock()
        who = Actor(None, "live", Role.WALL, frozenset({precinct}))
        view = queries.board(self.engine, who, precinct, now, self.places)
        with db.read(self.engine) as conn:
            closed_tour = conn.execute(
                sa.select(sa.func.count()).select_from(jobs).where(
                    jobs.c.precinct == precinct, jobs.c.status == "closed",
                    jobs.c.history.is_(sa.false()),  # the city's closes are not this tour's
                    jobs.c.closed_at >= tour_start(now))).scalar() or 0
            ticker = conn.execute(
                sa.select(events.c.seq, events.c.at, events.c.kind, events.c.job_id,
                          events.c.actor, events.c.payload, events.c.after,
                          jobs.c.complaint_type)
                .select_from(events.outerjoin(jobs, jobs.c.id == events.c.job_id))
                .where(events.c.precinct == precinct,
                       events.c.kind.not_in(WALL_QUIET))
                .order_by(events.c.seq.desc()).limit(TICKER)).all()
        return self._render("partials/wall_body.html", view=view, precinct=precinct,
                            mode="view", units=view.lanes, closed_tour=closed_tour,
                            ticker=ticker, tz=TOUR_TZ)

    def city(self, scope: frozenset[str]) -> str:
        now = self.clock()
        rows = city_counters(self.engine, self.geo, scope, now)
        return self._render("partials/city_counters.html", rows=rows, total=totals(rows))


def city_counters(engine: sa.Engine, geo: Any, scope: frozenset[str],
                  now: datetime) -> list[dict[str, Any]]:
    """Every precinct in scope: unassigned, overdue, open by stage, closed this tour."""
    keys = ("unassigned", "held", "overdue", *(s.value for s in WORKING), "closed_tour")
    with db.read(engine) as conn:
        open_rows = conn.execute(
            sa.select(jobs.c.precinct, jobs.c.status, jobs.c.unit_id, jobs.c.ack_due,
                      jobs.c.arrive_due, jobs.c.close_due)
            .where(jobs.c.precinct.is_not(None), jobs.c.status.in_([s.value for s in OPEN]))
        ).all()
        closed = dict(conn.execute(
            sa.select(jobs.c.precinct, sa.func.count()).where(
                jobs.c.precinct.is_not(None), jobs.c.status == "closed",
                jobs.c.history.is_(sa.false()),
                jobs.c.closed_at >= tour_start(now)).group_by(jobs.c.precinct)).all())
    known = set(geo.precincts()) if geo is not None else set()
    names = {p for p in known | {r.precinct for r in open_rows} | set(closed) if sees(scope, p)}
    table = {p: dict.fromkeys(keys, 0) for p in names}
    for r in open_rows:
        if r.precinct not in table:
            continue
        row = table[r.precinct]
        if r.status == Status.NEW.value and r.unit_id is None:
            row["unassigned"] += 1
        elif r.status == Status.HELD.value:
            row["held"] += 1
        elif r.status in row:
            row[r.status] += 1
        if overdue(r.status, Deadlines(r.ack_due, r.arrive_due, r.close_due), now):
            row["overdue"] += 1
    for p, n in closed.items():
        if p in table:
            table[p]["closed_tour"] = n
    return [{"precinct": p, **table[p]}
            for p in sorted(table, key=lambda p: (len(p), p))]


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The citywide line under the precincts' counters."""
    total: dict[str, int] = defaultdict(int)
    for r in rows:
        for k, v in r.items():
            if k != "precinct":
                total[k] += v
    return total

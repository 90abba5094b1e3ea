"""Reads a view from the database and renders the partial an audience sees.

The same partials the pages render; the hub calls these in a worker thread.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from jinja2 import Environment

from board.accountability import alerts, commandlog, reviews
from board.domain.access import CITYWIDE, Actor, Role
from board.domain.flags import FLAG_LABELS, FLAG_SHORT
from board.domain.lifecycle import OPEN, WORKING, Status
from board.domain.places import PlaceRules
from board.live import cards, fragments
from board.live.audiences import Audience, sees, touched
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


def next_tour(tour: datetime) -> datetime:
    """The start of the tour after the one that started at `tour` (tours are 7–9 hours long
    across a change of the clocks, 8 otherwise)."""
    return tour_start(tour + timedelta(hours=9))


def _first(*times: datetime | None) -> datetime | None:
    ahead = [t for t in times if t is not None]
    return min(ahead) if ahead else None


# Events that do not name the job or unit they change (a rule, a policy; a kind added later):
# views are read whole after them.
UNIT_KINDS = frozenset({"unit_status", "unit_added", "unit_position"})
FOLLOWED_ALONE = frozenset({"log_entry"})  # change the log panel only
CLOSE_KINDS = frozenset({"close", "admin_close", "reopen", "route"})


@dataclass
class Change:
    """What one catch-up's events touched. A followed view (board, wall, city) is brought up
    to date from the view before them by reading these jobs and units, not the board again;
    the touched jobs' rows are read once per catch-up, whatever number of views need them."""

    events: list[dict[str, Any]]
    jobs: set[int]
    units: set[int]
    kinds: set[str]
    whole: bool  # an event this cannot follow: read the views whole
    _rows: dict[int, Any] | None = field(default=None, repr=False)
    # the desk's memory of the places read in this snapshot, shared by the views it updates
    memory: dict[int, tuple[int, int | None]] = field(default_factory=dict, repr=False)
    # each precinct's board after these events (by precinct and citywide), worked out once
    # for every screen of it: the supervisors' board, a commander's, the wall
    boards: dict[tuple[str, bool], BoardView] = field(default_factory=dict, repr=False)
    # the citywide counters of the precincts touched (and each one's next deadline), counted
    # once for every scope showing them
    counters: dict[str, tuple[dict[str, Any], datetime | None]] = field(
        default_factory=dict, repr=False)

    @classmethod
    def of(cls, evs: list[dict[str, Any]]) -> Change:
        job_ids = {e["job_id"] for e in evs if e["job_id"] is not None}
        unit_ids = {u for e in evs
                    for u in (e["unit_id"], (e["payload"] or {}).get("from_unit_id"))
                    if isinstance(u, int)}
        whole = any(e["job_id"] is None and e["kind"] not in UNIT_KINDS | FOLLOWED_ALONE
                    for e in evs)
        return cls(evs, job_ids, unit_ids, {e["kind"] for e in evs}, whole)

    def rows(self, conn: sa.Connection) -> dict[int, Any]:
        """The touched jobs as they are now (card columns and `history`), by id."""
        if self._rows is None:
            self._rows = queries.job_rows(conn, self.jobs)
        return self._rows

    def precincts(self) -> set[str | None]:
        return {p for e in self.events for p in touched(e)[0]}


class TickerLine(NamedTuple):
    """One line of the wall's ticker (the event, and the job's complaint type)."""

    seq: int
    at: datetime
    kind: str
    job_id: int | None
    actor: str
    payload: dict[str, Any]
    after: str | None
    complaint_type: str | None


@dataclass(frozen=True)
class WallScreen:
    """What a precinct's wall shows: the board, this tour's closes, the latest events."""

    board: BoardView
    closed_tour: int
    tour: datetime
    ticker: list[TickerLine]


@dataclass(frozen=True)
class CityScreen:
    """The citywide counters of the precincts in a scope, by precinct, and each precinct's
    next deadline: when the clock alone may next change its overdue count."""

    rows: dict[str, dict[str, Any]]
    tour: datetime
    due: dict[str, datetime] = field(default_factory=dict)


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
               "FLAG_LABELS": FLAG_LABELS, "FLAG_SHORT": FLAG_SHORT, "tile_url": self.tile_url,
               **context}
        return self.env.get_template(name).render(ctx).strip()

    def board(self, precinct: str, mode: str, citywide: bool) -> str:
        return self.board_body(self.board_view(precinct, mode, citywide), mode)

    # Audiences followed by what changed (hub.VIEWED): the view, the whole, the difference.

    def view(self, audience: Audience, source: db.Source | None = None, old: Any = None,
             change: Change | None = None) -> Any:
        """The view, read in one snapshot (`source`: a connection whose read it joins). Given
        the view before `change` (a board, wall or citywide counters), only what the change
        touched is read."""
        kind = audience[0]
        follow = old is not None and change is not None and not change.whole
        with db.read(source or self.engine) as conn:
            if kind == "board":
                if follow:
                    return self.board_after(audience, old, change, conn)  # type: ignore[arg-type]
                return self.board_view(*audience[1:], source=conn)
            if kind == "wall":
                if follow:
                    return self.wall_after(audience[1], old, change, conn)  # type: ignore[arg-type]
                return self.wall_view(audience[1], conn)
            if kind == "city":
                if follow:
                    return self.city_after(audience[1], old, change, conn)  # type: ignore[arg-type]
                return self.city_view(audience[1], conn)
            if kind == "my":
                return self.my_view(audience[1], conn)
            if kind == "reviews":
                return self.reviews_view(audience[1], audience[2], conn)
            return self.log_view(audience[1], conn)

    def body(self, audience: Audience, view: Any) -> str:
        kind = audience[0]
        if kind == "board":
            return self.board_body(view, audience[2])
        if kind == "wall":
            return self.wall_body(view)
        if kind == "city":
            return self.city_body(view)
        if kind == "my":
            return self._render("partials/my_queue.html", q=view, mode="officer")
        ctx = self._list_context(audience)
        if kind == "reviews":
            return "\n".join([self._render("partials/review_pending.html", queue=view, **ctx),
                              self._render("partials/review_rows.html", rows=view.rows, **ctx)])
        return self._render("partials/log_entries.html", entries=view, **ctx)

    def changes_at(self, audience: Audience, view: Any) -> datetime | None:
        """When the clock alone may next change what this view shows (a card's deadline, a new
        tour, an alert leaving the banner); None: not before an event. Ages are not counted:
        the browser counts them up (static/live.js)."""
        kind = audience[0]
        if kind == "board":
            return _first(view.view.base.next_due if view.view.base else self.clock(),
                          *(a.at + alerts.WINDOW for a in view.panel.get("alerts", ())))
        if kind == "wall":
            return _first(view.board.base.next_due if view.board.base else self.clock(),
                          next_tour(view.tour))
        if kind == "my":
            return view.next_due
        if kind == "city":
            return _first(*view.due.values(), next_tour(view.tour))
        return None

    def delta(self, audience: Audience, old: Any, new: Any) -> str | None:
        kind = audience[0]
        if kind == "board":
            return self.board_delta(old, new, audience[2])
        if kind == "wall":
            return self.wall_delta(old, new)
        if kind == "city":
            return self.city_delta(old, new)
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
        who = self._board_actor(precinct, mode, citywide)
        # One snapshot for the jobs and the panel: its alerts never name a job the lists
        # show closed. A supervisor's board also carries its alerts and latest log entries,
        # each its own partial swapped by id.
        with db.read(source or self.engine) as conn:
            view = queries.board(conn, who, precinct, self.clock(), self.places)
            panel = (alerts.supervisor_panel(conn, precinct, self.clock())
                     if mode == "supervisor" else {})
        return BoardScreen(view, panel)

    def board_after(self, audience: Audience, old: BoardScreen, change: Change,
                    conn: sa.Connection) -> BoardScreen:
        """The board after `change`, from the one before it: the touched jobs, their units
        and stacks; the panel's alerts from the events in hand (alerts.after)."""
        precinct, mode, citywide = audience[1:]
        now = self.clock()
        rows = change.rows(conn)
        view = self._board_after(precinct, citywide, old.view, change, conn, now)
        panel = old.panel
        if mode == "supervisor":
            here = {i: r for i, r in rows.items()}
            panel = {"alerts": alerts.after(conn, precinct, now, old.panel["alerts"],
                                            change.events, here),
                     "log_latest": (commandlog.latest(conn, precinct)
                                    if "log_entry" in change.kinds
                                    else old.panel["log_latest"])}
        return BoardScreen(view, panel)

    def _board_after(self, precinct: str, citywide: bool, old: BoardView, change: Change,
                     conn: sa.Connection, now: datetime) -> BoardView:
        """A precinct's board after `change`, worked out once a catch-up for all its screens:
        they show the same events, so each one's view before it is the same board (each gets
        its own fragments against the view its sockets show)."""
        key = (precinct, citywide)
        if key not in change.boards:
            change.boards[key] = queries.board_after(
                conn, self._board_actor(precinct, "view", citywide), old, now,
                change.rows(conn), change.units, change.kinds, change.memory)
        return change.boards[key]

    @staticmethod
    def _board_actor(precinct: str, mode: str, citywide: bool) -> Actor:
        role = Role.SUPERVISOR if mode == "supervisor" else Role.COMMANDER
        return Actor(None, "live", role, frozenset({CITYWIDE} if citywide else {precinct}))

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
        return self.body(("my", unit_id), self.my_view(unit_id))

    def my_view(self, unit_id: int, source: db.Source | None = None) -> queries.OfficerQueue:
        who = Actor(None, "live", Role.OFFICER, frozenset({CITYWIDE}), unit_id)
        return queries.officer_queue(source or self.engine, who, self.clock())

    def wall(self, precinct: str) -> str:
        return self.wall_body(self.wall_view(precinct))

    def wall_view(self, precinct: str, source: db.Source | None = None) -> WallScreen:
        now = self.clock()
        who = Actor(None, "live", Role.WALL, frozenset({precinct}))
        with db.read(source or self.engine) as conn:
            view = queries.board(conn, who, precinct, now, self.places)
            tour = tour_start(now)
            closed_tour = self._closed_tour(conn, precinct, tour)
            ticker = [TickerLine(*r) for r in conn.execute(
                sa.select(events.c.seq, events.c.at, events.c.kind, events.c.job_id,
                          events.c.actor, events.c.payload, events.c.after,
                          jobs.c.complaint_type)
                .select_from(events.outerjoin(jobs, jobs.c.id == events.c.job_id))
                .where(events.c.precinct == precinct,
                       events.c.kind.not_in(WALL_QUIET))
                .order_by(events.c.seq.desc()).limit(TICKER)).all()]
        return WallScreen(view, closed_tour, tour, ticker)

    @staticmethod
    def _closed_tour(conn: sa.Connection, precinct: str, tour: datetime) -> int:
        return conn.execute(
            sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.precinct == precinct, jobs.c.status == "closed",
                jobs.c.history.is_(sa.false()),  # the city's closes are not this tour's
                jobs.c.closed_at >= tour)).scalar() or 0

    def wall_after(self, precinct: str, old: WallScreen, change: Change,
                   conn: sa.Connection) -> WallScreen:
        """The wall after `change`: the board followed as a board is, the tour's closes
        counted again only after a close or reopen, the ticker from the events in hand."""
        now = self.clock()
        tour = tour_start(now)
        if tour != old.tour:
            return self.wall_view(precinct, conn)
        rows = change.rows(conn)
        view = self._board_after(precinct, False, old.board, change, conn, now)
        closed_tour = (self._closed_tour(conn, precinct, tour) if change.kinds & CLOSE_KINDS
                       else old.closed_tour)
        lines = {t.seq: t for t in old.ticker}
        for t in lines.values():
            if t.job_id in rows:
                lines[t.seq] = t._replace(complaint_type=rows[t.job_id].complaint_type)
        for e in change.events:
            if e["precinct"] == precinct and e["kind"] not in WALL_QUIET:
                job = rows.get(e["job_id"])
                lines[e["seq"]] = TickerLine(e["seq"], e["at"], e["kind"], e["job_id"],
                                             e["actor"], e["payload"], e["after"],
                                             job.complaint_type if job is not None else None)
        ticker = [lines[s] for s in sorted(lines, reverse=True)[:TICKER]]
        return WallScreen(view, closed_tour, tour, ticker)

    def wall_body(self, screen: WallScreen) -> str:
        view = screen.board
        return self._render("partials/wall_body.html", view=view, precinct=view.precinct,
                            mode="view", **self._wall_context(screen))

    @staticmethod
    def _wall_context(screen: WallScreen) -> dict[str, Any]:
        """What the wall's partials need besides the board."""
        return {"closed_tour": screen.closed_tour, "ticker": screen.ticker, "tz": TOUR_TZ,
                "lane_limit": 1}

    def wall_delta(self, old: WallScreen, new: WallScreen) -> str | None:
        """Only what changed on a wall: the board's parts as a board's (fragments.WALL), the
        ticker when a line came."""
        ctx = self._wall_context(new)
        parts = [fragments.board_delta(
            old.board, new.board, "view", lambda name, **c: self._render(name, **ctx, **c),
            self._card, fragments.WALL, counted=old.closed_tour != new.closed_tour)]
        if old.ticker != new.ticker:
            parts.append(self._render("partials/wall_ticker.html", **ctx))
        return "\n".join(p for p in parts if p) or None

    def city(self, scope: frozenset[str]) -> str:
        return self.city_body(self.city_view(scope))

    def city_view(self, scope: frozenset[str], source: db.Source | None = None) -> CityScreen:
        now = self.clock()
        rows, due = counted_with_deadlines(source or self.engine, self.geo, scope, now)
        return CityScreen({r["precinct"]: r for r in rows}, tour_start(now), due)

    def city_after(self, scope: frozenset[str], old: CityScreen, change: Change,
                   conn: sa.Connection) -> CityScreen:
        """The counters of the precincts the change touched counted again (a handful of rows
        each); the others as they were."""
        now = self.clock()
        if tour_start(now) != old.tour:
            return self.city_view(scope, conn)
        hit = {p for p in change.precincts() if sees(scope, p)}
        rows, due = dict(old.rows), dict(old.due)
        for p, (row, next_due) in self._counted(hit, change, conn, now).items():
            rows[p] = row
            due.pop(p, None)
            if next_due is not None:
                due[p] = next_due
        return CityScreen(rows, old.tour, due)

    def _counted(self, precincts: set[str | None], change: Change, conn: sa.Connection,
                 now: datetime) -> dict[str, tuple[dict[str, Any], datetime | None]]:
        """These precincts' counters after `change` and their next deadlines, counted once a
        catch-up whatever number of scopes show them (a borough's commanders, the citywide
        page)."""
        if missing := {p for p in precincts if p is not None} - change.counters.keys():
            rows, due = counted_with_deadlines(conn, self.geo, frozenset({CITYWIDE}), now,
                                               only=missing)
            for r in rows:
                change.counters[r["precinct"]] = (r, due.get(r["precinct"]))
        return {p: change.counters[p] for p in precincts if p in change.counters}

    def city_body(self, screen: CityScreen) -> str:
        rows = [screen.rows[p] for p in sorted(screen.rows, key=lambda p: (len(p), p))]
        return self._render("partials/city_counters.html", rows=rows, total=totals(rows))

    def city_delta(self, old: CityScreen, new: CityScreen) -> str | None:
        """The rows of the precincts whose counters changed, and the citywide line if it did
        (the table whole if the precincts shown changed); None: nothing did."""
        if old.rows.keys() != new.rows.keys():
            return self.city_body(new)
        parts = [self._render("partials/city_row.html", r=new.rows[p])
                 for p in sorted(new.rows, key=lambda p: (len(p), p))
                 if new.rows[p] != old.rows[p]]
        if parts:
            parts.append(self._render("partials/city_total.html",
                                      total=totals(list(new.rows.values()))))
        return "\n".join(parts) or None


def city_counters(engine: db.Source, geo: Any, scope: frozenset[str], now: datetime,
                  only: set[str] | None = None) -> list[dict[str, Any]]:
    """Every precinct in scope (or `only` these): unassigned, overdue, open by stage, closed
    this tour. Counted by the database: a few rows a precinct, however many jobs are open."""
    return counted_with_deadlines(engine, geo, scope, now, only)[0]


# The deadlines that make an open job late (board.domain.priorities.overdue): its close
# deadline in any status, and in these statuses the deadline of the stage it has not got past.
_STAGE_DUE = {"ack_due": ("new", "held", "assigned"), "arrive_due": ("acknowledged", "en_route")}
_LATE_BY = {status: ("close_due", due) for due, statuses in _STAGE_DUE.items()
            for status in statuses}


@functools.cache
def _counting(some: bool) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The counters' two statements, built once (a catch-up counts the precincts it touched:
    building them anew each time cost as much as running them): open jobs by precinct,
    status and whether free, with how many are late and their next deadlines; closes this
    tour by precinct. Bound: `now`, `tour`, and `only` (the precincts) when `some`."""
    now = sa.bindparam("now", type_=jobs.c.close_due.type)
    late = sa.or_(jobs.c.close_due < now,
                  *(sa.and_(jobs.c.status.in_(statuses), jobs.c[due] < now)
                    for due, statuses in _STAGE_DUE.items()))
    free = jobs.c.unit_id.is_(None)
    where_open = [jobs.c.precinct.is_not(None), jobs.c.status.in_([s.value for s in OPEN])]
    where_closed = [jobs.c.precinct.is_not(None), jobs.c.status == "closed",
                    jobs.c.history.is_(sa.false()),
                    jobs.c.closed_at >= sa.bindparam("tour", type_=jobs.c.closed_at.type)]
    if some:
        where_open.append(jobs.c.precinct.in_(sa.bindparam("only", expanding=True)))
        where_closed.append(jobs.c.precinct.in_(sa.bindparam("only", expanding=True)))
    open_counts = (
        sa.select(jobs.c.precinct, jobs.c.status, free.label("free"), sa.func.count(),
                  sa.func.sum(sa.case((late, 1), else_=0)),
                  *(sa.func.min(sa.case((jobs.c[d] >= now, jobs.c[d]))).label(d)
                    for d in ("close_due", "ack_due", "arrive_due")))
        .where(*where_open).group_by(jobs.c.precinct, jobs.c.status, free))
    closed_counts = (sa.select(jobs.c.precinct, sa.func.count()).where(*where_closed)
                     .group_by(jobs.c.precinct))
    return open_counts, closed_counts


def counted_with_deadlines(engine: db.Source, geo: Any, scope: frozenset[str], now: datetime,
                           only: set[str] | None = None
                           ) -> tuple[list[dict[str, Any]], dict[str, datetime]]:
    """`city_counters`, and each precinct's next deadline from `now` on: until it has passed,
    time alone does not change the precinct's overdue count. (A deadline of a job late already
    may come first: one read too many, never a count left behind.)"""
    keys = ("unassigned", "held", "overdue", *(s.value for s in WORKING), "closed_tour")
    if only is not None and not only:
        return [], {}
    params: dict[str, Any] = {"now": now, "tour": tour_start(now)}
    if only is not None:
        params["only"] = sorted(only)
    open_counts, closed_counts = _counting(only is not None)
    with db.read(engine) as conn:
        open_rows = conn.execute(open_counts, params).all()
        closed = dict(conn.execute(closed_counts, params).all())
    known = set(geo.precincts()) if geo is not None else set()
    if only is not None:
        known &= only
    names = {p for p in known | {r.precinct for r in open_rows} | set(closed) if sees(scope, p)}
    table = {p: dict.fromkeys(keys, 0) for p in names}
    due: dict[str, datetime] = {}
    for r in open_rows:
        precinct, status, is_free, n, n_late = r[:5]
        if precinct not in table:
            continue
        soonest = _first(*(r._mapping[d] for d in _LATE_BY.get(status, ("close_due",))),
                         due.get(precinct))
        if soonest is not None:
            due[precinct] = soonest
        row = table[precinct]
        if status == Status.NEW.value:
            if is_free:
                row["unassigned"] += n
        elif status == Status.HELD.value:
            row["held"] += n
        elif status in row:
            row[status] += n
        row["overdue"] += int(n_late or 0)
    for p, n in closed.items():
        if p in table:
            table[p]["closed_tour"] = n
    return [{"precinct": p, **table[p]}
            for p in sorted(table, key=lambda p: (len(p), p))], due


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The citywide line under the precincts' counters."""
    total: dict[str, int] = defaultdict(int)
    for r in rows:
        for k, v in r.items():
            if k != "precinct":
                total[k] += v
    return total

"""The read side: what each screen shows, always within the reader's precinct scope."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor, Forbidden, Role
from board.domain.flags import Fact, flags
from board.domain.lifecycle import LABELS, NEXT_STEP, OPEN, WORKING, Status
from board.domain.places import (
    PlaceRules,
    box_degrees,
    chronic_count,
    earlier_here,
    near_targets,
    same_place,
)
from board.domain.places import Spot as PlaceSpot
from board.domain.priorities import Deadlines, overdue
from board.domain.related import WINDOW as RELATED_WINDOW
from board.domain.related import Spot, SpotIndex
from board.storage import db
from board.storage.schema import events, job_facts, jobs, units
from board.usecases.core import NotFound, active_policies

RECENT_CLOSED = 15


@dataclass(frozen=True)
class Card:
    """A job as every screen shows it: the job card, map marker and queue row read this."""

    id: int
    version: int
    status: str
    status_label: str
    priority: int
    complaint_type: str
    descriptor: str
    address: str
    precinct: str | None
    sector: str | None
    lat: float | None
    lon: float | None
    received_at: datetime
    created_at: datetime
    unit_id: int | None
    unit: str | None
    # Where it stands in its unit's stack: the lane's order shows it, the card does not, so two
    # cards that differ only here are the same card on screen (a job moved to the top of a
    # stack of thirty changes one card, not thirty).
    stack_pos: int | None = field(compare=False)
    photos: int
    overdue: str | None
    disposition: str | None
    closed_at: datetime | None
    external_key: str | None
    flags: frozenset[str] = frozenset()
    borough: str = ""
    cross_streets: str = ""
    incident: int | None = None  # the incident's first job, when linked (its own id if first)
    same_as: int | None = None  # an earlier open job this one is possibly about (not linked)
    here_before: int = 0  # earlier jobs at its place in the memory's window (board.domain.places)
    chronic: int | None = None  # complaints of its condition there in 30 days, when chronic

    @property
    def place(self) -> str:
        """Where to go, in words: the address, else the cross streets 311 gave, else the point."""
        if self.address:
            return self.address
        if self.cross_streets:
            return f"near {self.cross_streets}"
        if self.lat is not None and self.lon is not None:
            return f"{self.lat:.5f}, {self.lon:.5f}"
        return "no location given"

    @property
    def next_step(self) -> tuple[str, str] | None:
        return NEXT_STEP.get(Status(self.status))

    @property
    def open(self) -> bool:
        return Status(self.status) in OPEN


CROSS_PAIRS = (("cross_street_1", "cross_street_2"),
               ("intersection_street_1", "intersection_street_2"))
# Everything a card shows, in the order `card` reads it (select `*CARD_COLUMNS, jobs` where the
# whole row is needed too). The database works out the photo count and the cross streets, so a
# board never parses a 311 row's raw fields or its media list (JSON) for them.
CARD_COLUMNS = (
    *(jobs.c[name] for name in (
        "id", "version", "status", "priority", "complaint_type", "descriptor", "address",
        "precinct", "sector", "lat", "lon", "received_at", "created_at", "unit_id", "stack_pos",
        "disposition", "closed_at", "external_key", "borough", "incident_id", "ack_due",
        "arrive_due", "close_due")),
    sa.func.json_array_length(jobs.c.media).label("photos"),
    *(jobs.c.fields[k].as_string().label(k) for pair in CROSS_PAIRS for k in pair))
_CARD_WIDTH = len(CARD_COLUMNS)
_LABELS = {s.value: label for s, label in LABELS.items()}


def card(row: Any, now: datetime, callsign: str | None = None,
         job_flags: frozenset[str] = frozenset()) -> Card:
    """A job's card from a row that starts with CARD_COLUMNS. Read by position: a Row's
    attributes cost more than the rest of a board's 500 cards."""
    (id_, version, status, priority, complaint_type, descriptor, address, precinct, sector,
     lat, lon, received_at, created_at, unit_id, stack_pos, disposition, closed_at, external_key,
     borough, incident_id, ack_due, arrive_due, close_due, photos, *streets) = row[:_CARD_WIDTH]
    return Card(
        id_, version, status, _LABELS[status], priority, complaint_type, descriptor, address,
        precinct, sector, lat, lon, received_at, created_at, unit_id, callsign, stack_pos,
        photos or 0, overdue(status, Deadlines(ack_due, arrive_due, close_due), now),
        disposition, closed_at, external_key, job_flags, borough or "", cross_streets(*streets),
        incident_id,
    )


def related_cards(rows: list[Any], now: datetime, callsigns: dict[int, str]) -> dict[int, Card]:
    """Cards of jobs read together, with their incident (the first job too) and "possibly the
    same as #N" among them filled in."""
    return relate([card(r, now, callsigns.get(r.unit_id)) for r in rows])


@dataclass
class Relating:
    """What `relate` worked out last time: each card's spot, by the card it came from, the
    spots' index and the "possibly the same" pairs they gave. While no spot changed (a status,
    a unit, a stack: most events) the pairs stand; when a few did (a job came, left, moved or
    was linked) only those and the jobs they may have been the match of are matched again.
    `related`: card id → (the card as read, as related), for the cards that differ, reused
    when neither changed (a copy costs more than the rule)."""

    spots: dict[int, tuple[Card, Spot]] = field(default_factory=dict)
    same: dict[int, int] = field(default_factory=dict)
    index: SpotIndex | None = None
    related: dict[int, tuple[Card, Card]] = field(default_factory=dict)


# Past this many spots changed at once, the index is built again (a whole read's worth).
REINDEX = 64


def relate(cards: list[Card], memo: Relating | None = None) -> dict[int, Card]:
    """Cards as read (their own incident only), with their incident (the first job too) and
    "possibly the same as #N" among them filled in. `memo`: what the last time worked out,
    brought up to date here."""
    memo = memo or Relating()
    leads = {c.incident for c in cards if c.incident is not None}
    same = _same(cards, leads, memo)
    before = memo.related

    def related(c: Card) -> Card:  # most cards are neither: no copy
        if c.id not in leads and c.id not in same:
            return c
        incident, same_as = c.incident or (c.id if c.id in leads else None), same.get(c.id)
        was = before.get(c.id)
        if was is not None and was[0] is c and (was[1].incident, was[1].same_as) == (
                incident, same_as):
            return was[1]
        return replace(c, incident=incident, same_as=same_as)
    out = {c.id: related(c) for c in cards}
    memo.related = {c.id: (c, out[c.id]) for c in cards if out[c.id] is not c}
    return out


def _same(cards: list[Card], leads: set[int], memo: Relating) -> dict[int, int]:
    """possibly_same over the cards' spots, kept in `memo` from the last time: the memo's
    pairs when every spot is the one it had; else its index brought up to date and only the
    spots that changed, and those that may now match differently, matched again."""
    old = memo.spots
    spots: dict[int, tuple[Card, Spot]] = {}
    came: list[Spot] = []
    gone: list[Spot] = []
    for c in cards:
        incident = c.incident or (c.id if c.id in leads else None)
        kept = old.get(c.id)
        if kept is not None and kept[0] is c and kept[1].incident == incident:
            spots[c.id] = kept  # the very card: its place is the one it had
            continue
        spot = Spot(c.id, c.address, c.lat, c.lon, c.complaint_type, c.received_at, incident)
        spots[c.id] = (c, spot)
        if kept is None or kept[1] != spot:
            came.append(spot)
            if kept is not None:
                gone.append(kept[1])  # moved: out as it was, in as it is
    gone += [old[i][1] for i in old.keys() - spots.keys()]
    memo.spots = spots
    if not came and not gone:
        return memo.same
    if memo.index is None or len(came) + len(gone) > REINDEX:
        memo.index = SpotIndex(s for _, s in spots.values())
        memo.same = {i: m for i, (_, s) in spots.items()
                     if (m := memo.index.earliest_alike(s)) is not None}
        return memo.same
    for s in gone:
        memo.index.remove(s)
    for s in came:
        memo.index.add(s)
    memo.same = _matched_again(spots, memo, came, {s.id for s in gone})
    return memo.same


def _matched_again(spots: dict[int, tuple[Card, Spot]], memo: Relating, came: list[Spot],
                   gone: set[int]) -> dict[int, int]:
    """The pairs after these spots came and went: a spot is matched again when it came, when
    its match went (or moved), or when it was received after a spot that came, within the
    rule's window (the newcomer may be its earlier match now)."""
    assert memo.index is not None
    again = {s.id for s in came} | {i for i, m in memo.same.items() if m in gone}
    if came:
        first = min(s.received_at for s in came)
        last = max(s.received_at for s in came) + RELATED_WINDOW
        again |= {i for i, (_, s) in spots.items() if first <= s.received_at <= last}
    same = {i: m for i, m in memo.same.items() if i in spots and i not in again}
    for i in again & spots.keys():
        if (m := memo.index.earliest_alike(spots[i][1])) is not None:
            same[i] = m
    return same


def cross_streets(*streets: Any) -> str:
    """The nearest cross streets as 311 recorded them (CROSS_PAIRS: a block's ends, else an
    intersection)."""
    for pair in (streets[:2], streets[2:]):
        names = [n for n in (str(s).strip() for s in pair if s) if n]
        if names:
            return " & ".join(names)
    return ""


def _flags(conn: sa.Connection, rows: list[Any]) -> dict[int, frozenset[str]]:
    """Jobs' flags as their events left them (job_facts.flags): one row a job, not its
    timeline, which grows with every assignment it ever had."""
    ids = [r.id for r in rows]
    if not ids:
        return {}
    kept = dict(conn.execute(sa.select(job_facts.c.job_id, job_facts.c.flags)
                             .where(job_facts.c.job_id.in_(ids))).all())
    return {i: frozenset(kept.get(i) or ()) for i in ids}


def check_precinct(actor: Actor, precinct: str | None) -> None:
    if not actor.sees(precinct):
        raise Forbidden("this is outside your precincts")


@dataclass(frozen=True)
class Lane:
    id: int
    version: int
    callsign: str
    sector: str | None
    status: str
    status_reason: str | None
    lat: float | None
    lon: float | None
    jobs: list[Card]

    @property
    def activity(self) -> str:
        """What the unit is doing: its own status, else what its top job says."""
        if self.status != "available":
            return self.status
        return self.jobs[0].status if self.jobs else "available"


@dataclass
class BoardBase:
    """What a board view is assembled from, kept beside it so that a live update reads only the
    rows its events touched (`board_after`), not the precinct's whole board again."""

    units: list[Any]                 # the precinct's unit rows, in callsign order
    open: dict[int, Card]            # its open jobs' cards as read (before `relate`)
    due: dict[int, Deadlines]        # their deadlines: overdue moves with the clock alone
    unrouted_due: dict[int, Deadlines] = field(default_factory=dict)
    now: datetime | None = None      # the time the cards' overdue was worked out for
    rules: PlaceRules = field(default_factory=PlaceRules)  # the desk's memory (with_memory)
    # the first deadline after `now` of any card: until then no card's overdue can change
    # (None: none is ahead)
    next_due: datetime | None = None
    relating: Relating = field(default_factory=Relating)  # for `relate`


@dataclass(frozen=True)
class BoardView:
    precinct: str | None
    queue: list[Card]
    lanes: list[Lane]
    closed: list[Card]
    unrouted: list[Card]
    base: BoardBase | None = field(default=None, compare=False, repr=False)

    @property
    def counters(self) -> dict[str, int]:
        working = [c for lane in self.lanes for c in lane.jobs]
        stage = defaultdict(int)
        for c in working:
            stage[c.status] += 1
        return {
            "unassigned": sum(1 for c in self.queue if c.status == "new"),
            "held": sum(1 for c in self.queue if c.status == "held"),
            "overdue": sum(1 for c in [*self.queue, *working] if c.overdue),
            "assigned": stage["assigned"], "acknowledged": stage["acknowledged"],
            "en_route": stage["en_route"], "on_scene": stage["on_scene"],
            "closed": len(self.closed),
            "units_available": sum(1 for lane in self.lanes if lane.activity == "available"),
        }


def board(engine: db.Source, actor: Actor, precinct: str, now: datetime,
          places: PlaceRules | None = None, memory: bool = True) -> BoardView:
    """A precinct's board. `memory`: count each card's earlier jobs at its place (the desk's
    memory); a reader that shows no such count (the JSON API) leaves it out, and with it a
    read that grows with the history of the board's places."""
    check_precinct(actor, precinct)
    with db.read(engine) as conn:
        # One read of the precinct's units: every callsign (a job may sit on a unit now off
        # duty), the lanes of those on duty.
        unit_rows = _precinct_units(conn, precinct)
        open_rows = conn.execute(
            sa.select(*CARD_COLUMNS).where(jobs.c.precinct == precinct,
                                  jobs.c.status.in_([s.value for s in OPEN]))
            .order_by(jobs.c.priority, jobs.c.received_at, jobs.c.id)
        ).all()
        # the board's own closes: history (closed by the city before import) was never its work
        closed_rows = conn.execute(
            sa.select(*CARD_COLUMNS).where(jobs.c.precinct == precinct, jobs.c.status == "closed",
                                  jobs.c.history.is_(sa.false()))
            .order_by(jobs.c.closed_at.desc(), jobs.c.id.desc()).limit(RECENT_CLOSED)
        ).all()
        closed_flags = _flags(conn, closed_rows)
        unrouted_rows = _unrouted_rows(conn, actor)
        signs = {u.id: u.callsign for u in unit_rows}
        rules = places or PlaceRules()
        cards = {r.id: card(r, now, signs.get(r.unit_id)) for r in open_rows}
        if memory:
            cards = with_memory(conn, cards, rules)
    base = BoardBase(unit_rows, cards, {r.id: _due(r) for r in open_rows},
                     {r.id: _due(r) for r in unrouted_rows}, now, rules)
    base.next_due = _next_due([*base.due.values(), *base.unrouted_due.values()], now)
    closed = [card(r, now, signs.get(r.unit_id), closed_flags.get(r.id, frozenset()))
              for r in closed_rows]
    return _assemble(precinct, base, closed, [card(r, now) for r in unrouted_rows], now)


def _precinct_units(conn: sa.Connection, precinct: str) -> list[Any]:
    return conn.execute(sa.select(units).where(units.c.precinct == precinct)
                        .order_by(units.c.callsign)).all()


def _due(row: Any) -> Deadlines:
    return Deadlines(row.ack_due, row.arrive_due, row.close_due)


def _in_order(cards: Any) -> list[Card]:
    """The board's order of open jobs: priority, then oldest first (the queries' ORDER BY)."""
    return sorted(cards, key=lambda c: (c.priority, c.received_at, c.id))


def _overdue_now(cards: dict[int, Card], due: dict[int, Deadlines], now: datetime
                 ) -> dict[int, Card]:
    """The cards again at `now`: only those whose overdue changed are copied."""
    out = {}
    for i, c in cards.items():
        late = overdue(c.status, due[i], now)
        out[i] = c if late == c.overdue else replace(c, overdue=late)
    return out


def _assemble(precinct: str, base: BoardBase, closed: list[Card], unrouted: list[Card],
              now: datetime) -> BoardView:
    """The board from its open jobs' cards, units, closes and unrouted jobs (no I/O)."""
    if base.now != now and base.next_due is not None and now >= base.next_due:
        # time alone may have made a job overdue since the cards were read
        base.open = _overdue_now(base.open, base.due, now)
        late = _overdue_now({c.id: c for c in unrouted}, base.unrouted_due, now)
        unrouted = [late[c.id] for c in unrouted]
        base.next_due = _next_due([*base.due.values(), *base.unrouted_due.values()], now)
    base.now = now
    ordered = _in_order(base.open.values())
    related = relate(ordered, base.relating)
    queue = [related[c.id] for c in ordered if c.unit_id is None]
    stacks: dict[int, list[Card]] = defaultdict(list)
    for c in sorted((c for c in ordered if c.unit_id is not None),
                    key=lambda c: (c.stack_pos if c.stack_pos is not None else 1 << 30, c.id)):
        stacks[c.unit_id].append(related[c.id])  # type: ignore[index]
    lanes = [Lane(u.id, u.version, u.callsign, u.sector, u.status, u.status_reason, u.lat, u.lon,
                  stacks.get(u.id, [])) for u in base.units if u.status != "off_duty"]
    return BoardView(precinct, queue, lanes, closed, unrouted, base)


def _next_due(dues: Any, now: datetime) -> datetime | None:
    """The first deadline after `now` among these (None: none is ahead)."""
    ahead = [d for due in dues for d in (due.acknowledge, due.arrive, due.close) if d > now]
    return min(ahead) if ahead else None


def newest_seq(source: db.Source) -> int:
    """The newest committed event's number (0: none yet): how far a reader must have read to
    show everything committed before it asked."""
    with db.read(source) as conn:
        return conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0


def job_rows(conn: sa.Connection, ids: set[int]) -> dict[int, Any]:
    """These jobs now (card columns, then `history`), by id: what a live update reads."""
    if not ids:
        return {}
    return {r.id: r for r in conn.execute(sa.select(*CARD_COLUMNS, jobs.c.history)
                                          .where(jobs.c.id.in_(sorted(ids))))}


def board_after(conn: sa.Connection, actor: Actor, old: BoardView, now: datetime,
                touched: dict[int, Any], unit_ids: set[int], changes: set[str] = frozenset(),
                memo: dict[int, tuple[int, int | None]] | None = None) -> BoardView:
    """The board after events that touched these jobs and units, from the board before them:
    reads the touched jobs, the units among them and their stacks (a write renumbers a
    stack), and the recent closes only when one left them. The same view `board` reads
    whole (tests/live/test_fragments.py), for rows in proportion to the change. `touched`:
    the rows of the jobs the events named (`job_rows`); `changes`: the events' kinds; `memo`:
    the memory of places read for other views in the same snapshot (shared, filled here)."""
    assert old.base is not None and old.precinct is not None
    precinct, before = old.precinct, old.base
    job_ids, rows = set(touched), list(touched.values())
    unit_rows = _units_after(conn, precinct, before.units, "unit_added" in changes,
                             unit_ids if changes & UNIT_CHANGES else set())
    signs = {u.id: u.callsign for u in unit_rows}
    mine = {u.id for u in unit_rows}
    lanes = ({before.open[j].unit_id for j in job_ids if j in before.open}
             | {r.unit_id for r in rows} | set(unit_ids)) & mine
    stack_rows = (conn.execute(
        sa.select(*CARD_COLUMNS).where(jobs.c.unit_id.in_(sorted(lanes)),
                                       jobs.c.status.in_([s.value for s in WORKING]))).all()
        if lanes else [])
    cards, due = dict(before.open), dict(before.due)
    for j in job_ids:
        cards.pop(j, None)
        due.pop(j, None)
    is_open = {s.value for s in OPEN}
    remember: dict[int, Card] = {}  # cards whose memory of their place is read again
    for r in [*rows, *stack_rows]:
        if r.precinct == precinct and r.status in is_open:
            c = card(r, now, signs.get(r.unit_id))
            was = before.open.get(r.id)
            if was is None or any(getattr(was, f) != getattr(c, f) for f in PLACE_FIELDS):
                remember[r.id] = c  # new here, or its place moved
            else:  # its place is where it was: so is the memory of it (a status is no part)
                c = replace(c, here_before=was.here_before, chronic=was.chronic)
            cards[r.id] = c
            due[r.id] = _due(r)
    remember.update(_place_moved(before, cards, remember, touched, precinct, changes))
    cards.update(_remembered(conn, remember, before.rules, memo))
    unrouted, unrouted_due = old.unrouted, before.unrouted_due
    if actor.citywide and (rows or any(c.id in job_ids for c in unrouted)):
        unrouted_due = {i: d for i, d in unrouted_due.items() if i not in job_ids}
        fresh = [r for r in rows if r.precinct is None and r.status in is_open]
        unrouted_due.update({r.id: _due(r) for r in fresh})
        unrouted = _in_order([*(c for c in unrouted if c.id not in job_ids),
                              *(card(r, now) for r in fresh)])
    closed = _closed_after(conn, precinct, old.closed, rows, job_ids, signs, now)
    base = BoardBase(unit_rows, cards, due, unrouted_due, before.now, before.rules,
                     before.next_due, before.relating)
    fresh_due = [due[i] for i in remember.keys() | {r.id for r in [*rows, *stack_rows]}
                 if i in due] + [unrouted_due[i] for i in unrouted_due if i in job_ids]
    if (ahead := _next_due(fresh_due, now)) is not None and (
            base.next_due is None or ahead < base.next_due):
        base.next_due = ahead
    return _assemble(precinct, base, closed, unrouted, now)


# The events that change a unit's own row (its lane's status, position; a new lane): only
# after these are the units read again.
UNIT_CHANGES = frozenset({"unit_status", "unit_position", "unit_added"})


PLACE_FIELDS = ("address", "lat", "lon", "complaint_type", "created_at")


def _remembered(conn: sa.Connection, cards: dict[int, Card], rules: PlaceRules,
                memo: dict[int, tuple[int, int | None]] | None) -> dict[int, Card]:
    """with_memory, for the cards whose memory another view of this snapshot has not read."""
    memo = {} if memo is None else memo
    known = {i: replace(c, here_before=memo[i][0], chronic=memo[i][1])
             for i, c in cards.items() if i in memo}
    read = with_memory(conn, {i: c for i, c in cards.items() if i not in memo}, rules)
    memo.update({i: (c.here_before, c.chronic) for i, c in read.items()})
    return {**known, **read}


def _place_moved(before: BoardBase, cards: dict[int, Card], fresh: dict[int, Card],
                 touched: dict[int, Any], precinct: str, changes: set[str]
                 ) -> dict[int, Card]:
    """The other open cards whose memory may have changed: those later than a touched job at
    its place (old or new), within the memory's window, when that job is new here (created,
    any status: a backdated one counts for later jobs), left the precinct, or its place moved.
    A 311 update or a route of a job the board did not show, whose old place is unknown
    here, reads every card's memory again (a rare event)."""
    spots: list[PlaceSpot] = []
    for i, c in fresh.items():
        was = before.open.get(i)
        if was is None:
            if changes & {"update_311", "route"}:
                return {k: v for k, v in cards.items() if k not in fresh}
            spots.append(_as_spot(c))
        elif any(getattr(was, f) != getattr(c, f) for f in PLACE_FIELDS):
            spots += [_as_spot(was), _as_spot(c)]
    for j, row in touched.items():
        if j in fresh:
            continue
        was = before.open.get(j)
        if was is not None and row.precinct != precinct:  # routed away: its old place loses it
            spots.append(_as_spot(was))
        elif was is None and row.precinct == precinct and changes & {"create", "history"}:
            spots.append(PlaceSpot(row.id, row.address, row.lat, row.lon, row.complaint_type,
                                   row.created_at))
    if not spots:
        return {}
    window = before.rules.history
    return {i: c for i, c in cards.items() if i not in fresh and any(
        s.created_at < c.created_at <= s.created_at + window
        and same_place(_as_spot(c), s, before.rules.near_m) for s in spots)}


def _units_after(conn: sa.Connection, precinct: str, before: list[Any], added: bool,
                 unit_ids: set[int]) -> list[Any]:
    """The precinct's units after events on these: the touched rows re-read in place (a unit
    added: all of them again, for the callsign order the database gives)."""
    if added:
        return _precinct_units(conn, precinct)
    known = {u.id for u in before}
    ids = sorted(unit_ids & known)
    if not ids:
        return before
    fresh = {u.id: u for u in conn.execute(sa.select(units).where(units.c.id.in_(ids)))}
    if any(u.precinct != precinct for u in fresh.values()):
        return _precinct_units(conn, precinct)
    return [fresh.get(u.id, u) for u in before]


def _closed_after(conn: sa.Connection, precinct: str, old: list[Card], rows: list[Any],
                  job_ids: set[int], signs: dict[int, str], now: datetime) -> list[Card]:
    """The recently closed list after changes to these jobs: the touched closes merged in;
    read again (RECENT_CLOSED rows) only when one of the list left it (a reopen)."""
    shown = {c.id for c in old}
    closes = [r for r in rows if r.precinct == precinct and r.status == "closed"
              and not r.history]
    if not closes and not shown & job_ids:
        return old
    if shown & (job_ids - {r.id for r in closes}):
        closed_rows = conn.execute(
            sa.select(*CARD_COLUMNS).where(jobs.c.precinct == precinct, jobs.c.status == "closed",
                                  jobs.c.history.is_(sa.false()))
            .order_by(jobs.c.closed_at.desc(), jobs.c.id.desc()).limit(RECENT_CLOSED)
        ).all()
        kept = {c.id: c for c in old if c.id not in job_ids}
        new = [r for r in closed_rows if r.id not in kept]
        flagged = _flags(conn, new)
        made = {r.id: card(r, now, signs.get(r.unit_id), flagged.get(r.id, frozenset()))
                for r in new}
        return [kept.get(r.id) or made[r.id] for r in closed_rows]
    flagged = _flags(conn, closes)
    merged = [*(c for c in old if c.id not in job_ids),
              *(card(r, now, signs.get(r.unit_id), flagged.get(r.id, frozenset()))
                for r in closes)]
    merged.sort(key=lambda c: (c.closed_at, c.id), reverse=True)
    return merged[:RECENT_CLOSED]


def unrouted_cards(conn: sa.Connection, actor: Actor, now: datetime) -> list[Card]:
    """Jobs no precinct polygon took: only citywide users see (and route) them."""
    return [card(r, now) for r in _unrouted_rows(conn, actor)]


def _unrouted_rows(conn: sa.Connection, actor: Actor) -> list[Any]:
    if not actor.citywide:
        return []
    return conn.execute(
        sa.select(*CARD_COLUMNS).where(jobs.c.precinct.is_(None),
                              jobs.c.status.in_([s.value for s in OPEN]))
        .order_by(jobs.c.priority, jobs.c.received_at, jobs.c.id)
    ).all()


@dataclass(frozen=True)
class JobDetail:
    card: Card
    row: Any
    timeline: list[Any]
    unit: Any | None


def _job_row(conn: sa.Connection, actor: Actor, job_id: int) -> tuple[Any, Any | None]:
    """A job's row and its unit's, for a reader allowed to see its details."""
    row = conn.execute(sa.select(*CARD_COLUMNS, jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    check_precinct(actor, row.precinct)
    if actor.role is Role.WALL:
        raise Forbidden("a wall display shows the board, not a job's details")
    unit = (conn.execute(sa.select(units).where(units.c.id == row.unit_id)).first()
            if row.unit_id else None)
    return row, unit


def job(engine: sa.Engine, actor: Actor, job_id: int, now: datetime) -> JobDetail:
    with db.read(engine) as conn:
        row, unit = _job_row(conn, actor, job_id)
        timeline = conn.execute(
            sa.select(events).where(events.c.job_id == job_id).order_by(events.c.seq)).all()
    facts = [Fact(e.kind, e.at, e.payload or {}) for e in timeline]
    job_flags = frozenset(flags(facts, bool(row.media)))
    return JobDetail(card(row, now, unit.callsign if unit else None, job_flags), row, timeline,
                     unit)


def job_card(engine: sa.Engine, actor: Actor, job_id: int, now: datetime) -> Card:
    """The job's card alone (a write's answer): `job(...).card` without reading its timeline,
    so answering a write costs the same on its tenth event and its thousandth."""
    with db.read(engine) as conn:
        row, unit = _job_row(conn, actor, job_id)
        job_flags = _flags(conn, [row])[row.id]
    return card(row, now, unit.callsign if unit else None, job_flags)


@dataclass(frozen=True)
class Related:
    """A job page's related complaints: its incident's jobs, or what it is possibly about."""

    incident: int | None
    members: list[Card]
    same_as: Card | None


def related(engine: sa.Engine, actor: Actor, row: Any, now: datetime) -> Related:
    """Read with the job page (same scope): the incident's jobs and the earlier job this one
    is possibly the same as, from the precinct's open jobs."""
    check_precinct(actor, row.precinct)
    if row.precinct is None:
        return Related(None, [], None)
    with db.read(engine) as conn:
        rows = conn.execute(sa.select(*CARD_COLUMNS).where(
            jobs.c.precinct == row.precinct,
            sa.or_(jobs.c.status.in_([s.value for s in OPEN]), jobs.c.id == row.id))).all()
    cards = related_cards(rows, now, {})
    me = cards[row.id]
    members = [c for c in cards.values() if me.incident and c.incident == me.incident]
    same = cards.get(me.same_as) if me.same_as else None
    return Related(me.incident, sorted(members, key=lambda c: c.id), same)


def job_unit(engine: sa.Engine, actor: Actor, job_id: int) -> int | None:
    """The unit that has a job now: what a drag means depends on it, not on the client."""
    with db.read(engine) as conn:
        row = conn.execute(sa.select(jobs.c.precinct, jobs.c.unit_id)
                           .where(jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    check_precinct(actor, row.precinct)
    return row.unit_id


@dataclass(frozen=True)
class OfficerQueue:
    unit: Any | None
    jobs: list[Card]
    policies: list[str] = field(default_factory=list)  # close policies in the unit's precinct
    # the first deadline after the read of any of its jobs: until then no card's overdue can
    # change (None: none is ahead)
    next_due: datetime | None = None


def officer_queue(engine: db.Source, actor: Actor, now: datetime) -> OfficerQueue:
    """My unit's stack, top job first."""
    if actor.unit_id is None:
        return OfficerQueue(None, [])
    with db.read(engine) as conn:
        unit = conn.execute(sa.select(units).where(units.c.id == actor.unit_id)).first()
        check_precinct(actor, unit.precinct)
        rows = conn.execute(
            sa.select(*CARD_COLUMNS).where(jobs.c.unit_id == unit.id,
                                  jobs.c.status.in_([s.value for s in WORKING]))
            .order_by(jobs.c.stack_pos, jobs.c.id)
        ).all()
        rules = [p.text for p in active_policies(conn, unit.precinct)]
    mine = related_cards(rows, now, {unit.id: unit.callsign})
    return OfficerQueue(unit, [replace(mine[r.id], same_as=None) for r in rows], rules,
                        _next_due([_due(r) for r in rows], now))


def unit_loads(engine: sa.Engine, actor: Actor, precinct: str) -> dict[int, int]:
    """How many open jobs each of the precinct's units has stacked (the "Assign…" menus rank
    free units first, on the board and on a job's page alike)."""
    check_precinct(actor, precinct)
    with db.read(engine) as conn:
        rows = conn.execute(
            sa.select(jobs.c.unit_id, sa.func.count()).where(
                jobs.c.precinct == precinct, jobs.c.unit_id.is_not(None),
                jobs.c.status.in_([s.value for s in OPEN]))
            .group_by(jobs.c.unit_id)).all()
    return {unit_id: n for unit_id, n in rows}


def precinct_units(engine: sa.Engine, actor: Actor, precinct: str) -> list[Any]:
    check_precinct(actor, precinct)
    with db.read(engine) as conn:
        return conn.execute(sa.select(units).where(units.c.precinct == precinct)
                            .order_by(units.c.callsign)).all()


# -- the desk's memory: earlier jobs at the same place ------------------------------------------

_PLACE_COLUMNS = ("id", "address", "lat", "lon", "complaint_type", "created_at", "status",
                  "disposition", "history")


# Made once: building an alias of `jobs` proxies all its columns (about 0.4 ms a time).
_O, _H = jobs.alias("o"), jobs.alias("h")
_PLACE_SELECT = (_H.c.precinct.label("h_precinct"),
                 *(_H.c[c].label(f"h_{c}") for c in _PLACE_COLUMNS))


def _places_near() -> Any:
    """The memory's one statement (built once: its parts are bound parameters): the jobs of
    the targets' precincts in the window at a target's address or in a box around a target's
    point (a target without a point matches no box), each job once however many targets it
    is near. A place with k jobs on the board gives k rows, not k² (a chronic place's rows
    grew with the square of its complaints); which target each row is near is worked out
    in memory (board.domain.places.near_targets)."""
    o, h = _O, _H
    since = sa.bindparam("since", type_=jobs.c.created_at.type)
    until = sa.bindparam("until", type_=jobs.c.created_at.type)
    dlat, dlon = sa.bindparam("dlat", type_=sa.Float), sa.bindparam("dlon", type_=sa.Float)
    window = [o.c.id.in_(sa.bindparam("ids", expanding=True)),
              h.c.precinct == o.c.precinct, h.c.created_at >= since, h.c.created_at < until]
    same_address = sa.and_(h.c.address == o.c.address, o.c.address != "")
    near = sa.and_(h.c.lat.between(o.c.lat - dlat, o.c.lat + dlat),
                   h.c.lon.between(o.c.lon - dlon, o.c.lon + dlon))
    return sa.union(  # UNION, not UNION ALL: each job once
        sa.select(*_PLACE_SELECT).select_from(o.join(h, same_address)).where(*window),
        sa.select(*_PLACE_SELECT).select_from(o.join(h, near)).where(*window))


_PLACES_NEAR = _places_near()


def _place_spot(row: Any, prefix: str = "") -> PlaceSpot:
    m = row._mapping
    return PlaceSpot(*(m[prefix + c] for c in _PLACE_COLUMNS[:6]), m[prefix + "status"],
                     m[prefix + "disposition"], bool(m[prefix + "history"]))


def place_candidates(conn: sa.Connection, targets: list[tuple[str | None, PlaceSpot]],
                     rules: PlaceRules) -> dict[int, list[PlaceSpot]]:
    """Jobs that may be at each target's place (targets given with their precincts), in one
    query for all the targets: the same address, or inside a bounding box around the point
    (ix_jobs_precinct_lat_lon), of the same precinct, received in the memory's window. The
    domain decides which count (board.domain.places.earlier_here)."""
    if not targets:
        return {}
    spots = [t for _, t in targets]
    lats = [abs(t.lat) for t in spots if t.lat is not None]
    dlat, dlon = box_degrees(max(lats), rules.near_m) if lats else (0.0, 0.0)
    params = {"ids": [t.id for t in spots], "dlat": dlat, "dlon": dlon,
              "since": min(t.created_at for t in spots) - rules.history,
              "until": max(t.created_at for t in spots)}
    found = [(r.h_precinct, _place_spot(r, "h_")) for r in conn.execute(_PLACES_NEAR, params)]
    return near_targets(targets, found, dlat, dlon)


def _as_spot(c: Card) -> PlaceSpot:
    return PlaceSpot(c.id, c.address, c.lat, c.lon, c.complaint_type, c.created_at, c.status,
                     c.disposition)


def with_memory(conn: sa.Connection, cards: dict[int, Card], rules: PlaceRules
                ) -> dict[int, Card]:
    """The cards with how many earlier jobs were at their place and whether it is chronic:
    one query for all of them, never one a card."""
    spots = {i: _as_spot(c) for i, c in cards.items()}
    candidates = place_candidates(conn, [(cards[i].precinct, s) for i, s in spots.items()],
                                  rules)
    out = dict(cards)
    for i, spot in spots.items():
        earlier = earlier_here(spot, candidates.get(i, ()), rules)
        if earlier:
            out[i] = replace(cards[i], here_before=len(earlier),
                             chronic=chronic_count(spot, earlier, rules))
    return out


@dataclass(frozen=True)
class PlaceMemory:
    """A job page's memory of its place: the earlier jobs there (newest first) and, when the
    place is chronic for the job's condition, how many complaints in the window."""

    earlier: list[PlaceSpot]
    chronic: int | None
    rules: PlaceRules


def place_memory(engine: db.Source, actor: Actor, row: Any, rules: PlaceRules) -> PlaceMemory:
    """Read with the job page (same scope): what happened at this job's place before it."""
    check_precinct(actor, row.precinct)
    spot = PlaceSpot(row.id, row.address, row.lat, row.lon, row.complaint_type, row.created_at)
    with db.read(engine) as conn:
        candidates = place_candidates(conn, [(row.precinct, spot)], rules).get(row.id, [])
    earlier = earlier_here(spot, candidates, rules)
    return PlaceMemory(earlier, chronic_count(spot, earlier, rules) if earlier else None, rules)

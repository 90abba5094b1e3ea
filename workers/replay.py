"""Replay: a historical 311 export fed into intake at N× real time, optionally worked by
simulated officers. It drives the demo (the board comes alive), load tests and training.

Time: the export's first request is "now"; a request created `d` after it enters intake `d /
speed` later, on today's timeline (the job's created_at is when it entered; the historical
times stay in the job's 311 fields). With `simulate_officers`, each precinct gets a few units
(SIM-75-1, …) and every routed job is worked through the one write path, at scaled times
between its creation and its historical close:

    assign 10% · acknowledge 20% · en route 30% · on scene 60% · close 100% (the close time)

closing with the disposition whose public text is the row's historical resolution. A field
disposition that expects no visit (information provided) skips en route / on scene; an
administrative one (not police jurisdiction) is an administrative close from the queue by the
simulated supervisor. Rows with no (or an unknown) resolution are assigned and acknowledged and
stay open; unrouted jobs stay in the unrouted queue for a person to route. A job somebody real
touches meanwhile (a conflict, a refused step) is left to that person.

`sleep` and `monotonic` are injectable so tests run an hour in milliseconds.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from board.domain.access import CITYWIDE, SYSTEM, Actor, Forbidden, Role
from board.domain.dispositions import BY_RESOLUTION, Disposition
from board.domain.lifecycle import TransitionError
from board.intake import files as intake_files
from board.intake import rows as nyc311
from board.intake.file_import import check_file
from board.intake.pipeline import Counts, Intake, Outcome
from board.storage import db
from board.storage.schema import units
from board.usecases import Conflict, Dispatch, Invalid, NotFound

__all__ = ["REPLAY_ACTOR", "Replay", "ReplayReport", "replay_file"]

log = logging.getLogger("board.replay")

REPLAY_ACTOR = dataclasses.replace(SYSTEM, name="311 replay", source="replay")
SUPERVISOR = Actor(None, "SIM supervisor", Role.SUPERVISOR, frozenset({CITYWIDE}),
                   source="replay")
JOB_SOURCE = "replay"
#: Where each officer step falls between creation (0) and the historical close (1).
STEPS = (("assign", 0.1), ("acknowledge", 0.2), ("en_route", 0.3), ("on_scene", 0.6))
#: A job that never closed historically: assigned and acknowledged this long after creation.
OPEN_STEPS = (("assign", timedelta(minutes=1)), ("acknowledge", timedelta(minutes=2)))
_REFUSED = (Conflict, TransitionError, Invalid, Forbidden, NotFound)


class _NoUnit(Exception):
    """Every simulated unit of the precinct is out of service or off duty."""


@dataclass
class ReplayReport:
    counts: Counts
    closed: int = 0
    left_open: int = 0
    unrouted: int = 0
    #: Jobs a person acted on meanwhile (a conflict or a refused step): left to them.
    taken_over: int = 0
    #: Jobs no simulated unit could take (all out of service): left in the queue.
    no_unit: int = 0
    units_added: int = 0
    dispositions: Counter[str] = field(default_factory=Counter)
    virtual_span: timedelta = timedelta(0)
    wall_seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.counts.summary()}; simulated: closed {self.closed}, left open "
                f"{self.left_open}, unrouted (left for a person) {self.unrouted}, taken over "
                f"{self.taken_over}, no unit free {self.no_unit}, units added "
                f"{self.units_added}; "
                f"{self.virtual_span} of history in {self.wall_seconds:.1f}s")


@dataclass
class _Job:
    id: int
    precinct: str
    version: int
    created: datetime
    closed: datetime | None
    disposition: Disposition | None
    unit_id: int | None = None
    officer: Actor | None = None


class Replay:
    """One run over a list of raw rows (the file's order does not matter)."""

    def __init__(self, dispatch: Dispatch, rows: Sequence[Any], *, speed: float = 60.0,
                 simulate_officers: bool = False, units_per_precinct: int = 3,
                 key_prefix: str = "", quarantine_source: str = "replay",
                 sleep: Callable[[float], None] | None = None,
                 monotonic: Callable[[], float] | None = None,
                 progress: Callable[[ReplayReport], None] | None = None,
                 progress_every: int = 1000) -> None:
        if not speed > 0:
            raise ValueError("speed must be greater than 0 (60 = an hour in a minute)")
        if simulate_officers and units_per_precinct < 1:
            raise ValueError("simulated officers need at least one unit per precinct")
        self.dispatch = dispatch
        self.speed = float(speed)
        self.simulate = simulate_officers
        self.units_per_precinct = units_per_precinct
        self.sleep = sleep if sleep is not None else time.sleep
        self.monotonic = monotonic if monotonic is not None else time.monotonic
        self.progress = progress
        self.progress_every = max(1, progress_every)
        # created_at None: create_job stamps the job with "now", i.e. today's timeline.
        self.intake = Intake(dispatch, actor=REPLAY_ACTOR, job_source=JOB_SOURCE,
                             quarantine_source=quarantine_source, key_prefix=key_prefix,
                             created_at=lambda req: None, history=False)
        self.report = ReplayReport(self.intake.counts)
        self._rows = list(rows)
        self._heap: list[tuple[datetime, int, int, str, Any]] = []
        self._seq = itertools.count()
        self._units: dict[str, list[tuple[int, str]]] = {}
        self._load: Counter[int] = Counter()

    # -- scheduling ----------------------------------------------------------------------------

    def _push(self, at: datetime, order: int, kind: str, data: Any) -> None:
        heapq.heappush(self._heap, (at, order, next(self._seq), kind, data))

    def run(self) -> ReplayReport:
        stamped = []
        for raw in self._rows:
            try:
                stamped.append((nyc311.parse_row(raw).created_at, raw))
            except nyc311.BadRow:
                stamped.append((None, raw))  # fed first: intake quarantines it
        times = [t for t, _ in stamped if t is not None]
        if not times:
            self.intake.feed(raw for _, raw in stamped)
            return self.report
        self.t0 = min(times)
        for t, raw in stamped:
            self._push(t or self.t0, 0, "feed", raw)
        self.start = self.monotonic()
        last = self.t0
        while self._heap:
            at = self._heap[0][0]
            self._wait_until(at)
            # Everything now due (we may be behind: the database is not infinitely fast).
            due_by = max(at, self._virtual_now())
            feeds: list[Any] = []
            steps: list[tuple[str, Any]] = []
            while self._heap and self._heap[0][0] <= due_by:
                when, _, _, kind, data = heapq.heappop(self._heap)
                last = max(last, when)
                if kind == "feed":
                    feeds.append(data)
                else:
                    steps.append((kind, data))
            if feeds:
                self._feed(feeds)
            for kind, job in steps:
                self._step(kind, job)
        self.report.virtual_span = last - self.t0
        self.report.wall_seconds = self.monotonic() - self.start
        return self.report

    def _virtual_now(self) -> datetime:
        return self.t0 + timedelta(seconds=(self.monotonic() - self.start) * self.speed)

    def _wait_until(self, at: datetime) -> None:
        due = self.start + (at - self.t0).total_seconds() / self.speed
        wait = due - self.monotonic()
        if wait > 0:
            self.sleep(wait)

    # -- intake --------------------------------------------------------------------------------

    def _feed(self, rows: list[Any]) -> None:
        before = self.report.counts.rows
        outcomes = self.intake.batch(rows)
        if self.simulate:
            for outcome in outcomes:
                self._plan(outcome)
        every = self.progress_every
        if self.progress and self.report.counts.rows // every > before // every:
            self.progress(self.report)

    def _plan(self, outcome: Outcome) -> None:
        """Schedule the simulated officers' steps for a job this replay created."""
        if outcome.kind != "new" or outcome.job_id is None or outcome.request is None:
            return
        req = outcome.request
        if outcome.precinct is None:
            self.report.unrouted += 1
            return
        d = BY_RESOLUTION.get(req.resolution) if req.closed_at is not None else None
        job = _Job(outcome.job_id, outcome.precinct, 1, req.created_at, req.closed_at, d)
        if d is None:
            for action, offset in OPEN_STEPS:
                self._push(req.created_at + offset, 1, action, job)
            self.report.left_open += 1
            return
        assert req.closed_at is not None
        if d.administrative:
            self._push(max(req.closed_at, req.created_at), 2, "admin_close", job)
            return
        span = max(req.closed_at - req.created_at, timedelta(0))
        for order, (action, share) in enumerate(STEPS, 1):
            if action in ("en_route", "on_scene") and not d.arrival_expected:
                continue
            self._push(req.created_at + span * share, order, action, job)
        self._push(req.created_at + span, len(STEPS) + 1, "close", job)

    # -- the simulated people ------------------------------------------------------------------

    def _ensure_units(self, precinct: str) -> list[tuple[int, str]]:
        """SIM-<precinct>-1..n exist (made through the write path, once)."""
        if precinct in self._units:
            return self._units[precinct]
        names = [f"SIM-{precinct}-{i}" for i in range(1, self.units_per_precinct + 1)]
        with db.read(self.dispatch.engine) as conn:
            have = dict(conn.execute(sa.select(units.c.callsign, units.c.id)
                                     .where(units.c.callsign.in_(names))).all())
        found = []
        for name in names:
            if name not in have:
                ev = self.dispatch.add_unit(REPLAY_ACTOR, name, precinct)
                have[name] = ev["unit_id"]
                self.report.units_added += 1
            found.append((have[name], name))
        self._units[precinct] = found
        return found

    def _step(self, action: str, job: _Job) -> None:
        if job.version < 0:  # taken over by a person: hands off
            return
        try:
            if action == "assign":
                self._assign(job)
            elif action == "admin_close":
                assert job.disposition is not None
                self.dispatch.admin_close(SUPERVISOR, job.id, job.version, job.disposition.code,
                                          note="simulated (replay)")
                self._closed(job)
            elif job.officer is None:
                return  # never assigned (no unit could take it): nothing more to simulate
            elif action == "close":
                d = job.disposition
                assert d is not None
                self.dispatch.close(job.officer, job.id, job.version, d.code,
                                    summons_count=1 if d.summons else None,
                                    note="simulated (replay)")
                self._closed(job)
            else:
                getattr(self.dispatch, action)(job.officer, job.id, job.version)
            job.version += 1
        except _NoUnit:
            self.report.no_unit += 1
            job.version = -1
        except _REFUSED as e:
            log.info("replay: job %s %s refused (%s); leaving it to the people", job.id, action,
                     e)
            self.report.taken_over += 1
            if job.unit_id is not None:
                self._load[job.unit_id] -= 1
            job.version = -1

    def _assign(self, job: _Job) -> None:
        candidates = sorted(self._ensure_units(job.precinct), key=lambda u: self._load[u[0]])
        for unit_id, callsign in candidates:
            try:
                self.dispatch.assign(SUPERVISOR, job.id, job.version, unit_id)
            except Invalid:  # that unit is out of service or off duty: try the next
                continue
            job.unit_id = unit_id
            job.officer = Actor(None, callsign, Role.OFFICER, frozenset({job.precinct}),
                                unit_id=unit_id, source="replay")
            self._load[unit_id] += 1
            return
        raise _NoUnit(job.precinct)

    def _closed(self, job: _Job) -> None:
        assert job.disposition is not None
        self.report.closed += 1
        self.report.dispositions[job.disposition.code] += 1
        if job.unit_id is not None:
            self._load[job.unit_id] -= 1


def replay_file(dispatch: Dispatch, path: str | Path, **options: Any) -> ReplayReport:
    """Replay an export file (CSV or Socrata JSON); FileError if the file is unusable."""
    path = Path(path)
    check_file(path)
    rows = list(intake_files.read_rows(path))
    options.setdefault("quarantine_source", f"replay:{path.name}")
    return Replay(dispatch, rows, **options).run()

"""The desk's memory: earlier jobs at the same place, and when a place is chronic.

Pure rules, no I/O. A place is the same street address (as related complaints compare them) or,
failing that, a point within 50 m. At dispatch the board shows what happened there in the last
90 days. A place is *chronic* when the same condition (complaint type) was reported there this
many times within 30 days, this job included: 5, the threshold a 2014 NYPD order used
(configurable: CHRONIC_COMPLAINTS). The SQL that finds candidates by bounding box is at the edge
(board/usecases/queries.py); this module decides which candidates count.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from board.domain.related import metres, normal_address

HISTORY_DAYS = 90
NEAR_M = 50.0
CHRONIC_COMPLAINTS = 5
CHRONIC_DAYS = 30
_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class PlaceRules:
    """How far back and how near the memory looks, and when a place is chronic."""

    chronic_complaints: int = CHRONIC_COMPLAINTS
    chronic_days: int = CHRONIC_DAYS
    history_days: int = HISTORY_DAYS
    near_m: float = NEAR_M

    def __post_init__(self) -> None:
        if self.chronic_complaints < 2:
            raise ValueError("a chronic location needs at least 2 complaints")

    @property
    def history(self) -> timedelta:
        return timedelta(days=self.history_days)

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.chronic_days)


@dataclass(frozen=True)
class Spot:
    """A job as the memory reads it."""

    id: int
    address: str
    lat: float | None
    lon: float | None
    complaint_type: str
    created_at: datetime
    status: str = ""
    disposition: str | None = None
    history: bool = False


def box_degrees(lat: float, near_m: float) -> tuple[float, float]:
    """Half the side of a square around a point at `lat` holding every point within near_m,
    in degrees of latitude and longitude (a little wider: the SQL box only narrows)."""
    dlat = near_m / _M_PER_DEG_LAT * 1.01
    dlon = near_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(abs(lat) + dlat)), 0.01)) * 1.01
    return dlat, dlon


def same_place(a: Spot, b: Spot, near_m: float = NEAR_M) -> bool:
    """The same street address, else both points within near_m."""
    here = normal_address(a.address)
    if here and here == normal_address(b.address):
        return True
    if None in (a.lat, a.lon, b.lat, b.lon):
        return False
    return metres(a.lat, a.lon, b.lat, b.lon) <= near_m  # type: ignore[arg-type]


def near_targets(targets: Sequence[tuple[str | None, Spot]],
                 found: Iterable[tuple[str | None, Spot]], dlat: float, dlon: float
                 ) -> dict[int, list[Spot]]:
    """Which of the found jobs may be at each target's place: of its precinct, at its very
    address (non-empty) or in the box of ±dlat/±dlon around its point. Each job is found
    once and handed to the targets near it through an address index and a grid of boxes, so
    the work grows with the jobs and their neighbours, not with every pair."""
    by_address: dict[tuple[str | None, str], list[Spot]] = defaultdict(list)
    by_cell: dict[tuple[str | None, int, int], list[Spot]] = defaultdict(list)

    def cell(s: Spot) -> tuple[int, int]:
        return math.floor(s.lat / dlat), math.floor(s.lon / dlon)  # type: ignore[operator]

    boxed = dlat > 0 and dlon > 0
    for precinct, s in found:
        if s.address:
            by_address[precinct, s.address].append(s)
        if boxed and s.lat is not None and s.lon is not None:
            by_cell[(precinct, *cell(s))].append(s)
    out: dict[int, list[Spot]] = {}
    for precinct, t in targets:
        near = {s.id: s for s in by_address.get((precinct, t.address), ())} if t.address else {}
        if boxed and t.lat is not None and t.lon is not None:
            row, col = cell(t)
            for i in (row - 1, row, row + 1):
                for j in (col - 1, col, col + 1):
                    for s in by_cell.get((precinct, i, j), ()):
                        if abs(s.lat - t.lat) <= dlat and abs(s.lon - t.lon) <= dlon:  # type: ignore[operator]
                            near[s.id] = s
        near.pop(t.id, None)
        out[t.id] = list(near.values())
    return out


def earlier_here(job: Spot, candidates: Iterable[Spot], rules: PlaceRules) -> list[Spot]:
    """The candidates received before the job, within the history window, at its place;
    newest first."""
    since = job.created_at - rules.history
    found = {c.id: c for c in candidates
             if c.id != job.id and since <= c.created_at < job.created_at
             and same_place(job, c, rules.near_m)}
    return sorted(found.values(), key=lambda c: (c.created_at, c.id), reverse=True)


def chronic_count(job: Spot, earlier: Sequence[Spot], rules: PlaceRules) -> int | None:
    """How many complaints of the job's condition at its place within the chronic window up
    to it (the job included), when that reaches the threshold; else None."""
    since = job.created_at - rules.window
    n = 1 + sum(1 for e in earlier
                if e.complaint_type == job.complaint_type and e.created_at >= since)
    return n if n >= rules.chronic_complaints else None


def most_in_window(times: Sequence[datetime], window: timedelta) -> int:
    """The most complaints within any one window (times in any order): a place's worst run."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best

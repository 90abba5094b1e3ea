"""Related complaints: when two 311 requests are possibly about the same thing.

One loud party brings three neighbours' calls; a blocked hydrant is reported from both ends of
the block. The board says "possibly the same as #N" so the sergeant can link them into one
incident (worked and closed together, each request keeping its own events and resolution).
The rule, pure and cheap: the same street address, or within ~50 m with the same complaint
type, received within a few hours of each other. The earliest job is the one named.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

NEAR_M = 50.0
WINDOW = timedelta(hours=3)
_CELL = 0.0005  # degrees of latitude: about 55 m, so near points share a cell or a neighbour


@dataclass(frozen=True)
class Spot:
    """What the rule reads of a job."""

    id: int
    address: str
    lat: float | None
    lon: float | None
    complaint_type: str
    received_at: datetime
    incident: int | None = None


@lru_cache(maxsize=16_384)  # pure, and asked for every pair of every board read
def normal_address(address: str) -> str:
    """"123  Main St." and "123 MAIN ST" are one address; a bare street name is not one."""
    text = re.sub(r"[^A-Z0-9 ]+", " ", address.upper())
    text = " ".join(text.split())
    return text if re.match(r"^\d", text) else ""


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance on the ground (haversine): plenty for tens of metres inside a city."""
    r = math.radians
    h = (math.sin(r(lat2 - lat1) / 2) ** 2
         + math.cos(r(lat1)) * math.cos(r(lat2)) * math.sin(r(lon2 - lon1) / 2) ** 2)
    return 12_742_000 * math.asin(math.sqrt(h))


def alike(a: Spot, b: Spot) -> bool:
    """Possibly the same complaint (the rule in the module docstring)."""
    if abs(a.received_at - b.received_at) > WINDOW:
        return False
    if a.incident is not None and a.incident in (b.incident, b.id):
        return False  # already linked
    if b.incident is not None and b.incident == a.id:
        return False
    place = normal_address(a.address)
    if place and place == normal_address(b.address):
        return True
    if a.complaint_type != b.complaint_type or None in (a.lat, a.lon, b.lat, b.lon):
        return False
    return metres(a.lat, a.lon, b.lat, b.lon) <= NEAR_M  # type: ignore[arg-type]


def _cell(s: Spot) -> tuple[int, int] | None:
    if s.lat is None or s.lon is None:
        return None
    return int(s.lat // _CELL), int(s.lon // _CELL)


def possibly_same(spots: Sequence[Spot], among: Iterable[Spot] | None = None) -> dict[int, int]:
    """For each spot, the earliest other one (in `among`, default the same list) it is
    possibly the same as. Bucketed by address and by map cell, each bucket in received order:
    a spot reads only the part of its buckets from WINDOW before it up to itself and stops at
    its first match, so a hundred calls from one building cost about a hundred checks, not ten
    thousand, and a spot with nothing earlier nearby (most of them) costs a few look-ups."""
    index = SpotIndex(spots if among is None else among)
    return {s.id: other for s in spots if (other := index.earliest_alike(s)) is not None}


class SpotIndex:
    """Spots bucketed by address and by map cell, each bucket in received order: built once,
    then kept as spots come and go, so a board that gains or loses one job matches that job
    (and the few whose match it was) without bucketing the whole board again."""

    def __init__(self, spots: Iterable[Spot] = ()) -> None:
        self.pool: dict[int, Spot] = {}
        self.by_address: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        self.by_cell: dict[tuple[int, int], list[tuple[datetime, int]]] = defaultdict(list)
        for s in sorted(spots, key=lambda s: (s.received_at, s.id)):  # appended in order
            self.pool[s.id] = s
            for table, key in self._keys_of(s):
                table[key].append((s.received_at, s.id))

    def _keys_of(self, s: Spot) -> list[tuple[dict[Any, list[tuple[datetime, int]]], Any]]:
        """The buckets `s` belongs in, as (table, key)."""
        out: list[tuple[dict[Any, list[tuple[datetime, int]]], Any]] = []
        if key := normal_address(s.address):
            out.append((self.by_address, key))
        if (cell := _cell(s)) is not None:
            out.append((self.by_cell, cell))
        return out

    def add(self, s: Spot) -> None:
        self.pool[s.id] = s
        for table, key in self._keys_of(s):
            bisect.insort(table[key], (s.received_at, s.id))

    def remove(self, s: Spot) -> None:
        """Take out `s`, the spot as it was added (a bucket left empty goes too: a board kept
        all day sees many addresses come and go)."""
        self.pool.pop(s.id, None)
        entry = (s.received_at, s.id)
        for table, key in self._keys_of(s):
            bucket = table.get(key, [])
            i = bisect.bisect_left(bucket, entry)
            if i < len(bucket) and bucket[i] == entry:
                del bucket[i]
            if not bucket:
                table.pop(key, None)

    def earliest_alike(self, s: Spot) -> int | None:
        """The earliest spot here received before `s` (within WINDOW) that is alike it."""
        buckets = [self.by_address.get(normal_address(s.address))]
        if (cell := _cell(s)) is not None:
            y, x = cell
            buckets += [self.by_cell.get((y + dy, x + dx)) for dy in (-1, 0, 1)
                        for dx in (-1, 0, 1)]
        since, mine = (s.received_at - WINDOW,), (s.received_at, s.id)
        near = [b[lo:hi] for b in buckets if b
                if (lo := bisect.bisect_left(b, since)) < (hi := bisect.bisect_left(b, mine))]
        if not near:
            return None
        for _, other in near[0] if len(near) == 1 else heapq.merge(*near):
            if alike(s, self.pool[other]):
                return other
        return None

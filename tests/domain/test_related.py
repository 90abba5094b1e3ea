"""Related complaints: the pure rule (same address, or ~50 m + same type, within hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from board.domain.related import Spot, metres, normal_address, possibly_same

T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
LAT, LON = 40.6712, -73.8803


def spot(i: int, address: str = "", dlat: float = 0.0, minutes: int = 0,
         kind: str = "Noise - Residential", incident: int | None = None) -> Spot:
    return Spot(i, address, LAT + dlat, LON, kind, T0 + timedelta(minutes=minutes), incident)


def test_same_address_whatever_the_spelling() -> None:
    assert normal_address("123  Linden Blvd.") == normal_address("123 LINDEN BLVD")
    assert normal_address("LINDEN BLVD") == ""  # a street is not an address
    found = possibly_same([spot(1, "123 Linden Blvd", dlat=0.01),
                           spot(2, "123 LINDEN BLVD", minutes=20, kind="Illegal Parking")])
    assert found == {2: 1}


def test_near_and_same_type_within_hours() -> None:
    assert 40 < metres(LAT, LON, LAT + 0.0004, LON) < 50
    found = possibly_same([
        spot(1), spot(2, dlat=0.0004, minutes=30),             # 44 m, same type: yes
        spot(3, dlat=0.0007, minutes=30),                     # 78 m from 1, 33 m from 2
        spot(4, dlat=0.0002, minutes=10, kind="Illegal Parking"),  # near, other type: no
        spot(5, dlat=0.0001, minutes=60 * 4),                 # near, 4 hours later: no
    ])
    assert found == {2: 1, 3: 2}


def test_already_linked_jobs_are_not_suggested_again() -> None:
    assert possibly_same([spot(1), spot(2, dlat=0.0001, incident=1)]) == {}
    assert possibly_same([spot(1, incident=7), spot(2, dlat=0.0001, incident=7)]) == {}


def test_against_another_pool() -> None:
    """A new job is compared with jobs elsewhere (e.g. the job page against the board)."""
    pool = [spot(1), spot(9, "5 MAIN ST", dlat=0.02)]
    assert possibly_same([spot(3, "5 Main St", minutes=5, kind="Illegal Parking")],
                         among=pool) == {3: 9}


def brute_force(spots: list[Spot]) -> dict[int, int]:
    """The rule as the module states it, every pair compared."""
    from board.domain.related import alike

    found = {}
    for s in spots:
        matches = [o for o in spots if o.id != s.id and alike(s, o)]
        first = min(matches, key=lambda o: (o.received_at, o.id), default=None)
        if first is not None and (first.received_at, first.id) < (s.received_at, s.id):
            found[s.id] = first.id
    return found


def test_the_buckets_find_what_comparing_every_pair_finds() -> None:
    import random

    rnd = random.Random(9)
    for _ in range(40):
        spots = [spot(i, rnd.choice(["", "1 MAIN ST", "1 Main St.", "7 ELM AVE"]),
                      dlat=rnd.choice([0, 0.0002, 0.0004, 0.001, 0.01]) * rnd.choice([1, -1]),
                      minutes=rnd.randrange(0, 60 * 8),
                      kind=rnd.choice(["Noise - Residential", "Illegal Parking"]),
                      incident=rnd.choice([None, None, None, 1, 2]))
                 for i in range(1, 40)]
        assert possibly_same(spots) == brute_force(spots)


def test_many_calls_from_one_place_are_not_compared_pairwise(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """300 calls from one building over a day: each asks the rule about a few neighbours."""
    from board.domain import related

    calls = []
    real = related.alike
    monkeypatch.setattr(related, "alike", lambda a, b: calls.append(1) or real(a, b))
    spots = [spot(i, "9 BROADWAY", minutes=5 * i, kind="Illegal Parking") for i in range(300)]
    spots += [spot(1000 + i, minutes=5 * i, kind="Noise - Street/Sidewalk") for i in range(300)]
    found = possibly_same(spots)
    asked = len(calls)
    assert found == brute_force(spots) and len(found) > 500
    assert asked < 3 * len(spots)  # every pair would be 180,000


def test_an_index_gives_back_what_a_job_leaves() -> None:
    """A board's index kept all day: a job that comes and goes leaves no bucket behind, and
    the index matches as one built from the jobs left."""
    from board.domain.related import SpotIndex
    stays, passing = spot(1, "5 ELM ST"), spot(2, "9 OAK ST", dlat=0.01, minutes=5)
    index = SpotIndex([stays])
    index.add(passing)
    index.remove(passing)
    fresh = SpotIndex([stays])
    assert (index.pool, dict(index.by_address), dict(index.by_cell)) == (
        fresh.pool, dict(fresh.by_address), dict(fresh.by_cell))
    later = spot(3, "5 ELM ST", minutes=30)
    assert index.earliest_alike(later) == fresh.earliest_alike(later) == 1

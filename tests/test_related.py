"""Related complaints: the pure rule (same address, or ~50 m + same type, within hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from board.related import Spot, metres, normal_address, possibly_same

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

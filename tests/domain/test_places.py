"""The desk's memory rules: same place, the 90-day window, the chronic threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from board.domain.places import (
    PlaceRules,
    Spot,
    box_degrees,
    chronic_count,
    earlier_here,
    most_in_window,
    near_targets,
    same_place,
)
from board.domain.related import metres

T0 = datetime(2026, 11, 28, 15, tzinfo=UTC)
LAT, LON = 40.6700, -73.8900


def spot(i: int, days_before: float, address: str = "", lat: float | None = LAT,
         lon: float | None = LON, kind: str = "Noise - Residential") -> Spot:
    return Spot(i, address, lat, lon, kind, T0 - timedelta(days=days_before))


def test_same_address_or_within_50_m() -> None:
    here = spot(1, 0, "123 Main St.")
    assert same_place(here, spot(2, 1, "123 MAIN ST", None, None))
    north_40 = LAT + 40 / 111_320
    north_60 = LAT + 60 / 111_320
    assert same_place(here, spot(3, 1, "", north_40, LON))
    assert not same_place(here, spot(4, 1, "", north_60, LON))
    assert not same_place(spot(5, 0, "", None, None), spot(6, 1, "", None, None))


def test_the_box_holds_every_point_within_the_distance() -> None:
    dlat, dlon = box_degrees(LAT, 50)
    assert metres(LAT, LON, LAT + dlat, LON) >= 50 and metres(LAT, LON, LAT, LON + dlon) >= 50
    assert metres(LAT, LON, LAT + dlat, LON) < 55


def test_earlier_here_keeps_the_window_and_orders_newest_first() -> None:
    rules = PlaceRules()
    job = spot(1, 0)
    found = earlier_here(job, [spot(2, 10), spot(3, 89), spot(4, 91), spot(1, 0),
                               Spot(5, "", LAT, LON, "Noise", T0 + timedelta(hours=1))], rules)
    assert [s.id for s in found] == [2, 3]  # 91 days back, itself and a later one: not shown


def test_chronic_from_five_of_one_condition_in_30_days_configurable() -> None:
    rules = PlaceRules()
    job = spot(1, 0)
    four = [spot(i, i * 5) for i in range(2, 6)]  # 10, 15, 20, 25 days back
    assert chronic_count(job, four, rules) == 5
    assert chronic_count(job, four[:3], rules) is None
    other = [spot(i, 1, kind="Illegal Parking") for i in range(2, 6)]
    assert chronic_count(job, other, rules) is None  # another condition
    old = [spot(i, 31 + i) for i in range(2, 6)]
    assert chronic_count(job, old, rules) is None  # outside 30 days
    assert chronic_count(job, four[:2], PlaceRules(chronic_complaints=3)) == 3
    with pytest.raises(ValueError):
        PlaceRules(chronic_complaints=1)


def test_most_in_window() -> None:
    days = [T0 + timedelta(days=d) for d in (0, 40, 41, 42, 43, 71, 72)]
    assert most_in_window(days, timedelta(days=30)) == 4
    assert most_in_window([], timedelta(days=30)) == 0


def test_each_target_gets_the_jobs_at_its_address_or_in_its_box_of_its_precinct() -> None:
    dlat, dlon = box_degrees(LAT, 50)
    a = spot(1, 0, "1 A ST")
    b = spot(2, 0, "", LAT + 10 * dlat, LON)  # far from a
    found = [("75", spot(3, 1, "1 A ST", None, None)),            # a's address, no point
             ("75", spot(4, 1, "", LAT + dlat * 0.99, LON)),      # a's box, on its edge
             ("75", spot(5, 1, "", LAT + dlat * 1.01, LON)),      # just outside it
             ("77", spot(6, 1, "1 A ST")),                        # another precinct
             ("75", spot(7, 1, "", LAT + 10 * dlat, LON - dlon * 0.5)),  # b's box
             ("75", a), ("75", b)]                                # the targets themselves
    near = near_targets([("75", a), ("75", b)], found, dlat, dlon)
    assert sorted(s.id for s in near[1]) == [3, 4]
    assert sorted(s.id for s in near[2]) == [7]


def test_the_grid_finds_every_box_neighbour_a_pairwise_scan_does() -> None:
    import random

    rnd = random.Random(7)
    dlat, dlon = box_degrees(LAT, 50)
    points = [spot(i, rnd.uniform(0, 80), "", LAT + rnd.uniform(-5, 5) * dlat,
                   LON + rnd.uniform(-5, 5) * dlon) for i in range(300)]
    near = near_targets([("75", t) for t in points[:60]], [("75", s) for s in points],
                        dlat, dlon)
    for t in points[:60]:
        pairwise = {s.id for s in points if s.id != t.id and abs(s.lat - t.lat) <= dlat
                    and abs(s.lon - t.lon) <= dlon}
        assert {s.id for s in near[t.id]} == pairwise

"""QSTAT's chronic locations: 5 complaints of one condition at one address within 30 days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from board.accountability.chronic import chronic_locations
from board.domain.access import SYSTEM, Forbidden
from board.domain.places import PlaceRules
from board.domain.qstat import Period
from board.usecases import NewJob
from tests.conftest import point_in
from tests.qstat_helpers import utc

TWO_MONTHS = Period(date(2026, 11, 1), date(2026, 12, 31))
START = utc("2026-11-01T15:00:00")


def _at(world, precinct: str, address: str, days: float, kind: str = "Noise - Residential"
        ) -> int:
    lat, lon = point_in(world.dispatch.geo, precinct)
    at = START + timedelta(days=days)
    return world.dispatch.create_job(SYSTEM, NewJob(kind, "", address=address, lat=lat, lon=lon,
                                                    created_at=at), source="manual")["job_id"]


def test_chronic_locations_by_precinct_on_both_engines(world) -> None:
    for day in (0, 5, 10, 20, 29):  # five within 30 days: chronic
        last = _at(world, "75", "1 CHRONIC PLACE", day)
    for day in (0, 8, 16, 31, 40, 50):  # six in the period, never four within 30 days
        _at(world, "75", "2 SPREAD OUT ROAD", day)
    for day in (0, 1, 2, 3):  # four: below the threshold
        _at(world, "75", "3 ALMOST AVENUE", day)
    for day in (0, 1, 2):  # three noise and two parking: not one condition
        _at(world, "75", "4 MIXED STREET", day)
    for day in (0, 1):
        _at(world, "75", "4 MIXED STREET", day, "Illegal Parking")
    for day in range(6):
        _at(world, "120", "9 OTHER PRECINCT", day)
    found = chronic_locations(world.dispatch.engine, world.actors["cmd"], TWO_MONTHS, None,
                              PlaceRules())
    got = {(c.precinct, c.address): (c.most_in_window, c.in_period) for c in found}
    assert got == {("75", "1 CHRONIC PLACE"): (5, 5), ("120", "9 OTHER PRECINCT"): (6, 6)}
    assert [c.precinct for c in found] == ["75", "120"]
    first = next(c for c in found if c.address == "1 CHRONIC PLACE")
    assert first.latest_id == last
    # the threshold is a setting; a sergeant sees their own precinct only
    lower = chronic_locations(world.dispatch.engine, world.actors["sgt75"], TWO_MONTHS, None,
                              PlaceRules(chronic_complaints=4))
    assert {c.address for c in lower} == {"1 CHRONIC PLACE", "3 ALMOST AVENUE"}
    with pytest.raises(Forbidden):
        chronic_locations(world.dispatch.engine, world.actors["sgt120"], TWO_MONTHS, "75",
                          PlaceRules())
    with pytest.raises(Forbidden):
        chronic_locations(world.dispatch.engine, world.actors["off75a"], TWO_MONTHS, None,
                          PlaceRules())

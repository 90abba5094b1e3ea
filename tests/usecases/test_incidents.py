"""Related complaints as one incident: link, assign together, close together; each 311
request keeps its own job, events and resolution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from board.domain.access import Forbidden
from board.usecases import Conflict, Dispatch, Invalid, queries
from tests.conftest import World, make_job
from tests.usecases.test_usecases import job_events, job_row, refused, version


def test_link_assign_and_close_together(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    first, second, third = (make_job(dispatch, "75") for _ in range(3))
    ev = dispatch.link(sgt, second, 1, first)
    assert (ev["kind"], ev["payload"], ev["job_id"]) == ("link", {"incident": first}, second)
    dispatch.link(sgt, third, 1, second)  # linked to a member: joins the same incident
    assert job_row(dispatch, third).incident_id == first
    assert job_row(dispatch, first).incident_id is None and version(dispatch, first) == 1

    unit = world.unit("75-A")
    evs = dispatch.assign_incident(sgt, first, unit)
    assert [e["job_id"] for e in evs] == [first, second, third]
    assert {job_row(dispatch, j).unit_id for j in (first, second, third)} == {unit}

    for j in (first, second, third):
        dispatch.acknowledge(off, j, version(dispatch, j))
    closed = dispatch.close_incident(off, first, "action_taken", note="one party, three calls")
    assert [e["job_id"] for e in closed] == [first, second, third]
    for j in (first, second, third):
        row = job_row(dispatch, j)
        assert row.status == "closed" and row.resolution and row.disposition == "action_taken"
        assert [e.kind for e in job_events(dispatch, j)][-1] == "close"


def test_link_is_checked(dispatch: Dispatch, world: World) -> None:
    sgt = world.actors["sgt75"]
    a, b = make_job(dispatch, "75"), make_job(dispatch, "75")
    other = make_job(dispatch, "120")
    refused(dispatch, Invalid, lambda: dispatch.link(sgt, a, 1, a))
    refused(dispatch, Conflict, lambda: dispatch.link(sgt, a, 7, b))
    refused(dispatch, Forbidden, lambda: dispatch.link(sgt, a, 1, other))
    refused(dispatch, Forbidden, lambda: dispatch.link(world.actors["off75a"], a, 1, b))
    refused(dispatch, Forbidden, lambda: dispatch.link(world.actors["sgt120"], other, 1, a))
    dispatch.link(sgt, b, 1, a)
    refused(dispatch, Invalid, lambda: dispatch.link(sgt, a, 1, b))  # a leads: no loops
    ev = dispatch.link(sgt, b, 2, None)
    assert ev["kind"] == "unlink" and job_row(dispatch, b).incident_id is None


@pytest.mark.parametrize("same", ["address", "near"])
def test_the_board_says_possibly_the_same(dispatch: Dispatch, world: World, same: str) -> None:
    from board.domain.access import SYSTEM
    from board.usecases import NewJob
    from tests.conftest import point_in

    lat, lon = point_in(dispatch.geo, "75")
    first = dispatch.create_job(SYSTEM, NewJob("Noise - Residential", "Loud Music/Party",
                                               address="12 SHEPHERD AVE", lat=lat, lon=lon))
    dlat = 0.01 if same == "address" else 0.0003  # 1 km off (same address) or 33 m
    address = "12 Shepherd Ave" if same == "address" else "40 SHEPHERD AVE"
    later = dispatch.create_job(SYSTEM, NewJob("Noise - Residential", "Banging/Pounding",
                                               address=address, lat=lat + dlat, lon=lon))
    view = queries.board(dispatch.engine, world.actors["sgt75"], "75", datetime.now(UTC))
    cards = {c.id: c for c in view.queue}
    assert cards[later["job_id"]].same_as == first["job_id"]
    assert cards[first["job_id"]].same_as is None
    dispatch.link(world.actors["sgt75"], later["job_id"], 1, first["job_id"])
    view = queries.board(dispatch.engine, world.actors["sgt75"], "75", datetime.now(UTC))
    cards = {c.id: c for c in view.queue}
    assert cards[later["job_id"]].same_as is None
    assert cards[later["job_id"]].incident == first["job_id"]
    assert cards[first["job_id"]].incident == first["job_id"]  # the first job leads it

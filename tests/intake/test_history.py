"""History (rows the city had already closed) and batch creates, at the write path."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from board.domain.access import SYSTEM
from board.domain.dispositions import BY_CODE
from board.storage import db
from board.storage.schema import events, jobs
from board.usecases import Forbidden, Invalid, NewJob
from tests.conftest import point_in

INTAKE = dataclasses.replace(SYSTEM, name="311 import", source="intake")
CREATED = datetime(2022, 5, 1, 4, 0, 9, tzinfo=UTC)
CLOSED = datetime(2022, 5, 1, 4, 7, 46, tzinfo=UTC)


def closed_row(geo, key: str, resolution: str, precinct: str = "75") -> NewJob:
    lat, lon = point_in(geo, precinct)
    return NewJob("Noise - Street/Sidewalk", "Loud Music/Party", address="1 TEST STREET",
                  lat=lat, lon=lon, external_key=key, created_at=CREATED, closed_at=CLOSED,
                  resolution=resolution)


def rows_of(engine, table, *where):
    with db.read(engine) as conn:
        return conn.execute(sa.select(table).where(*where)).all()


def test_a_closed_row_is_a_closed_history_job_with_one_history_event(dispatch, clock):
    text = BY_CODE["no_evidence"].resolution
    [ev] = dispatch.create_jobs(INTAKE, [closed_row(dispatch.geo, "H-1", text)], "nyc311")
    [job] = rows_of(dispatch.engine, jobs, jobs.c.id == ev["job_id"])
    assert (job.status, job.history, job.unit_id, job.stack_pos) == ("closed", True, None, None)
    assert (job.created_at, job.closed_at) == (CREATED, CLOSED)
    assert (job.resolution, job.disposition) == (text, "no_evidence")
    assert (job.precinct, job.administrative, job.summons_count) == ("75", False, None)
    # deadlines count from the 311 created time: long passed, and never "overdue" (closed)
    assert job.ack_due < clock.now - timedelta(days=365)
    [only] = rows_of(dispatch.engine, events, events.c.job_id == job.id)
    assert (only.kind, only.before, only.after, only.source) == ("history", None, "closed",
                                                                 "intake")
    assert only.payload["disposition"] == "no_evidence"
    assert only.payload["closed_at"] == CLOSED.isoformat()
    assert ev["seq"] == only.seq


def test_an_unknown_resolution_leaves_the_disposition_empty(dispatch):
    rows = [closed_row(dispatch.geo, "H-2", "The city said something new."),
            closed_row(dispatch.geo, "H-3", "")]
    evs = dispatch.create_jobs(INTAKE, rows, "nyc311")
    got = {j.external_key: j for j in rows_of(dispatch.engine, jobs)}
    assert [e["kind"] for e in evs] == ["history", "history"]
    assert (got["H-2"].disposition, got["H-2"].resolution) == (None, "The city said something new.")
    assert (got["H-3"].disposition, got["H-3"].resolution) == (None, None)


def test_history_is_refused_to_people_and_when_closed_before_created(world):
    dispatch = world.dispatch
    row = closed_row(dispatch.geo, "H-4", BY_CODE["action_taken"].resolution)
    with pytest.raises(Forbidden):
        dispatch.create_jobs(world.actors["sgt75"], [row])
    early = dataclasses.replace(row, closed_at=CREATED - timedelta(seconds=1))
    with pytest.raises(Invalid) as e:
        dispatch.create_jobs(INTAKE, [early])
    assert "closed_at" in e.value.errors
    undated = dataclasses.replace(row, created_at=None)
    with pytest.raises(Invalid):
        dispatch.create_jobs(INTAKE, [undated])
    assert rows_of(dispatch.engine, jobs) == []


def test_a_batch_is_the_same_jobs_and_events_as_one_at_a_time(dispatch, geo):
    lat, lon = point_in(geo, "120")
    news = [NewJob("Blocked Driveway", "No Access", lat=lat, lon=lon, external_key=f"B-{i}")
            for i in range(5)]
    news.append(NewJob("Illegal Parking", external_key="B-unrouted"))
    one = [dispatch.create_job(INTAKE, dataclasses.replace(n, external_key=f"S{n.external_key}"),
                               "nyc311") for n in news]
    many = dispatch.create_jobs(INTAKE, news, "nyc311")
    assert [e["seq"] for e in many] == sorted(e["seq"] for e in many)
    assert len({e["job_id"] for e in many}) == 6
    # the chain links each event to the one before it: another place in the log, another link
    strip = ("id", "external_key", "seq", "job_id", "payload", "chain")
    for a, b in zip(one, many, strict=True):
        assert {k: v for k, v in a.items() if k not in strip} == {
            k: v for k, v in b.items() if k not in strip}
        assert a["payload"] == {**b["payload"], "external_key": "S" + b["payload"]["external_key"]}
    got = {j.external_key: j for j in rows_of(dispatch.engine, jobs)}
    for n in news:
        a, b = got["S" + n.external_key]._mapping, got[n.external_key]._mapping
        assert {k: v for k, v in a.items() if k not in strip} == {
            k: v for k, v in b.items() if k not in strip}
    assert got["B-unrouted"].precinct is None and got["B-0"].precinct == "120"
    for ev in many:
        [stored] = rows_of(dispatch.engine, events, events.c.seq == ev["seq"])
        assert (stored.job_id, stored.kind, stored.after) == (ev["job_id"], "create", "new")


def test_one_bad_job_refuses_the_whole_batch(dispatch):
    news = [NewJob("Noise", external_key="OK-1"), NewJob("", external_key="BAD-1")]
    with pytest.raises(Invalid):
        dispatch.create_jobs(INTAKE, news)
    assert rows_of(dispatch.engine, jobs) == [] and rows_of(dispatch.engine, events) == []


def test_listeners_hear_a_batch_once_after_commit(dispatch):
    heard = []
    dispatch.listeners.append(heard.append)
    evs = dispatch.create_jobs(INTAKE, [NewJob("Noise", external_key=f"L-{i}")
                                        for i in range(3)])
    assert heard == [evs]


def test_history_stays_out_of_queues_boards_wall_counters_and_unrouted(world, clock):
    """A history job closed minutes ago (the poller's case) is still not the board's work."""
    from board.live.render import Renderer, city_counters
    from board.usecases import queries
    from board.web.app import templates

    dispatch = world.dispatch
    recent = clock.now - timedelta(minutes=5)
    text = BY_CODE["action_taken"].resolution
    rows = [dataclasses.replace(closed_row(dispatch.geo, f"HX-{i}", text),
                                created_at=recent - timedelta(minutes=3), closed_at=recent)
            for i in range(3)]
    rows.append(dataclasses.replace(rows[0], external_key="HX-far", lat=None, lon=None))
    dispatch.create_jobs(INTAKE, rows, "nyc311")
    live = dispatch.create_job(INTAKE, dataclasses.replace(rows[0], external_key="LIVE-1",
                                                           closed_at=None), "nyc311")
    city = world.actors["city"]
    view = queries.board(dispatch.engine, city, "75", clock.now)
    assert [c.external_key for c in view.queue] == ["LIVE-1"]
    assert view.closed == [] and view.unrouted == []
    assert all(not lane.jobs for lane in view.lanes)
    assert (view.counters["closed"], view.counters["unassigned"], view.counters["overdue"]) == (
        0, 1, 0)
    [row75] = [r for r in city_counters(dispatch.engine, dispatch.geo, frozenset({"75"}),
                                        clock.now)]
    assert (row75["closed_tour"], row75["unassigned"]) == (0, 1)
    renderer = Renderer(dispatch.engine, dispatch.geo, templates().env, clock=clock)
    wall = renderer.wall("75")
    assert "HX-" not in wall and "history" not in wall.lower()
    # and once the board closes its own job, that one counts
    officer = world.actors["off75a"]
    dispatch.assign(world.actors["sgt75"], live["job_id"], 1, world.unit("75-A"))
    for step in ("acknowledge", "en_route", "on_scene"):
        getattr(dispatch, step)(officer, live["job_id"], 2 + ("acknowledge", "en_route",
                                                               "on_scene").index(step))
    dispatch.close(officer, live["job_id"], 5, "action_taken")
    view = queries.board(dispatch.engine, city, "75", clock.now)
    assert [c.external_key for c in view.closed] == ["LIVE-1"]
    [row75] = city_counters(dispatch.engine, dispatch.geo, frozenset({"75"}), clock.now)
    assert row75["closed_tour"] == 1


def test_a_history_job_is_not_reopened_and_its_page_says_what_it_is(world, client):
    dispatch = world.dispatch
    text = BY_CODE["gone_on_arrival"].resolution
    [ev] = dispatch.create_jobs(INTAKE, [closed_row(dispatch.geo, "H-9", text)], "nyc311")
    with pytest.raises(Invalid, match="before the board had it"):
        dispatch.reopen(world.actors["sgt75"], ev["job_id"], 1, "looks open to me")
    [job] = rows_of(dispatch.engine, jobs, jobs.c.id == ev["job_id"])
    assert (job.status, job.version) == ("closed", 1)
    from tests.web.test_pages import login

    login(client, "sgt75")
    page = client.get(f"/jobs/{ev['job_id']}").text
    assert "closed by the city before the board had it" in page
    assert text in page and 'value="reopen"' not in page and "Why reopen" not in page

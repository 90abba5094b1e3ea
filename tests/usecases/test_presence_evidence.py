"""Proof of presence and evidence on close, through the use cases, the API and the forms (both
engines: the suite runs on SQLite and, with DATABASE_URL, on PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from board.domain.evidence import MAX_PHOTOS
from board.domain.policies import EVIDENCE_PHOTO, POSITION_ON_SCENE
from board.domain.presence import Fix
from board.storage.schema import events, evidence_photos, jobs, review_queue, summons_numbers
from board.usecases import Forbidden, Invalid
from tests import photos
from tests.conftest import World, make_job
from tests.photos import GPS_MARK
from tests.web.test_api import api, tokens  # noqa: F401  (fixtures)
from tests.web.test_pages import login


@pytest.fixture
def asking(world: World) -> World:
    """The department's default: phones are asked for a position (ARRIVAL_POSITION=ask)."""
    world.dispatch.arrival_position = "ask"
    return world


def job_at(world: World, precinct: str = "75", unit: str = "75-A") -> tuple[int, float, float]:
    """A job en route on `unit` (version 4), and its location."""
    d, job = world.dispatch, make_job(world.dispatch, precinct)
    sgt = world.actors["sgt75" if precinct == "75" else "sgt120"]
    d.assign(sgt, job, 1, world.unit(unit))
    officer = officer_of(world, unit)
    d.acknowledge(officer, job, 2)
    d.en_route(officer, job, 3)
    with d.engine.connect() as conn:
        row = conn.execute(sa.select(jobs.c.lat, jobs.c.lon).where(jobs.c.id == job)).one()
    return job, row.lat, row.lon


def officer_of(world: World, unit: str) -> Any:
    return world.actors[{"75-A": "off75a", "75-B": "off75b", "120-A": "off120"}[unit]]


def near(lat: float, lon: float, metres: float, accuracy: float | None = 8) -> Fix:
    return Fix(lat + metres / 111_195, lon, accuracy)


def payload_of(world: World, seq: int) -> dict[str, Any]:
    with world.dispatch.engine.connect() as conn:
        return conn.execute(sa.select(events.c.payload).where(events.c.seq == seq)).scalar_one()


def review_flags(world: World, job: int) -> list[str] | None:
    with world.dispatch.engine.connect() as conn:
        return conn.execute(sa.select(review_queue.c.flags)
                            .where(review_queue.c.job_id == job)).scalar()


# -- proof of presence ------------------------------------------------------------------------

def test_a_position_at_the_scene_is_recorded_and_confirms(asking: World, clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    job, lat, lon = job_at(asking)
    ev = d.on_scene(off, job, 4, near(lat, lon, 35, 10))
    p = payload_of(asking, ev["seq"])
    assert (p["distance_m"], p["accuracy_m"], p["confirmed"], p["within_m"]) == (35, 10, True, 200)
    clock.advance(minutes=20)
    d.close(off, job, 5, "action_taken")
    assert review_flags(asking, job) is None  # confirmed, not quick: nothing to review
    detail_flags = d.engine and review_flags(asking, job)
    assert detail_flags is None


def test_no_position_or_a_far_one_is_flagged_unconfirmed_and_reviewed(asking: World,
                                                                      clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    for fix in (None, "far"):
        job, lat, lon = job_at(asking)
        ev = d.on_scene(off, job, 4, near(lat, lon, 2400) if fix else None)
        p = payload_of(asking, ev["seq"])
        assert p["confirmed"] is False
        assert ("distance_m" in p) is bool(fix)
        clock.advance(minutes=20)
        d.close(off, job, 5, "action_taken")
        assert review_flags(asking, job) == ["unconfirmed"]


def test_a_position_at_close_confirms_a_late_fix(asking: World, clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    job, lat, lon = job_at(asking)
    d.on_scene(off, job, 4)
    clock.advance(minutes=20)
    ev = d.close(off, job, 5, "action_taken", position=near(lat, lon, 15))
    assert payload_of(asking, ev["seq"])["confirmed"] is True
    assert review_flags(asking, job) is None


def test_when_the_department_does_not_ask_nothing_is_recorded(world: World, clock) -> None:
    d, off = world.dispatch, world.actors["off75a"]
    assert d.arrival_position == "off"
    job, _, _ = job_at(world)
    ev = d.on_scene(off, job, 4)
    assert "confirmed" not in payload_of(world, ev["seq"])
    clock.advance(minutes=20)
    d.close(off, job, 5, "action_taken")
    assert review_flags(world, job) is None


def test_the_position_policy_refuses_and_keeps_the_job_as_it_was(asking: World,
                                                                 clock) -> None:
    d, off, admin = asking.dispatch, asking.actors["off75a"], asking.actors["admin"]
    d.set_policy(admin, "75", POSITION_ON_SCENE, True, metres=100)
    job, lat, lon = job_at(asking)
    with pytest.raises(Invalid, match=r"within 100 m of the job; this phone said 2.4 km away"):
        d.on_scene(off, job, 4, near(lat, lon, 2400, 12))
    with pytest.raises(Invalid, match="allow this phone to share its location"):
        d.on_scene(off, job, 4)
    with pytest.raises(Invalid, match="closing needs your position within 100 m"):
        d.close(off, job, 4, "action_taken", note="was there")
    with d.engine.connect() as conn:
        assert conn.execute(sa.select(jobs.c.status, jobs.c.version)
                            .where(jobs.c.id == job)).one() == ("en_route", 4)
    ev = d.on_scene(off, job, 4, near(lat, lon, 60, 5))
    assert payload_of(asking, ev["seq"])["within_m"] == 100
    clock.advance(minutes=20)
    d.close(off, job, 5, "action_taken")  # the arrival was confirmed: no position needed now
    # another precinct's jobs are not bound by the 75th's policy
    other, _, _ = job_at(asking, "120", "120-A")
    asking.dispatch.on_scene(asking.actors["off120"], other, 4)


# -- summons numbers --------------------------------------------------------------------------

def test_summons_numbers_are_recorded_checked_and_unique(asking: World, clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    first, lat, lon = job_at(asking)
    d.on_scene(off, first, 4, near(lat, lon, 10))
    clock.advance(minutes=20)
    ev = d.close(off, first, 5, "summons_issued", summons="1234567890, 1234567891")
    p = payload_of(asking, ev["seq"])
    assert p["summons_numbers"] == ["1234567890", "1234567891"] and p["summons_count"] == 2
    second, lat, lon = job_at(asking)
    d.on_scene(off, second, 4, near(lat, lon, 10))
    with pytest.raises(Invalid, match=f"summons 1234567891 is already recorded on job #{first}"):
        d.close(off, second, 5, "summons_issued", summons=["1234567891"])
    with pytest.raises(Invalid, match="not a summons number"):
        d.close(off, second, 5, "summons_issued", summons="12-34")
    with pytest.raises(Invalid, match="records no summonses"):
        d.close(off, second, 5, "action_taken", summons="1234567899")
    with pytest.raises(Invalid, match="3 numbers for 2 summonses"):
        d.close(off, second, 5, "summons_issued", 2, summons="1111111111 2222222222 3333333333")
    d.close(off, second, 5, "summons_issued", 1)  # a summons without its number: allowed
    with d.engine.connect() as conn:
        owners = dict(conn.execute(sa.select(summons_numbers.c.number,
                                             summons_numbers.c.job_id)).all())
    assert owners == {"1234567890": first, "1234567891": first}


def test_a_reopened_job_closes_again_with_its_own_numbers(asking: World, clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    job, lat, lon = job_at(asking)
    d.on_scene(off, job, 4, near(lat, lon, 10))
    clock.advance(minutes=20)
    d.close(off, job, 5, "summons_issued", summons="5555555555")
    d.reopen(asking.actors["sgt75"], job, 6, "wrong plate")
    d.assign(asking.actors["sgt75"], job, 7, asking.unit("75-A"))
    d.acknowledge(off, job, 8)
    d.on_scene(off, job, 9, near(lat, lon, 10))
    clock.advance(minutes=20)
    d.close(off, job, 10, "summons_issued", summons="5555555555")


def test_two_closes_racing_for_one_number_one_wins(asking: World, clock) -> None:
    d = asking.dispatch
    jobs_ = []
    for unit in ("75-A", "75-B"):
        job, lat, lon = job_at(asking, unit=unit)
        d.on_scene(officer_of(asking, unit), job, 4, near(lat, lon, 10))
        jobs_.append((job, unit))
    clock.advance(minutes=20)
    barrier = threading.Barrier(2)
    outcome: dict[int, str] = {}

    def close(job: int, unit: str) -> None:
        barrier.wait()
        try:
            d.close(officer_of(asking, unit), job, 5, "summons_issued", summons="7777777777")
            outcome[job] = "closed"
        except Invalid as e:
            outcome[job] = str(e)

    threads = [threading.Thread(target=close, args=j) for j in jobs_]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [j for j, o in outcome.items() if o == "closed"]
    assert len(won) == 1, outcome
    lost = next(j for j in outcome if j != won[0])
    assert f"summons 7777777777 is already recorded on job #{won[0]}" in outcome[lost]


# -- officer's photos -------------------------------------------------------------------------

def test_photos_are_kept_without_location_and_seen_only_through_a_recorded_view(
        asking: World, clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    job, lat, lon = job_at(asking)
    d.on_scene(off, job, 4, near(lat, lon, 10))
    clock.advance(minutes=20)
    ev = d.close(off, job, 5, "action_taken", photos=[photos.jpeg(), photos.png()])
    assert payload_of(asking, ev["seq"])["evidence"] == [0, 1]
    with d.engine.connect() as conn:
        rows = conn.execute(sa.select(evidence_photos).order_by(evidence_photos.c.n)).all()
    assert [(r.n, r.content_type) for r in rows] == [(0, "image/jpeg"), (1, "image/png")]
    assert all(GPS_MARK not in bytes(r.data) for r in rows)
    assert len({r.id for r in rows}) == 2 and all(len(r.id) >= 40 for r in rows)
    view, photo = d.view_evidence(asking.actors["sgt75"], job, 0)
    assert view["kind"] == "view_evidence" and view["payload"] == {"n": 0}
    assert photo.data == bytes(rows[0].data)
    for who in ("sgt120", "off120", "off75b", "cmd"):
        with pytest.raises(Forbidden):
            d.view_evidence(asking.actors[who], job, 0)
    with pytest.raises(Invalid):
        d.view_evidence(off, job, 5)


def test_bad_photos_are_refused_and_nothing_is_written(asking: World, clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    job, lat, lon = job_at(asking)
    d.on_scene(off, job, 4, near(lat, lon, 10))
    with pytest.raises(Invalid, match="not a photo"):
        d.close(off, job, 5, "action_taken", photos=[b"%PDF-1.7 pretending.jpg"])
    with pytest.raises(Invalid, match="location metadata"):
        d.close(off, job, 5, "action_taken", photos=[photos.heic()])
    with pytest.raises(Invalid, match=f"at most {MAX_PHOTOS} photos"):
        d.close(off, job, 5, "action_taken", photos=[photos.jpeg()] * (MAX_PHOTOS + 1))
    with d.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(evidence_photos)).scalar() == 0


def test_the_photo_policy_needs_one_for_chosen_dispositions(asking: World, clock) -> None:
    d, off = asking.dispatch, asking.actors["off75a"]
    d.set_policy(asking.actors["admin"], "*", EVIDENCE_PHOTO, True,
                 dispositions=["summons_issued", "no_evidence"])
    job, lat, lon = job_at(asking)
    d.on_scene(off, job, 4, near(lat, lon, 10))
    clock.advance(minutes=20)
    with pytest.raises(Invalid, match="'No evidence of the violation' needs a photo"):
        d.close(off, job, 5, "no_evidence")
    d.close(off, job, 5, "no_evidence", photos=[photos.jpeg()])
    other, lat, lon = job_at(asking)
    d.on_scene(off, other, 4, near(lat, lon, 10))
    d.close(off, other, 5, "gone_on_arrival")  # not a chosen disposition


# -- the API ----------------------------------------------------------------------------------

def test_the_api_takes_a_position_and_summons_numbers(api, asking: World,  # noqa: F811
                                                      clock) -> None:
    job, lat, lon = job_at(asking)
    r = api("off75a", "POST", f"/jobs/{job}/on_scene",
            {"version": 4, "lat": lat + 35 / 111_195, "lon": lon, "accuracy_m": 10})
    assert r.status_code == 200, r.text
    p = r.json()["event"]["payload"]
    assert (p["distance_m"], p["accuracy_m"], p["confirmed"]) == (35, 10, True)
    # the job's readers read the position; the API's job answer carries it on the event only
    detail = api("sgt75", "GET", f"/jobs/{job}").json()
    assert detail["timeline"][-1]["payload"]["distance_m"] == 35
    assert "distance_m" not in detail and "lat" not in detail["fields"]
    assert api("sgt120", "GET", f"/jobs/{job}").status_code == 403
    clock.advance(minutes=20)
    r = api("off75a", "POST", f"/jobs/{job}/close",
            {"version": 5, "disposition": "summons_issued",
             "summons_numbers": ["2345678901", "2345678902"]})
    assert r.status_code == 200, r.text
    assert r.json()["event"]["payload"]["summons_numbers"] == ["2345678901", "2345678902"]


@pytest.mark.parametrize(("body", "field"), [
    ({"lat": 91, "lon": -73.9}, "lat"),
    ({"lat": 40.7, "lon": -181}, "lon"),
    ({"lat": 40.7}, "lon"),
    ({"lat": 40.7, "lon": -73.9, "accuracy_m": 10_001}, "accuracy_m"),
    ({"lat": 40.7, "lon": -73.9, "accuracy_m": -1}, "accuracy_m"),
    ({"accuracy_m": 5}, "accuracy_m"),
    ({"lat": "40.7", "lon": -73.9}, "lat"),
])
def test_the_api_bounds_positions(api, asking: World, body, field) -> None:  # noqa: F811
    job, _, _ = job_at(asking)
    r = api("off75a", "POST", f"/jobs/{job}/on_scene", {"version": 4, **body})
    assert r.status_code == 422 and field in r.json()["fields"], r.text


# -- the phone's forms ------------------------------------------------------------------------

def test_the_close_form_takes_photos_numbers_and_a_position(asking: World, app,
                                                           clock) -> None:
    from starlette.testclient import TestClient

    d = asking.dispatch
    job, lat, lon = job_at(asking)
    d.on_scene(asking.actors["off75a"], job, 4, near(lat, lon, 10))
    clock.advance(minutes=20)
    with TestClient(app) as phone:
        csrf = login(phone, "off75a")
        page = phone.get("/my").text
        assert 'enctype="multipart/form-data"' in page and 'capture="environment"' in page
        assert 'data-position="ask"' in page
        r = phone.post(f"/jobs/{job}/act/close", data={
            "csrf": csrf, "version": "5", "disposition": "summons_issued",
            "summons_numbers": "3456789012", "lat": str(lat), "lon": str(lon),
            "accuracy_m": "6", "next": "/my"},
            files=[("photos", ("IMG_0001.jpg", photos.jpeg(), "image/jpeg"))],
            follow_redirects=False)
        assert r.status_code == 303, r.text
        job_page = phone.get(f"/jobs/{job}").text
    assert "closed confirmed 0 m away (±6 m)" in job_page
    assert "summons no. 3456789012" in job_page
    assert f'href="/jobs/{job}/evidence/0"' in job_page
    with TestClient(app) as desk:
        login(desk, "sgt75")
        view = desk.get(f"/jobs/{job}/evidence/0")
        assert view.status_code == 200 and 'src="data:image/jpeg;base64,' in view.text
        assert view.headers["cache-control"] == "no-store"
        again = desk.get(f"/jobs/{job}").text
        assert "officer&#39;s photo 1" in again or "officer's photo 1" in again
        with TestClient(app) as other:
            login(other, "sgt120")
            assert other.get(f"/jobs/{job}/evidence/0").status_code == 403


def test_a_refused_close_keeps_what_was_chosen(asking: World, app, clock) -> None:
    from starlette.testclient import TestClient

    job, _, _ = job_at(asking)
    asking.dispatch.on_scene(asking.actors["off75a"], job, 4)
    with TestClient(app) as phone:
        csrf = login(phone, "off75a")
        r = phone.post(f"/jobs/{job}/act/close", data={
            "csrf": csrf, "version": "5", "disposition": "summons_issued",
            "summons_numbers": "1234567890", "note": "two cars"},
            files=[("photos", ("a.jpg", b"GIF89a", "image/jpeg"))])
        assert r.status_code == 200
        assert "Not saved" in r.text and "not a photo" in r.text
        assert 'value="1234567890"' in r.text
        r = phone.post(f"/jobs/{job}/act/close", data={
            "csrf": csrf, "version": "5", "disposition": "summons_issued",
            "summons_numbers": "12", "note": "two cars"})
        assert "is not a summons number" in r.text
        assert 'value="12"' in r.text and "two cars" in r.text



def test_the_policies_page_sets_the_new_policies(world: World, app) -> None:
    from starlette.testclient import TestClient

    with TestClient(app) as admin:
        csrf = login(admin, "admin")
        page = admin.get("/policies").text
        assert 'name="metres"' in page and 'name="dispositions"' in page
        admin.post("/policies", data={"csrf": csrf, "scope": "75", "kind": POSITION_ON_SCENE,
                                      "metres": "150", "enabled": "on"})
        admin.post("/policies", data={"csrf": csrf, "scope": "*", "kind": EVIDENCE_PHOTO,
                                      "dispositions": ["summons_issued", "no_evidence"],
                                      "enabled": "on"})
        r = admin.post("/policies", data={"csrf": csrf, "scope": "*",
                                          "kind": POSITION_ON_SCENE, "metres": "3",
                                          "enabled": "on"})
        assert "give the metres, 10 to 5000" in r.text or "between 10 and 5000" in r.text
        page = admin.get("/policies").text
    assert "On scene needs a position within 150 m of the job" in page
    assert ("Closing as Summons issued, No evidence of the violation needs an officer&#39;s "
            "photo") in page
    texts = {p.kind: p for p in world.dispatch.policies(world.actors["admin"])}
    assert texts[POSITION_ON_SCENE].metres == 150
    assert texts[EVIDENCE_PHOTO].dispositions == ("summons_issued", "no_evidence")

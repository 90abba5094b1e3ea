"""The caller's loop on the web: contact and consent in, the public status page, the survey,
status_url and servicerequestupdates in Open311 (board.web.caller, board.caller.status)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from board.accountability import reviews
from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.storage import db
from board.storage.schema import events, jobs, review_queue, status_pages, survey_answers
from tests.conftest import point_in

V2 = "/open311/v2"


@pytest.fixture
def key(world):
    return auth.create_token(world.dispatch.engine, "admin", "open311")


def file_request(client, key: str, **fields: str) -> int:
    lat, lon = point_in(client.app.state.dispatch.geo, "75")
    resp = client.post(f"{V2}/requests.json", data={
        "api_key": key, "service_code": "blocked-driveway", "lat": str(lat), "long": str(lon),
        "address_string": "1 FULTON ST", "description": "Car in my driveway", **fields})
    assert resp.status_code == 200, resp.text
    return int(resp.json()[0]["service_request_id"])


def status_path(client, key: str, job_id: int) -> str:
    url = client.get(f"{V2}/requests/{job_id}.json", params={"api_key": key}).json()[0][
        "status_url"]
    assert re.fullmatch(r"http://testserver/r/[A-Za-z0-9_-]{43}", url), url
    return url.removeprefix("http://testserver")


def work_and_close(world, job_id: int, disposition: str = "action_taken") -> None:
    d, off, sgt = world.dispatch, world.actors["off75a"], world.actors["sgt75"]
    v = d.assign(sgt, job_id, 1, world.unit("75-A"))["after"] and 2
    for step in (d.acknowledge, d.en_route, d.on_scene):
        step(off, job_id, v)
        v += 1
    d.close(off, job_id, v, disposition)


def answer(client, path: str, **fields: str):
    page = client.get(path)
    token = re.search(r'name="form_token" value="([0-9a-f]+)"', page.text).group(1)
    return client.post(path, data={"form_token": token, **fields}, follow_redirects=False)


def test_open311_keeps_contact_and_consent_private(client, world, key):
    job_id = file_request(client, key, email="caller@example.org", phone="+1 718 555 0100",
                          contact_consent="yes")
    with db.read(world.dispatch.engine) as conn:
        fields = conn.execute(sa.select(jobs.c.fields).where(jobs.c.id == job_id)).scalar()
    assert fields["email"] == "caller@example.org" and fields["contact_consent"] is True
    public = client.get(f"{V2}/requests/{job_id}.json").json()[0]
    assert "caller@example.org" not in str(public) and public["status_url"] == ""
    assert "555" not in client.get(f"{V2}/requests/{job_id}.xml", params={"api_key": key}).text
    # consent without any contact is not kept; a bad yes/no is the client's error
    bare = file_request(client, key, contact_consent="true")
    with db.read(world.dispatch.engine) as conn:
        assert "contact_consent" not in conn.execute(
            sa.select(jobs.c.fields).where(jobs.c.id == bare)).scalar()
    lat, lon = point_in(world.dispatch.geo, "75")
    bad = client.post(f"{V2}/requests.json", data={
        "api_key": key, "service_code": "blocked-driveway", "lat": str(lat), "long": str(lon),
        "email": "x@example.org", "contact_consent": "perhaps"})
    assert bad.status_code == 400 and "contact_consent" in bad.json()[0]["description"]


def test_api_takes_contact_and_consent(client, world):
    token = auth.create_token(world.dispatch.engine, "sgt75", "api")
    lat, lon = point_in(world.dispatch.geo, "75")
    headers = {"Authorization": f"Bearer {token}"}
    resp = client.post("/api/v1/jobs", headers=headers, json={
        "complaint_type": "Noise - Residential", "lat": lat, "lon": lon,
        "email": "n@example.org", "phone": "7185550101", "contact_consent": True})
    assert resp.status_code in (200, 201), resp.text
    body = resp.json()
    assert "n@example.org" not in resp.text and body["has_contact"] is True
    with db.read(world.dispatch.engine) as conn:
        fields = conn.execute(sa.select(jobs.c.fields).where(jobs.c.id == body["id"])).scalar()
    assert fields == {"email": "n@example.org", "phone": "7185550101", "contact_consent": True}
    refused = client.post("/api/v1/jobs", headers=headers, json={
        "complaint_type": "Noise - Residential", "lat": lat, "lon": lon, "email": "not-mail"})
    assert refused.status_code == 422 and "email" in refused.text


def test_status_page_shows_steps_and_resolution_never_the_officer(client, world, key):
    job_id = file_request(client, key, email="caller@example.org", contact_consent="yes",
                          first_name="Anastasia")
    path = status_path(client, key, job_id)
    first = client.get(path)
    assert first.status_code == 200
    assert f"Service request {job_id}" in first.text and "Blocked Driveway" in first.text
    assert "not yet" in first.text and "Tell us how it went" not in first.text
    assert first.headers["cache-control"] == "private, no-store"
    assert "set-cookie" not in first.headers  # no session for the public
    work_and_close(world, job_id)
    page = client.get(path).text
    with db.read(world.dispatch.engine) as conn:
        resolution = conn.execute(sa.select(jobs.c.resolution).where(jobs.c.id == job_id)).scalar()
    assert resolution and resolution in page
    assert "Officer on scene" in page and "not yet" not in page
    for private in ("OFF75A", "off75a", "75-A", "caller@example.org", "Anastasia", "FULTON",
                    "driveway since", "Car in my driveway"):
        assert private not in page, private
    assert "Overall, I am satisfied with the way my service request was handled" in page
    # times are New York local time (the test clock is 22:00 UTC = 5:00 PM EST)
    assert "Nov 28, 2026, 5:00 PM" in page


def test_unknown_and_expired_addresses(client, world, key, clock):
    assert client.get("/r/" + "A" * 43).status_code == 404
    assert client.get("/r/short").status_code == 404
    job_id = file_request(client, key)
    path = status_path(client, key, job_id)
    work_and_close(world, job_id)
    clock.advance(days=29, hours=23)
    assert client.get(path).status_code == 200
    clock.advance(hours=2)  # 30 days after the close (STATUS_PAGE_DAYS' default)
    gone = client.get(path)
    assert gone.status_code == 410 and "expired" in gone.text and "30 days" in gone.text


def test_unknown_addresses_are_rate_limited(client):
    for _ in range(30):
        assert client.get("/r/" + "B" * 43).status_code == 404
    assert client.get("/r/" + "C" * 43).status_code == 429


def test_survey_one_answer_shown_back_and_csrf(client, world, key):
    from board.caller.status import form_token

    job_id = file_request(client, key, email="caller@example.org", contact_consent="yes")
    path = status_path(client, key, job_id)
    work_and_close(world, job_id)
    good = form_token("test-secret", path.removeprefix("/r/"))
    assert f'value="{good}"' in client.get(path).text
    fields = {"satisfaction": "5", "still_there": "no"}
    assert client.post(path, data={"form_token": "0" * 64, **fields}).status_code == 403
    assert client.post(path, data=fields).status_code == 403
    other_site = client.post(path, data={"form_token": good, **fields},
                             headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    done = client.post(path, data={"form_token": good, **fields},
                       headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"{path}?answered=1"
    shown = client.get(f"{path}?answered=1").text
    assert "Thank you" in shown and "Strongly agree" in shown and "<form" not in shown
    second = client.post(path, data={"form_token": good, "satisfaction": "1",
                                     "still_there": "yes"})
    assert second.status_code == 409 and "answered already" in second.text
    assert "Strongly agree" in second.text
    with db.read(world.dispatch.engine) as conn:
        rows = conn.execute(sa.select(survey_answers)).all()
        kinds = conn.execute(sa.select(events.c.kind).where(
            events.c.job_id == job_id)).scalars().all()
    assert [(r.satisfaction, r.still_there, r.source) for r in rows] == [(5, False, "status_page")]
    assert kinds.count("survey_answer") == 1 and "caller_disputed" not in kinds


def test_survey_waits_for_the_close(client, world, key):
    from board.caller.status import form_token

    job_id = file_request(client, key)
    path = status_path(client, key, job_id)
    resp = client.post(path, data={"form_token": form_token("test-secret", path[3:]),
                                   "satisfaction": "4", "still_there": "no"})
    assert resp.status_code == 409 and "when the request is closed" in resp.text


def test_answers_are_rate_limited(client, world, key):
    from board.caller.status import form_token

    job_id = file_request(client, key)
    path = status_path(client, key, job_id)
    for _ in range(10):
        assert client.post(path, data={"form_token": form_token("test-secret", path[3:]),
                                       "satisfaction": "4"}).status_code == 409
    assert client.post(path, data={"satisfaction": "4"}).status_code == 429


def test_survey_refuses_bad_values(client, world, key):
    job_id = file_request(client, key)
    path = status_path(client, key, job_id)
    work_and_close(world, job_id)
    for bad in ({"satisfaction": "6", "still_there": "no"}, {"satisfaction": "3"},
                {"satisfaction": "two", "still_there": "no"},
                {"satisfaction": "3", "still_there": "maybe"}):
        resp = answer(client, path, **bad)
        assert resp.status_code == 422, bad
        assert "Please answer both questions" in resp.text
    with db.read(world.dispatch.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(survey_answers)).scalar() == 0


def test_still_there_within_a_day_goes_first_in_review(client, world, key, clock):
    d = world.dispatch
    # a quick-closed job of the same precinct waits in review already, closed earlier
    quick = file_request(client, key)
    work_and_close(world, quick)
    job_id = file_request(client, key)
    path = status_path(client, key, job_id)
    clock.advance(minutes=30)
    work_and_close(world, job_id)
    queue = reviews.pending(d.engine, world.actors["sgt75"], "75", clock())
    assert [p.id for p in queue][0] == quick
    clock.advance(hours=2)
    resp = answer(client, path, satisfaction="1", still_there="yes")
    assert resp.status_code == 303
    queue = reviews.pending(d.engine, world.actors["sgt75"], "75", clock())
    assert [p.id for p in queue] == [job_id, quick]
    assert queue[0].flags == ["caller_disputed", "quick_close"]
    with db.read(d.engine) as conn:
        kinds = conn.execute(sa.select(events.c.kind).where(
            events.c.job_id == job_id)).scalars().all()
        row = conn.execute(sa.select(review_queue).where(
            review_queue.c.job_id == job_id)).first()
    assert kinds[-2:] == ["survey_answer", "caller_disputed"] and row.caller_disputed
    # the supervisor reopens it from the queue
    with db.read(d.engine) as conn:
        v = conn.execute(sa.select(jobs.c.version).where(jobs.c.id == job_id)).scalar()
    d.review(world.actors["sgt75"], job_id, v, "reopened", "caller says the car is still there")
    with db.read(d.engine) as conn:
        assert conn.execute(sa.select(jobs.c.status).where(
            jobs.c.id == job_id)).scalar() == "new"


def test_still_there_on_an_unflagged_close_queues_it(world, clock):
    from board.usecases.caller import CALLER
    from tests.conftest import make_job

    d = world.dispatch
    job_id = make_job(d)
    clock.advance(minutes=1)
    d.assign(world.actors["sgt75"], job_id, 1, world.unit("75-A"))
    clock.advance(minutes=10)
    for v, step in enumerate((d.acknowledge, d.en_route, d.on_scene), start=2):
        step(world.actors["off75a"], job_id, v)
    d.close(world.actors["off75a"], job_id, 5, "action_taken")
    assert reviews.pending(d.engine, world.actors["sgt75"], "75", clock()) == []
    d.answer_survey(CALLER, job_id, 3, True)
    queue = reviews.pending(d.engine, world.actors["sgt75"], "75", clock())
    assert [(p.id, p.flags) for p in queue] == [(job_id, ["caller_disputed"])]


def test_still_there_after_a_day_is_an_answer_not_a_dispute(world, clock):
    d = world.dispatch
    from board.usecases.caller import CALLER
    from tests.conftest import make_job

    job_id = make_job(d)
    work_and_close(world, job_id)
    clock.advance(hours=25)
    d.answer_survey(CALLER, job_id, 2, True)
    with db.read(d.engine) as conn:
        kinds = conn.execute(sa.select(events.c.kind).where(
            events.c.job_id == job_id)).scalars().all()
        queued = conn.execute(sa.select(review_queue.c.caller_disputed).where(
            review_queue.c.job_id == job_id)).scalar()
    assert "survey_answer" in kinds and "caller_disputed" not in kinds and not queued


def test_people_cannot_answer_for_the_caller(world):
    from board.usecases import Forbidden

    with pytest.raises(Forbidden):
        world.dispatch.answer_survey(world.actors["sgt75"], 1, 5, False)


def test_every_new_job_has_a_status_page_history_none(world):
    from tests.conftest import make_job

    job_id = make_job(world.dispatch)
    with db.read(world.dispatch.engine) as conn:
        tokens = conn.execute(sa.select(status_pages.c.job_id, status_pages.c.token)).all()
    assert [t.job_id for t in tokens] == [job_id] and len(tokens[0].token) == 43
    assert SYSTEM.id is None


def test_servicerequestupdates_are_the_public_steps(client, world, key):
    job_id = file_request(client, key, email="caller@example.org")
    work_and_close(world, job_id)
    resp = client.get(f"{V2}/servicerequestupdates.json")
    assert resp.status_code == 200
    mine = [u for u in resp.json() if u["service_request_id"] == str(job_id)]
    assert [u["description"].split(":")[0] for u in mine] == [
        "Received", "Assigned to an officer", "Officer on the way", "Officer on scene",
        "Closed"]
    assert mine[-1]["status"] == "closed" and mine[0]["status"] == "open"
    assert "OFF75A" not in resp.text and "75-A" not in resp.text and "caller@" not in resp.text
    xml = client.get(f"{V2}/servicerequestupdates.xml",
                     params={"service_request_id": str(job_id)})
    assert xml.text.count("<request_update>") == 5 and "<service_request_updates>" in xml.text
    after = client.get(f"{V2}/servicerequestupdates.json",
                       params={"after": mine[2]["update_id"]}).json()
    assert [u["update_id"] for u in after if u["service_request_id"] == str(job_id)] == [
        u["update_id"] for u in mine[3:]]
    assert client.get(f"{V2}/servicerequestupdates.json",
                      params={"start_date": "2026-12-01", "end_date": "2026-11-01"}
                      ).status_code == 400
    assert client.get(f"{V2}/servicerequestupdates.json",
                      params={"start_date": "2020-01-01T00:00:00Z",
                              "end_date": "2020-01-02T00:00:00Z"}).json() == []

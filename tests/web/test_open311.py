"""Open311 GeoReport v2 (board.web.open311): file a request, follow it to its resolution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.domain.clock import NEW_YORK
from board.domain.dispositions import BY_CODE
from board.domain.priorities import Rule
from board.intake.file_import import import_file
from board.storage import db
from board.storage.schema import events, jobs
from board.web.open311 import service_code, services
from tests.conftest import HOUR_CSV, point_in

V2 = "/open311/v2"


@pytest.fixture
def keys(world):
    """API keys (bearer tokens) of some of the world's people."""
    engine = world.dispatch.engine
    return {name: auth.create_token(engine, name, "open311")
            for name in ("admin", "sgt75", "wall75", "cmd", "off75a")}


def errors_of(resp, status: int) -> str:
    """The spec's error format: a JSON array of {code, description}, with the HTTP status."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["code"] == status and isinstance(body[0]["description"], str)
    return body[0]["description"]


def file_request(client, key: str, **fields: str):
    return client.post(f"{V2}/requests.json", data={"api_key": key, **fields})


def iso(dt: datetime) -> str:
    return dt.astimezone(NEW_YORK).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- services


def test_services_are_the_nypd_complaint_types(client, world):
    assert service_code("Noise - Street/Sidewalk") == "noise-street-sidewalk"
    resp = client.get(f"{V2}/services.json")
    assert resp.status_code == 200
    listed = {s["service_code"]: s for s in resp.json()}
    assert listed["noise-residential"]["service_name"] == "Noise - Residential"
    assert listed["blocked-driveway"]["service_name"] == "Blocked Driveway"
    assert listed["non-emergency-police-matter"]["group"] == "NYPD"
    assert all(s["type"] == "realtime" for s in listed.values())
    # metadata: true where the rules name descriptors (a service definition lists them)
    assert listed["blocked-driveway"]["metadata"] is True
    assert listed["encampment"]["metadata"] is False
    assert "" not in listed and "*" not in {s["service_name"] for s in listed.values()}

    # a supervisor's new rule brings its complaint type into the list
    world.dispatch.set_rule(world.actors["city"], Rule("Dumpster Fire", "*", 1, 5, 10, 30))
    assert services(world.dispatch)["dumpster-fire"] == "Dumpster Fire"
    assert "dumpster-fire" in {s["service_code"] for s in client.get(
        f"{V2}/services.json").json()}


# --------------------------------------------------------------------------- the round trip


def test_create_board_close_and_open311_shows_the_resolution(client, world, keys, clock):
    d = world.dispatch
    lat, lon = point_in(d.geo, "75")
    resp = file_request(client, keys["admin"], service_code="blocked-driveway", lat=str(lat),
                        long=str(lon), address_string="1 FULTON ST", description="Car in my "
                        "driveway since 9pm", media_url="https://311.example/p/1.jpg",
                        jurisdiction_id="nyc.gov", email="caller@example.com")
    assert resp.status_code == 200, resp.text
    [created] = resp.json()
    assert created["service_notice"] == "" and created["account_id"] is None
    job_id = int(created["service_request_id"])

    # it is a job on the 75th's board, made through the write path
    with db.read(d.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
        ev = conn.execute(sa.select(events).where(events.c.job_id == job_id)).one()
    assert (job.source, job.precinct, job.status, job.complaint_type) == (
        "open311", "75", "new", "Blocked Driveway")
    assert job.priority == 2 and job.media == ["https://311.example/p/1.jpg"]
    assert job.fields["description"] == "Car in my driveway since 9pm"
    assert job.fields["email"] == "caller@example.com"
    assert (ev.kind, ev.source, ev.actor) == ("create", "open311", "ADMIN")

    [shown] = client.get(f"{V2}/requests/{job_id}.json",
                         params={"api_key": keys["admin"]}).json()
    assert shown["status"] == "open" and shown["status_notes"] == ""
    assert shown["service_code"] == "blocked-driveway"
    assert shown["description"] == "Car in my driveway since 9pm"
    # the photo only through the board's recorded view, never its own address
    assert shown["media_url"] == f"http://testserver/jobs/{job_id}/photos/0"
    assert "311.example" not in str(shown) and "caller@example.com" not in str(shown)
    assert shown["expected_datetime"] == iso(job.close_due)
    assert shown["requested_datetime"] == iso(clock.now)
    assert shown["requested_datetime"].endswith("-05:00")  # New York time, with the offset
    assert (shown["lat"], shown["long"], shown["address"]) == (lat, lon, "1 FULTON ST")

    # the board works it: assign, the officer goes, closes with a summons
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    d.assign(sgt, job_id, 1, world.unit("75-A"))
    d.acknowledge(off, job_id, 2)
    d.en_route(off, job_id, 3)
    d.on_scene(off, job_id, 4)
    clock.advance(minutes=20)
    d.close(off, job_id, 5, "summons_issued", summons_count=2)

    [shown] = client.get(f"{V2}/requests/{job_id}.json").json()
    assert shown["status"] == "closed"
    assert shown["status_notes"] == BY_CODE["summons_issued"].resolution == (
        "The Police Department issued a summons in response to the complaint.")
    assert shown["updated_datetime"] == iso(clock.now)
    # the public view (no key) leaves out the caller's words and photo
    assert shown["description"] == "" and shown["media_url"] == ""

    window = {"start_date": "2026-11-01T00:00:00Z", "end_date": "2026-12-31T00:00:00Z"}
    closed = client.get(f"{V2}/requests.json", params={**window, "status": "closed"}).json()
    assert [r["service_request_id"] for r in closed] == [str(job_id)]
    assert client.get(f"{V2}/requests.json", params={**window, "status": "open"}).json() == []

    # the outbound record for the 311 system
    resp = client.get(f"{V2}/resolutions.json", params={"since": "2026-11-28T00:00:00Z"},
                      headers={"Authorization": f"Bearer {keys['admin']}"})
    assert resp.status_code == 200
    [res] = resp.json()
    assert res["service_request_id"] == str(job_id) and res["external_key"] is None
    assert (res["disposition"], res["summons_count"], res["administrative"]) == (
        "summons_issued", 2, False)
    assert res["resolution"] == res["status_notes"] == BY_CODE["summons_issued"].resolution
    assert res["closed_at"] == iso(clock.now) and res["current_status"] == "closed"
    assert client.get(f"{V2}/resolutions.json", params={
        "since": "2026-11-28T00:00:00Z", "after": str(res["seq"]),
        "api_key": keys["admin"]}).json() == []


def test_resolutions_of_imported_311_jobs_carry_their_311_key(client, world, keys, clock):
    d = world.dispatch
    import_file(d, HOUR_CSV, history=False)  # every row a live job, for the board to close
    with db.read(d.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.precinct == "75")
                           .order_by(jobs.c.id).limit(1)).one()
    d.admin_close(world.actors["sgt75"], job.id, 1, "not_police_jurisdiction")
    other = conn_first_in(d, "120")
    d.admin_close(world.actors["city"], other.id, 1, "duplicate")
    [res75] = client.get(f"{V2}/resolutions.json", params={"api_key": keys["sgt75"]}).json()
    assert res75["external_key"] == job.external_key and res75["administrative"] is True
    assert res75["status_notes"] == ("This complaint does not fall under the Police "
                                     "Department's jurisdiction.")
    # a citywide key sees both closes; a 75th key only the 75th's
    assert len(client.get(f"{V2}/resolutions.json", params={"api_key": keys["admin"]}).json()) \
        == 2
    # 311 jobs from the feed are listed by their requested time
    found = client.get(f"{V2}/requests.json", params={
        "start_date": "2022-05-01T00:00:00-04:00", "end_date": "2022-05-01T03:00:00-04:00",
        "service_code": "blocked-driveway"}).json()
    assert len(found) == 38
    assert {r["service_name"] for r in found} == {"Blocked Driveway"}
    both = client.get(f"{V2}/requests.json", params={
        "service_request_id": f"{job.id},{other.id}", "status": "open"}).json()
    assert {r["service_request_id"] for r in both} == {str(job.id), str(other.id)}
    # the default window is the last 90 days: the 2022 jobs are not in it
    assert client.get(f"{V2}/requests.json").json() == []


def conn_first_in(d, precinct: str):
    with db.read(d.engine) as conn:
        return conn.execute(sa.select(jobs).where(jobs.c.precinct == precinct)
                            .order_by(jobs.c.id).limit(1)).one()


def test_address_only_request_goes_to_the_unrouted_queue(client, world, keys):
    # a precinct's key files only into its precinct: refused, and nothing written
    with db.read(world.dispatch.engine) as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
    assert "outside" in errors_of(file_request(
        client, keys["sgt75"], service_code="noise-residential",
        address_string="somewhere on Atlantic Ave"), 403)
    with db.read(world.dispatch.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == before
    # the 311 system's citywide key files it into the unrouted queue
    resp = file_request(client, keys["admin"], service_code="noise-residential",
                        address_string="somewhere on Atlantic Ave")
    job_id = int(resp.json()[0]["service_request_id"])
    with db.read(world.dispatch.engine) as conn:
        job = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
    assert (job.precinct, job.route_method, job.lat) == (None, "unrouted", None)
    [shown] = client.get(f"{V2}/requests/{job_id}.json").json()
    assert shown["lat"] is None and shown["address"] == "somewhere on Atlantic Ave"


# --------------------------------------------------------------------------- errors


def test_api_key_errors_are_403_in_the_spec_format(client, world, keys):
    lat, lon = point_in(world.dispatch.geo, "75")
    place = {"service_code": "noise-residential", "lat": str(lat), "long": str(lon)}
    assert "required" in errors_of(client.post(f"{V2}/requests.json", data=place), 403)
    assert "not valid" in errors_of(file_request(client, "brd_nope", **place), 403)
    assert "not valid" in errors_of(file_request(client, "x" * 5000, **place), 403)
    assert "may not file" in errors_of(file_request(client, keys["wall75"], **place), 403)
    assert "may not file" in errors_of(file_request(client, keys["cmd"], **place), 403)
    assert errors_of(client.get(f"{V2}/resolutions.json"), 403) == "api_key is required"
    assert "may not read" in errors_of(client.get(
        f"{V2}/resolutions.json", params={"api_key": keys["wall75"]}), 403)
    # a key acts as its person: an officer files nothing, a supervisor only in their precinct
    assert file_request(client, keys["off75a"], **place).status_code == 403
    lat120, lon120 = point_in(world.dispatch.geo, "120")
    elsewhere = {**place, "lat": str(lat120), "long": str(lon120)}
    assert file_request(client, keys["sgt75"], **elsewhere).status_code == 403
    assert file_request(client, keys["sgt75"], **place).status_code == 200
    with db.read(world.dispatch.engine) as conn:
        assert conn.execute(sa.select(jobs.c.precinct)).scalars().all() == ["75"]


@pytest.mark.parametrize("fields,message", [
    ({}, "service_code is required"),
    ({"service_code": "pothole", "lat": "40.7", "long": "-73.9"}, "is not a service"),
    ({"service_code": "noise-residential"}, "a location is required"),
    ({"service_code": "noise-residential", "lat": "40.7"}, "long goes with lat"),
    ({"service_code": "noise-residential", "lat": "north", "long": "-73.9"}, "lat must be a "
                                                                           "number"),
    ({"service_code": "noise-residential", "lat": "95", "long": "-73.9"}, "lat must be between"),
    ({"service_code": "noise-residential", "lat": "nan", "long": "-73.9"}, "lat must be between"),
    ({"service_code": "noise-residential", "lat": "40.7", "long": "inf"}, "long must be between"),
    ({"service_code": "noise-residential", "address_string": "x",
      "media_url": "javascript:alert(1)"}, "media_url must be an http(s) URL"),
    ({"service_code": "noise-residential", "address_string": "x", "description": "d" * 4001},
     "description is longer than 4000"),
    ({"service_code": "noise-residential", "address_string": "a" * 301}, "address_string is "
                                                                        "longer"),
])
def test_bad_requests_are_400_in_the_spec_format(client, world, keys, fields, message):
    assert message in errors_of(file_request(client, keys["admin"], **fields), 400)
    with db.read(world.dispatch.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 0


def test_odd_bodies_and_queries_are_never_a_500(client, world, keys):
    key = keys["admin"]
    assert "form-encoded" in errors_of(client.post(
        f"{V2}/requests.json", json={"api_key": key, "service_code": "noise-residential"}), 400)
    assert "well-formed" in errors_of(client.post(
        f"{V2}/requests.json", content=b"\xff\xfe garbage",
        headers={"content-type": "multipart/form-data; boundary=zz"}), 400)
    assert "media_url" in errors_of(client.post(
        f"{V2}/requests.json", data={"api_key": key, "service_code": "noise-residential"},
        files={"description": ("a.txt", b"hello")}), 400)
    assert errors_of(client.get(f"{V2}/requests/abc.json"), 404).startswith("no service request")
    assert errors_of(client.get(f"{V2}/requests/99999.json"), 404) == "no service request 99999"
    assert errors_of(client.get(f"{V2}/requests/{'9' * 40}.json"), 404)
    assert "ISO 8601" in errors_of(client.get(f"{V2}/requests.json",
                                              params={"start_date": "yesterday"}), 400)
    assert "before start_date" in errors_of(client.get(f"{V2}/requests.json", params={
        "start_date": "2026-01-02", "end_date": "2026-01-01"}), 400)
    assert "status must be" in errors_of(client.get(f"{V2}/requests.json",
                                                    params={"status": "pending"}), 400)
    assert "comma-separated" in errors_of(client.get(
        f"{V2}/requests.json", params={"service_request_id": "1,two"}), 400)
    assert "not a service" in errors_of(client.get(f"{V2}/requests.json",
                                                   params={"service_code": "nope"}), 400)
    assert "sequence number" in errors_of(client.get(
        f"{V2}/resolutions.json", params={"api_key": key, "after": "-1"}), 400)
    assert "control character" in errors_of(client.get(
        f"{V2}/resolutions.json", params={"api_key": key, "since": "\x00"}), 400)
    assert errors_of(client.get(f"{V2}/services.yaml"), 404)
    assert errors_of(client.get(f"{V2}/requests/1.json"), 404)
    assert errors_of(client.delete(f"{V2}/requests.json"), 404)
    odd = ["", " ", "%00", "' OR 1=1 --", "9" * 300, "２０２６-01-01", "2026-13-45T99:99:99",
           "1e309", "-0", "\u202e"]
    for value in odd:
        for path in ("requests.json", "resolutions.json", "services.json"):
            for name in ("start_date", "end_date", "status", "service_code",
                         "service_request_id", "since", "after", "api_key"):
                resp = client.get(f"{V2}/{path}", params={name: value})
                assert resp.status_code < 500, (path, name, value, resp.text)
        resp = file_request(client, key, service_code="noise-residential", lat=value,
                            long=value, address_string=value, media_url=value)
        assert resp.status_code < 500, (value, resp.text)


def test_descriptions_are_shown_only_to_keys_that_see_the_precinct(client, world, keys):
    lat, lon = point_in(world.dispatch.geo, "120")
    resp = file_request(client, keys["admin"], service_code="noise-residential", lat=str(lat),
                        long=str(lon), description="my neighbour, apt 4B",
                        media_url="https://311.example/p/2.jpg")
    job_id = resp.json()[0]["service_request_id"]
    url = f"{V2}/requests/{job_id}.json"
    assert client.get(url, params={"api_key": keys["admin"]}).json()[0]["description"] == (
        "my neighbour, apt 4B")
    for who in ("sgt75", "wall75"):  # out of scope, or a display: the public view
        shown = client.get(url, params={"api_key": keys[who]}).json()[0]
        assert shown["description"] == "" and shown["media_url"] == ""
    assert client.get(url).json()[0]["status"] == "open"
    start = datetime(2026, 11, 1, tzinfo=UTC).isoformat()
    listed = client.get(f"{V2}/requests.json", params={"start_date": start}).json()
    assert [r["service_request_id"] for r in listed] == [job_id]

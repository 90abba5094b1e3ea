"""The JSON API: every use case by bearer token, scope on every endpoint, errors as JSON.

Runs on SQLite and, with DATABASE_URL, on PostgreSQL (where an out-of-range integer or a NUL
byte reaching the database would be a 500: the API must refuse those first).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import jsonschema_rs
import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.domain.dispositions import BY_CODE
from board.storage.schema import events, jobs, units
from board.usecases import queries
from board.web.api import ACTIONS, ENDPOINTS, MAX_BODY, PREFIX
from board.web.api import openapi_document as openapi
from tests.conftest import PASSWORD, PEOPLE, World, make_job, point_in

PHOTOS = ("https://example.test/photo-0.jpg", "https://example.test/photo-1.jpg")


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def tokens(world: World) -> dict[str, str]:
    return {name: auth.create_token(world.dispatch.engine, name, "tests") for name in PEOPLE}


@pytest.fixture
def api(client, tokens):  # type: ignore[no-untyped-def]
    """api(user, method, path, body) → response; body a dict (sent as JSON) or raw str/bytes."""

    def call(user: str | None, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        sent = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
        sent.update(headers or {})
        if isinstance(body, str | bytes):
            return client.request(method, PREFIX + path, content=body,
                                  headers={"Content-Type": "application/json", **sent})
        return client.request(method, PREFIX + path, json=body, headers=sent)

    return call


def assigned_job(world: World) -> int:
    """A 75th job with two photos, on 75-A's stack (version 2)."""
    job = make_job(world.dispatch, "75", media=PHOTOS)
    world.dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    return job


def event_count(world: World) -> int:
    with world.dispatch.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()


def fill(value: Any, ids: dict[str, Any]) -> Any:
    """Put real ids in a case table's placeholders ("{job}", "UNIT_75B", …)."""
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        if value.startswith("/"):  # a path; raw bodies are sent as they are
            return value.format(**{k: v for k, v in ids.items() if k.isidentifier()})
        return value
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def ids_of(world: World, job: int) -> dict[str, Any]:
    lat, lon = point_in(world.dispatch.geo, "75")
    lat120, lon120 = point_in(world.dispatch.geo, "120")
    return {"job": job, "unit": world.unit("75-A"), "UNIT_75A": world.unit("75-A"),
            "UNIT_75B": world.unit("75-B"), "LAT75": lat, "LON75": lon, "LAT120": lat120,
            "LON120": lon120}


def resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def conforms(value: Any, schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    """Where a response differs from its documented schema (JSON Schema 2020-12, formats
    checked). Documented objects are closed (additionalProperties: false), so a key the
    document does not list is a difference too and the document cannot lag."""
    validator = jsonschema_rs.validator_for({**doc, **schema}, validate_formats=True)
    return [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(value)]


def check_schema(response: Any, name: str) -> None:
    doc = openapi()
    problems = conforms(response.json(), {"$ref": f"#/components/schemas/{name}"}, doc)
    assert not problems, problems


# -- the whole officer path -------------------------------------------------------------------


def test_officer_path_over_the_api(api, world: World) -> None:
    job = make_job(world.dispatch, "75", media=PHOTOS)
    assigned = api("sgt75", "POST", f"/jobs/{job}/assign",
                   {"version": 1, "unit_id": world.unit("75-A")})
    assert assigned.status_code == 200, assigned.text
    check_schema(assigned, "ActionResult")
    assert assigned.json()["job"]["unit"] == "75-A"
    assert assigned.json()["event"]["kind"] == "assign"

    queue = api("off75a", "GET", "/me/queue")
    assert queue.status_code == 200
    check_schema(queue, "OfficerQueue")
    assert queue.json()["unit"]["callsign"] == "75-A"
    [card] = queue.json()["jobs"]
    assert card["id"] == job and card["status"] == "assigned" and card["photos"] == 2
    assert card["next_step"] == {"action": "acknowledge", "label": "Acknowledge"}

    version = card["version"]
    for step, status in (("acknowledge", "acknowledged"), ("en_route", "en_route"),
                         ("on_scene", "on_scene")):
        r = api("off75a", "POST", f"/jobs/{job}/{step}", {"version": version})
        assert r.status_code == 200, r.text
        assert r.json()["job"]["status"] == status
        assert r.json()["job"]["version"] == version + 1
        version += 1

    photo = api("off75a", "POST", f"/jobs/{job}/view_photo", {"index": 1})
    assert photo.status_code == 200 and photo.json()["url"] == PHOTOS[1]
    assert photo.json()["event"]["payload"] == {"index": 1}
    note = api("off75a", "POST", f"/jobs/{job}/note", {"text": "music off\nparty over"})
    assert note.status_code == 200 and note.json()["job"]["version"] == version  # no change

    moved = api("off75a", "POST", "/me/position", {"lat": 40.67, "lon": -73.88})
    assert moved.status_code == 200, moved.text
    check_schema(moved, "UnitResult")
    assert (moved.json()["unit"]["lat"], moved.json()["unit"]["lon"]) == (40.67, -73.88)

    closed = api("off75a", "POST", f"/jobs/{job}/close",
                 {"version": version, "disposition": "summons_issued", "summons_count": 2,
                  "note": "two summonses"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["job"]["status"] == "closed"
    assert api("off75a", "GET", "/me/queue").json()["jobs"] == []

    detail = api("sgt75", "GET", f"/jobs/{job}")
    assert detail.status_code == 200
    check_schema(detail, "JobDetail")
    d = detail.json()
    assert d["disposition"] == "summons_issued" and d["summons_count"] == 2
    assert d["resolution"] == BY_CODE["summons_issued"].resolution
    assert "quick_close" in d["flags"] and "no_arrival" not in d["flags"]
    assert "photos_unviewed" not in d["flags"]
    assert "reopen" in d["allowed_actions"] and "close" not in d["allowed_actions"]
    timeline = d["timeline"]
    assert [e["kind"] for e in timeline] == [
        "create", "assign", "acknowledge", "en_route", "on_scene", "view_photo", "note", "close"]
    assert [e["actor"] for e in timeline] == ["system", "SGT75"] + ["OFF75A"] * 6
    assert {e["source"] for e in timeline[1:]} == {"api"}
    ack = timeline[2]
    assert (ack["before"], ack["after"]) == ("assigned", "acknowledged")
    assert timeline[-1]["payload"]["note"] == "two summonses"
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in timeline)
    assert [e["seq"] for e in timeline] == sorted(e["seq"] for e in timeline)


def test_the_json_board_does_not_read_the_places_history(api, world: World) -> None:
    """The JSON cards say nothing of earlier jobs at their place, so the board's read leaves
    the desk's memory out (in the hour-long soak it was 40% of the database's time, growing
    with every repeat complaint at the board's places)."""
    ids = [make_job(world.dispatch, "75") for _ in range(3)]  # one address, one point
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa.event.listen(world.dispatch.engine, "before_cursor_execute", note)
    try:
        r = api("sgt75", "GET", "/precincts/75/board")
    finally:
        sa.event.remove(world.dispatch.engine, "before_cursor_execute", note)
    assert r.status_code == 200 and {c["id"] for c in r.json()["queue"]} == set(ids)
    assert seen and not [s for s in seen if "AS h" in s], "the place memory was read"
    assert "here_before" not in r.json()["queue"][0]


def test_a_closed_card_does_not_fold_its_timeline(api, world: World) -> None:
    """A closed card's flags are those its close wrote (job_facts.close_flags). In the hour-long
    soak each write's board read folded the timelines of the fifteen latest closes, hundreds
    of assignments each and growing: CPU per event rose by half over the hour."""
    job = assigned_job(world)
    version = 2
    for _ in range(3):  # bounced between the queue and a unit, as a busy desk does
        assert api("sgt75", "POST", f"/jobs/{job}/unassign",
                   {"version": version, "reason": "back to the queue"}).is_success
        assert api("sgt75", "POST", f"/jobs/{job}/assign",
                   {"version": version + 1, "unit_id": world.unit("75-A")}).is_success
        version += 2
    for step in ("acknowledge", "en_route", "on_scene"):
        assert api("off75a", "POST", f"/jobs/{job}/{step}", {"version": version}).is_success
        version += 1
    closed = api("off75a", "POST", f"/jobs/{job}/close",
                 {"version": version, "disposition": "summons_issued", "summons_count": 1})
    assert closed.status_code == 200, closed.text
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa.event.listen(world.dispatch.engine, "before_cursor_execute", note)
    try:
        board = api("sgt75", "GET", "/precincts/75/board").json()
    finally:
        sa.event.remove(world.dispatch.engine, "before_cursor_execute", note)
    [card] = board["closed"]
    flags = {"quick_close", "photos_unviewed"}
    assert card["id"] == job and set(card["flags"]) == flags
    assert set(api("sgt75", "GET", f"/jobs/{job}").json()["flags"]) == flags  # its timeline's
    assert seen and not [s for s in seen if "WHERE events.job_id" in s], "a timeline was read"


def test_board_shows_queue_lanes_closed_and_counters(api, world: World) -> None:
    queued = make_job(world.dispatch, "75")
    stacked = assigned_job(world)
    r = api("sgt75", "GET", "/precincts/75/board")
    assert r.status_code == 200
    check_schema(r, "Board")
    b = r.json()
    assert [c["id"] for c in b["queue"]] == [queued]
    lanes = {lane["callsign"]: lane for lane in b["lanes"]}
    assert set(lanes) == {"75-A", "75-B", "75-C"}
    assert [c["id"] for c in lanes["75-A"]["jobs"]] == [stacked]
    assert lanes["75-A"]["activity"] == "assigned"
    assert b["counters"]["unassigned"] == 1 and b["counters"]["assigned"] == 1
    assert b["unrouted"] == []
    # commanders and the wall display read what is in their scope
    assert api("cmd", "GET", "/precincts/120/board").status_code == 200
    assert api("wall75", "GET", "/precincts/75/board").status_code == 200
    units_r = api("sgt75", "GET", "/precincts/75/units")
    check_schema(units_r, "UnitList")
    assert [u["callsign"] for u in units_r.json()["units"]] == ["75-A", "75-B", "75-C"]


def test_supervisor_moves(api, world: World) -> None:
    a, b = world.unit("75-A"), world.unit("75-B")
    first, second = make_job(world.dispatch, "75"), make_job(world.dispatch, "75")

    def act(job: int, action: str, **body: Any) -> dict[str, Any]:
        version = api("sgt75", "GET", f"/jobs/{job}").json()["version"]
        r = api("sgt75", "POST", f"/jobs/{job}/{action}", {"version": version, **body})
        assert r.status_code == 200, (action, r.text)
        return r.json()["job"]

    act(first, "assign", unit_id=a)
    assert act(second, "assign", unit_id=a, position=0)["stack_pos"] == 0
    assert act(first, "reorder", position=0)["stack_pos"] == 0
    assert act(first, "reassign", unit_id=b)["unit"] == "75-B"
    assert act(first, "unassign", reason="unit needed elsewhere")["status"] == "new"
    assert act(first, "hold", reason="caller asked to wait")["status"] == "held"
    assert act(first, "release")["status"] == "new"
    assert act(first, "priority", priority=1)["priority"] == 1
    assert act(first, "admin_close", disposition="duplicate")["status"] == "closed"
    reopened = act(first, "reopen", reason="not a duplicate after all")
    assert reopened["status"] == "new" and reopened["disposition"] is None
    routed = api("city", "POST", f"/jobs/{first}/route",
                 {"version": reopened["version"], "precinct": "120"})
    assert routed.status_code == 200, routed.text
    assert routed.json()["job"]["precinct"] == "120"
    kinds = [e["kind"] for e in api("city", "GET", f"/jobs/{first}").json()["timeline"]]
    assert kinds == ["create", "assign", "reorder", "reassign", "unassign", "hold", "release",
                     "set_priority", "admin_close", "reopen", "route"]


def test_create_job_by_hand(api, world: World) -> None:
    lat, lon = point_in(world.dispatch.geo, "75")
    r = api("sgt75", "POST", "/jobs", {
        "complaint_type": "Blocked Driveway", "descriptor": "No Access",
        "address": "100 PENNSYLVANIA AVENUE", "lat": lat, "lon": lon,
        "description": "car across the driveway"})
    assert r.status_code == 201, r.text
    check_schema(r, "JobDetail")
    job = r.json()
    assert r.headers["location"] == f"{PREFIX}/jobs/{job['id']}"
    assert (job["precinct"], job["status"], job["priority"]) == ("75", "new", 1)
    assert job["fields"]["description"] == "car across the driveway"
    assert job["timeline"][0]["kind"] == "create" and job["timeline"][0]["source"] == "api"
    assert api("sgt75", "GET", f"/jobs/{job['id']}").json()["id"] == job["id"]


@pytest.mark.parametrize("where", ["other_precinct", "far_away", "nowhere"])
def test_refused_create_writes_nothing(api, world: World, where: str) -> None:
    """A precinct supervisor filing outside the precinct, far from every precinct or with no
    coordinates is refused before anything is written; retries add nothing (defect 2)."""
    lat, lon = point_in(world.dispatch.geo, "120")
    body = {"complaint_type": "Illegal Parking", "descriptor": "Blocked Hydrant"}
    if where == "other_precinct":
        body |= {"lat": lat, "lon": lon}
    elif where == "far_away":
        body |= {"lat": 41.5, "lon": -75.0}
    with world.dispatch.engine.connect() as conn:
        jobs_before = conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar()
    before = event_count(world)
    for _ in range(3):
        r = api("sgt75", "POST", "/jobs", body)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden"
    with world.dispatch.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == jobs_before
    assert event_count(world) == before
    # a citywide supervisor files the same job into the unrouted queue
    if where != "other_precinct":
        made = api("city", "POST", "/jobs", body)
        assert made.status_code == 201 and made.json()["precinct"] is None


def test_unit_status(api, world: World) -> None:
    unit = world.unit("75-C")
    out = api("sgt75", "POST", f"/units/{unit}/status",
              {"version": 1, "status": "out_of_service", "reason": "flat tyre"})
    assert out.status_code == 200, out.text
    check_schema(out, "UnitResult")
    assert out.json()["unit"]["status"] == "out_of_service"
    assert out.json()["unit"]["status_reason"] == "flat tyre"
    stale = api("sgt75", "POST", f"/units/{unit}/status", {"version": 1, "status": "available"})
    assert stale.status_code == 409 and stale.json()["unit_id"] == unit
    assert stale.json()["by"] == "SGT75" and stale.json()["current_version"] == 2
    back = api("sgt75", "POST", f"/units/{unit}/status", {"version": 2, "status": "available"})
    assert back.status_code == 200 and back.json()["unit"]["status"] == "available"


def test_rules_and_dispositions(api, world: World) -> None:
    rules = api("off75a", "GET", "/rules")
    assert rules.status_code == 200
    check_schema(rules, "RuleList")
    assert any(r["complaint_type"] == "Blocked Driveway" for r in rules.json()["rules"])
    new = {"complaint_type": "Animal Abuse", "descriptor": "*", "priority": 1,
           "ack_minutes": 5, "arrive_minutes": 15, "close_minutes": 60}
    refused = api("sgt75", "POST", "/rules", new)  # rules are citywide (defect 6)
    assert refused.status_code == 403 and new not in api("sgt75", "GET", "/rules").json()["rules"]
    r = api("city", "POST", "/rules", new)
    assert r.status_code == 200, r.text
    check_schema(r, "RuleResult")
    assert new in api("sgt75", "GET", "/rules").json()["rules"]
    job = make_job(world.dispatch, "75", complaint="Animal Abuse", descriptor="Neglected")
    assert api("sgt75", "GET", f"/jobs/{job}").json()["priority"] == 1

    d = api("wall75", "GET", "/dispositions")
    assert d.status_code == 200
    check_schema(d, "DispositionList")
    codes = {x["code"]: x for x in d.json()["dispositions"]}
    assert {"action_taken", "summons_issued", "no_evidence", "gone_on_arrival", "duplicate",
            "not_police_jurisdiction"} <= set(codes)
    assert codes["summons_issued"]["summons"] and codes["duplicate"]["administrative"]


def test_my_queue_without_a_unit_is_empty(api, world: World) -> None:
    r = api("sgt75", "GET", "/me/queue")
    assert r.status_code == 200 and r.json() == {"unit": None, "jobs": []}


# -- 409 ------------------------------------------------------------------------------------


def test_stale_version_is_a_409_naming_who_changed_it(api, world: World) -> None:
    job = make_job(world.dispatch, "75")
    first = api("sgt75", "POST", f"/jobs/{job}/assign",
                {"version": 1, "unit_id": world.unit("75-A")})
    assert first.status_code == 200
    before = event_count(world)
    second = api("city", "POST", f"/jobs/{job}/assign",
                 {"version": 1, "unit_id": world.unit("75-B")})
    assert second.status_code == 409
    check_schema(second, "ConflictError")
    body = second.json()
    assert body["error"] == "conflict"
    assert (body["by"], body["kind"], body["your_version"], body["current_version"]) == (
        "SGT75", "assign", 1, 2)
    assert "SGT75" in body["detail"] and body["at"] is not None
    assert event_count(world) == before
    assert api("city", "GET", f"/jobs/{job}").json()["unit"] == "75-A"
    # the same move against the current version goes through
    again = api("city", "POST", f"/jobs/{job}/reassign",
                {"version": body["current_version"], "unit_id": world.unit("75-B")})
    assert again.status_code == 200 and again.json()["job"]["unit"] == "75-B"


def test_a_step_the_status_does_not_allow_is_a_409(api, world: World) -> None:
    job = make_job(world.dispatch, "75")
    r = api("sgt75", "POST", f"/jobs/{job}/acknowledge", {"version": 1})
    assert r.status_code == 409
    check_schema(r, "TransitionError")
    assert r.json()["error"] == "invalid_transition" and r.json()["status"] == "new"
    assert "acknowledge" in r.json()["detail"]


# -- 401 ------------------------------------------------------------------------------------

PRIVATE = [ep for ep in ENDPOINTS if not ep.public]


BAD_CREDENTIALS = [
    {}, {"Authorization": "Bearer brd_not-a-real-token"}, {"Authorization": "Bearer "},
    {"Authorization": "Basic c2d0NzU6Y29ycmVjdCBob3JzZQ=="}, {"Authorization": "brd_x"},
    {"Authorization": "Bearer " + "x" * 5000},
]


@pytest.mark.parametrize("ep", PRIVATE, ids=[f"{e.method} {e.path}" for e in PRIVATE])
def test_every_endpoint_needs_a_valid_bearer_token(client, ep) -> None:
    path = PREFIX + ep.path.format(job_id=1, unit_id=1, precinct="75")
    for headers in BAD_CREDENTIALS:
        body = {"version": 1} if ep.body is not None else None
        r = client.request(ep.method, path, json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_401_comes_before_anything_about_the_request(client) -> None:
    """Without a token nothing is validated or looked up: no probing for jobs or actions."""
    for path, body in (("/jobs/999999/frobnicate", "{"), ("/jobs/abc/assign", "[]"),
                       ("/jobs/1/assign", {"version": "x"})):
        kw = {"content": body} if isinstance(body, str) else {"json": body}
        assert client.post(PREFIX + path, **kw).status_code == 401


def test_a_session_cookie_is_not_an_api_credential(client, api, world) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    login = client.post("/login", data={"csrf": csrf, "username": "sgt75",
                                        "password": PASSWORD}, follow_redirects=False)
    assert login.status_code == 303
    assert client.get("/board/75").status_code == 200  # the cookie works for pages
    assert api(None, "GET", "/precincts/75/board").status_code == 401
    assert api(None, "POST", "/jobs", {"complaint_type": "Noise"}).status_code == 401


# -- 403: every endpoint out of scope ---------------------------------------------------------

ACTION_BODIES: dict[str, dict[str, Any]] = {
    "assign": {"version": 2, "unit_id": "UNIT_75B"},
    "reassign": {"version": 2, "unit_id": "UNIT_75B"},
    "unassign": {"version": 2, "reason": "needed elsewhere"},
    "reorder": {"version": 2, "position": 0},
    "acknowledge": {"version": 2},
    "en_route": {"version": 2},
    "on_scene": {"version": 2},
    "close": {"version": 2, "disposition": "action_taken"},
    "admin_close": {"version": 2, "disposition": "duplicate"},
    "hold": {"version": 2, "reason": "wait"},
    "release": {"version": 2},
    "reopen": {"version": 2, "reason": "again"},
    "priority": {"version": 2, "priority": 1},
    "note": {"text": "a note"},
    "route": {"version": 2, "precinct": "120"},
    "view_photo": {"index": 0},
    "view_contact": {},
}
assert set(ACTION_BODIES) == {a.name for a in ACTIONS}
OFFICER_STEPS = ["acknowledge", "en_route", "on_scene", "close", "note", "view_photo",
                 "view_contact"]
SUPERVISOR_ONLY = sorted(set(ACTION_BODIES) - set(OFFICER_STEPS))
UNIT_BODY = {"version": 1, "status": "out_of_service", "reason": "flat tyre"}
RULE_BODY = {"complaint_type": "Noise - Residential", "priority": 1, "ack_minutes": 1,
             "arrive_minutes": 2, "close_minutes": 3}
JOB_75 = {"complaint_type": "Noise - Residential", "lat": "LAT75", "lon": "LON75"}
JOB_120 = {"complaint_type": "Noise - Residential", "lat": "LAT120", "lon": "LON120"}
POSITION = {"lat": 40.67, "lon": -73.88}


def _forbidden_cases() -> list[tuple[str, str, str, dict[str, Any] | None]]:
    job_actions = [("POST", f"/jobs/{{job}}/{a}", b) for a, b in ACTION_BODIES.items()]
    writes = [*job_actions, ("POST", "/jobs", JOB_75), ("POST", "/rules", RULE_BODY),
              ("POST", "/units/{unit}/status", UNIT_BODY), ("POST", "/me/position", POSITION)]
    cases = [
        # a supervisor of the 120th: nothing of the 75th, by any endpoint
        ("sgt120", "GET", "/precincts/75/board", None),
        ("sgt120", "GET", "/precincts/75/units", None),
        ("sgt120", "GET", "/jobs/{job}", None),
        ("sgt120", "POST", "/units/{unit}/status", UNIT_BODY),
        *[("sgt120", *c) for c in job_actions],
        ("sgt75", "GET", "/precincts/120/board", None),
        ("sgt75", "GET", "/precincts/120/units", None),
        ("sgt75", "POST", "/jobs", JOB_120),
        ("sgt75", "POST", "/me/position", POSITION),
        ("sgt75", "POST", "/rules", RULE_BODY),  # rules are citywide
        # an officer of the 120th on a 75th job
        ("off120", "GET", "/jobs/{job}", None),
        *[("off120", "POST", f"/jobs/{{job}}/{a}", ACTION_BODIES[a]) for a in OFFICER_STEPS],
        # an officer of the 75th on another unit's job
        *[("off75b", "POST", f"/jobs/{{job}}/{a}", ACTION_BODIES[a]) for a in OFFICER_STEPS],
        # an officer on their own job: only the officer's steps
        *[("off75a", "POST", f"/jobs/{{job}}/{a}", ACTION_BODIES[a]) for a in SUPERVISOR_ONLY],
        ("off75a", "POST", "/jobs", JOB_75),
        ("off75a", "POST", "/rules", RULE_BODY),
        ("off75a", "POST", "/units/{UNIT_75B}/status", UNIT_BODY),  # not the officer's unit
    ]
    # commanders and wall displays read, and never write
    for who in ("cmd", "wall75"):
        cases += [(who, *w) for w in writes]
    return cases


FORBIDDEN = _forbidden_cases()
# What a refusal must not give away about the job, its unit or its people.
SECRETS = ("TEST STREET", "Noise", "Loud", "75-A", "75-B", "example.test", "SGT75", "OFF75A",
           "version", "assigned")


@pytest.mark.parametrize(("user", "method", "path", "body"), FORBIDDEN,
                         ids=[f"{u}-{m}-{p}" for u, m, p, _ in FORBIDDEN])
def test_out_of_scope_is_403_for_every_endpoint(api, world, user, method, path, body) -> None:
    job = assigned_job(world)
    ids = ids_of(world, job)
    before = (event_count(world), world.dispatch.rules(),
              queries.job(world.dispatch.engine, SYSTEM, job, world.dispatch.clock()).row)
    r = api(user, method, fill(path, ids), fill(body, ids))
    assert r.status_code == 403, r.text
    assert set(r.json()) == {"error", "detail"} and r.json()["error"] == "forbidden"
    leaked = [s for s in SECRETS if s in r.text]
    assert not leaked, r.text
    after = (event_count(world), world.dispatch.rules(),
             queries.job(world.dispatch.engine, SYSTEM, job, world.dispatch.clock()).row)
    assert after == before


def test_photo_count_does_not_leak_out_of_scope(api, world) -> None:
    """An index past the last photo is 422 in scope, but 403 outside: no probing."""
    job = assigned_job(world)
    assert api("sgt75", "POST", f"/jobs/{job}/view_photo", {"index": 5}).status_code == 422
    assert api("sgt120", "POST", f"/jobs/{job}/view_photo", {"index": 5}).status_code == 403
    assert api("sgt120", "POST", f"/jobs/{job}/view_photo", {"index": 1}).status_code == 403


# -- 404 and 405 ------------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "method", "path"), [
    ("sgt75", "GET", "/jobs/999999"),
    ("sgt120", "GET", "/jobs/999999"),
    ("sgt75", "GET", "/jobs/abc"),
    ("sgt75", "GET", "/jobs/0"),
    ("sgt75", "GET", "/jobs/-1"),
    ("sgt75", "GET", "/jobs/99999999999999999999"),
    ("sgt75", "GET", "/jobs/2147483648"),
    ("sgt75", "POST", "/jobs/999999/acknowledge"),
    ("sgt75", "POST", "/jobs/99999999999/note"),
    ("sgt75", "POST", "/units/999999/status"),
    ("sgt75", "POST", "/units/x/status"),
    ("city", "GET", "/precincts/999/board"),
    ("city", "GET", "/precincts/%00/board"),
    ("city", "GET", "/precincts/75%3B--/units"),
    ("city", "GET", "/precincts/123456789/board"),
    ("sgt75", "GET", "/nowhere"),
    ("sgt75", "GET", "/jobs/1/assign/more"),
])
def test_not_found_is_json_and_says_nothing(api, world, user, method, path) -> None:
    assigned_job(world)
    body = {"version": 1, "status": "off_duty"} if "/units/" in path else {"version": 1}
    r = api(user, method, path, body if method == "POST" else None)
    assert r.status_code == 404, r.text
    assert set(r.json()) == {"error", "detail"} and r.json()["error"] == "not_found"
    assert not [s for s in SECRETS if s in r.text]


def test_wrong_method_is_json_405(api, world) -> None:
    r = api("sgt75", "DELETE", "/jobs/1")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert r.json()["error"] == "method_not_allowed"
    assert api("sgt75", "PUT", "/rules").headers["allow"] == "GET, POST"


# -- 422 ------------------------------------------------------------------------------------

A = "/jobs/{job}/assign"
INVALID = [
    # (user, path, body, the field named)
    ("sgt75", A, "{", "body"),
    ("sgt75", A, '{"version": 1,', "body"),
    ("sgt75", A, "[1, 2]", "body"),
    ("sgt75", A, '"assign"', "body"),
    ("sgt75", A, "null", "body"),
    ("sgt75", A, b"\xff\xfe{}", "body"),
    ("sgt75", A, '{"version": NaN, "unit_id": 1}', "body"),
    ("sgt75", A, "[" * 100_000, "body"),
    ("sgt75", A, '{"text": "' + "x" * MAX_BODY + '"}', "body"),
    ("sgt75", A, {"version": "abc", "unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"version": "2", "unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"version": True, "unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"version": 2.5, "unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"version": 2**40, "unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"version": 0, "unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"version": None, "unit_id": "UNIT_75B"}, "version"),
    ("sgt75", A, {"version": 2}, "unit_id"),
    ("sgt75", A, {"version": 2, "unit_id": [1]}, "unit_id"),
    ("sgt75", A, {"version": 2, "unit_id": 2**63}, "unit_id"),
    ("sgt75", A, {"version": 2, "unit_id": "UNIT_75B", "colour": "red"}, "colour"),
    ("sgt75", A, {"version": 2, "unit_id": "UNIT_75B", "position": -1}, "position"),
    ("sgt75", "/jobs/{job}/frobnicate", {"version": 2}, "action"),
    ("sgt75", "/jobs/{job}/close", {"version": 2, "disposition": "arrested"}, "disposition"),
    ("sgt75", "/jobs/{job}/close", {"version": 2, "disposition": "duplicate"}, "disposition"),
    ("sgt75", "/jobs/{job}/close", {"version": 2, "disposition": "summons_issued"},
     "summons_count"),
    ("sgt75", "/jobs/{job}/close", {"version": 2, "disposition": "summons_issued",
                                    "summons_count": "two"}, "summons_count"),
    ("sgt75", "/jobs/{job}/admin_close", {"version": 2, "disposition": "action_taken"},
     "disposition"),
    ("sgt75", "/jobs/{job}/priority", {"version": 2, "priority": 7}, "priority"),
    ("sgt75", "/jobs/{job}/unassign", {"version": 2, "reason": "   "}, "reason"),
    ("sgt75", "/jobs/{job}/unassign", {"version": 2}, "reason"),
    ("sgt75", "/jobs/{job}/unassign", {"version": 2, "reason": "a\x00b"}, "reason"),
    ("sgt75", "/jobs/{job}/hold", {"version": 2, "reason": "x" * 301}, "reason"),
    ("sgt75", "/jobs/{job}/reorder", {"version": 2}, "position"),
    ("sgt75", "/jobs/{job}/note", {"text": ""}, "text"),
    ("sgt75", "/jobs/{job}/note", {"text": 42}, "text"),
    ("sgt75", "/jobs/{job}/note", '{"text": "\\ud800"}', "text"),
    ("city", "/jobs/{job}/route", {"version": 2, "precinct": "75; DROP TABLE jobs"}, "precinct"),
    ("city", "/jobs/{job}/route", {"version": 2, "precinct": "999"}, "precinct"),
    ("city", "/jobs/{job}/route", {"version": 2, "precinct": "75", "sector": "ZZ9"}, "sector"),
    ("sgt75", "/jobs/{job}/view_photo", {"index": -1}, "index"),
    ("sgt75", "/jobs/{job}/view_photo", {"index": 5}, "index"),
    ("sgt75", "/jobs/{job}/view_photo", {}, "index"),
    ("off75a", "/me/position", {"lat": "x", "lon": -73.9}, "lat"),
    ("off75a", "/me/position", {"lat": 200, "lon": -73.9}, "lat"),
    ("off75a", "/me/position", '{"lat": Infinity, "lon": -73.9}', "body"),
    ("off75a", "/me/position", {"lat": 40.6}, "lon"),
    ("off75a", "/me/position", {"lat": 40.6, "lon": 10**400}, "lon"),
    ("sgt75", "/jobs", {}, "complaint_type"),
    ("sgt75", "/jobs", {"complaint_type": "   "}, "complaint_type"),
    ("sgt75", "/jobs", {"complaint_type": "x" * 121}, "complaint_type"),
    ("sgt75", "/jobs", {"complaint_type": "Noise", "lat": 40.6}, "lon"),
    ("sgt75", "/jobs", {"complaint_type": "Noise", "description": "a\x00b"}, "description"),
    ("sgt75", "/units/{unit}/status", {"version": 1, "status": "asleep"}, "status"),
    ("sgt75", "/units/{unit}/status", {"version": 1, "status": "out_of_service"}, "reason"),
    ("sgt75", "/units/{unit}/status", {"version": "1", "status": "off_duty"}, "version"),
    ("city", "/rules", {**RULE_BODY, "ack_minutes": 9}, "arrive_minutes"),
    ("city", "/rules", {**RULE_BODY, "priority": 0}, "priority"),
    ("city", "/rules", {**RULE_BODY, "complaint_type": "x" * 121}, "complaint_type"),
    ("city", "/rules", {**RULE_BODY, "descriptor": "tab\there"}, "descriptor"),
    ("city", "/rules", {"priority": 1}, "complaint_type"),
]


@pytest.mark.parametrize(("user", "path", "body", "field"), INVALID,
                         ids=[f"{i}-{c[1]}-{c[3]}" for i, c in enumerate(INVALID)])
def test_bad_input_is_422_naming_the_field(api, world, user, path, body, field) -> None:
    ids = ids_of(world, assigned_job(world))
    before = event_count(world)
    r = api(user, "POST", fill(path, ids), fill(body, ids))
    assert r.status_code == 422, r.text
    check_schema(r, "InvalidError")
    assert field in r.json()["fields"], r.json()
    assert event_count(world) == before


def test_a_422_names_every_bad_field_at_once(api, world) -> None:
    job = assigned_job(world)
    r = api("sgt75", "POST", f"/jobs/{job}/assign", {"version": "x", "unit_id": None, "y": 1})
    assert set(r.json()["fields"]) == {"version", "unit_id", "y"}


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if e.body is not None],
                         ids=[f"{e.method} {e.path}" for e in ENDPOINTS if e.body is not None])
def test_no_field_value_makes_a_500(api, world, ep) -> None:
    """Every body field of every endpoint, given every kind of wrong value: a 4xx, never a
    crash (the test client re-raises a server error)."""
    ids = ids_of(world, assigned_job(world))
    path = ep.path.format(job_id=ids["job"], unit_id=ids["unit"], precinct="75")
    schema = ep.body.model_json_schema()
    base = {name: sample(schema["properties"][name]) for name in schema.get("required", [])}
    garbage = ["abc", "", "\x00", "x" * 5000, 1.5, -1, 0, 2**31, 2**64, -(2**63) - 1, True,
               None, [], {}, {"$gt": ""}, 1e308]
    for name in schema["properties"]:
        for value in garbage:
            r = api("admin", ep.method, path, {**base, name: value})
            assert r.status_code < 500, (name, value, r.text)


def sample(prop: dict[str, Any]) -> Any:
    """A valid value of a documented property (the first enum value, "75" for a code)."""
    if "enum" in prop:
        return prop["enum"][0]
    if prop.get("type") == "string":
        return "75" if "0-9A-Za-z" in prop.get("pattern", "") else "x"
    return max(1, prop.get("minimum", 1))


# -- the OpenAPI document ---------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_is_served_and_well_formed(client) -> None:
    r = client.get(PREFIX + "/openapi.json")  # no token needed to read the contract
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearerAuth": []}]
    for ref in _refs(doc):  # every reference resolves
        assert ref.startswith("#/") and resolve(doc, ref) is not None, ref
    seen_ids = set()
    for path, ops in doc["paths"].items():
        assert path.startswith(PREFIX + "/")
        params = set(re.findall(r"{(\w+)}", path))
        for method, op in ops.items():
            assert method in ("get", "post", "put")
            assert op["operationId"] not in seen_ids
            seen_ids.add(op["operationId"])
            assert op["summary"]
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == params
            assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")
            codes = set(op["responses"])
            assert codes & {"200", "201"}
            for response in op["responses"].values():
                assert "$ref" in response or response["description"]
            if op.get("security") == []:
                assert path == PREFIX + "/openapi.json"
                continue
            assert "401" in codes
            if "{job_id}" in path or "{unit_id}" in path or "{precinct}" in path:
                assert "404" in codes
            if method == "get":
                continue
            body = resolve(doc, op["requestBody"]["content"]["application/json"]["schema"][
                "$ref"])
            assert body["type"] == "object" and body["additionalProperties"] is False
            assert set(body.get("required", [])) <= set(body["properties"])
            assert "422" in codes
            if path.startswith(PREFIX + "/jobs/{job_id}/") and "version" in body["properties"]:
                assert "409" in codes and "version" in body["required"]
    actions = {p.rsplit("/", 1)[1] for p in doc["paths"] if p.startswith(PREFIX + "/jobs/{")}
    assert actions == {a.name for a in ACTIONS} | {"{job_id}"}


def test_every_route_is_documented_and_every_documented_route_is_served(app, api, world):
    [mount] = [r for r in app.routes if getattr(r, "path", None) == PREFIX]
    served = {(PREFIX + route.path, m.lower()) for route in mount.routes
              for m in route.endpoint.methods}
    served |= {(route.path, m.lower()) for route in app.routes  # served by their own module
               if getattr(route, "path", "").startswith(PREFIX + "/")
               for m in route.methods if m != "HEAD"}
    doc = openapi()
    documented = {(path, m) for path, ops in doc["paths"].items() for m in ops}
    assert served == documented
    # and the router really answers each documented operation (not a no-route 404 or a 405)
    job = assigned_job(world)
    for path, method in sorted(documented):
        url = path.removeprefix(PREFIX).format(job_id=job, unit_id=world.unit("75-A"),
                                               precinct="75")
        r = api("admin", method.upper(), url, None if method == "get" else {})
        assert r.status_code != 405, (method, path)
        assert "no such endpoint" not in r.text, (method, path)


def test_response_schemas_cover_error_bodies(api, world) -> None:
    job = assigned_job(world)
    check_schema(api("sgt120", "GET", f"/jobs/{job}"), "Error")
    check_schema(api("sgt75", "GET", "/jobs/999999"), "Error")
    check_schema(api(None, "GET", "/me/queue"), "Error")


def test_unit_rows_come_back_as_documented(world) -> None:
    """UNIT in the document lists exactly the unit columns the API returns (no more)."""
    doc = openapi()
    with world.dispatch.engine.connect() as conn:
        row = conn.execute(sa.select(units)).first()
    from board.web.api import unit_json

    assert not conforms(unit_json(row), {"$ref": "#/components/schemas/Unit"}, doc)


# -- the document and the server agree (defect 9 of issue 10) ---------------------------------


def test_null_for_an_optional_field_is_documented_and_taken(api, world) -> None:
    """An optional field sent as null means "not given", and the document says it may be."""
    doc = openapi()
    job = make_job(world.dispatch, "75")
    r = api("sgt75", "POST", f"/jobs/{job}/assign",
            {"version": 1, "unit_id": world.unit("75-A"), "position": None})
    assert r.status_code == 200, r.text
    position = resolve(doc, "#/components/schemas/Assign")["properties"]["position"]
    assert not conforms(None, position, doc)
    # and a required field may not be null, in the document as on the server
    version = resolve(doc, "#/components/schemas/Assign")["properties"]["version"]
    assert conforms(None, version, doc)
    assert "version" in api("sgt75", "POST", f"/jobs/{job}/assign",
                            {"version": None, "unit_id": 1}).json()["fields"]
    created = api("city", "POST", "/jobs", {"complaint_type": "Noise - Residential",
                                           "lat": None, "lon": None})
    assert created.status_code == 201, created.text


def test_an_integral_number_is_an_integer_as_json_schema_says(api, world) -> None:
    job = make_job(world.dispatch, "75")
    r = api("sgt75", "POST", f"/jobs/{job}/assign",
            f'{{"version": 1.0, "unit_id": {world.unit("75-A")}.0, "position": 0.0}}')
    assert r.status_code == 200, r.text
    assert r.json()["job"]["version"] == 2 and r.json()["job"]["stack_pos"] == 0
    assert api("sgt75", "POST", f"/jobs/{job}/priority",
               '{"version": 2.5, "priority": 1}').status_code == 422


def test_an_empty_complaint_type_is_refused_by_the_document_too(api, world) -> None:
    doc = openapi()
    prop = resolve(doc, "#/components/schemas/NewJob")["properties"]["complaint_type"]
    for blank in ("", "   ", "\t"):
        assert conforms(blank, prop, doc), blank
        r = api("sgt75", "POST", "/jobs", {"complaint_type": blank})
        assert r.status_code == 422 and "complaint_type" in r.json()["fields"]
    assert not conforms("Noise - Residential", prop, doc)


def test_lat_and_lon_go_together_in_the_document_and_on_the_server(api, world) -> None:
    doc = openapi()
    schema = {"$ref": "#/components/schemas/NewJob"}
    for body in ({"complaint_type": "Noise", "lat": 40.6},
                 {"complaint_type": "Noise", "lat": 40.6, "lon": None}):
        assert conforms(body, schema, doc)
        assert "lon" in api("sgt75", "POST", "/jobs", body).json()["fields"]
    assert not conforms({"complaint_type": "Noise", "lat": None, "lon": None}, schema, doc)


@pytest.mark.parametrize("method", ["POST", "TRACE", "PUT", "DELETE"])
def test_a_method_an_api_path_does_not_take_is_405(api, world, method) -> None:
    """Audit defect 11: POST and TRACE on /api/v1/qstat were 404 (the path is served by the
    QSTAT pages' module, outside the endpoint table)."""
    r = api("cmd", method, "/qstat")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]
    assert api("cmd", method, "/nowhere").status_code == 404


def test_a_committed_write_answers_success_when_its_read_back_fails(api, world,
                                                                   monkeypatch) -> None:
    """Audit defect 4 (first half): during a PostgreSQL stop two notes were stored yet answered
    503, because the card read after the commit failed; a client retrying stored them twice.
    The answer now comes from what was written (the event), with the card left out."""
    from board.web import api as api_module

    job = assigned_job(world)
    before = event_count(world)

    def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise sa.exc.OperationalError("SELECT", {}, ConnectionError("server closed"))

    monkeypatch.setattr(api_module.queries, "job", down)
    monkeypatch.setattr(api_module.queries, "job_card", down)
    monkeypatch.setattr(api_module.queries, "precinct_units", down)
    r = api("sgt75", "POST", f"/jobs/{job}/note", {"text": "stored once"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["job"] is None and body["event"]["kind"] == "note"
    assert body["event"]["payload"]["text"] == "stored once"
    assert event_count(world) == before + 1
    r = api("sgt75", "POST", f"/units/{world.unit('75-B')}/status",
            {"version": 1, "status": "off_duty"})
    assert r.status_code == 200 and r.json()["unit"] is None, r.text


def test_a_control_character_in_a_query_is_a_documented_400_on_every_operation(api,
                                                                              world) -> None:
    """The fuzzer's find: a query name with a control character got the middleware's 400,
    which no operation of the document listed. Every operation lists it now, and gets it."""
    doc = openapi()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "400" in op["responses"], (method, path)
    for user, path in (("cmd", "/qstat?a%01b=1"), ("sgt75", "/precincts/75/board?x=%00")):
        r = api(user, "GET", path)
        assert r.status_code == 400 and r.json()["error"] == "bad_request"


def test_the_document_has_the_paths_registered_after_it_was_first_built() -> None:
    """A module registering its paths after the document was first built (QSTAT's, by import
    order) is in the next document: the order of imports never leaves a path out."""
    from board.web import openapi as openapi_doc

    before = openapi()
    openapi_doc.EXTRA_PATHS["/api/v1/zz-test"] = {"get": {"responses": {}}}
    try:
        assert "/api/v1/zz-test" not in before["paths"]
        assert "/api/v1/zz-test" in openapi()["paths"]
    finally:
        del openapi_doc.EXTRA_PATHS["/api/v1/zz-test"]


# -- Idempotency-Key (audit defect 4, second half) ----------------------------------------------


def job_count(world: World) -> int:
    with world.dispatch.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one()


def test_a_retry_with_the_same_idempotency_key_answers_the_first_answer_and_writes_nothing(
        api, world) -> None:  # type: ignore[no-untyped-def]
    """Audit defect 4: a client that retries a write (its answer lost, or a 503) must not
    store it twice. With the same Idempotency-Key and the same request it gets the first
    answer back, marked replayed, and nothing is written."""
    job = assigned_job(world)
    before = event_count(world)
    key = {"Idempotency-Key": "note 1 from the phone"}
    first = api("sgt75", "POST", f"/jobs/{job}/note", {"text": "once"}, key)
    again = api("sgt75", "POST", f"/jobs/{job}/note", {"text": "once"}, key)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert event_count(world) == before + 1
    jobs_before = job_count(world)
    lat, lon = point_in(world.dispatch.geo, "75")
    body = {"complaint_type": "Blocked Driveway", "descriptor": "No Access",
            "lat": lat, "lon": lon}
    made = api("sgt75", "POST", "/jobs", body, {"Idempotency-Key": "create-1"})
    remade = api("sgt75", "POST", "/jobs", body, {"Idempotency-Key": "create-1"})
    assert made.status_code == remade.status_code == 201, remade.text
    assert remade.json()["id"] == made.json()["id"]
    assert remade.headers["Location"] == made.headers["Location"]
    assert job_count(world) == jobs_before + 1
    # the key is the user's: another user's same key is another request
    before = event_count(world)
    other = api("city", "POST", f"/jobs/{job}/note", {"text": "once"}, key)
    assert other.status_code == 200 and "Idempotent-Replayed" not in other.headers
    assert event_count(world) == before + 1


def test_a_reveal_retried_with_its_key_is_not_kept_beside_the_key(api, world) -> None:  # type: ignore[no-untyped-def]
    """A retried photo view answers its event, not the photo's address: the answers kept for
    retries (24 h) must not become a second, unrecorded copy of what a view revealed."""
    job = assigned_job(world)
    key = {"Idempotency-Key": "look once"}
    first = api("sgt75", "POST", f"/jobs/{job}/view_photo", {"index": 1}, key)
    again = api("sgt75", "POST", f"/jobs/{job}/view_photo", {"index": 1}, key)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["url"] == PHOTOS[1]
    assert again.headers["Idempotent-Replayed"] == "true" and "url" not in again.json()
    assert again.json()["event"] == first.json()["event"]
    with world.dispatch.engine.connect() as conn:
        kept = conn.exec_driver_sql("SELECT response FROM idempotency_keys").scalars().all()
    assert kept and not any(PHOTOS[1] in (r or "") for r in kept)


def test_an_idempotency_key_reused_for_another_request_or_malformed_is_422(
        api, world) -> None:  # type: ignore[no-untyped-def]
    job = assigned_job(world)
    key = {"Idempotency-Key": "k-2"}
    assert api("sgt75", "POST", f"/jobs/{job}/note", {"text": "a"}, key).status_code == 200
    second = assigned_job(world)
    before = event_count(world)
    for path, body in ((f"/jobs/{job}/note", {"text": "b"}),
                       (f"/jobs/{second}/note", {"text": "a"})):
        r = api("sgt75", "POST", path, body, key)
        assert r.status_code == 422, r.text
        assert "different request" in r.json()["fields"]["Idempotency-Key"]
    for bad in ("x" * 101, "caf\u00e9"):
        r = api("sgt75", "POST", f"/jobs/{job}/note", {"text": "c"},
                {"Idempotency-Key": bad.encode("latin-1")})
        assert r.status_code == 422 and "Idempotency-Key" in r.json()["fields"], r.text
    assert event_count(world) == before
    # without a token: 401 first, whatever the key
    assert api(None, "POST", f"/jobs/{job}/note", {"text": "c"},
               {"Idempotency-Key": "x" * 101}).status_code == 401


def test_a_failed_write_gives_its_idempotency_key_back(api, world) -> None:  # type: ignore[no-untyped-def]
    """A refused write wrote nothing: the key is released, so the corrected retry runs."""
    job = assigned_job(world)
    key = {"Idempotency-Key": "ack-once"}
    r = api("sgt75", "POST", f"/jobs/{job}/note", {"text": ""}, key)
    assert r.status_code == 422
    r = api("sgt75", "POST", f"/jobs/{job}/note", {"text": ""}, key)
    assert r.status_code == 422 and "Idempotency-Key" not in r.json().get("fields", {})


def test_an_idempotency_key_is_claimed_once_under_a_race_and_kept_24_hours(world) -> None:
    """Eight racing requests with one key: exactly one holds it (the primary key decides, on
    both engines); the others see its fingerprint. After 24 h the key is free again."""
    from concurrent.futures import ThreadPoolExecutor

    from board.storage import idempotency

    engine, now = world.dispatch.engine, world.dispatch.clock()
    uid = world.actors["sgt75"].id
    fp = idempotency.fingerprint("POST", "/api/v1/jobs/1/note", b"{}")
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: idempotency.claim(engine, uid, "race", fp, now),
                            range(8)))
    assert sum(g is None for g in got) == 1
    assert all(g.fingerprint == fp and g.status is None for g in got if g is not None)
    idempotency.answer(engine, uid, "race", 200, {"ok": True})
    held = idempotency.claim(engine, uid, "race", fp, now + idempotency.KEEP / 2)
    assert held is not None and held.status == 200 and held.response == {"ok": True}
    assert idempotency.claim(engine, uid, "race", fp,
                             now + idempotency.KEEP + idempotency.STALE) is None


def test_every_write_documents_the_idempotency_key_header_as_the_server_reads_it(app) -> None:  # type: ignore[no-untyped-def]
    # (the app first: it registers /api/v1/qstat's paths before the document is made, cached)
    doc = openapi()
    writes = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()
              if m in ("post", "put")]
    assert writes
    for path, _method, op in writes:
        header = [p for p in op.get("parameters", []) if p["name"] == "Idempotency-Key"]
        assert header and header[0]["in"] == "header" and not header[0]["required"], path
    schema = jsonschema_rs.validator_for(header[0]["schema"])
    from board.web.api import idempotency_key
    for key in ("a", "x" * 100, "a b", "~!{}"):
        assert schema.is_valid(key) and idempotency_key(key) == key
    for key in ("", "x" * 101, "caf\u00e9", " a", "a\x01"):
        assert not schema.is_valid(key)
        with pytest.raises(Exception, match="Idempotency-Key"):
            idempotency_key(key)


def test_a_created_job_answers_201_when_its_read_back_fails(api, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Audit defect 4: POST /jobs read the job back after the commit; when that read failed
    the client got a 503 and retried into a second job. It answers from what it wrote."""
    from board.web import api as api_module

    def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise sa.exc.OperationalError("SELECT", {}, ConnectionError("server closed"))

    before = job_count(world)
    monkeypatch.setattr(api_module.queries, "job", down)
    lat, lon = point_in(world.dispatch.geo, "75")
    r = api("sgt75", "POST", "/jobs", {"complaint_type": "Blocked Driveway",
                                       "descriptor": "No Access", "lat": lat, "lon": lon})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["job"] is None and body["event"]["kind"] == "create"
    assert r.headers["Location"] == f"{PREFIX}/jobs/{body['id']}"
    assert job_count(world) == before + 1


def test_a_write_committed_but_never_answered_is_answered_from_what_it_wrote(
        api, world, clock) -> None:  # type: ignore[no-untyped-def]
    """Audit defect 4's gap: the process died (or the database went) between a write's commit
    and storing its Idempotency-Key answer. Its claim stayed unanswered: a retry got 409, and
    after STALE the claim was taken again and the write ran twice. The write's own transaction
    now marks the claim with its event, so every retry, before STALE or after, answers success
    from that event and writes nothing."""
    from board.storage import idempotency

    job = assigned_job(world)
    lat, lon = point_in(world.dispatch.geo, "75")
    writes = (  # (user, path, body, status): a note, a versioned step, a new job
        ("sgt75", f"/jobs/{job}/note", {"text": "stored once"}, 200),
        ("off75a", f"/jobs/{job}/acknowledge", {"version": 2}, 200),
        ("sgt75", "/jobs", {"complaint_type": "Blocked Driveway", "descriptor": "No Access",
                            "lat": lat, "lon": lon}, 201),
    )
    for n, (user, path, body, status) in enumerate(writes):
        key = {"Idempotency-Key": f"answer lost {n}"}
        before, jobs_before = event_count(world), job_count(world)
        stored = idempotency.answer
        idempotency.answer = lambda *args, **kwargs: None  # type: ignore[assignment]
        try:  # the process dies after the commit: no answer is stored
            first = api(user, "POST", path, body, key)
        finally:
            idempotency.answer = stored  # type: ignore[assignment]
        assert first.status_code == status, first.text
        soon = api(user, "POST", path, body, key)  # within STALE: was a 409
        clock.advance(seconds=idempotency.STALE.total_seconds() * 3)
        late = api(user, "POST", path, body, key)  # after STALE: was a second write
        for again in (soon, late):
            assert again.status_code == status, again.text
            assert again.headers["Idempotent-Replayed"] == "true"
            if status == 201:  # the job, read back
                check_schema(again, "JobDetail")
                assert again.json()["id"] == first.json()["id"]
                assert again.headers["Location"] == first.headers["Location"]
            else:
                check_schema(again, "ActionResult")
                assert again.json()["event"] == first.json()["event"]
                assert again.json()["job"]["id"] == job
        assert event_count(world) == before + 1 and job_count(world) == jobs_before + (n == 2)


def test_only_a_claim_whose_write_never_committed_is_taken_again(api, world, clock) -> None:  # type: ignore[no-untyped-def]
    """A claim without a committed write (the process died before the commit) answers 409
    until STALE, then runs once. A write whose claim was taken meanwhile rolls back."""
    from board.storage import idempotency

    job = assigned_job(world)
    body = '{"text": "after the crash"}'
    path = f"/jobs/{job}/note"
    fp = idempotency.fingerprint("POST", PREFIX + path, body.encode())
    uid = world.actors["sgt75"].id
    assert idempotency.claim(world.dispatch.engine, uid, "died", fp, clock()) is None
    before = event_count(world)
    key = {"Idempotency-Key": "died"}
    r = api("sgt75", "POST", path, body, key)
    assert r.status_code == 409 and r.headers["Retry-After"] == "1", r.text
    assert event_count(world) == before
    clock.advance(seconds=idempotency.STALE.total_seconds() + 1)
    r = api("sgt75", "POST", path, body, key)
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers, r.text
    assert event_count(world) == before + 1
    # the claim lost under a write (a retry took it after STALE): the write is rolled back
    claim = idempotency.claim
    idempotency.claim = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        r = api("sgt75", "POST", path, body, {"Idempotency-Key": "never claimed"})
    finally:
        idempotency.claim = claim  # type: ignore[assignment]
    assert r.status_code == 409, r.text
    assert event_count(world) == before + 1


# -- the document says what the API accepts (audit defect 11) ----------------------------------


def agrees(api, user: str, method: str, path: str, model: str,  # type: ignore[no-untyped-def]
           body: dict[str, Any]) -> tuple[bool, int]:
    """(the document calls the body valid, the server's status)."""
    doc = openapi()
    valid = not conforms(body, {"$ref": f"#/components/schemas/{model}"}, doc)
    return valid, api(user, method, path, body).status_code


def test_a_policy_without_the_number_its_kind_needs_is_invalid_in_the_document_too(
        app, api) -> None:  # type: ignore[no-untyped-def]
    """Audit defect 11: the document allowed note_quick_close with minutes null, which the API
    refuses (422). Now the schema needs the number of a kind that needs one."""
    for body in ({"kind": "note_quick_close", "enabled": True, "minutes": None},
                 {"kind": "note_quick_close", "enabled": False},
                 {"kind": "position_on_scene", "enabled": True, "metres": None}):
        assert agrees(api, "admin", "PUT", "/policies", "PolicyChange", body) == (False, 422)
    for body in ({"kind": "note_quick_close", "enabled": True, "minutes": 5},
                 {"kind": "position_on_scene", "enabled": False, "metres": 150}):
        assert agrees(api, "admin", "PUT", "/policies", "PolicyChange", body) == (True, 200)


@pytest.mark.parametrize(("reason", "valid"), [
    ("\U00040000\U00050000", True),  # the audit's: unassigned-plane characters, kept as sent
    ("\u0378", True),  # unassigned inside an assigned plane: the same
    ("\ue000 \U000f0000", True),  # private use: the same
    ("\u202e\u200b\ufeff", False),  # invisible formatting only
    (" \u00a0\u3000 ", False),  # spaces only
    ("a\u202eb", False),  # a bidi override inside text
    ("lost\u00a0key 東京 👨\u200d👩\u200d👧 🏴\U000e0067\U000e0062\U000e007f", True),
])
def test_a_hold_reason_the_document_takes_is_one_the_api_takes(api, world, reason,  # type: ignore[no-untyped-def]
                                                             valid) -> None:
    """Audit defect 11: the schema's pattern took a hold reason of unassigned-plane characters
    that the use case stripped to nothing and refused (422). One rule now decides what is
    text (board.domain.text), for the document's pattern and the use case's clean-up alike:
    controls, invisible formatting and line separators are not; the rest is kept as sent."""
    job = make_job(world.dispatch, "75")
    body = {"version": 1, "reason": reason}
    got = agrees(api, "sgt75", "POST", f"/jobs/{job}/hold", "WithReason", body)
    assert got == (valid, 200 if valid else 422), reason.encode("unicode_escape")
    if valid:
        [detail] = [queries.job(world.dispatch.engine, world.actors["sgt75"], job,
                                world.dispatch.clock())]
        assert detail.timeline[-1].payload["reason"] == reason


def test_a_rule_out_of_order_is_a_422_naming_the_field_and_the_document_says_so(
        app, api) -> None:  # type: ignore[no-untyped-def]
    """Audit defect 11: rules whose minutes are not ack ≤ arrive ≤ close were valid in the
    document. JSON Schema cannot compare two fields: the schema says the order in words, and
    the API's 422 names the field out of order and the order."""
    description = openapi()["components"]["schemas"]["RuleChange"]["description"]
    assert "ack_minutes ≤ arrive_minutes ≤ close_minutes" in description
    rule = {"complaint_type": "Noise - Residential", "descriptor": "Banging/Pounding",
            "priority": 2}
    for minutes, field in (((30, 10, 60), "arrive_minutes"), ((10, 60, 30), "close_minutes"),
                           ((90, 60, 30), "arrive_minutes")):
        body = {**rule, **dict(zip(("ack_minutes", "arrive_minutes", "close_minutes"), minutes,
                                   strict=True))}
        r = api("admin", "POST", "/rules", body)
        assert r.status_code == 422, r.text
        assert "ack_minutes ≤ arrive_minutes ≤ close_minutes" in r.json()["fields"][field]
    body = {**rule, "ack_minutes": 10, "arrive_minutes": 10, "close_minutes": 30}
    assert agrees(api, "admin", "POST", "/rules", "RuleChange", body) == (True, 200)


def test_a_qstat_period_the_document_refuses_the_api_refuses(app, api, world) -> None:  # type: ignore[no-untyped-def]
    """Audit defect 11: a QSTAT period over 400 days was valid in the document (the API says
    422). The bound is in both parameters' descriptions (JSON Schema cannot compare two
    parameters); a day is YYYY-MM-DD in both (Python took 20260101 and 2026-W01-1 too)."""
    from board.domain.qstat import MAX_DAYS

    params = {p["name"]: p for p in openapi()["paths"][f"{PREFIX}/qstat"]["get"]["parameters"]}
    for name in ("from", "to"):
        assert f"at most {MAX_DAYS} days" in params[name]["description"]
    day = jsonschema_rs.validator_for(params["from"]["schema"], validate_formats=True)
    for value, valid in (("2026-01-01", True), ("20260101", False), ("2026-W01-1", False),
                         ("2026-02-30", False), ("２０２６-01-01", False)):
        assert day.is_valid(value) is valid, value
        r = api("cmd", "GET", f"/qstat?from={value}&to=2026-03-01")
        assert r.status_code == (200 if valid else 422), (value, r.text)
    r = api("cmd", "GET", "/qstat?from=2025-01-01&to=2026-03-01")
    assert r.status_code == 422 and f"at most {MAX_DAYS} days" in r.json()["fields"]["period"]


def test_every_write_that_takes_the_key_documents_its_409(app, api, world) -> None:  # type: ignore[no-untyped-def]
    """Audit defect 11: "a request with this Idempotency-Key is still running" (409 with
    Retry-After) was in no write's responses. Every write that takes the key lists it, and the
    answer is the documented shape."""
    from board.storage import idempotency

    doc = openapi()
    conflict = doc["components"]["responses"]["Conflict"]
    assert "Retry-After" in conflict["headers"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])):
                assert op["responses"]["409"] == {"$ref": "#/components/responses/Conflict"}, (
                    method, path)
    job = assigned_job(world)
    body, path = '{"text": "running"}', f"/jobs/{job}/note"
    fp = idempotency.fingerprint("POST", PREFIX + path, body.encode())
    idempotency.claim(world.dispatch.engine, world.actors["sgt75"].id, "busy", fp,
                      world.dispatch.clock())
    r = api("sgt75", "POST", path, body, {"Idempotency-Key": "busy"})
    assert r.status_code == 409 and r.headers["Retry-After"] == "1", r.text
    schema = conflict["content"]["application/json"]["schema"]
    assert not conforms(r.json(), schema, doc)
    assert not conforms(r.json(), {"$ref": "#/components/schemas/KeyInUseError"}, doc)

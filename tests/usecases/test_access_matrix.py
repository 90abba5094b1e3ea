"""The access matrix (issue 10, "make trust checkable"): every page, API endpoint, Open311
resource and socket of the app against every role and precinct scope, as ONE table.

The table's rows are the app's routes, enumerated from the app itself: a route added without a
row here fails `test_every_route_has_a_row`. Each row names who gets through; everyone else must
be refused (401/403/404, sent to the log-in page, or the socket closed with 4401/4403). The
target is the 75th precinct: a job there on unit 75-A's stack, with a photo and the caller's
contact, the unit 75-C, the precinct 75. A write that went through leaves a fresh job for the
next person.

People: anon (no credentials), off75a (the job's officer), off75b (another unit of the 75th),
off120, sgt75, sgt120, city (citywide supervisor), cmd (commander of the 75th and 120th), admin,
wall75 (the 75th's wall display, by its token).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.storage.schema import evidence_photos
from board.usecases import NewJob
from tests.conftest import PASSWORD, World, point_in

PEOPLE = ("anon", "off75a", "off75b", "off120", "sgt75", "sgt120", "city", "cmd", "admin",
          "wall75")
ALL = frozenset(PEOPLE)
USERS = ALL - {"anon"}
PUBLIC = "public"  # reachable by anyone: only "never a 5xx, never a refusal" is checked
SEE75 = frozenset({"off75a", "off75b", "sgt75", "city", "cmd", "admin", "wall75"})
SUP75 = frozenset({"sgt75", "city", "admin"})          # supervise the 75th
JOB75 = SUP75 | {"off75a"}                              # act on the job: its officer too
READ75 = SEE75 - {"wall75"}                             # read a job's details
OFFICERS = frozenset({"off75a", "off75b", "off120"})
CITYWIDE = frozenset({"city", "admin"})
OVERSIGHT = frozenset({"sgt75", "sgt120", "city", "cmd", "admin"})
OVERSIGHT75 = frozenset({"sgt75", "city", "cmd", "admin"})
NOBODY: frozenset[str] = frozenset()

JOB_ACTIONS = {  # API job actions: body, who may
    "assign": ({"version": 2, "unit_id": "{unit_b}"}, SUP75),
    "reassign": ({"version": 2, "unit_id": "{unit_b}"}, SUP75),
    "unassign": ({"version": 2, "reason": "needed elsewhere"}, SUP75),
    "reorder": ({"version": 2, "position": 0}, SUP75),
    "acknowledge": ({"version": 2}, JOB75),
    "en_route": ({"version": 2}, JOB75),
    "on_scene": ({"version": 2}, JOB75),
    "close": ({"version": 2, "disposition": "action_taken"}, JOB75),
    "admin_close": ({"version": 2, "disposition": "duplicate"}, SUP75),
    "hold": ({"version": 2, "reason": "wait"}, SUP75),
    "release": ({"version": 2}, SUP75),
    "reopen": ({"version": 2, "reason": "again"}, SUP75),
    "priority": ({"version": 2, "priority": 1}, SUP75),
    "note": ({"text": "a note"}, JOB75),
    "route": ({"version": 2, "precinct": "75"}, SUP75),
    "view_photo": ({"index": 0}, JOB75),
    "view_contact": ({}, JOB75),
}
JOB_75 = {"complaint_type": "Noise - Residential", "lat": "{lat}", "lon": "{lon}"}
RULE = {"complaint_type": "Noise - Park", "priority": 1, "ack_minutes": 1, "arrive_minutes": 2,
        "close_minutes": 3}
POLICY = {"scope": "75", "kind": "photo_before_close", "enabled": True}

# (method, route path) → (how it is called: kind, concrete path, body; who gets through)
MATRIX: dict[tuple[str, str], tuple[str, str, Any, Any]] = {
    # pages (session cookie)
    ("GET", "/"): ("page", "/", None, USERS),
    ("GET", "/login"): ("page", "/login", None, PUBLIC),
    ("POST", "/login"): ("form", "/login", {"username": "x", "password": "y"}, PUBLIC),
    ("POST", "/logout"): ("form", "/logout", {}, PUBLIC),
    ("GET", "/ping"): ("page", "/ping", None, PUBLIC),
    ("GET", "/sw.js"): ("page", "/sw.js", None, PUBLIC),
    ("GET", "/board/{precinct}"): ("page", "/board/75", None, SEE75),
    # the precinct picker only redirects to /board/<pct>, which decides who may read it
    ("GET", "/board"): ("page", "/board?precinct=75", None, PUBLIC),
    ("GET", "/geo/{precinct}.json"): ("page", "/geo/75.json", None, SEE75),
    ("GET", "/unrouted"): ("page", "/unrouted", None, CITYWIDE),
    ("GET", "/jobs/{job_id}"): ("page", "/jobs/{job}", None, READ75),
    ("GET", "/jobs/{job_id}/photos/{index}"): ("page", "/jobs/{job}/photos/0", None, JOB75),
    ("GET", "/jobs/{job_id}/evidence/{n}"): ("page", "/jobs/{job}/evidence/0", None, JOB75),
    ("GET", "/handover/{precinct}"): ("page", "/handover/75", None, OVERSIGHT75),
    ("GET", "/handover/{precinct}.csv"): ("page", "/handover/75.csv", None, OVERSIGHT75),
    # single sign-on: not configured here, so only "never a 5xx" (tests/auth/test_oidc*)
    ("GET", "/login/sso"): ("page", "/login/sso", None, PUBLIC),
    ("GET", "/login/sso/callback"): ("page", "/login/sso/callback?state=x&code=y", None, PUBLIC),
    ("POST", "/jobs/{job_id}/contact"): ("form", "/jobs/{job}/contact", {}, JOB75),
    ("POST", "/jobs/{job_id}/act/{action}"): ("form", "/jobs/{job}/act/note",
                                              {"text": "a note"}, JOB75),
    ("POST", "/jobs/{job_id}/move"): ("form", "/jobs/{job}/move",
                                      {"version": 2, "unit_id": "{unit_b}"}, SUP75),
    ("POST", "/units/{unit_id}/status"): ("form", "/units/{unit}/status",
                                          {"version": 1, "status": "off_duty"}, SUP75),
    ("GET", "/my"): ("page", "/my", None, USERS),
    ("POST", "/my/position"): ("form", "/my/position", {"lat": 40.67, "lon": -73.88}, OFFICERS),
    ("GET", "/rules"): ("page", "/rules", None, USERS),
    ("POST", "/rules"): ("form", "/rules", RULE, CITYWIDE),
    ("GET", "/admin/quarantine"): ("page", "/admin/quarantine", None, {"admin"}),
    ("POST", "/admin/quarantine/{quarantine_id}/retry"): (
        "form", "/admin/quarantine/1/retry", {"raw": ""}, {"admin"}),
    ("GET", "/review"): ("page", "/review", None, OVERSIGHT),
    ("GET", "/review/{precinct}"): ("page", "/review/75", None, OVERSIGHT75),
    ("POST", "/review/{precinct}/{job_id}"): ("form", "/review/75/{job}", {
        "version": 2, "finding": "no_issue", "comment": "fine"}, SUP75),
    ("GET", "/policies"): ("page", "/policies", None, OVERSIGHT),
    ("POST", "/policies"): ("form", "/policies", {"scope": "75", "kind": "photo_before_close",
                                                  "enabled": "on"}, {"admin"}),
    ("GET", "/log"): ("page", "/log", None, OVERSIGHT),
    ("GET", "/log/{precinct}"): ("page", "/log/75", None, OVERSIGHT75),
    ("POST", "/log/{precinct}"): ("form", "/log/75", {"text": "tour began"}, SUP75),
    ("GET", "/log/{precinct}/print"): ("page", "/log/75/print", None, OVERSIGHT75),
    ("GET", "/qstat"): ("page", "/qstat", None, OVERSIGHT),
    ("GET", "/qstat/jobs"): ("page", "/qstat/jobs?precinct=75", None, OVERSIGHT75),
    ("GET", "/qstat.csv"): ("page", "/qstat.csv", None, OVERSIGHT),
    ("GET", "/wall/{precinct}"): ("page", "/wall/75", None, SEE75),
    ("GET", "/city"): ("page", "/city", None, OVERSIGHT),
    ("GET", "/healthz"): ("page", "/healthz", None, PUBLIC),
    ("GET", "/readyz"): ("page", "/readyz", None, PUBLIC),
    # metrics: to loopback and METRICS_TOKEN holders only; the test client is neither
    ("GET", "/metrics"): ("page", "/metrics", None, NOBODY),
    ("GET", "/vendor/{name}"): ("page", "/vendor/htmx.min.js", None, PUBLIC),
    # sockets (session cookie)
    ("WS", "/ws/board/{precinct}"): ("ws", "/ws/board/75", None, SEE75),
    ("WS", "/ws/wall/{precinct}"): ("ws", "/ws/wall/75", None, SEE75),
    ("WS", "/ws/my"): ("ws", "/ws/my", None, OFFICERS),
    ("WS", "/ws/city"): ("ws", "/ws/city", None, OVERSIGHT),
    ("WS", "/ws/review/{precinct}"): ("ws", "/ws/review/75", None, OVERSIGHT75),
    ("WS", "/ws/log/{precinct}"): ("ws", "/ws/log/75", None, OVERSIGHT75),
    # the JSON API (bearer token)
    ("GET", "/api/v1/precincts/{precinct}/board"): ("api", "/precincts/75/board", None, SEE75),
    ("GET", "/api/v1/precincts/{precinct}/units"): ("api", "/precincts/75/units", None, SEE75),
    ("POST", "/api/v1/jobs"): ("api", "/jobs", JOB_75, SUP75),
    ("GET", "/api/v1/jobs/{job_id}"): ("api", "/jobs/{job}", None, READ75),
    **{("POST", f"/api/v1/jobs/{{job_id}}/{name}"): ("api", f"/jobs/{{job}}/{name}", body, who)
       for name, (body, who) in JOB_ACTIONS.items()},
    ("GET", "/api/v1/me/queue"): ("api", "/me/queue", None, USERS),
    ("POST", "/api/v1/me/position"): ("api", "/me/position", {"lat": 40.67, "lon": -73.88},
                                      OFFICERS),
    ("POST", "/api/v1/units/{unit_id}/status"): ("api", "/units/{unit}/status",
                                                 {"version": 1, "status": "off_duty"}, SUP75),
    ("GET", "/api/v1/dispositions"): ("api", "/dispositions", None, USERS),
    ("GET", "/api/v1/rules"): ("api", "/rules", None, USERS),
    ("POST", "/api/v1/rules"): ("api", "/rules", RULE, CITYWIDE),
    ("GET", "/api/v1/policies"): ("api", "/policies", None, OVERSIGHT),
    ("PUT", "/api/v1/policies"): ("api", "/policies", POLICY, {"admin"}),
    ("GET", "/api/v1/qstat"): ("api", "/qstat", None, OVERSIGHT),
    ("GET", "/api/v1/openapi.json"): ("api", "/openapi.json", None, PUBLIC),
    # Open311 (api_key; reads without one are the public view)
    ("GET", "/open311/v2/services.{format}"): ("o311", "/services.json", None, PUBLIC),
    ("GET", "/open311/v2/services/{code}.{format}"): (
        "o311", "/services/noise-residential.json", None, PUBLIC),
    ("POST", "/open311/v2/requests.{format}"): ("o311", "/requests.json", {
        "service_code": "noise-residential", "lat": "{lat}", "long": "{lon}"}, SUP75),
    ("GET", "/open311/v2/requests.{format}"): ("o311", "/requests.json", None, PUBLIC),
    ("GET", "/open311/v2/requests/{id}.{format}"): ("o311", "/requests/{job}.json", None,
                                                    PUBLIC),
    ("GET", "/open311/v2/resolutions.{format}"): ("o311", "/resolutions.json", None,
                                                  USERS - {"wall75"}),
    ("GET", "/open311/v2/servicerequestupdates.{format}"): (
        "o311", "/servicerequestupdates.json", None, PUBLIC),
    # the caller's status page: the unguessable address is the only key (tests/web/test_caller)
    ("GET", "/r/{token}"): ("page", "/r/" + "A" * 43, None, PUBLIC),
    ("POST", "/r/{token}"): ("form", "/r/" + "A" * 43, {"satisfaction": "5"}, PUBLIC),
    **{(m, "/open311/v2/{rest:path}"): ("o311", "/nothing.json", None, NOBODY)
       for m in ("GET", "POST", "PUT", "DELETE")},
}


def app_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every route the app serves (WS for sockets); static mounts aside."""
    found: set[tuple[str, str]] = set()

    def walk(routes, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for r in routes:
            if isinstance(r, Mount):
                if getattr(r.app, "routes", None) is not None:
                    walk(r.app.routes, prefix + r.path)
            elif isinstance(r, WebSocketRoute):
                found.add(("WS", prefix + r.path))
            elif isinstance(r, Route):
                methods = r.methods or getattr(r.endpoint, "methods", None) or {"GET"}
                found.update((m, prefix + r.path) for m in methods if m != "HEAD")
    walk(app.routes, "")
    return found


def test_every_route_has_a_row(app) -> None:
    served = app_routes(app)
    assert served - set(MATRIX) == set(), "routes with no row in the access matrix"
    assert set(MATRIX) - served == set(), "rows for routes the app no longer has"


# -- calling each route as each person --------------------------------------------------------


def target(world: World) -> int:
    """A 75th job with a photo, an officer's photo and the caller's contact, on 75-A's stack
    (version 2).
    (Unit status changes go to 75-C, so 75-A stays available.)"""
    d = world.dispatch
    lat, lon = point_in(d.geo, "75")
    job = d.create_job(SYSTEM, NewJob("Noise - Residential", "Loud Music/Party", lat=lat,
                                      lon=lon, media=("https://311.example/p.jpg",),
                                      fields={"phone": "718-555-0100"}))["job_id"]
    d.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    with d.engine.begin() as conn:  # an officer's photo of it (closes attach them; here, data)
        conn.execute(evidence_photos.insert().values(
            id=str(job).rjust(43, "E"), job_id=job, n=0, content_type="image/png", size=8,
            data=b"\x89PNG\r\n\x1a\n", at=d.clock(), actor_id=None))
    return job


def fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if re.fullmatch(r"\{\w+\}", value):
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def session(app, who: str, tokens: dict[str, str]) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    """A browser of `who`: logged in (a wall through its token) and its CSRF token."""
    web = TestClient(app)
    if who == "wall75":
        assert web.get(f"/wall/75?token={tokens[who]}", follow_redirects=False).status_code == 303
    elif who != "anon":
        page = web.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = web.post("/login", data={"username": who, "password": PASSWORD, "csrf": csrf,
                                     "next": ""}, follow_redirects=False)
        assert r.status_code == 303, (who, r.status_code)
    page = web.get("/login")
    return web, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def got_through(kind: str, client: TestClient, web: TestClient, csrf: str, token: str | None,
                path: str, method: str, body: Any) -> bool | None:
    """True: let through; False: refused; None: a public route answered (any non-5xx)."""
    if kind == "ws":
        cookies = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
        try:
            with client.websocket_connect(path, headers={"cookie": cookies}) as ws:
                ws.receive_text()
                return True
        except WebSocketDisconnect as e:
            assert e.code in (4401, 4403), e.code
            return False
    if kind == "api":
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = web.request(method, "/api/v1" + path, json=body, headers=headers)
        assert r.status_code < 500, (path, r.text)
        return r.status_code not in (401, 403, 404)
    if kind == "o311":
        data = {**(body or {}), **({"api_key": token} if token else {})}
        r = (web.request(method, "/open311/v2" + path, data=data) if method != "GET"
             else web.get("/open311/v2" + path, params={"api_key": token} if token else {}))
        assert r.status_code < 500, (path, r.text)
        return r.status_code not in (401, 403, 404)
    if kind == "form":
        r = web.request(method, path, data={**(body or {}), "csrf": csrf},
                        follow_redirects=False)
    else:
        r = web.get(path, follow_redirects=False)
    assert r.status_code < 500, (path, r.status_code)
    to_login = r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    return not (to_login or r.status_code in (401, 403, 404))


def test_the_matrix_has_no_hole(app, client, world: World) -> None:
    """Every route as every person: through exactly when the table says so."""
    engine = world.dispatch.engine
    tokens = {who: auth.create_token(engine, who, "matrix") for who in PEOPLE if who != "anon"}
    sessions = {who: session(app, who, tokens) for who in PEOPLE}
    from board.intake.quarantine import quarantine_rows  # noqa: F401  (one row for the retry route)
    from board.storage.schema import quarantine
    from board.usecases.core import _utcnow
    with engine.begin() as conn:
        conn.execute(quarantine.insert().values(source="matrix", reason="test", raw={},
                                                created_at=_utcnow()))
    lat, lon = point_in(world.dispatch.geo, "75")
    wrong: list[str] = []
    job = target(world)
    last = ("POST", "/logout")  # it ends each person's session: after everything else
    for (method, _route), (kind, path, body, who_may) in sorted(
            MATRIX.items(), key=lambda item: (item[0] == last, item[0])):
        for who in PEOPLE:
            ids = {"job": job, "unit": world.unit("75-C"), "unit_b": world.unit("75-B"),
                   "lat": lat, "lon": lon}
            web, csrf = sessions[who]
            result = got_through(kind, client, web, csrf, tokens.get(who),
                                 fill(path, ids), "GET" if kind == "ws" else method,
                                 fill(body, ids) if body is not None else None)
            if result and method != "GET" and kind != "ws":
                job = target(world)  # a write went through: the next person gets a fresh job
            if who_may is PUBLIC:  # log-in, log-out, health, assets: answered, never a 5xx
                continue
            if result != (who in who_may):
                wrong.append(f"{method} {path} as {who}: "
                             f"{'let through' if result else 'refused'}")
    assert wrong == [], "\n".join(wrong)

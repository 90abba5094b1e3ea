"""The HTML pages: log-in, CSRF, the supervisor and officer flows by plain requests, and scope
on every route and form."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from board.storage.schema import events, jobs
from tests.conftest import PASSWORD, make_job


def login(client, username: str) -> str:  # type: ignore[no-untyped-def]
    """Log in; returns the session's CSRF token."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf,
                                    "next": ""}, follow_redirects=False)
    assert r.status_code == 303, r.text
    landing = client.get(r.headers["location"]).text
    return re.search(r'name="csrf-token" content="([^"]+)"', landing).group(1)


def job_row(engine, job_id: int):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()


def event_count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()


def test_login_required_and_wrong_password(world, client) -> None:
    r = client.get("/board/75", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": "sgt75", "password": "nope", "csrf": csrf})
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    r = client.post("/login", data={"username": "sgt75", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403


def test_login_lands_on_the_right_page(world, client) -> None:
    login(client, "off75a")
    assert client.get("/", follow_redirects=False).headers["location"] == "/my"


def test_form_without_csrf_is_refused(world, dispatch, client) -> None:
    job = make_job(dispatch, "75")
    login(client, "sgt75")
    r = client.post(f"/jobs/{job}/move", data={"version": 1, "unit_id": world.unit("75-A")})
    assert r.status_code == 403
    assert job_row(dispatch.engine, job).status == "new"


def test_supervisor_and_officer_by_plain_requests(world, dispatch, app) -> None:
    from starlette.testclient import TestClient

    job = make_job(dispatch, "75", media=("https://example.org/photo.jpg",))
    with TestClient(app) as sgt, TestClient(app) as off:
        csrf = login(sgt, "sgt75")
        board = sgt.get("/board/75").text
        assert f'id="job-{job}"' in board and "Assign to" in board
        r = sgt.post(f"/jobs/{job}/move", data={"csrf": csrf, "version": 1,
                                                "unit_id": world.unit("75-A")})
        assert r.status_code == 200  # followed back to the page, which shows the new state
        assert job_row(dispatch.engine, job).status == "assigned"

        ocsrf = login(off, "off75a")
        queue = off.get("/my").text
        assert f'id="job-{job}"' in queue and ">Acknowledge<" in queue
        assert '<small class="unit-status">Assigned</small>' in queue  # what the unit is doing
        for step, version in (("acknowledge", 2), ("en_route", 3), ("on_scene", 4)):
            r = off.post(f"/jobs/{job}/act/{step}", data={"csrf": ocsrf, "version": version})
            assert r.status_code == 200
        assert job_row(dispatch.engine, job).status == "on_scene"
        photo = off.get(f"/jobs/{job}/photos/0")
        assert photo.status_code == 200 and "https://example.org/photo.jpg" in photo.text
        r = off.post(f"/jobs/{job}/act/close", data={"csrf": ocsrf, "version": 5,
                                                     "disposition": "gone_on_arrival",
                                                     "note": "quiet on arrival"})
        row = job_row(dispatch.engine, job)
        assert row.status == "closed" and row.disposition == "gone_on_arrival"
        detail = sgt.get(f"/jobs/{job}").text
        assert "upon arrival those responsible for the condition were gone" in detail
        for kind in ("assign", "acknowledge", "en_route", "on_scene", "view_photo", "close"):
            assert f'data-kind="{kind}"' in detail


def test_stale_write_says_who_changed_it(world, dispatch, client) -> None:
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["city"], job, 1, world.unit("75-B"))
    csrf = login(client, "sgt75")
    r = client.post(f"/jobs/{job}/move", data={"csrf": csrf, "version": 1,
                                               "unit_id": world.unit("75-A")})
    assert "changed by CITY (assign)" in r.text
    assert job_row(dispatch.engine, job).unit_id == world.unit("75-B")


def test_hostile_text_is_escaped(world, dispatch, client) -> None:
    job = make_job(dispatch, "75")
    dispatch.note(world.actors["sgt75"], job, "<script>alert('x')</script>")
    login(client, "sgt75")
    page = client.get(f"/jobs/{job}").text
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


def test_bad_next_cannot_redirect_offsite(world, dispatch, client) -> None:
    job = make_job(dispatch, "75")
    csrf = login(client, "sgt75")
    r = client.post(f"/jobs/{job}/act/note", data={"csrf": csrf, "text": "hello",
                                                   "next": "//evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == f"/jobs/{job}"


# Every page and form of the 75th, tried by people of the 120th (and read-only people).
READS = ["/board/75", "/geo/75.json", "/jobs/{job}", "/jobs/{job}/photos/0"]
WRITES = [
    ("/jobs/{job}/move", {"version": 1, "unit_id": "{unit}"}),
    ("/jobs/{job}/act/hold", {"version": 1, "reason": "x"}),
    ("/jobs/{job}/act/admin_close", {"version": 1, "disposition": "duplicate"}),
    ("/jobs/{job}/act/priority", {"version": 1, "priority": 1}),
    ("/jobs/{job}/act/note", {"text": "x"}),
    ("/jobs/{job}/act/acknowledge", {"version": 1}),
    ("/jobs/{job}/act/close", {"version": 1, "disposition": "action_taken"}),
    ("/units/{unit}/status", {"version": 1, "status": "out_of_service", "reason": "x"}),
]


@pytest.mark.parametrize("username", ["sgt120", "off120"])
@pytest.mark.parametrize("path", READS)
def test_other_precinct_cannot_read(world, dispatch, client, username: str, path: str) -> None:
    job = make_job(dispatch, "75", media=("https://example.org/secret.jpg",))
    before = event_count(dispatch.engine)
    login(client, username)
    r = client.get(path.format(job=job))
    assert r.status_code == 403
    assert "1 TEST STREET" not in r.text and "secret.jpg" not in r.text
    assert event_count(dispatch.engine) == before  # no photo view recorded


@pytest.mark.parametrize("username", ["sgt120", "off120", "cmd", "off75b"])
@pytest.mark.parametrize(("path", "form"), WRITES)
def test_no_write_out_of_scope_or_role(world, dispatch, client, username: str, path: str,
                                       form: dict) -> None:
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    unit = world.unit("75-A")
    before = event_count(dispatch.engine)
    csrf = login(client, username)
    data = {k: str(v).format(job=job, unit=unit) for k, v in form.items()}
    data["version"] = data.get("version") and "2"
    r = client.post(path.format(job=job, unit=unit), data={**data, "csrf": csrf})
    assert r.status_code in (403, 422) or "Not saved" in r.text
    assert event_count(dispatch.engine) == before
    assert job_row(dispatch.engine, job).version == 2


def test_quarantine_page_is_for_admins(world, client) -> None:
    login(client, "sgt75")
    assert client.get("/admin/quarantine").status_code == 403


def test_precinct_supervisor_reads_rules_but_cannot_change_them(world, client) -> None:
    """Rules apply citywide: a precinct supervisor's post is refused and no form is offered
    (issue 10, defect 6)."""
    csrf = login(client, "sgt75")
    page = client.get("/rules")
    assert page.status_code == 200 and 'action="/rules"' not in page.text
    r = client.post("/rules", data={"csrf": csrf, "complaint_type": "Noise - Park",
                                    "priority": 1, "ack_minutes": 3, "arrive_minutes": 10,
                                    "close_minutes": 30})
    assert r.status_code == 403
    assert "Noise - Park" not in client.get("/rules").text


def test_citywide_supervisor_edits_a_priority_rule(world, dispatch, client) -> None:
    csrf = login(client, "city")
    r = client.post("/rules", data={"csrf": csrf, "complaint_type": "Noise - Park",
                                    "descriptor": "Loud Talking", "priority": 1,
                                    "ack_minutes": 3, "arrive_minutes": 10,
                                    "close_minutes": 30})
    assert r.status_code == 200 and "Noise - Park" in r.text
    job = make_job(dispatch, "75", complaint="Noise - Park", descriptor="Loud Talking")
    assert job_row(dispatch.engine, job).priority == 1
    bad = client.post("/rules", data={"csrf": csrf, "complaint_type": "X", "priority": 9,
                                      "ack_minutes": 3, "arrive_minutes": 1,
                                      "close_minutes": 30})
    assert "Not saved" in bad.text


def test_officer_cannot_edit_rules(world, client) -> None:
    csrf = login(client, "off75a")
    r = client.post("/rules", data={"csrf": csrf, "complaint_type": "Noise - Park",
                                    "priority": 1, "ack_minutes": 3, "arrive_minutes": 10,
                                    "close_minutes": 30})
    assert r.status_code == 403
    assert "Noise - Park" not in client.get("/rules").text


@pytest.mark.parametrize("path", ["/jobs/%C2%B2", "/jobs/99999999999999999999", "/jobs/0",
                                  "/jobs/1/photos/%C2%B2", "/jobs/1/photos/99999999999"])
def test_odd_ids_are_404_not_500(world, dispatch, client, path: str) -> None:
    make_job(dispatch, "75", media=("https://example.org/a.jpg",))
    login(client, "sgt75")
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(("path", "form"), [
    ("/jobs/{job}/move", {"version": 1, "unit_id": "99999999999999999999"}),
    ("/jobs/{job}/move", {"version": "²", "unit_id": "1"}),
    ("/jobs/{job}/act/priority", {"version": 1, "priority": "99999999999"}),
    ("/rules", {"complaint_type": "Noise - Park", "priority": 1, "ack_minutes": 1,
                "arrive_minutes": 2, "close_minutes": 1000000000000}),
    ("/rules", {"complaint_type": "N" * 500, "priority": 1, "ack_minutes": 1,
                "arrive_minutes": 2, "close_minutes": 3}),
])
def test_odd_numbers_in_forms_are_refused_not_500(world, dispatch, client, path: str,
                                                  form: dict) -> None:
    job = make_job(dispatch, "75")
    csrf = login(client, "city")
    r = client.post(path.format(job=job), data={**form, "csrf": csrf})
    assert r.status_code == 200 and "Not saved" in r.text
    assert job_row(dispatch.engine, job).version == 1
    assert make_job(dispatch, "75", complaint="Noise - Park")  # rules still work


def test_a_summons_count_has_a_ceiling(world, dispatch, client) -> None:
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    csrf = login(client, "off75a")
    r = client.post(f"/jobs/{job}/act/close", data={"csrf": csrf, "version": 2,
                                                    "disposition": "summons_issued",
                                                    "summons_count": "99999999999"})
    assert "Not saved" in r.text and job_row(dispatch.engine, job).status == "assigned"


def test_wall_display_session_cannot_open_job_details(world, dispatch, client) -> None:
    from board.auth.accounts import create_token

    job = make_job(dispatch, "75", media=("https://example.org/caller.jpg",))
    token = create_token(dispatch.engine, "wall75", "lobby")
    assert client.get(f"/wall/75?token={token}").status_code == 200
    r = client.get(f"/jobs/{job}")
    assert r.status_code == 403 and "caller.jpg" not in r.text


def test_citywide_supervisor_routes_an_unrouted_job(world, dispatch, client) -> None:
    from board.domain.access import SYSTEM
    from board.usecases import NewJob

    job = dispatch.create_job(SYSTEM, NewJob("Encampment", "N/A", address="SUBWAY STATION",
                                             lat=None, lon=None))["job_id"]
    csrf = login(client, "sgt75")
    assert client.get("/unrouted").status_code == 403
    client.cookies.clear()
    csrf = login(client, "city")
    page = client.get("/unrouted").text
    assert f'id="job-{job}"' in page and "SUBWAY STATION" in page
    r = client.post(f"/jobs/{job}/act/route", data={"csrf": csrf, "version": 1,
                                                    "precinct": "75", "next": "/unrouted"})
    assert r.status_code == 200 and "Every job is routed" in r.text
    row = job_row(dispatch.engine, job)
    assert (row.precinct, row.route_method, row.status) == ("75", "manual", "new")


def test_only_the_officers_own_pages_are_kept_offline(client, world, dispatch) -> None:
    """static/sw.js keeps a page only when the server marks it: the officer's queue and job
    pages, never a supervisor's screen."""
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    assert client.get("/sw.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/ping").status_code == 204
    login(client, "off75a")
    assert client.get("/my").headers.get("x-offline-shell") == "1"
    assert client.get(f"/jobs/{job}").headers.get("x-offline-shell") == "1"
    client.cookies.clear()
    login(client, "sgt75")
    assert "x-offline-shell" not in client.get(f"/jobs/{job}").headers

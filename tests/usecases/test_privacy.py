"""A caller's photos and contact details (issue 10, defect 1).

A job filed through Open311 with a photo and the caller's name, phone and email: no read (API,
job page, board, live fragment, Open311, timeline) carries the photo's address or the contact
details. The photo is seen only through the recorded view, the contact only through the
recorded reveal, and only by the job's supervisors and its own officer.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board.auth import accounts as auth
from board.storage.schema import events
from board.web.api import PREFIX
from tests.conftest import World, point_in
from tests.web.test_pages import login

PHOTO = "https://311.example/photos/secret-1.jpg"
# Each value long enough that no random token on a page (CSRF, CSP nonce) holds it by chance:
# "Ada" did, about one page in a few thousand.
CONTACT = {"first_name": "Adaline", "last_name": "Lovelace", "phone": "718-555-0142",
           "email": "ada@example.com"}
SECRETS = [PHOTO, "secret-1.jpg", *CONTACT.values()]


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def filed(client, world: World) -> int:
    """A 75th job from Open311 with a photo and contact details, on 75-A's stack."""
    key = auth.create_token(world.dispatch.engine, "admin", "open311")
    lat, lon = point_in(world.dispatch.geo, "75")
    r = client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": "blocked-driveway", "lat": str(lat), "long": str(lon),
        "description": "car across my driveway", "media_url": PHOTO, **CONTACT})
    assert r.status_code == 200, r.text
    job = int(r.json()[0]["service_request_id"])
    world.dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    return job


def api(client, world: World, user: str, method: str, path: str, body=None):  # type: ignore[no-untyped-def]
    token = auth.create_token(world.dispatch.engine, user, "privacy")
    return client.request(method, PREFIX + path, json=body,
                          headers={"Authorization": f"Bearer {token}"})


def kinds(world: World, job: int) -> list[tuple[str, str, dict]]:
    with world.dispatch.engine.connect() as conn:
        return [(e.kind, e.actor, e.payload) for e in conn.execute(
            sa.select(events).where(events.c.job_id == job).order_by(events.c.seq))]


@pytest.mark.parametrize("user", ["sgt75", "cmd", "off75a", "city", "admin"])
def test_no_read_carries_the_photo_or_the_contact(client, app, world: World, filed: int,
                                                  user: str) -> None:
    detail = api(client, world, user, "GET", f"/jobs/{filed}")
    assert detail.status_code == 200
    assert leaks(detail.text) == [] and detail.json()["photos"] == 1
    assert detail.json()["has_contact"] is True
    assert "description" in detail.json()["fields"]  # the caller's words are not private
    web = TestClient(app)
    login(web, user)
    for path in (f"/jobs/{filed}", "/board/75", "/my"):
        page = web.get(path)
        assert page.status_code in (200, 403), path
        assert leaks(page.text) == [], path
    key = auth.create_token(world.dispatch.engine, user, "o311")
    for params in ({"api_key": key}, {}):
        one = client.get(f"/open311/v2/requests/{filed}.json", params=params)
        many = client.get("/open311/v2/requests.json", params=params)
        assert leaks(one.text) == [] and leaks(many.text) == []
    [shown] = client.get(f"/open311/v2/requests/{filed}.json", params={"api_key": key}).json()
    assert shown["media_url"] in ("", f"http://testserver/jobs/{filed}/photos/0")


def test_a_photo_view_is_recorded_and_the_timeline_does_not_repeat_it(
        client, app, world: World, filed: int) -> None:
    officer = api(client, world, "off75a", "POST", f"/jobs/{filed}/view_photo", {"index": 0})
    assert officer.status_code == 200 and officer.json()["url"] == PHOTO
    assert kinds(world, filed)[-1] == ("view_photo", "OFF75A", {"index": 0})
    # the commander reads the timeline, and learns which photo was seen, not where it is
    timeline = api(client, world, "cmd", "GET", f"/jobs/{filed}")
    assert leaks(timeline.text) == [] and timeline.json()["timeline"][-1]["kind"] == "view_photo"
    cmd = TestClient(app)
    login(cmd, "cmd")
    assert leaks(cmd.get(f"/jobs/{filed}").text) == []


@pytest.mark.parametrize(("user", "allowed"), [
    ("sgt75", True), ("admin", True), ("off75a", True),  # supervisors and the job's officer
    ("cmd", False), ("off75b", False), ("sgt120", False), ("wall75", False),
])
def test_photo_page_records_every_view_or_refuses(app, world: World, filed: int, user: str,
                                                  allowed: bool) -> None:
    web = TestClient(app)
    if user == "wall75":
        web.cookies.clear()
    else:
        login(web, user)
    before = len(kinds(world, filed))
    page = web.get(f"/jobs/{filed}/photos/0", follow_redirects=False)
    if allowed:
        assert page.status_code == 200 and PHOTO in page.text
        assert kinds(world, filed)[-1][0] == "view_photo" and len(kinds(world, filed)) == before + 1
    else:
        assert page.status_code in (303, 403) and PHOTO not in page.text
        assert len(kinds(world, filed)) == before


@pytest.mark.parametrize(("user", "allowed"), [
    ("sgt75", True), ("city", True), ("admin", True), ("off75a", True),
    ("cmd", False), ("off75b", False), ("sgt120", False), ("off120", False), ("wall75", False),
])
def test_contact_reveal_by_api_is_for_those_who_need_it_and_recorded(
        client, world: World, filed: int, user: str, allowed: bool) -> None:
    before = kinds(world, filed)
    r = api(client, world, user, "POST", f"/jobs/{filed}/view_contact", {})
    if not allowed:
        assert r.status_code == 403 and leaks(r.text) == []
        assert kinds(world, filed) == before
        return
    assert r.status_code == 200, r.text
    assert r.json()["contact"] == CONTACT
    kind, actor, payload = kinds(world, filed)[-1]
    assert (kind, actor) == ("view_contact", world.actors[user].name)
    # the event says which details were seen, never the details
    assert payload == {"fields": sorted(CONTACT)} and leaks(str(payload)) == []
    assert leaks(r.json()["event"]["payload"].__repr__()) == []


def test_contact_reveal_on_the_job_page(app, world: World, filed: int) -> None:
    web = TestClient(app)
    csrf = login(web, "off75a")
    page = web.get(f"/jobs/{filed}")
    assert f'action="/jobs/{filed}/contact"' in page.text and leaks(page.text) == []
    assert web.post(f"/jobs/{filed}/contact", data={"csrf": "forged"}).status_code == 403
    shown = web.post(f"/jobs/{filed}/contact", data={"csrf": csrf})
    assert shown.status_code == 200
    assert all(v in shown.text for v in CONTACT.values()) and PHOTO not in shown.text
    assert kinds(world, filed)[-1][:2] == ("view_contact", "OFF75A")
    # reloading the page does not show them again: each reveal is its own recorded act
    assert leaks(web.get(f"/jobs/{filed}").text) == []
    cmd = TestClient(app)
    login(cmd, "cmd")
    page = cmd.get(f"/jobs/{filed}")
    assert "/contact" not in page.text and re.search(r"view contact", page.text)
    assert leaks(page.text) == []
    assert cmd.post(f"/jobs/{filed}/contact", data={"csrf": login(cmd, "cmd")}).status_code == 403


def test_a_photo_view_is_a_same_site_act_and_never_cached(app, world: World, filed: int) -> None:
    """Audit defect 10: a link or an <img> on another site must not open (and record) a
    photo view in a signed-in officer's name; what a view or a reveal shows is not kept by
    the browser or a proxy."""
    web = TestClient(app)
    csrf = login(web, "off75a")
    before = kinds(world, filed)
    for site in ("cross-site", "same-site"):  # same-site: another host of the same site
        r = web.get(f"/jobs/{filed}/photos/0", headers={"Sec-Fetch-Site": site})
        assert r.status_code == 403 and leaks(r.text) == [], site
    assert kinds(world, filed) == before
    for site in (None, "same-origin", "none"):  # an older browser, the app, the address bar
        r = web.get(f"/jobs/{filed}/photos/0",
                    headers={"Sec-Fetch-Site": site} if site else None)
        assert r.status_code == 200 and PHOTO in r.text, site
        assert "no-store" in r.headers["cache-control"]
    shown = web.post(f"/jobs/{filed}/contact", data={"csrf": csrf})
    assert shown.status_code == 200 and "no-store" in shown.headers["cache-control"]
    for path in ("view_photo", "view_contact"):
        body = {"index": 0} if path == "view_photo" else {}
        r = api(web, world, "off75a", "POST", f"/jobs/{filed}/{path}", body)
        assert r.status_code == 200 and "no-store" in r.headers["cache-control"], path

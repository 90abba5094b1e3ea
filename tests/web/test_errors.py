"""Every surface answers an error in its own form: JSON under /api/, GeoReport v2's error list
under /open311/ (JSON or XML), the app's page elsewhere. A server error never shows a
traceback and always names the request id that the log has it under."""

from __future__ import annotations

import logging
import re

import pytest
from starlette.testclient import TestClient

from board.web import api, open311, pages
from tests.conftest import PASSWORD


@pytest.fixture
def crashing(app, monkeypatch):  # type: ignore[no-untyped-def]
    """The app with a bug in one read of each surface; the test client shows the response
    instead of re-raising the error."""

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals: table jobs column caller_phone")

    monkeypatch.setattr(api.queries, "board", boom)
    monkeypatch.setattr(open311, "catalogue", boom)
    monkeypatch.setattr(pages.queries, "board", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _login(client, username: str) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303


def test_a_server_error_is_json_with_a_request_id_under_the_api(world, crashing, caplog):
    from board.auth import accounts as auth

    token = auth.create_token(world.dispatch.engine, "sgt75", "t")
    with caplog.at_level(logging.ERROR, logger="board.web.errors"):
        r = crashing.get("/api/v1/precincts/75/board",
                         headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "detail", "request_id"} and body["error"] == "server_error"
    assert body["request_id"] == r.headers["x-request-id"] and body["request_id"] in body["detail"]
    assert "secret internals" not in r.text and "Traceback" not in r.text
    # the log has the traceback under the same id
    [record] = [rec for rec in caplog.records if body["request_id"] in rec.getMessage()]
    assert record.exc_info and "secret internals" in str(record.exc_info[1])


def test_a_server_error_is_the_spec_error_list_under_open311(crashing):
    r = crashing.get("/open311/v2/services.json")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    [err] = r.json()
    assert err["code"] == 500 and r.headers["x-request-id"] in err["description"]
    assert "secret internals" not in r.text
    x = crashing.get("/open311/v2/services.xml")
    assert x.status_code == 500 and x.headers["content-type"].startswith("text/xml")
    assert "<errors><error><code>500</code>" in x.text and "secret" not in x.text


def test_a_server_error_is_the_app_page_with_a_way_back(world, crashing):
    _login(crashing, "sgt75")
    r = crashing.get("/board/75")
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in r.text and 'href="/"' in r.text
    assert r.headers["x-request-id"] in r.text
    assert 'class="topbar"' in r.text  # the app's own page (base.html), not a bare line
    assert "secret internals" not in r.text and "Traceback" not in r.text


def test_an_unknown_page_is_the_app_page_with_a_way_back(world, client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Not found" in r.text and 'href="/"' in r.text and 'class="topbar"' in r.text
    _login(client, "sgt75")
    r = client.get("/nope")
    assert r.status_code == 404 and "SGT75" in r.text  # the user's own header
    # a form token refused is a page too, not a bare line
    r = client.post("/jobs/1/move", data={"version": "1"})
    assert r.status_code == 403 and 'class="topbar"' in r.text


@pytest.mark.parametrize("path", ["/api/v1/precincts/%0A/units", "/api/v1/jobs/1%0A",
                                  "/api/v2/jobs", "/api/", "/api"])
def test_an_unknown_api_path_is_json(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "not_found"


@pytest.mark.parametrize("path", ["/open311/v2/requests/%0A.json", "/open311/v3/x.json",
                                  "/open311/v2/nothing.json"])
def test_an_unknown_open311_path_is_the_spec_error_list(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()[0]["code"] == 404


def test_a_client_request_id_is_kept_and_a_wild_one_replaced(client):
    assert client.get("/login", headers={"X-Request-ID": "abc-123"}).headers[
        "x-request-id"] == "abc-123"
    wild = client.get("/login", headers={"X-Request-ID": "<script>"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", wild)


def test_a_server_error_carries_the_security_headers_on_every_surface(world, crashing):
    """Audit defect 9: Starlette answers a 500 outside the app's middleware, so the error
    handler itself must send what every other response sends."""
    from board.auth import accounts as auth
    from board.web.browser_policy import HEADERS

    _login(crashing, "sgt75")
    bearer = {"Authorization": f"Bearer {auth.create_token(world.dispatch.engine, 'sgt75', 't')}"}
    for path in ("/board/75", "/open311/v2/services.json", "/api/v1/precincts/75/board"):
        r = crashing.get(path, headers=bearer if path.startswith("/api") else None)
        assert r.status_code == 500, path
        for name, value in HEADERS:
            assert r.headers.get(name.decode()) == value.decode(), (path, name)

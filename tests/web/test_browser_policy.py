"""Security headers and the session cookie (issue 10, "make trust checkable"): a CSP with no
inline script, no framing, nosniff, a referrer policy; the cookie Secure over HTTPS; and a real
browser running every page's scripts, map and socket under that policy without a violation."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from board.settings import ROOT
from board.web.browser_policy import CSP
from tests.conftest import make_job
from tests.web.test_pages import login

TEMPLATES = ROOT / "templates"
PAGES = ["/login", "/board/75", "/jobs/{job}", "/my", "/rules", "/city", "/unrouted",
         "/api/v1/openapi.json", "/open311/v2/services.json", "/static/board.css"]


def test_the_policy_allows_no_inline_script_and_no_framing() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["script-src"] == "'self'" and "unsafe" not in directives["script-src"]
    assert directives["default-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


def test_no_template_has_inline_script_or_handlers() -> None:
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"inline <script> in {path.name}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"an on* handler in {path.name}"
        assert not re.search(r"\sstyle\s*=", text), f"an inline style in {path.name}"
        assert "hx-on" not in text and "javascript:" not in text, path.name


@pytest.mark.parametrize("user", [None, "admin"])
def test_every_response_carries_the_headers(client, world, dispatch, user) -> None:
    job = make_job(dispatch, "75")
    if user:
        login(client, user)
    for path in PAGES:
        r = client.get(path.format(job=job), follow_redirects=False)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["referrer-policy"] == "same-origin", path


def test_session_cookie_is_secure_over_https_only(app, world) -> None:
    plain = TestClient(app, base_url="http://testserver")
    page = plain.get("/login")
    assert "board_session=" in page.headers["set-cookie"]
    assert "secure" not in page.headers["set-cookie"].lower()
    assert "httponly" in page.headers["set-cookie"].lower()
    tls = TestClient(app, base_url="https://testserver")
    page = tls.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = tls.post("/login", data={"username": "sgt75", "password": "correct horse 311",
                                 "csrf": csrf, "next": ""}, follow_redirects=False)
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


def test_pages_run_under_the_policy_in_a_browser(browser, world, dispatch, live_server) -> None:
    """Board (map, drag glue, socket), job page and wall: no CSP violation, the socket LIVE."""
    from board.auth import accounts as auth
    from tests.conftest import browser_login

    job = make_job(dispatch, "75", media=("https://311.example/p.jpg",))
    page = browser_login(browser, live_server.url, "sgt75", bypass_csp=False)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        for path in ("/board/75", f"/jobs/{job}"):
            page.goto(live_server.url + path)
            page.wait_for_selector("#live[data-state=live]", timeout=10_000)
        token = auth.create_token(dispatch.engine, "wall75", "lobby")
        wall = browser.new_context(bypass_csp=False).new_page()
        wall.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        wall.goto(f"{live_server.url}/wall/75?token={token}")
        assert wall.url == f"{live_server.url}/wall/75"  # the token is gone from the address
        wall.wait_for_selector("#live[data-state=live]", timeout=10_000)
        wall.context.close()
    finally:
        page.context.close()
    assert violations == []

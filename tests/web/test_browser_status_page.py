"""The caller's public status page in a phone's browser (390×844): readable without scrolling
sideways, answerable by touch, no serious or critical axe-core violation, and nothing refused
by the pages' Content-Security-Policy."""

from __future__ import annotations

import pytest

from board.caller.status import token_of
from tests.conftest import make_job
from tests.web.test_browser_a11y import PHONE, violations

pytestmark = pytest.mark.browser


def closed_job(world, dispatch) -> int:
    job_id = make_job(dispatch, "75", complaint="Blocked Driveway", descriptor="No Access")
    off = world.actors["off75a"]
    dispatch.assign(world.actors["sgt75"], job_id, 1, world.unit("75-A"))
    for v, step in enumerate((dispatch.acknowledge, dispatch.en_route, dispatch.on_scene), 2):
        step(off, job_id, v)
    dispatch.close(off, job_id, 5, "action_taken")
    return job_id


def test_status_page_on_a_phone(world, dispatch, live_server, browser, clock) -> None:
    job_id = closed_job(world, dispatch)
    url = f"{live_server.url}/r/{token_of(dispatch.engine, job_id)}"
    # the real CSP, enforced: anything it refuses shows up as a console error
    ctx = browser.new_context(**PHONE, bypass_csp=False)
    page = ctx.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    response = page.goto(url)
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == f"Service request {job_id}"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert page.locator("script").count() == 0
    # answer by touch: the labels are the targets, at least 44 px high
    box = page.get_by_label("Strongly agree").bounding_box()
    assert box is not None
    heights = page.evaluate("() => [...document.querySelectorAll('label.choice')]"
                            ".map((l) => l.getBoundingClientRect().height)")
    assert min(heights) >= 44
    page.get_by_label("Agree", exact=True).check()
    page.get_by_label("No", exact=True).check()
    with page.expect_navigation():
        page.get_by_role("button", name="Send my answer").tap()
    assert page.url.endswith("?answered=1"), page.locator("main").inner_text()
    assert "Thank you" in page.locator("main").inner_text()
    assert page.locator("form").count() == 0 and "Agree" in page.locator("dl").inner_text()
    assert refused == []
    ctx.close()
    # axe-core needs its script injected: a context that lets it in
    audit = browser.new_context(**PHONE).new_page()
    found = {}
    other = make_job(dispatch, "75")
    for name, path in (("answered", url), ("open", f"/r/{token_of(dispatch.engine, other)}")):
        audit.goto(path if path.startswith("http") else f"{live_server.url}{path}")
        found[name] = violations(audit)
    fresh = closed_job(world, dispatch)
    audit.goto(f"{live_server.url}/r/{token_of(dispatch.engine, fresh)}")
    found["survey"] = violations(audit)
    clock.advance(days=31)
    assert audit.goto(url).status == 410
    found["gone"] = violations(audit)
    assert found == {name: [] for name in found}
    audit.context.close()

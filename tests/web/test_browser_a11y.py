"""Keyboard and accessibility: axe-core (from npm, injected from node_modules) finds no
serious or critical violation on the board, the officer's queue, a job page, the wall and the
city page; a skip link leads to the queue; focus is visible.
"""

from __future__ import annotations

import pytest

from board.auth import accounts as auth
from board.settings import ROOT
from tests.conftest import browser_login, make_job

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
      const r = await axe.run(document, { resultTypes: ["violations"] });
      return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): `
                    + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | "));
    }""")
    return list(found)


@pytest.fixture
def jobs(world, dispatch):  # type: ignore[no-untyped-def]
    queued = make_job(dispatch, "75", media=("https://example.org/a.jpg",))
    working = make_job(dispatch, "75", complaint="Blocked Driveway", descriptor="No Access")
    dispatch.assign(world.actors["sgt75"], working, 1, world.unit("75-A"))
    closed = make_job(dispatch, "75")
    dispatch.admin_close(world.actors["sgt75"], closed, 1, "duplicate")
    return {"queued": queued, "working": working, "closed": closed}


def test_supervisor_pages_have_no_serious_violations(jobs, live_server, browser) -> None:
    sgt = browser_login(browser, live_server.url, "sgt75", viewport={"width": 1920, "height": 1080})
    found = {}
    for path in ("/board/75", f"/jobs/{jobs['queued']}", f"/jobs/{jobs['working']}",
                 f"/jobs/{jobs['closed']}", "/city"):
        sgt.goto(f"{live_server.url}{path}")
        sgt.wait_for_function("!window.boardLive || window.boardLive.state === 'live'")
        found[path] = violations(sgt)
        assert sgt.locator("h1").count() == 1, path  # every page says what it is
    assert found == {path: [] for path in found}
    sgt.context.close()


def test_officer_and_wall_have_no_serious_violations(jobs, dispatch, live_server,
                                                     browser) -> None:
    officer = browser_login(browser, live_server.url, "off75a", **PHONE)
    found = {}
    for path in ("/my", f"/jobs/{jobs['working']}"):
        officer.goto(f"{live_server.url}{path}")
        officer.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
        found[path] = violations(officer)
    officer.context.close()
    token = auth.create_token(dispatch.engine, "wall75", "lobby")
    wall = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    wall.goto(f"{live_server.url}/wall/75?token={token}")
    wall.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    found["/wall/75"] = violations(wall)
    wall.context.close()
    assert found == {path: [] for path in found}


def test_skip_link_focus_ring_and_labels(jobs, live_server, browser) -> None:
    sgt = browser_login(browser, live_server.url, "sgt75")
    sgt.goto(f"{live_server.url}/board/75")
    sgt.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    sgt.keyboard.press("Tab")
    skip = sgt.locator(":focus")
    assert skip.inner_text() == "Skip to the queue"
    ring = sgt.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")
    assert ring[0] != "none" and ring[1] >= 2
    sgt.keyboard.press("Enter")
    assert sgt.evaluate("document.activeElement.id") == "queue"
    # The next stop is in the queue, not one map marker after another.
    sgt.keyboard.press("Tab")
    assert sgt.evaluate("!!document.activeElement.closest('#queue')")
    assert sgt.locator("#map [tabindex='0'].leaflet-marker-icon, #map path[tabindex]").count() == 0
    # Every field says what it is.
    unlabelled = sgt.evaluate("""() => Array.from(document.querySelectorAll(
        "input:not([type=hidden]), select, textarea")).filter((f) => !f.labels.length
        && !f.getAttribute("aria-label")).map((f) => f.outerHTML)""")
    assert unlabelled == []
    sgt.context.close()


def test_the_keyboards_place_survives_a_live_update(jobs, world, dispatch, live_server,
                                                    browser) -> None:
    """A keyboard user who skipped to the queue keeps their place when a live update redraws
    it (here the queue's last job is assigned, so the whole list is swapped)."""
    sgt = browser_login(browser, live_server.url, "sgt75")
    sgt.goto(f"{live_server.url}/board/75")
    sgt.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    sgt.keyboard.press("Tab")
    sgt.keyboard.press("Enter")
    assert sgt.evaluate("document.activeElement.id") == "queue"
    dispatch.assign(world.actors["sgt75"], jobs["queued"], 1, world.unit("75-B"))
    sgt.locator("#queue .empty").wait_for()
    assert sgt.evaluate("document.activeElement.id") == "queue"
    sgt.keyboard.press("Tab")  # and the next stop is after the queue, not the page's top
    assert sgt.evaluate("!!(document.getElementById('queue').compareDocumentPosition("
                        "document.activeElement) & Node.DOCUMENT_POSITION_FOLLOWING)")
    sgt.context.close()

"""The handover report in Chromium: axe-core finds no serious or critical violation, on the
screen and in the print layout, and the print button is there for the outgoing sergeant."""

from __future__ import annotations

import pytest

from tests.accountability.test_handover import tour_of_events
from tests.conftest import browser_login
from tests.web.test_browser_a11y import violations

pytestmark = pytest.mark.browser


def test_handover_page_passes_axe(world, clock, live_server, browser) -> None:
    ids = tour_of_events(world, clock)
    page = browser_login(browser, live_server.url, "sgt75",
                         viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/handover/75")
    assert "Tour handover" in page.inner_text("h1")
    assert page.locator(f"a[href='/jobs/{ids['waiting']}']").count() >= 1
    assert page.locator("button[data-print]").is_visible()
    found = {"screen": violations(page)}
    page.emulate_media(media="print")
    assert not page.locator("button[data-print]").is_visible()  # .no-print
    found["print"] = violations(page)
    page.context.close()
    assert found == {"screen": [], "print": []}

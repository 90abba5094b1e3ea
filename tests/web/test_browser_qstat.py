"""A supervisor opens QSTAT, follows a figure to its jobs, reviews one, downloads the CSV.

Real Chromium driven by Playwright against the app on a socket, as the other browser tests.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.conftest import browser_login, make_job
from tests.qstat_helpers import add_history, utc

pytestmark = pytest.mark.browser

DAY = "from=2026-11-28&to=2026-11-29&precinct=75&by=tour"


def test_qstat_figure_to_jobs_to_review_and_csv(world, dispatch, clock, live_server,
                                                 browser) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    quick = make_job(dispatch, "75")  # 17:00 EST on 28 November: the evening tour
    clock.advance(minutes=1)
    dispatch.assign(sgt, quick, 1, world.unit("75-A"))
    clock.advance(minutes=2)
    dispatch.close(off, quick, 2, "action_taken")  # 2 minutes after assignment, no arrival
    add_history(dispatch, "75", utc("2026-11-28T14:00:00"), utc("2026-11-28T15:00:00"))

    page = browser_login(browser, live_server.url, "sgt75")
    page.goto(f"{live_server.url}/qstat?{DAY}")
    assert "QSTAT · 75 Pct" in page.inner_text("h1")
    assert page.locator("svg[aria-label='Jobs received per day']").count() == 1
    row = page.locator("#qstat-sheet tr[data-figure='closed_within_5_min_of_assignment']")
    link = row.locator("td a").first
    assert link.inner_text() == "1"
    link.click()
    page.wait_for_load_state("networkidle")
    assert "Closed within 5 min of assignment" in page.inner_text("h1")
    assert page.locator(f"a[href='/jobs/{quick}']").count() == 1

    page.click("a.to-review")
    page.wait_for_load_state("networkidle")
    item = page.locator(f"#review-{quick}")
    assert "Closed within 5 minutes of assignment" in item.inner_text()
    item.locator("input[name=finding][value=spoken_to]").check()
    item.locator("textarea[name=comment]").fill("Closed from the car; spoke to the officer.")
    item.locator("button", has_text="Record finding").click()
    page.wait_for_load_state("networkidle")
    assert page.locator(f"#review-{quick}").count() == 0

    page.goto(f"{live_server.url}/qstat?{DAY}")
    with page.expect_download() as got:
        page.locator("#qstat-groups a[download]").click()
    text = Path(got.value.path()).read_text(encoding="utf-8")
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {"day", "evening"}
    assert rows["evening"]["closed_within_5_min_of_assignment"] == "1"
    assert rows["day"]["jobs"] == "1" and rows["day"]["median_assign_min"] == ""
    page.context.close()


def test_qstat_pages_pass_axe_with_links_in_charts_and_no_data(world, dispatch, live_server,
                                                                browser) -> None:
    """The charts hold links (trend days, comparison precincts): no nested-interactive, no
    serious or critical violation, on the sheet, a drill-down page and the citywide sheet."""
    from tests.web.test_browser_a11y import violations

    add_history(dispatch, "75", utc("2026-11-28T14:00:00"), utc("2026-11-28T15:00:00"))
    add_history(dispatch, "75", utc("2026-11-28T16:00:00"), utc("2026-11-28T16:04:00"))
    open_job = make_job(dispatch, "120")  # the 120th: nothing closed, its median is no data
    assert open_job
    found = {}
    page = browser_login(browser, live_server.url, "sgt75",
                         viewport={"width": 1920, "height": 1080})
    for path in (f"/qstat?{DAY}", f"/qstat/jobs?{DAY}&figure=jobs"):
        page.goto(f"{live_server.url}{path}")
        if path.startswith("/qstat?"):
            assert page.locator("svg[role=group] a[aria-label]").count() >= 1
        found[path] = violations(page)
    page.context.close()
    city = browser_login(browser, live_server.url, "city",
                         viewport={"width": 1920, "height": 1080})
    city.goto(f"{live_server.url}/qstat?from=2026-11-28&to=2026-11-29")
    found["/qstat (city)"] = violations(city)
    assert "no data" in city.locator("figure.chart").last.inner_text()
    city.context.close()
    assert found == {path: [] for path in found}

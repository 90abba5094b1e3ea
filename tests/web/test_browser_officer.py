"""The officer's phone where phones are: link state, taps without a link, the page offline,
where to go, the unit's own status, and a refused close that keeps what was chosen.

Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the app on a socket.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from board.domain.access import SYSTEM
from board.storage.schema import jobs, units
from board.usecases import NewJob
from tests.conftest import browser_login, make_job, point_in, start_server, stop_server

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def on_unit(dispatch, world, callsign: str = "75-A", **job) -> int:  # type: ignore[no-untyped-def]
    job_id = make_job(dispatch, "75", **job)
    dispatch.assign(world.actors["sgt75"], job_id, 1, world.unit(callsign))
    return job_id


def status_of(dispatch, job_id: int) -> str:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()


def live_label(page) -> str:  # type: ignore[no-untyped-def]
    return page.inner_text("#live .live-label")


def officer_on_my(browser, url: str):  # type: ignore[no-untyped-def]
    page = browser_login(browser, url, "off75a", **PHONE)
    page.goto(f"{url}/my")
    page.wait_for_function("document.querySelector('#live').dataset.state === 'live'")
    return page


def test_link_state_says_offline_within_seconds(world, dispatch, live_server, browser) -> None:
    page = officer_on_my(browser, live_server.url)
    page.context.set_offline(True)
    started = time.monotonic()
    page.wait_for_function("document.querySelector('#live .live-label').textContent === 'OFFLINE'",
                           timeout=5000)
    assert time.monotonic() - started < 5
    page.context.set_offline(False)
    page.wait_for_function("document.querySelector('#live').dataset.state === 'live'",
                           timeout=10000)
    page.context.close()


def test_link_state_when_the_server_stops(world, dispatch, app, browser) -> None:
    server = start_server(app)
    try:
        page = officer_on_my(browser, server.url)
    finally:
        stop_server(server)
    page.wait_for_function(
        "document.querySelector('#live .live-label').textContent === 'RECONNECTING'", timeout=5000)
    page.context.close()


def test_a_tap_without_a_link_waits_and_is_sent(world, dispatch, live_server, browser) -> None:
    job = on_unit(dispatch, world)
    page = officer_on_my(browser, live_server.url)
    page.context.set_offline(True)
    page.wait_for_function("document.querySelector('#live').dataset.state === 'offline'")
    page.locator(f"#job-{job} button.big", has_text="Acknowledge").click()
    pending = page.locator("#pending li")
    pending.first.wait_for()
    assert f"Acknowledge · job #{job} (version 2)" in pending.first.inner_text()
    assert page.url.endswith("/my")  # not the browser's error page
    assert "Waiting for the link" in page.inner_text("#pending")
    assert status_of(dispatch, job) == "assigned"

    page.context.set_offline(False)
    page.locator("#flash .flash", has_text="Sent: Acknowledge").wait_for()
    assert status_of(dispatch, job) == "acknowledged"
    assert page.locator("#pending").is_hidden()
    page.locator(f"#job-{job} button.big", has_text="En route").wait_for()
    page.context.close()


def test_a_tap_without_a_link_is_refused_when_stale(world, dispatch, live_server,
                                                     browser) -> None:
    job = on_unit(dispatch, world)
    page = officer_on_my(browser, live_server.url)
    page.context.set_offline(True)
    page.wait_for_function("document.querySelector('#live').dataset.state === 'offline'")
    page.locator(f"#job-{job} button.big", has_text="Acknowledge").click()
    page.locator("#pending li").first.wait_for()
    dispatch.unassign(world.actors["sgt75"], job, 2, "sent elsewhere")  # meanwhile, at the desk

    page.context.set_offline(False)
    flash = page.locator("#flash .flash-conflict")
    flash.wait_for()
    assert f"job {job} was changed by SGT75 (unassign)" in flash.inner_text()
    assert status_of(dispatch, job) == "new"
    assert page.locator("#pending").is_hidden()
    page.context.close()


def test_the_queue_page_opens_without_a_link(world, dispatch, live_server, browser) -> None:
    job = on_unit(dispatch, world)
    page = officer_on_my(browser, live_server.url)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now under the service worker, which keeps this copy
    page.wait_for_function("!!navigator.serviceWorker.controller")
    page.wait_for_selector(f"#job-{job}")
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector(f"#job-{job}")
    assert "Acknowledge" in page.inner_text(f"#job-{job}")
    page.locator(f"#job-{job} .job-link").click()  # a job page never seen: still no error page
    page.wait_for_load_state()
    assert "No link" in page.inner_text("body") or f"#{job}" in page.inner_text("body")
    page.context.close()


def test_where_to_go(world, dispatch, live_server, browser) -> None:
    job = on_unit(dispatch, world)
    lat, lon = point_in(dispatch.geo, "75")
    bare = dispatch.create_job(SYSTEM, NewJob(
        "Illegal Parking", "Blocked Hydrant", lat=lat + 0.001, lon=lon,
        fields={"cross_street_1": "LINDEN BLVD", "cross_street_2": "HEGEMAN AVE"}))["job_id"]
    dispatch.assign(world.actors["sgt75"], bare, 1, world.unit("75-B"))
    nowhere = dispatch.create_job(SYSTEM, NewJob("Illegal Parking", "Blocked Hydrant", lat=lat,
                                                 lon=lon + 0.001))["job_id"]
    dispatch.assign(world.actors["sgt75"], nowhere, 1, world.unit("75-C"))

    page = officer_on_my(browser, live_server.url)
    where = page.locator(f"#where-{job}")
    assert "1 TEST STREET" in where.inner_text()
    link = where.locator("a.directions").get_attribute("href")
    assert link.startswith(f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}(")
    page.wait_for_selector(f"#where-{job} .job-map[data-ready='1']")
    box = page.locator(f"#where-{job} .job-map").bounding_box()
    assert box["height"] >= 150 and box["width"] >= 300
    assert page.locator(f"#where-{job} .job-map path").count() >= 3  # point, ring, precinct

    page.goto(f"{live_server.url}/jobs/{job}")  # the job page shows the same
    assert page.locator(".where-to a.directions").get_attribute("href") == link
    page.wait_for_selector(".where-to .job-map[data-ready='1']")
    page.context.close()

    sgt = browser_login(browser, live_server.url, "sgt75")
    sgt.goto(f"{live_server.url}/jobs/{bare}")
    assert "near LINDEN BLVD & HEGEMAN AVE" in sgt.inner_text(".where-to")
    sgt.goto(f"{live_server.url}/jobs/{nowhere}")
    assert f"{lat:.5f}, {lon + 0.001:.5f}" in sgt.inner_text(".where-to")
    sgt.context.close()


def test_officer_sets_the_units_status(world, dispatch, live_server, browser) -> None:
    page = officer_on_my(browser, live_server.url)
    sgt = browser_login(browser, live_server.url, "sgt75")
    sgt.goto(f"{live_server.url}/board/75")
    lane = sgt.locator(f"#unit-{world.unit('75-A')}")
    page.locator(".my-unit-status summary").click()
    page.locator(".unit-status-form button", has_text="Meal").click()
    page.locator("#my-queue h1 .unit-status", has_text="meal").wait_for()
    lane.locator(".unit-status", has_text="on meal").wait_for()

    page.locator(".unit-status-form button", has_text="Back in service").click()
    page.locator("#my-queue h1 .unit-status", has_text="Available").wait_for()
    page.locator(".my-unit-status summary").click()
    page.fill(".unit-status-form input[name=reason]:not([type=hidden])", "vehicle collision")
    page.locator(".unit-status-form button", has_text="Out of service").click()
    page.locator("#my-queue h1 .unit-status", has_text="vehicle collision").wait_for()
    with dispatch.engine.connect() as conn:
        row = conn.execute(sa.select(units).where(units.c.id == world.unit("75-A"))).first()
    assert (row.status, row.status_reason) == ("out_of_service", "vehicle collision")
    # Nothing on the phone reaches another unit.
    assert page.locator(f"form[action='/units/{world.unit('75-B')}/status']").count() == 0
    page.context.close()
    sgt.context.close()


def test_a_refused_close_keeps_what_was_chosen(world, dispatch, live_server, browser) -> None:
    job = on_unit(dispatch, world)
    page = officer_on_my(browser, live_server.url)
    card = page.locator(f"#job-{job}")
    card.locator(".close-early summary").click()
    card.locator("select[name=disposition]").select_option("summons_issued")
    card.locator("textarea[name=note]").fill("Owner moved the car after the summons")
    card.locator("button", has_text="Close job").click()
    page.locator("#flash .flash-error", has_text="summons").wait_for()
    page.wait_for_timeout(500)  # the socket's snapshot has landed: still kept
    card = page.locator(f"#job-{job}")
    assert card.locator("select[name=disposition]").input_value() == "summons_issued"
    note = card.locator("textarea[name=note]").input_value()
    assert note == "Owner moved the car after the summons"
    assert card.locator(".close-early").get_attribute("open") is not None
    card.locator("input[name=summons_count]").fill("1")
    card.locator("button", has_text="Close job").click()
    page.wait_for_selector(f"#job-{job}", state="detached")
    assert status_of(dispatch, job) == "closed"
    page.context.close()


def test_a_fold_the_officer_opened_stays_open_through_a_live_update(world, dispatch, live_server,
                                                                    browser) -> None:
    """A job pushed to the queue re-renders it: the status fold the officer had opened (nothing
    typed in it yet) is still open afterwards."""
    page = officer_on_my(browser, live_server.url)
    page.locator(".my-unit-status summary").click()
    assert page.evaluate("document.querySelector('.my-unit-status').open")
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    page.locator(f"#my-queue #job-{job}").wait_for()
    assert page.evaluate("document.querySelector('.my-unit-status').open")
    page.context.close()

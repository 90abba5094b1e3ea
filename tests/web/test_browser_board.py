"""The supervisor's board: a card dropped outside every lane goes back, a lost drag race says
who won, the queue uses the screen, "Assign to…" suggests a unit with its reason.

Real Chromium at 1920×1080 against the app on a socket.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from board.storage.schema import jobs
from tests.conftest import browser_login, make_job, point_in

pytestmark = pytest.mark.browser

DESK = {"viewport": {"width": 1920, "height": 1080}}


def unit_of(dispatch, job_id: int) -> int | None:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.unit_id).where(jobs.c.id == job_id)).scalar_one()


def centre(box):  # type: ignore[no-untyped-def]
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def start_drag(page, card) -> None:  # type: ignore[no-untyped-def]
    a = card.locator(".what").bounding_box()
    page.mouse.move(a["x"] + 10, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(a["x"] + 20, a["y"] + a["height"] / 2 + 10, steps=3)


def test_a_card_let_go_outside_every_lane_goes_back(world, dispatch, live_server,
                                                     browser) -> None:
    job = make_job(dispatch, "75")
    lane = world.unit("75-A")
    sgt = browser_login(browser, live_server.url, "sgt75", **DESK)
    sgt.goto(f"{live_server.url}/board/75")
    # the socket's first snapshot replaces the cards: drag one after it, not during it
    sgt.wait_for_function("window.boardLive && window.boardLive.updates >= 1")
    start_drag(sgt, sgt.locator(f"#job-{job}"))
    sgt.mouse.move(*centre(sgt.locator(f"#unit-{lane} .stack").bounding_box()), steps=12)
    # on over lane 75-A, and let go on the "Recently closed" column
    closed = sgt.locator(".closed-col").bounding_box()
    sgt.mouse.move(closed["x"] + closed["width"] / 2, closed["y"] + 120, steps=12)
    sgt.mouse.up()
    sgt.wait_for_timeout(1000)
    assert unit_of(dispatch, job) is None
    assert sgt.locator(f"#queue #job-{job}").count() == 1
    assert sgt.locator(f"#unit-{lane} #job-{job}").count() == 0
    sgt.context.close()


def test_a_lost_drag_race_says_who_won(world, dispatch, live_server, browser) -> None:
    job = make_job(dispatch, "75")
    a, b = world.unit("75-A"), world.unit("75-B")
    sgt = browser_login(browser, live_server.url, "sgt75", **DESK)
    sgt.goto(f"{live_server.url}/board/75")
    sgt.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    start_drag(sgt, sgt.locator(f"#job-{job}"))
    # While this sergeant's hand is moving, the citywide desk gives the job to 75-B.
    dispatch.assign(world.actors["city"], job, 1, b)
    sgt.wait_for_timeout(500)
    sgt.mouse.move(*centre(sgt.locator(f"#unit-{a} .stack").bounding_box()), steps=15)
    sgt.mouse.up()
    flash = sgt.locator("#flash .flash-conflict")
    flash.wait_for()
    assert f"Not saved: job {job} was changed by CITY (assign)" in flash.inner_text()
    sgt.wait_for_selector(f"#unit-{b} #job-{job}")  # the card shows where it really is
    assert sgt.locator(f"#unit-{a} #job-{job}").count() == 0
    assert unit_of(dispatch, job) == b
    # The banner answers that drag only: the next action clears it.
    other = make_job(dispatch, "75")
    sgt.wait_for_selector(f"#queue #job-{other}")
    start_drag(sgt, sgt.locator(f"#job-{other}"))
    assert sgt.locator("#flash .flash-conflict").count() == 0
    sgt.mouse.up()
    sgt.context.close()


def test_the_queue_uses_the_screen(world, dispatch, live_server, browser) -> None:
    queued = [make_job(dispatch, "75") for _ in range(18)]
    sgt = browser_login(browser, live_server.url, "sgt75", **DESK)
    sgt.goto(f"{live_server.url}/board/75")
    seen = sgt.evaluate("""() => Array.from(document.querySelectorAll('#queue .job-card'))
        .filter((c) => c.getBoundingClientRect().top >= 0
                       && c.getBoundingClientRect().bottom <= innerHeight).length""")
    assert seen >= 15, seen
    assert len(queued) == 18
    # The lane's out-of-service controls wait behind its menu.
    lane = sgt.locator(f"#unit-{world.unit('75-A')}")
    assert not lane.locator("input[name=reason]:not([type=hidden])").is_visible()
    lane.locator(".lane-menu summary").click()
    lane.locator("input[name=reason]:not([type=hidden])").fill("vehicle")
    lane.locator("button", has_text="Out of service").click()
    lane.locator(".unit-status", has_text="out of service: vehicle").wait_for()
    sgt.context.close()


def test_assign_to_suggests_a_unit_with_its_reason(world, dispatch, live_server,
                                                   browser) -> None:
    lat, lon = point_in(dispatch.geo, "75")
    job = make_job(dispatch, "75")
    busy = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], busy, 1, world.unit("75-A"))  # 75-A has a job
    dispatch.unit_position(world.actors["off75b"], lat + 0.05, lon)  # 75-B free, far
    dispatch.unit_position(world.actors["off75a"], lat, lon)  # 75-A busy, right there
    sgt = browser_login(browser, live_server.url, "sgt75", **DESK)
    sgt.goto(f"{live_server.url}/board/75")
    sgt.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    sgt.locator(f"#job-{job} .move-job summary").click()
    options = sgt.locator(f"#job-{job} .assign-to select option[data-unit]")
    sgt.wait_for_function(f"document.querySelectorAll('#job-{job} option[data-unit]').length === 3")
    texts = [options.nth(i).inner_text() for i in range(options.count())]
    assert texts[0].startswith("75-B (suggested) — free")
    assert "5.6 km" in texts[0]
    assert texts[1].startswith("75-C — free")  # free, no known position
    assert texts[2].startswith("75-A — 1 job stacked") and "0.0 km" in texts[2]
    sgt.context.close()


def test_related_complaints_linked_and_worked_together(world, dispatch, live_server,
                                                       browser) -> None:
    from board.domain.access import SYSTEM
    from board.usecases import NewJob

    lat, lon = point_in(dispatch.geo, "75")
    calls = [dispatch.create_job(SYSTEM, NewJob("Noise - Residential", "Loud Music/Party",
                                                address=address, lat=lat, lon=lon))["job_id"]
             for address in ("12 SHEPHERD AVE", "12 Shepherd Ave", "14 SHEPHERD AVE")]
    first, second, third = calls
    sgt = browser_login(browser, live_server.url, "sgt75", **DESK)
    sgt.goto(f"{live_server.url}/board/75")
    assert f"possibly the same as #{first}" in sgt.inner_text(f"#job-{second}")
    assert f"possibly the same as #{first}" in sgt.inner_text(f"#job-{third}")  # same spot
    for job in (second, third):
        sgt.goto(f"{live_server.url}/jobs/{job}")
        assert sgt.input_value(f"#related-{job} input[name=lead_id]") == str(first)
        with sgt.expect_navigation():
            sgt.locator(f"#related-{job} button", has_text="Link").click()
        sgt.locator(f"#related-{job}", has_text=f"Incident #{first}").wait_for()
    sgt.goto(f"{live_server.url}/jobs/{first}")
    assert f"Incident #{first}" in sgt.inner_text(".related")
    sgt.select_option(".related select[name=unit_id]", str(world.unit("75-A")))
    with sgt.expect_navigation():
        sgt.locator(".related button", has_text="Assign together").click()
    sgt.locator(".related", has_text="75-A").wait_for()
    assert {unit_of(dispatch, j) for j in calls} == {world.unit("75-A")}
    sgt.goto(f"{live_server.url}/board/75")
    assert f"incident #{first}" in sgt.inner_text(f"#unit-{world.unit('75-A')}")
    sgt.context.close()

    officer = browser_login(browser, live_server.url, "off75a",
                            viewport={"width": 390, "height": 844}, is_mobile=True)
    officer.goto(f"{live_server.url}/my")
    top = officer.locator(f"#job-{first}")
    top.locator(".close-early summary").click()
    top.locator("select[name=disposition]").select_option("action_taken")
    top.locator("input[name=together]").check()
    top.locator("button", has_text="Close job").click()
    officer.locator("#my-queue .empty", has_text="No jobs assigned").wait_for()
    with dispatch.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.status, jobs.c.resolution)
                            .where(jobs.c.id.in_(calls))).all()
    assert [r.status for r in rows] == ["closed"] * 3 and all(r.resolution for r in rows)
    officer.context.close()


def test_the_job_page_suggests_units_in_the_boards_order(world, dispatch, live_server,
                                                         browser) -> None:
    lat, lon = point_in(dispatch.geo, "75")
    job = make_job(dispatch, "75")
    busy = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], busy, 1, world.unit("75-A"))
    dispatch.unit_position(world.actors["off75b"], lat + 0.05, lon)
    sgt = browser_login(browser, live_server.url, "sgt75", **DESK)
    sgt.goto(f"{live_server.url}/jobs/{job}")
    options = sgt.locator(".act-assign select option[data-unit]")
    sgt.wait_for_function("document.querySelectorAll('.act-assign option[data-unit]').length === 3")
    texts = [options.nth(i).inner_text() for i in range(options.count())]
    assert texts[0].startswith("75-B (suggested) — free")
    assert texts[1].startswith("75-C — free") and texts[2].startswith("75-A — 1 job stacked")
    assert sgt.locator(".act-assign select option").count() == 4  # "choose a unit" + 3, once
    sgt.context.close()


def test_a_refusal_is_said_beside_the_kept_form(world, dispatch, live_server, browser) -> None:
    """Not only at the top of a long page: next to the form, which has the cursor."""
    job = make_job(dispatch, "75")
    sgt = browser_login(browser, live_server.url, "sgt75", viewport={"width": 390, "height": 844})
    sgt.goto(f"{live_server.url}/jobs/{job}")
    sgt.fill(".note-form textarea", "   ")
    sgt.locator(".note-form button").click()
    beside = sgt.locator('.note-form .beside-form[role="alert"]')
    beside.wait_for()
    assert "Not saved" in beside.inner_text() and "text:" not in beside.inner_text()
    assert sgt.evaluate("document.activeElement.name") == "text"
    box = beside.bounding_box()
    assert 0 <= box["y"] < 844  # in view
    sgt.context.close()

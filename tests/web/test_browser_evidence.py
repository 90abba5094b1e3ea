"""The phone's proof of presence and evidence in real Chromium at 390×844: the one-shot position
asked for at On scene (permission granted, a position set in the browser), the close photo from
a file (with Exif GPS that must not survive), the supervisor's recorded view of it, and axe-core
on the phone page with the new controls."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from board.storage.schema import events, evidence_photos, jobs
from board.usecases import Dispatch
from tests.conftest import browser_login, make_job
from tests.photos import GPS_MARK, with_exif
from tests.web.test_browser_a11y import violations

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
METRE = 1 / 111_195  # of latitude, in degrees


@pytest.fixture
def dispatch(engine, geo, clock) -> Dispatch:  # type: ignore[no-untyped-def]
    """The department's default: the phone is asked for a position (ARRIVAL_POSITION=ask)."""
    return Dispatch(engine, geo, clock=clock, arrival_position="ask")


def job_en_route(dispatch, world, status: str = "en_route") -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    job = make_job(dispatch, "75")
    off = world.actors["off75a"]
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    dispatch.acknowledge(off, job, 2)
    dispatch.en_route(off, job, 3)
    with dispatch.engine.connect() as conn:
        row = conn.execute(sa.select(jobs.c.lat, jobs.c.lon).where(jobs.c.id == job)).one()
    if status == "on_scene":
        from board.domain.presence import Fix

        dispatch.on_scene(off, job, 4, Fix(row.lat, row.lon, 5))
    return job, row.lat, row.lon


def phone(browser, url: str, lat: float | None = None, lon: float | None = None):  # type: ignore[no-untyped-def]
    where = {} if lat is None else {"geolocation": {"latitude": lat, "longitude": lon,
                                                    "accuracy": 10},
                                    "permissions": ["geolocation"]}
    page = browser_login(browser, url, "off75a", **PHONE, **where)
    page.goto(f"{url}/my")
    page.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    return page


def last_payload(dispatch, job: int, kind: str) -> dict:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        return conn.execute(sa.select(events.c.payload).where(
            events.c.job_id == job, events.c.kind == kind).order_by(events.c.seq.desc())
        ).scalars().first()


def test_on_scene_carries_the_phones_position(world, dispatch, live_server, browser) -> None:
    job, lat, lon = job_en_route(dispatch, world)
    page = phone(browser, live_server.url, lat + 35 * METRE, lon)
    page.locator(f"#job-{job} button.big", has_text="On scene").click()
    page.locator(f"#job-{job} button", has_text="Close job").wait_for()
    p = last_payload(dispatch, job, "on_scene")
    assert (p["distance_m"], p["accuracy_m"], p["confirmed"]) == (35, 10, True)
    page.goto(f"{live_server.url}/jobs/{job}")
    assert "on scene confirmed 35 m away (±10 m)" in page.inner_text(".timeline")
    page.context.close()


def test_a_tap_without_a_link_keeps_its_position(world, dispatch, live_server,
                                                 browser) -> None:
    job, lat, lon = job_en_route(dispatch, world)
    page = phone(browser, live_server.url, lat + 60 * METRE, lon)
    page.context.set_offline(True)
    page.wait_for_function("document.querySelector('#live').dataset.state === 'offline'")
    page.locator(f"#job-{job} button.big", has_text="On scene").click()
    page.locator("#pending li").first.wait_for()
    assert last_payload(dispatch, job, "on_scene") is None  # still waiting on the phone
    page.context.set_offline(False)
    page.locator("#flash .flash", has_text="Sent: On scene").wait_for()
    p = last_payload(dispatch, job, "on_scene")
    assert (p["distance_m"], p["confirmed"]) == (60, True)
    page.context.close()


def test_no_permission_sends_the_step_without_a_position(world, dispatch, live_server,
                                                         browser) -> None:
    job, _, _ = job_en_route(dispatch, world)
    page = phone(browser, live_server.url)  # location not allowed for the board
    page.locator(f"#job-{job} button.big", has_text="On scene").click()
    page.locator(f"#job-{job} button", has_text="Close job").wait_for(timeout=15000)
    p = last_payload(dispatch, job, "on_scene")
    assert p["confirmed"] is False and "distance_m" not in p
    page.goto(f"{live_server.url}/jobs/{job}")
    assert "on scene, no position given" in page.inner_text(".timeline")
    page.context.close()


def test_a_close_photo_from_a_file_loses_its_location(world, dispatch, live_server,
                                                      browser) -> None:
    job, lat, lon = job_en_route(dispatch, world, "on_scene")
    page = phone(browser, live_server.url, lat, lon)
    drawn = page.evaluate("""() => { const c = document.createElement('canvas');
        c.width = 24; c.height = 16; const x = c.getContext('2d');
        x.fillStyle = '#2a6'; x.fillRect(0, 0, 24, 16);
        return c.toDataURL('image/jpeg', 0.8).split(',')[1]; }""")
    photo = with_exif(base64.b64decode(drawn))
    assert GPS_MARK in photo
    card = page.locator(f"#job-{job}")
    card.locator("select[name=disposition]").select_option("action_taken")
    card.locator("input[name=photos]").set_input_files(
        files=[{"name": "IMG_2041.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    card.locator("button", has_text="Close job").click()
    page.wait_for_selector(f"#job-{job}", state="detached")
    with dispatch.engine.connect() as conn:
        kept = conn.execute(sa.select(evidence_photos.c.data, evidence_photos.c.content_type)
                            .where(evidence_photos.c.job_id == job)).one()
    assert kept.content_type == "image/jpeg" and GPS_MARK not in bytes(kept.data)
    p = last_payload(dispatch, job, "close")
    assert p["evidence"] == [0] and p["confirmed"] is True
    page.context.close()

    sgt = browser_login(browser, live_server.url, "sgt75")
    sgt.goto(f"{live_server.url}/jobs/{job}")
    sgt.locator(".timeline a", has_text="photo 1").click()
    img = sgt.locator("img.photo")
    img.wait_for()
    assert img.get_attribute("src").startswith("data:image/jpeg;base64,")
    sgt.wait_for_function("document.querySelector('img.photo').complete")
    size = sgt.evaluate("() => { const i = document.querySelector('img.photo');"
                        " return [i.naturalWidth, i.naturalHeight]; }")
    assert size == [16, 24]  # decodes after stripping, and the kept orientation (6) turns it
    assert last_payload(dispatch, job, "view_evidence") == {"n": 0}
    sgt.context.close()


def test_the_phone_page_with_the_new_controls_passes_axe(world, dispatch, live_server,
                                                         browser) -> None:
    job_en_route(dispatch, world)
    job_en_route(dispatch, world, "on_scene")
    page = phone(browser, live_server.url, 40.67, -73.88)
    page.locator("form[data-position] input[name=photos]").first.wait_for(state="attached")
    assert page.locator('form[data-position="ask"]').count() >= 2  # on scene and close
    assert violations(page) == []
    page.context.close()

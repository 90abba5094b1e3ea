"""The screenshots in the README and docs/img/ are taken here, from the real 311 hour on a real
board in Chromium, so they show what the code draws today (never made by hand).

Each test also checks what its picture must show, so a picture of a broken page fails the run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from board.intake import files
from board.intake.pipeline import Intake
from board.settings import DEMO_HOUR, ROOT
from board.storage.schema import jobs
from tests.conftest import Clock, browser_login

pytestmark = pytest.mark.browser

IMG = ROOT / "docs" / "img"


def _open_jobs_of(dispatch, precinct: str, limit: int) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.id, jobs.c.version)
                            .where(jobs.c.precinct == precinct, jobs.c.status == "new")
                            .order_by(jobs.c.id).limit(limit)).all()
    return [(r.id, r.version) for r in rows]


@pytest.fixture
def clock() -> Clock:
    """The real time: the pictures show ages as a desk would see them."""
    real = Clock()
    real.now = datetime.now(UTC)
    return real


@pytest.fixture
def tour(world, dispatch):  # type: ignore[no-untyped-def]
    """The real hour as jobs arriving now (as `make run` shows it), two of the 75th's on 75-A."""
    # as the demo does: every row a job to dispatch, on today's timeline
    Intake(dispatch, history=False, created_at=lambda req: None).feed(files.read_rows(DEMO_HOUR))
    sgt = world.actors["sgt75"]
    assigned = _open_jobs_of(dispatch, "75", 2)
    for job_id, version in assigned:
        dispatch.assign(sgt, job_id, version, world.unit("75-A"))
    return [job_id for job_id, _ in assigned]


def test_the_board_screenshot_shows_the_75th(world, dispatch, live_server, browser,
                                             tour) -> None:
    page = browser_login(browser, live_server.url, "sgt75",
                         viewport={"width": 1920, "height": 1080})
    page.goto(f"{live_server.url}/board/75")
    page.wait_for_function("window.boardLive && window.boardLive.updates >= 1")
    assert page.locator("#queue .job-card").count() >= 5
    for job_id in tour:
        assert page.locator(f"#unit-{world.unit('75-A')} #job-{job_id}").count() == 1
    assert page.locator(".leaflet-marker-icon, .leaflet-interactive").count() > 0
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / "board.png"))
    page.context.close()


def test_the_phone_screenshot_shows_the_units_queue(world, dispatch, live_server, browser,
                                                    tour) -> None:
    page = browser_login(browser, live_server.url, "off75a",
                         viewport={"width": 390, "height": 844}, is_mobile=True,
                         has_touch=True)
    page.goto(f"{live_server.url}/my")
    for job_id in tour:
        assert page.locator(f"#my-queue a[href='/jobs/{job_id}']").count() >= 1
    IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMG / "phone.png"))
    page.context.close()

"""The officer's phone when the link comes and goes: a waiting tap is never lost nor reported
sent when it was not (issue 19, defect 1), the kept pages never show one user's screen to the
next (issue 19, defect 2), and a waiting tap shows on its card, is not queued twice and is never
reported as a conflict with itself (issue 17, item 5).

Real Chromium (Debian's /usr/bin/chromium) driven by Playwright, at a phone's 390×844.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.storage.schema import events
from tests.conftest import PASSWORD, browser_login
from tests.web.test_browser_officer import PHONE, on_unit, status_of

pytestmark = pytest.mark.browser


def signed_in(browser, url: str, username: str = "off75a", **context):  # type: ignore[no-untyped-def]
    page = browser_login(browser, url, username, **PHONE, **context)
    page.goto(f"{url}/my")
    page.wait_for_function("document.querySelector('#live').dataset.state === 'live'")
    return page


def go_offline(page) -> None:  # type: ignore[no-untyped-def]
    page.context.set_offline(True)
    page.wait_for_function("document.querySelector('#live').dataset.state === 'offline'")


def sign_in(page, url: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/login?next=/my")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/my")


def under_service_worker(page) -> None:  # type: ignore[no-untyped-def]
    """The page is controlled by the officer's service worker (so it keeps what it fetches)."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    page.wait_for_function("!!navigator.serviceWorker.controller")


def kinds(dispatch, job: int) -> list[str]:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        return list(conn.execute(sa.select(events.c.kind).where(events.c.job_id == job)
                                 .order_by(events.c.seq)).scalars())


# -- issue 19, defect 1: a waiting tap whose session ended meanwhile -----------------------------


def test_a_waiting_tap_is_kept_when_the_session_ended_meanwhile(world, dispatch, live_server,
                                                                browser) -> None:
    """Offline, the officer taps En route; the session ends meanwhile (user disabled and
    enabled again). On reconnect the phone says it was not sent and why, keeps the tap, and
    sends it once the officer signs in again."""
    job = on_unit(dispatch, world)
    dispatch.acknowledge(world.actors["off75a"], job, 2)
    page = signed_in(browser, live_server.url)
    go_offline(page)
    page.locator(f"#job-{job} button.big", has_text="En route").click()
    page.locator("#pending li").first.wait_for()
    auth.disable_user(dispatch.engine, "off75a")
    auth.disable_user(dispatch.engine, "off75a", disabled=False)

    page.context.set_offline(False)
    # Said on the queue page at once; then the refused socket takes the phone to the log-in
    # page, which says it again.
    page.get_by_text("Not sent: you were signed out").first.wait_for()
    page.wait_for_url(lambda url: "/login" in url)
    note = page.locator("[data-offline-waiting]")
    note.wait_for()
    assert note.inner_text() == ("Not sent: you were signed out — sign in to send 1 waiting "
                                 "step.")
    assert len(page.evaluate("JSON.parse(localStorage.getItem('board.pending'))")) == 1
    assert status_of(dispatch, job) == "acknowledged"
    assert kinds(dispatch, job).count("en_route") == 0

    sign_in(page, live_server.url, "off75a")
    page.locator("#flash .flash", has_text=f"Sent: En route · job #{job}").wait_for()
    page.locator("#pending").wait_for(state="hidden")
    assert status_of(dispatch, job) == "en_route"
    assert kinds(dispatch, job).count("en_route") == 1
    page.context.close()


def test_a_waiting_tap_is_not_sent_by_the_next_user(world, dispatch, live_server,
                                                    browser) -> None:
    """A tap waits for the officer who made it: the partner on the same unit signing in on the
    same phone neither sends it (it would be recorded as theirs) nor sees it."""
    auth.add_user(dispatch.engine, "partner", PASSWORD, "officer", "75", "PARTNER", "75-A")
    job = on_unit(dispatch, world)
    page = signed_in(browser, live_server.url)
    go_offline(page)
    page.locator(f"#job-{job} button.big", has_text="Acknowledge").click()
    page.locator("#pending li").first.wait_for()
    page.context.clear_cookies()  # the session is gone, as a timeout or revocation leaves it
    page.context.set_offline(False)

    sign_in(page, live_server.url, "partner")
    page.wait_for_function("document.querySelector('#live').dataset.state === 'live'")
    assert status_of(dispatch, job) == "assigned"
    assert page.locator("#pending").is_hidden()
    assert f"job #{job}" not in page.inner_text("#flash")
    assert page.evaluate("localStorage.getItem('board.pending')") in (None, "[]")
    page.context.close()


# -- issue 19, defect 2: the kept pages are one user's ------------------------------------------


def kept_job_page(browser, url: str, job: int):  # type: ignore[no-untyped-def]
    """off75a's phone, under the service worker, having opened /my and the job's page."""
    page = signed_in(browser, url)
    under_service_worker(page)
    page.goto(f"{url}/jobs/{job}")
    page.wait_for_selector(".where-to")
    assert "OFF75A" in page.inner_text("header")
    return page


def test_the_next_user_never_sees_the_last_ones_kept_page(world, dispatch, live_server,
                                                          browser) -> None:
    """officer 75a browses /my and a job; the cookies are cleared without the logout form;
    officer 120 signs in on the same browser, goes offline and opens the job: not 75a's copy
    (online, officer 120 gets 403 for it)."""
    job = on_unit(dispatch, world)
    page = kept_job_page(browser, live_server.url, job)
    page.context.clear_cookies()
    sign_in(page, live_server.url, "off120")
    go_offline(page)
    page.goto(f"{live_server.url}/jobs/{job}")
    body = page.inner_text("body")
    assert "OFF75A" not in body and f"#{job}" not in body
    assert "No link" in body
    page.goto(f"{live_server.url}/my")  # the queue kept offline is off120's own
    assert "OFF120" in page.inner_text("header") and "OFF75A" not in page.inner_text("body")
    page.context.close()


def test_a_session_that_ended_leaves_no_kept_page(world, dispatch, live_server,
                                                  browser) -> None:
    """Cookies cleared (nobody signed in yet), then no link: no kept page is shown."""
    job = on_unit(dispatch, world)
    page = kept_job_page(browser, live_server.url, job)
    page.context.clear_cookies()
    page.context.set_offline(True)
    for path in (f"/jobs/{job}", "/my"):
        page.goto(f"{live_server.url}{path}")
        body = page.inner_text("body")
        assert "OFF75A" not in body and f"#{job}" not in body
        assert "No link" in body
    page.context.close()


def test_a_revoked_session_leaves_no_kept_page(world, dispatch, live_server, browser) -> None:
    """The session is revoked at the server (user disabled); the phone's next page is the
    log-in page; offline afterwards, nothing of the officer's is shown."""
    job = on_unit(dispatch, world)
    page = kept_job_page(browser, live_server.url, job)
    auth.disable_user(dispatch.engine, "off75a")
    page.goto(f"{live_server.url}/my")
    page.wait_for_selector("form[action='/login']")
    page.context.set_offline(True)
    page.goto(f"{live_server.url}/jobs/{job}")
    body = page.inner_text("body")
    assert "OFF75A" not in body and f"#{job}" not in body
    page.context.close()


def test_the_same_user_still_gets_the_kept_page(world, dispatch, live_server, browser) -> None:
    """The officer's own pages still open without a link (what the cache is for)."""
    job = on_unit(dispatch, world)
    page = kept_job_page(browser, live_server.url, job)
    page.context.set_offline(True)
    page.goto(f"{live_server.url}/jobs/{job}")
    assert "OFF75A" in page.inner_text("header") and f"#{job}" in page.inner_text("body")
    page.context.close()


# -- issue 17, item 5: a waiting tap on its card, once, never a conflict with itself ------------


def test_a_waiting_tap_shows_on_its_card(world, dispatch, live_server, browser) -> None:
    job = on_unit(dispatch, world)
    other = on_unit(dispatch, world)
    page = signed_in(browser, live_server.url)
    go_offline(page)
    step = page.locator(f"#job-{job} button.big", has_text="Acknowledge")
    step.click()
    card = page.locator(f"#job-{job}")
    card.locator(".pending-note", has_text="Waiting to send: Acknowledge").wait_for()
    assert "step-pending" in (card.get_attribute("class") or "").split()
    assert step.get_attribute("aria-disabled") == "true"
    assert page.locator(f"#job-{other} .pending-note").count() == 0

    page.context.set_offline(False)
    page.locator("#flash .flash", has_text=f"Sent: Acknowledge · job #{job}").wait_for()
    page.locator(f"#job-{job} button.big", has_text="En route").wait_for()
    assert card.locator(".pending-note").count() == 0
    page.context.close()


def test_a_second_tap_on_the_same_step_is_not_queued(world, dispatch, live_server,
                                                     browser) -> None:
    """Two taps on one step while offline: one waits, and on reconnect the officer reads
    "Sent" and no conflict with their own first tap."""
    job = on_unit(dispatch, world)
    page = signed_in(browser, live_server.url)
    go_offline(page)
    step = page.locator(f"#job-{job} button.big", has_text="Acknowledge")
    step.click()
    page.locator("#pending li").first.wait_for()
    step.click(force=True)  # marked as waiting, but a finger taps it anyway
    page.locator("#flash .flash", has_text="Already waiting to send").wait_for()
    assert page.locator("#pending li").count() == 1

    page.context.set_offline(False)
    page.locator("#flash .flash", has_text=f"Sent: Acknowledge · job #{job}").wait_for()
    page.locator("#pending").wait_for(state="hidden")
    page.locator(f"#job-{job} button.big", has_text="En route").wait_for()
    assert page.locator("#flash .flash-conflict").count() == 0
    assert kinds(dispatch, job).count("acknowledge") == 1
    page.context.close()


def test_ones_own_tap_is_never_reported_as_a_conflict(world, dispatch, live_server,
                                                      browser) -> None:
    """The tap reaches the server but its answer is lost on the way back (the link drops):
    the phone keeps it and sends it again; the server knows it as the same tap."""
    job = on_unit(dispatch, world)
    page = signed_in(browser, live_server.url, service_workers="block")
    answers: list[int] = []

    def lose_the_first_answer(route) -> None:  # type: ignore[no-untyped-def]
        if answers:
            route.continue_()
            return
        answers.append(route.fetch(max_redirects=0).status)  # the server writes the step …
        route.abort("internetdisconnected")                   # … the phone never hears back

    page.route(f"**/jobs/{job}/act/acknowledge", lose_the_first_answer)
    page.locator(f"#job-{job} button.big", has_text="Acknowledge").click()
    page.locator("#flash .flash", has_text=f"Sent: Acknowledge · job #{job}").wait_for()
    page.locator("#pending").wait_for(state="hidden")
    assert answers == [303]
    assert page.locator("#flash .flash-conflict").count() == 0
    assert kinds(dispatch, job).count("acknowledge") == 1
    assert status_of(dispatch, job) == "acknowledged"
    page.context.close()


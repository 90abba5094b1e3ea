"""What the server tells the officer's phone: whose session a page belongs to (the tag its
service worker keys kept pages to), and a plain answer to a tap the phone can trust (saved,
signed out, a stale page), with the tap's own key making a second send of it safe."""

from __future__ import annotations

import sqlalchemy as sa

from board.auth import accounts as auth
from board.storage.schema import events
from board.web.browser_policy import TAG_COOKIE, TAG_HEADER
from tests.conftest import make_job
from tests.web.test_pages import job_row, login

TAP = {"X-Board-Tap": "1"}


def assigned(dispatch, world) -> int:  # type: ignore[no-untyped-def]
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    return job


def acks(engine, job: int) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events).where(
            events.c.job_id == job, events.c.kind == "acknowledge")).scalar()


def tap(client, job: int, csrf: str, key: str | None = None, version: int = 2, **headers):  # type: ignore[no-untyped-def]
    extra = {**TAP, **({"Idempotency-Key": key} if key else {}), **headers}
    return client.post(f"/jobs/{job}/act/acknowledge", data={"csrf": csrf, "version": version},
                       headers=extra, follow_redirects=False)


# -- the session's tag ------------------------------------------------------------------------


def test_each_session_has_its_own_tag_in_a_header_and_a_cookie(world, client) -> None:
    assert client.get("/login").headers[TAG_HEADER] == ""
    assert TAG_COOKIE not in client.cookies
    login(client, "off75a")
    first = client.cookies[TAG_COOKIE]
    assert len(first) == 32 and client.get("/my").headers[TAG_HEADER] == first
    assert first not in client.cookies["board_session"]  # not the session's secret either

    login(client, "off75a")  # a new session, even for the same person
    second = client.cookies[TAG_COOKIE]
    assert second != first and client.get("/my").headers[TAG_HEADER] == second
    assert TAG_HEADER not in client.get("/static/offline.js").headers  # cacheable, for anyone


def test_logging_out_ends_the_tag(world, client) -> None:
    csrf = login(client, "off75a")
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.headers[TAG_HEADER] == ""
    assert f"{TAG_COOKIE}=;" in r.headers["set-cookie"]
    assert TAG_COOKIE not in client.cookies


def test_a_session_ended_at_the_server_ends_the_tag(world, dispatch, client) -> None:
    """Revoked (user disabled) while the browser still holds the cookie: the next answer says
    nobody is signed in, and the tag cookie goes."""
    login(client, "off75a")
    assert client.cookies.get(TAG_COOKIE)
    auth.disable_user(dispatch.engine, "off75a")
    auth.disable_user(dispatch.engine, "off75a", disabled=False)
    r = client.get("/my", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert r.headers[TAG_HEADER] == ""
    assert TAG_COOKIE not in client.cookies
    assert client.get("/login").headers[TAG_HEADER] == ""


# -- the answer to a tap ----------------------------------------------------------------------


def test_a_tap_signed_out_is_refused_plainly_not_redirected(world, dispatch, client) -> None:
    job = assigned(dispatch, world)
    csrf = login(client, "off75a")
    auth.disable_user(dispatch.engine, "off75a")
    auth.disable_user(dispatch.engine, "off75a", disabled=False)
    r = tap(client, job, csrf, "k-signed-out-1")
    assert (r.status_code, r.headers["X-Board-Refused"]) == (401, "signed-out")
    assert "X-Board-Saved" not in r.headers
    assert acks(dispatch.engine, job) == 0
    # Without the phone's mark, a plain form post still goes to the log-in page.
    r = client.post(f"/jobs/{job}/act/acknowledge", data={"csrf": csrf, "version": 2},
                    follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")


def test_a_tap_from_a_stale_page_says_so(world, dispatch, client) -> None:
    job = assigned(dispatch, world)
    login(client, "off75a")
    r = tap(client, job, "a-token-of-another-session")
    assert (r.status_code, r.headers["X-Board-Refused"]) == (403, "stale-form")
    assert acks(dispatch.engine, job) == 0


def test_only_a_written_tap_is_marked_saved(world, dispatch, client) -> None:
    job = assigned(dispatch, world)
    csrf = login(client, "off75a")
    r = tap(client, job, csrf, "k-saved-0001", **{"HX-Request": "true"})
    assert (r.status_code, r.headers["X-Board-Saved"]) == (204, "1")
    r = tap(client, job, csrf, "k-stale-0001", **{"HX-Request": "true"})  # version 2 is old now
    assert r.status_code == 409 and "X-Board-Saved" not in r.headers
    assert "changed by OFF75A (acknowledge)" in r.text
    other = assigned(dispatch, world)
    r = tap(client, other, csrf)  # the page's own post (no HX-Request): the redirect is marked
    assert (r.status_code, r.headers["X-Board-Saved"]) == (303, "1")


def test_the_same_tap_sent_again_is_done_not_a_conflict(world, dispatch, client) -> None:
    """Its first answer was lost: the same key is answered as saved, and nothing is written
    twice. Another tap (another key) on the old version is still a conflict."""
    job = assigned(dispatch, world)
    csrf = login(client, "off75a")
    hx = {"HX-Request": "true"}
    assert tap(client, job, csrf, "tap-0001-abcd", **hx).status_code == 204
    again = tap(client, job, csrf, "tap-0001-abcd", **hx)
    assert (again.status_code, again.headers["X-Board-Saved"]) == (204, "1")
    assert acks(dispatch.engine, job) == 1
    assert job_row(dispatch.engine, job).version == 3
    assert tap(client, job, csrf, "tap-0002-abcd", **hx).status_code == 409
    assert tap(client, job, csrf, None, **hx).status_code == 409


def test_a_tap_key_is_one_persons(world, dispatch, client) -> None:
    """Another officer sending someone's key gets no "done" for it."""
    job = assigned(dispatch, world)
    csrf = login(client, "off75a")
    assert tap(client, job, csrf, "tap-mine-0001", **{"HX-Request": "true"}).status_code == 204
    other_csrf = login(client, "off75b")
    r = tap(client, job, other_csrf, "tap-mine-0001", **{"HX-Request": "true"})
    assert r.status_code in (403, 409) and "X-Board-Saved" not in r.headers
    assert acks(dispatch.engine, job) == 1


def test_a_malformed_tap_key_is_refused(world, dispatch, client) -> None:
    job = assigned(dispatch, world)
    csrf = login(client, "off75a")
    for key in ("short", "x" * 65, "has space in it", "semi;colon-1234"):
        r = tap(client, job, csrf, key, **{"HX-Request": "true"})
        assert r.status_code == 422 and "Idempotency-Key" in r.text
    assert acks(dispatch.engine, job) == 0


def test_a_tap_refused_for_good_says_why_in_plain_text(world, dispatch, client) -> None:
    """Not this officer's job: the phone shows the reason as it is, not an HTML page."""
    job = assigned(dispatch, world)
    csrf = login(client, "off75b")
    r = tap(client, job, csrf, "tap-else-0001", **{"HX-Request": "true"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith("Not saved: ") and "<" not in r.text
    r = client.post("/jobs/999999/act/acknowledge", data={"csrf": csrf, "version": 1},
                    headers=TAP, follow_redirects=False)
    assert r.status_code == 404 and r.text.startswith("Not saved: ")

"""Single sign-on against a real OpenID provider (oidc-provider on Node, started per test):
the code flow with PKCE end to end through httpx, and each refusal with its page."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.auth.throttle import LoginGuard, Window
from board.storage.schema import sessions, users
from tests.auth.provider import board_with_sso, sign_in, submit_login, to_provider_form


@pytest.fixture
def board(world, dispatch, tmp_path):  # type: ignore[no-untyped-def]
    with board_with_sso(dispatch, tmp_path) as b:
        yield b


@pytest.fixture
def web():  # type: ignore[no-untyped-def]
    with httpx.Client(timeout=30) as c:
        yield c


def counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one(),
                conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one())


def sso_row(engine: sa.Engine, subject: str):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(sa.select(users).where(users.c.sso_subject == subject)).first()


def test_the_login_page_offers_the_provider_beside_local_accounts(board, web) -> None:
    page = web.get(f"{board.url}/login")
    assert "Sign in with Test Provider" in page.text
    assert 'name="password"' in page.text


def test_a_mapped_sergeant_signs_in_and_lands_on_the_precinct_board(board, web, dispatch):
    users_before, _ = counts(dispatch.engine)
    answer = sign_in(web, board.url, "sgt")
    assert answer.status_code == 200
    assert answer.url.path == "/board/75"
    row = sso_row(dispatch.engine, f"{board.op.issuer} sgt")
    assert (row.role, row.precincts, row.password_hash) == ("supervisor", "75", None)
    assert row.username == "sso:sgt" and row.display_name == "Sgt. Single Sign-On"
    assert counts(dispatch.engine)[0] == users_before + 1
    # the session is an ordinary board session: pages, the API's cookie auth, scope
    assert web.get(f"{board.url}/board/75").status_code == 200
    assert web.get(f"{board.url}/board/120").status_code == 403


def test_the_role_is_refreshed_from_the_groups_at_every_sign_in(board, web, dispatch):
    sign_in(web, board.url, "sgt")
    subject = f"{board.op.issuer} sgt"
    with dispatch.engine.begin() as conn:
        conn.execute(users.update().where(users.c.sso_subject == subject)
                     .values(role="commander", precincts="*"))
    web.cookies.clear()
    users_before, _ = counts(dispatch.engine)
    assert sign_in(web, board.url, "sgt").url.path == "/board/75"
    row = sso_row(dispatch.engine, subject)
    assert (row.role, row.precincts) == ("supervisor", "75")
    assert counts(dispatch.engine)[0] == users_before  # the same user, not a second one


def test_an_officer_gets_the_unit_of_their_group(board, web, world, dispatch):
    answer = sign_in(web, board.url, "officer")
    assert answer.url.path == "/my"
    assert sso_row(dispatch.engine, f"{board.op.issuer} officer").unit_id == world.unit("75-A")


def test_the_next_page_asked_for_is_where_the_sign_in_ends(board, web):
    page = to_provider_form(web, board.url, next_path="/jobs/123")
    assert submit_login(web, page, "sgt").url.path == "/jobs/123"


def test_an_unmapped_person_gets_no_access_and_nothing_is_created(board, web, dispatch):
    before = counts(dispatch.engine)
    answer = sign_in(web, board.url, "visitor")
    assert answer.status_code == 403
    assert "No access" in answer.text and "none of your groups" in answer.text
    assert counts(dispatch.engine) == before
    assert web.get(f"{board.url}/board/75", follow_redirects=False).status_code == 303


def _callback_location(web: httpx.Client, board, login: str) -> str:  # type: ignore[no-untyped-def]
    """Sign in at the provider, and stop at its redirect back to the board's callback."""
    answer = submit_login(web, to_provider_form(web, board.url), login, follow=False)
    while not answer.headers["location"].startswith(f"{board.url}/login/sso/callback"):
        answer = web.get(str(answer.url.join(answer.headers["location"])),
                         follow_redirects=False)
    return answer.headers["location"]


def test_a_wrong_state_is_refused(board, web, dispatch):
    before = counts(dispatch.engine)
    back = _callback_location(web, board, "sgt")
    forged = re.sub(r"state=[^&]+", "state=not-the-one-we-sent", back)
    answer = web.get(forged)
    assert answer.status_code == 400
    assert "not started from this browser" in answer.text
    assert counts(dispatch.engine) == before
    # and the code cannot be used twice either: the real state was spent by the refusal
    assert web.get(back).status_code == 400


def test_a_tampered_id_token_is_refused(board, web, dispatch):
    before = counts(dispatch.engine)
    board.op.next_token("tamper")  # the provider's answer claims 311-admin after signing
    answer = sign_in(web, board.url, "visitor")
    assert answer.status_code == 401
    assert "could not be verified" in answer.text
    assert counts(dispatch.engine) == before


def test_an_expired_id_token_is_refused(board, web, dispatch):
    before = counts(dispatch.engine)
    board.op.next_token("lapse")  # the ID token was issued two hours ago: expired
    answer = sign_in(web, board.url, "sgt")
    assert answer.status_code == 401
    assert "expired" in answer.text
    assert counts(dispatch.engine) == before


def test_a_disabled_sso_user_is_refused_and_their_sessions_end(board, web, dispatch):
    sign_in(web, board.url, "sgt")
    auth.disable_user(dispatch.engine, "sso:sgt")
    assert web.get(f"{board.url}/board/75", follow_redirects=False).status_code == 303
    web.cookies.clear()
    answer = sign_in(web, board.url, "sgt")
    assert answer.status_code == 403 and "disabled" in answer.text
    with dispatch.engine.connect() as conn:
        live = conn.execute(sa.select(sa.func.count()).select_from(sessions)
                            .where(sessions.c.revoked_at.is_(None))).scalar_one()
    assert live == 0


def test_sign_out_ends_the_board_session_and_the_providers(board, web):
    page = sign_in(web, board.url, "sgt")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    away = web.post(f"{board.url}/logout", data={"csrf": csrf}, follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"].startswith(f"{board.op.issuer}/session/end")
    assert "client_id=board" in away.headers["location"]
    confirm = web.get(away.headers["location"])  # the provider asks "sign out?"
    form = re.search(r'<form[^>]*action="([^"]+)"', confirm.text).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                             confirm.text))
    done = web.post(str(confirm.url.join(form)), data={**fields, "logout": "yes"},
                    follow_redirects=True)
    assert done.url.path == "/login" and str(done.url).startswith(board.url)
    assert web.get(f"{board.url}/board/75", follow_redirects=False).status_code == 303
    # the provider forgot the person too: signing in again asks for the password
    assert 'name="password"' in to_provider_form(web, board.url).text


def test_refused_sign_ins_are_throttled_per_address(board, web):
    board.app.state.login_guard = LoginGuard(per_address=Window(2, 300))
    assert sign_in(web, board.url, "visitor").status_code == 403
    # signed in at the provider already: the second try comes straight back, refused again
    assert web.get(f"{board.url}/login/sso", follow_redirects=True).status_code == 403
    answer = web.get(f"{board.url}/login/sso")
    assert answer.status_code == 429 and answer.headers["retry-after"]

"""Single sign-on in real Chromium: "Sign in with …" on the board's log-in page, the provider's
own log-in page (oidc-provider on Node, tests/auth/oidc_provider.mjs), and back on the
precinct board with its map and live socket."""

from __future__ import annotations

import pytest

from tests.auth.provider import PASSWORD, board_with_sso

pytestmark = pytest.mark.browser


def test_a_sergeant_signs_in_through_the_provider_and_lands_on_the_board(
        world, dispatch, tmp_path, browser) -> None:
    with board_with_sso(dispatch, tmp_path) as board:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(f"{board.url}/login")
        page.click("text=Sign in with Test Provider")
        page.wait_for_url(f"{board.op.issuer}/interaction/**")
        page.fill("input[name=login]", "sgt")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{board.url}/board/75")
        page.wait_for_function("window.boardLive && window.boardLive.updates >= 1")
        assert page.locator("#queue").count() == 1
        assert "Sgt. Single Sign-On" in page.content()
        ctx.close()

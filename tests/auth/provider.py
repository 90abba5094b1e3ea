"""A real OpenID provider for the tests (tests/auth/oidc_provider.mjs on Node), and a board
served on a socket whose address the provider knows."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from board.settings import Settings
from board.web.app import create_app
from tests.conftest import GEO_DIR, LiveServer, bound_socket, start_server, stop_server

SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
PASSWORD = "pw"  # every test account's password at the provider


@dataclass
class OpenIdProvider:
    issuer: str
    process: subprocess.Popen

    def next_token(self, mode: str) -> None:
        """Arm the provider's next token answer: "tamper" or "lapse" (see the script)."""
        httpx.post(f"{self.issuer}/_test/next-token", json={"mode": mode}).raise_for_status()


@contextmanager
def provider(board_url: str) -> Iterator[OpenIdProvider]:
    """Start the Node provider for a board at `board_url`; stop it after."""
    proc = subprocess.Popen(
        ["node", str(SCRIPT), f"{board_url}/login/sso/callback", f"{board_url}/login"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))
        reader.start()
        reader.join(timeout=30)
        if not line or not line[0].strip():
            raise RuntimeError("the test OpenID provider did not start (npm ci?)")
        yield OpenIdProvider(json.loads(line[0])["issuer"], proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@dataclass
class Board:
    url: str
    app: Any
    op: OpenIdProvider
    live: LiveServer


@contextmanager
def board_with_sso(dispatch: Any, tmp_path: Path, **env: str) -> Iterator[Board]:
    """The board on a real socket with single sign-on through a fresh test provider."""
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with provider(url) as op:
        settings = Settings.from_env({
            "DATABASE_URL": str(dispatch.engine.url), "SECRET_KEY": "test-secret",
            "BOARD_VAR_DIR": str(tmp_path), "BOARD_GEO_DIR": str(GEO_DIR),
            "PUBLIC_URL": url, "OIDC_ISSUER": op.issuer, "OIDC_CLIENT_ID": "board",
            "OIDC_CLIENT_SECRET": "board-secret", "OIDC_NAME": "Test Provider", **env})
        app = create_app(settings, dispatch)
        live = start_server(app, sock=sock)
        try:
            yield Board(url, app, op, live)
        finally:
            stop_server(live)


FORM = re.compile(r'<form method="post" action="([^"]+)"')


def to_provider_form(client: httpx.Client, board_url: str, next_path: str = "") -> httpx.Response:
    """Start at the board's "Sign in with …" and follow to the provider's log-in form."""
    start = f"{board_url}/login/sso" + (f"?next={next_path}" if next_path else "")
    page = client.get(start, follow_redirects=True)
    assert FORM.search(page.text), page.text[:500]
    return page


def submit_login(client: httpx.Client, page: httpx.Response, login: str,
                 follow: bool = True) -> httpx.Response:
    action = FORM.search(page.text).group(1)
    return client.post(str(page.url.join(action)), data={"login": login, "password": PASSWORD},
                       follow_redirects=follow)


def sign_in(client: httpx.Client, board_url: str, login: str) -> httpx.Response:
    """The whole code flow, as a browser would: ends on the board's answer to the callback."""
    return submit_login(client, to_provider_form(client, board_url), login)

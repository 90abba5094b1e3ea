"""Behind a reverse proxy: X-Forwarded-Proto and X-Forwarded-For are believed from the
addresses in FORWARDED_ALLOW_IPS only. From a trusted proxy the session cookie is Secure,
absolute links use the public scheme and host, and the log-in records the real client; from
anyone else the same headers change nothing.

The board runs under uvicorn with exactly the configuration `board serve` uses
(board.cli.main.server_config) on a real socket; the test client is 127.0.0.1, a trusted proxy
or not depending on the setting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from board.cli.main import server_config
from board.settings import Settings
from board.storage.schema import sessions
from board.web.app import create_app
from tests.conftest import GEO_DIR, PASSWORD, bound_socket, make_job

PUBLIC = {"Host": "board.example.org", "X-Forwarded-Proto": "https",
          "X-Forwarded-For": "203.0.113.9"}


@contextmanager
def served(dispatch, tmp_path: Path, trusted: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({
        "DATABASE_URL": str(dispatch.engine.url), "SECRET_KEY": "test-secret",
        "BOARD_VAR_DIR": str(tmp_path), "BOARD_GEO_DIR": str(GEO_DIR),
        "FORWARDED_ALLOW_IPS": trusted})
    sock = bound_socket()
    server = uvicorn.Server(server_config(create_app(settings, dispatch), settings,
                                          log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def log_in(url: str) -> httpx.Response:
    """A log-in through the 'proxy': its headers on every request."""
    with httpx.Client(base_url=url, headers=PUBLIC) as web:
        page = web.get("/login")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        # the browser speaks https to the proxy, so it sends a Secure cookie back; this client
        # speaks http to the board, so it is handed the cookie as the proxy would pass it on
        cookie = page.headers["set-cookie"].split(";")[0]
        web.cookies.clear()
        return web.post("/login", data={"csrf": csrf, "username": "sgt75",
                                        "password": PASSWORD}, headers={"Cookie": cookie})


def photo_link(url: str, job: int, key: str) -> str:
    answer = httpx.get(f"{url}/open311/v2/requests/{job}.json", params={"api_key": key},
                       headers=PUBLIC)
    return answer.json()[0]["media_url"]


def session_address(dispatch) -> str:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        return conn.execute(sa.select(sessions.c.address)
                            .order_by(sessions.c.id.desc())).scalars().first()


@pytest.fixture
def key(world) -> str:  # type: ignore[no-untyped-def]
    from board.auth import accounts as auth

    return auth.create_token(world.dispatch.engine, "admin", "open311")


def test_a_trusted_proxys_scheme_host_and_client_are_believed(world, dispatch, tmp_path, key):
    job = make_job(dispatch, "75", media=("https://311.example/p/1.jpg",))
    with served(dispatch, tmp_path, trusted="127.0.0.1") as url:
        answer = log_in(url)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert "board_session=" in cookie and "secure" in cookie.lower()
        assert session_address(dispatch) == "203.0.113.9"
        assert photo_link(url, job, key) == f"https://board.example.org/jobs/{job}/photos/0"


def test_the_same_headers_from_an_untrusted_address_change_nothing(world, dispatch, tmp_path,
                                                                    key):
    job = make_job(dispatch, "75", media=("https://311.example/p/1.jpg",))
    with served(dispatch, tmp_path, trusted="10.20.30.40") as url:
        answer = log_in(url)
        assert answer.status_code == 303
        assert "secure" not in answer.headers["set-cookie"].lower()
        assert session_address(dispatch) == "127.0.0.1"
        assert photo_link(url, job, key) == f"http://board.example.org/jobs/{job}/photos/0"


def test_a_network_of_proxies_may_be_named(world, dispatch, tmp_path):
    with served(dispatch, tmp_path, trusted="10.0.0.0/8, 127.0.0.0/8") as url:
        assert "secure" in log_in(url).headers["set-cookie"].lower()
        assert session_address(dispatch) == "203.0.113.9"

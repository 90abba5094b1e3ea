"""Sessions and tokens are revocable at once (issue 10, defects 5 and 7; issue 8's "logging
out closes that session's sockets").

Server-side sessions: log-out revokes, a captured cookie is worthless afterwards, idle and
absolute timeouts; `board users disable`, `board tokens list|revoke`, token expiry; and every
revocation closes that identity's open sockets, in this process at once and in every other
through the bus (or, at the latest, the hub's re-check of its sockets' sessions).
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.auth import sessions
from board.cli import main as cli
from board.live import subscriber
from board.storage.schema import events
from board.storage.schema import sessions as sessions_table
from tests.cli.test_cli import _env
from tests.conftest import GEO_DIR, closed_after_test, make_job, start_server, stop_server
from tests.live.test_live import closed_with, socket, web_login


def csrf_of(client: httpx.Client, path: str = "/board/75") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text).group(1)


def note_count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events)
                            .where(events.c.kind == "note")).scalar()


def test_a_cookie_captured_before_logout_is_worthless(world, dispatch, live_server) -> None:
    job = make_job(dispatch, "75")
    sgt = web_login(live_server.url, "sgt75")
    captured = dict(sgt.cookies)
    csrf = csrf_of(sgt)
    assert sgt.post("/logout", data={"csrf": csrf}).status_code == 303
    thief = httpx.Client(base_url=live_server.url, cookies=captured, timeout=10)
    r = thief.get("/board/75")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    before = note_count(dispatch.engine)
    r = thief.post(f"/jobs/{job}/act/note", data={"csrf": csrf, "text": "still here"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert note_count(dispatch.engine) == before
    with socket(live_server.url, "/ws/board/75", thief) as ws:
        assert closed_with(ws) == subscriber.CLOSE_UNAUTHENTICATED


def test_logout_closes_that_sessions_sockets_at_once(world, dispatch, live_server) -> None:
    """Two tabs of one session and another session of the same user: log out in one tab, both
    tabs' sockets close at once (4401), the other session keeps its live updates."""
    tab = web_login(live_server.url, "sgt75")
    other = web_login(live_server.url, "sgt75")  # another browser
    with socket(live_server.url, "/ws/board/75", tab) as first, \
            socket(live_server.url, "/ws/my", web_login(live_server.url, "off75a")) as _my, \
            socket(live_server.url, "/ws/board/75", tab) as second, \
            socket(live_server.url, "/ws/board/75", other) as kept:
        for ws in (first, second, kept):
            assert 'id="board-body"' in ws.recv(timeout=5)
        started = time.monotonic()
        assert tab.post("/logout", data={"csrf": csrf_of(tab)}).status_code == 303
        assert closed_with(first, timeout=3) == subscriber.CLOSE_UNAUTHENTICATED
        assert closed_with(second, timeout=3) == subscriber.CLOSE_UNAUTHENTICATED
        assert time.monotonic() - started < 2  # at once, not at the next re-check
        job = make_job(dispatch, "75")
        deadline = time.monotonic() + 5
        while f'id="job-{job}"' not in kept.recv(timeout=5):
            assert time.monotonic() < deadline
    assert other.get("/board/75").status_code == 200


def test_a_revocation_heard_on_the_bus_closes_sockets_in_this_process(world, dispatch,
                                                                       tmp_path) -> None:
    """Another process revoked a session: its announcement alone closes the socket here (the
    re-check is turned off). With REDIS_URL (the PostgreSQL + Redis run) the app listens on
    Redis and the announcement comes from a separate Redis connection, as the CLI sends it."""
    from board.live.bus import SyncPublisher
    from board.settings import Settings
    from board.web.app import create_app

    redis_url = os.environ.get("REDIS_URL", "")
    live_app = create_app(Settings.from_env({
        "DATABASE_URL": str(dispatch.engine.url.render_as_string(hide_password=False)),
        "REDIS_URL": redis_url, "SECRET_KEY": "test-secret", "BOARD_VAR_DIR": str(tmp_path),
        "BOARD_GEO_DIR": str(GEO_DIR)}), dispatch)
    live_srv = start_server(live_app)
    try:
        hub = live_app.state.hub
        hub.session_check_s = 3600
        sgt = web_login(live_srv.url, "sgt75")
        with socket(live_srv.url, "/ws/board/75", sgt) as ws:
            assert 'id="board-body"' in ws.recv(timeout=5)
            with dispatch.engine.connect() as conn:
                [sid] = conn.execute(sa.select(sessions_table.c.id)).scalars().all()
            ended = sessions.revoke(dispatch.engine, session_id=sid)
            assert ended == [sid]
            if redis_url:
                assert type(hub.bus).__name__ == "RedisBus"
                SyncPublisher(redis_url).publish([(sessions.REVOKED, sessions.message(ended))])
            else:
                hub.loop.call_soon_threadsafe(hub.bus.handler, sessions.REVOKED,
                                              sessions.message(ended))
            assert closed_with(ws, timeout=3) == subscriber.CLOSE_UNAUTHENTICATED
    finally:
        stop_server(live_srv)


def test_disabling_a_user_ends_sessions_sockets_and_tokens(world, dispatch, live_server,
                                                           monkeypatch, tmp_path,
                                                           capsys) -> None:
    _env(monkeypatch, str(dispatch.engine.url.render_as_string(hide_password=False)), tmp_path,
         GEO_DIR)
    token = auth.create_token(dispatch.engine, "sgt75", "script")
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"})
    assert api.get("/api/v1/precincts/75/board").status_code == 200
    sgt = web_login(live_server.url, "sgt75")
    with socket(live_server.url, "/ws/board/75", sgt) as ws:
        assert 'id="board-body"' in ws.recv(timeout=5)
        assert cli.main(["users", "disable", "sgt75"]) == 0
        assert "1 session(s) ended" in capsys.readouterr().out
        # no bus between the CLI and this server here: the hub's re-check closes it
        assert closed_with(ws, timeout=10) == subscriber.CLOSE_UNAUTHENTICATED
    assert sgt.get("/board/75").status_code == 303
    assert api.get("/api/v1/precincts/75/board").status_code == 401
    page = httpx.get(f"{live_server.url}/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = httpx.post(f"{live_server.url}/login", cookies=page.cookies, data={
        "username": "sgt75", "password": "correct horse 311", "csrf": csrf, "next": ""})
    assert r.status_code == 401
    assert cli.main(["users", "disable", "sgt75", "--enable"]) == 0
    assert api.get("/api/v1/precincts/75/board").status_code == 200
    web_login(live_server.url, "sgt75")


def test_tokens_list_revoke_and_expire(world, dispatch, live_server, monkeypatch, tmp_path,
                                       capsys) -> None:
    """A wall's token revoked: its screen's socket closes and the page asks to log in."""
    _env(monkeypatch, str(dispatch.engine.url.render_as_string(hide_password=False)), tmp_path,
         GEO_DIR)
    wall_token = auth.create_token(dispatch.engine, "wall75", "lobby screen")
    wall = closed_after_test(httpx.Client(base_url=live_server.url, timeout=10,
                                          follow_redirects=True))
    assert 'id="wall-body"' in wall.get(f"/wall/75?token={wall_token}").text
    assert cli.main(["tokens", "list"]) == 0
    listing = capsys.readouterr().out
    line = next(ln for ln in listing.splitlines() if "lobby screen" in ln)
    token_id = int(line.split()[0])
    assert "wall75" in line and wall_token not in listing
    with socket(live_server.url, "/ws/wall/75", wall) as ws:
        assert 'id="wall-body"' in ws.recv(timeout=5)
        assert cli.main(["tokens", "revoke", str(token_id)]) == 0
        assert "1 session(s)" in capsys.readouterr().out
        assert closed_with(ws, timeout=10) == subscriber.CLOSE_UNAUTHENTICATED
    assert wall.get("/wall/75", follow_redirects=False).status_code == 303
    assert wall.get(f"/wall/75?token={wall_token}").status_code == 403
    assert cli.main(["tokens", "revoke", str(token_id)]) == 2  # once
    assert cli.main(["tokens", "list"]) == 0
    assert "lobby screen" not in capsys.readouterr().out
    assert cli.main(["tokens", "list", "--all"]) == 0
    assert "lobby screen" in capsys.readouterr().out

    # expiry: refused once past, by the API and as a wall's session
    soon = auth.create_token(dispatch.engine, "sgt75", "soon",
                             expires_at=datetime.now(UTC) + timedelta(seconds=1))
    api = closed_after_test(httpx.Client(base_url=live_server.url,
                                         headers={"Authorization": f"Bearer {soon}"}))
    assert api.get("/api/v1/precincts/75/board").status_code == 200
    time.sleep(1.2)
    assert api.get("/api/v1/precincts/75/board").status_code == 401
    assert cli.main(["tokens", "create", "sgt75", "--expires-days", "30"]) == 0
    assert "expires" in capsys.readouterr().err


def test_session_idle_and_absolute_timeouts(world, dispatch) -> None:
    engine = dispatch.engine
    uid = world.actors["sgt75"].id
    limits = sessions.Timeouts(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
    t0 = datetime.now(UTC)
    _sid, secret = sessions.start(engine, uid, now=t0)
    assert sessions.resolve(engine, secret, limits, t0 + timedelta(minutes=29)) is not None
    # used at 29 minutes, so still alive at 58, but not 31 minutes after its last use
    assert sessions.resolve(engine, secret, limits, t0 + timedelta(minutes=58)) is not None
    assert sessions.resolve(engine, secret, limits, t0 + timedelta(minutes=90)) is None
    _sid, busy = sessions.start(engine, uid, now=t0)
    for minutes in range(20, 120, 20):  # in use all along: the absolute limit still ends it
        assert sessions.resolve(engine, busy, limits, t0 + timedelta(minutes=minutes))
    assert sessions.resolve(engine, busy, limits, t0 + timedelta(minutes=121)) is None
    assert sessions.resolve(engine, "not a session", limits, t0) is None


@pytest.mark.parametrize("path", ["/wall/75?token=brd_secret&x=1", "/open311/v2/requests.json"
                                  "?api_key=brd_secret"])
def test_query_secrets_are_redacted_from_the_access_log(path: str, app) -> None:
    """uvicorn's access log, when it is on, never shows a token or an API key (defect 7)."""
    import logging

    from board.observability.redact import RedactSecrets

    logger = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, RedactSecrets) for f in logger.filters)  # create_app put it there
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5000", "GET", path, "1.1",
                                                           200), None)
    for f in logger.filters:
        f.filter(record)
    line = record.getMessage()
    assert "brd_secret" not in line and "[redacted]" in line and path.split("?")[0] in line

"""Running it as a service: health, readiness, metrics, logs, a database outage, shutdown.

The outage tests use real PostgreSQL (DATABASE_URL when it is PostgreSQL, else the local server
at 127.0.0.1:5432/test) in a schema of their own, reached through a TCP proxy the test cuts and
restores, so the shared server itself is never stopped.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.geo.routing import GeoIndex
from board.live.bus import RedisBus
from board.observability import logs
from board.settings import ROOT, Settings
from board.storage import db
from board.storage.schema import cursors
from board.usecases import Dispatch
from board.web.app import create_app
from tests.conftest import GEO_DIR, PASSWORD, PEOPLE, PG_URL, make_job
from tests.faults import TcpProxy, free_port

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
LOOPBACK = ("127.0.0.1", 40000)


def settings_for(url: str, tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": url, "SECRET_KEY": "test-secret",
                              "BOARD_VAR_DIR": str(tmp_path), "BOARD_GEO_DIR": str(GEO_DIR),
                              **env})


def login(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf": csrf, "next": ""}, follow_redirects=False)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        got = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


# -- health, readiness -------------------------------------------------------------------------


def test_healthz_and_readyz(world, client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "database": "ok", "bus": "ok"}


def test_readyz_is_503_while_the_bus_is_down(world, dispatch, tmp_path: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(settings_for(str(dispatch.engine.url), tmp_path, REDIS_URL=dead_redis),
                     dispatch)
    with TestClient(app) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["bus"] == "disconnected" and r.json()["database"] == "ok"
        assert c.get("/healthz").status_code == 200


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_readable_from_loopback_only(world, dispatch, app) -> None:
    with TestClient(app, client=("203.0.113.9", 5000)) as outsider:
        assert outsider.get("/metrics").status_code == 404
    with TestClient(app, client=LOOPBACK) as c:
        job = make_job(dispatch, "75")
        assert login(c, "sgt75").status_code == 303
        c.get(f"/jobs/{job}")
        c.get("/jobs/999999")
        r = c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
    # Latency by route template, never by raw path (one series for every job id).
    assert metric(text, "board_http_request_duration_seconds_count", method="GET",
                  route="/jobs/{job_id}") >= 2
    assert f"/jobs/{job}" not in text and "/jobs/999999" not in text
    assert metric(text, "board_http_requests_total", method="POST", route="/login",
                  status="303") >= 1
    for name in ("board_live_sockets", "board_asyncio_tasks", "board_live_events_total",
                 "board_live_push_lag_seconds_bucket", "board_login_failures_total",
                 "process_resident_memory_bytes"):
        assert name in text, name
    assert metric(text, "board_live_sockets", audience="board") == 0


def test_the_json_board_comes_from_the_open_boards_view(world, dispatch, app,
                                                      monkeypatch) -> None:
    """With a board of the 75th open in this process, a supervisor's JSON board is the hub's
    view of it, current with their own write and not read again; with none open it is read."""
    from board.usecases import queries

    job = make_job(dispatch, "75")
    bearer = {"Authorization": f"Bearer {auth.create_token(dispatch.engine, 'sgt75', 'tests')}"}
    reads: list[int] = []
    real = queries.board
    monkeypatch.setattr(queries, "board", lambda *a, **k: reads.append(1) or real(*a, **k))
    with TestClient(app, client=LOOPBACK) as c:
        app.state.hub.renderer.clock = dispatch.clock  # one clock, as in a real process
        assert login(c, "sgt75").status_code == 303
        with c.websocket_connect("/ws/board/75") as ws:
            assert any('id="board-body"' in ws.receive_text() for _ in range(10))
            reads.clear()
            dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
            assert any(f'id="job-{job}"' in ws.receive_text() for _ in range(10))  # pushed
            got = c.get("/api/v1/precincts/75/board", headers=bearer).json()
            assert reads == []
        assert [j["id"] for lane in got["lanes"] for j in lane["jobs"]] == [job]
        assert c.get("/api/v1/precincts/75/board", headers=bearer).json() == got
        assert reads == [1]


def test_metrics_count_sockets_events_and_push_lag(world, dispatch, app) -> None:
    job = make_job(dispatch, "75")
    with TestClient(app, client=LOOPBACK) as c:
        before = c.get("/metrics").text
        assert login(c, "sgt75").status_code == 303
        with c.websocket_connect("/ws/board/75") as ws:
            # the snapshot (and whatever else the board sends first)
            assert any('id="board-body"' in ws.receive_text() for _ in range(10))
            text = c.get("/metrics").text
            assert metric(text, "board_live_sockets", audience="board") == 1
            dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
            assert any(f'id="job-{job}"' in ws.receive_text() for _ in range(10))  # pushed
            after = c.get("/metrics").text
        gone = c.get("/metrics").text
    assert metric(after, "board_live_events_total") >= metric(before,
                                                              "board_live_events_total") + 1
    pushed = (metric(after, "board_live_push_lag_seconds_count")
              - metric(before, "board_live_push_lag_seconds_count"))
    assert pushed >= 1
    assert metric(gone, "board_live_sockets", audience="board") == 0


def test_metrics_token_when_set(world, dispatch, tmp_path: Path) -> None:
    app = create_app(settings_for(str(dispatch.engine.url), tmp_path, METRICS_TOKEN="s3cret"),
                     dispatch)
    with TestClient(app, client=LOOPBACK) as c:  # with a token set, loopback is not enough
        assert c.get("/metrics").status_code == 404
        assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 404
        assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_login_failures_are_counted(world, app) -> None:
    with TestClient(app, client=LOOPBACK) as c:
        before = metric(c.get("/metrics").text, "board_login_failures_total")
        assert login(c, "sgt75", "wrong password").status_code == 401
        assert login(c, "nobody", "wrong password").status_code == 401
        after = metric(c.get("/metrics").text, "board_login_failures_total")
    assert after == before + 2


def test_intake_lag_from_the_poller_cursor(world, dispatch, app) -> None:
    now = datetime.now(UTC)
    at = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with db.write(dispatch.engine) as conn:
        conn.execute(cursors.insert().values(
            name="socrata:erm2-nwe9", value=json.dumps({"at": at, "key": "1"}),
            updated_at=now - timedelta(seconds=30)))
    with TestClient(app, client=LOOPBACK) as c:
        text = c.get("/metrics").text
    assert 595 <= metric(text, "board_intake_lag_seconds") <= 660
    assert 25 <= metric(text, "board_intake_cursor_age_seconds") <= 90


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The log as `board serve` configures it, written here instead of stderr."""
    out = io.StringIO()
    level = logging.getLogger().level
    handler = logs.configure("INFO", stream=out)
    yield out
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(level)


def test_request_id_user_and_job_on_every_line(world, dispatch, app, log_lines) -> None:
    job = make_job(dispatch, "75")
    with TestClient(app) as c:
        assert login(c, "sgt75").status_code == 303
        r = c.get(f"/jobs/{job}", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        fresh = c.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", fresh)
        # Not an id we would put in a log line: replaced.
        bad = c.get("/healthz", headers={"X-Request-ID": "a b\x01" * 30}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", bad)
    sgt = world.actors["sgt75"]
    lines = log_lines.getvalue().splitlines()
    line = next(x for x in lines if "req=abc-123" in x)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO board\.access ", line)
    assert f"user={sgt.id}:SGT75" in line and f"job={job}" in line
    assert f"GET /jobs/{job} 200" in line
    assert any(f"req={fresh}" in x and "user=- job=-" in x for x in lines)


def test_access_line_has_no_query_string(world, app, log_lines) -> None:
    with TestClient(app) as c:
        c.get("/wall/75?token=brd_secret-value")
    text = log_lines.getvalue()
    assert "GET /wall/75 " in text and "brd_secret-value" not in text


def test_a_redis_outage_logs_a_bounded_number_of_lines(caplog) -> None:
    """Every publish to a dead Redis fails; the log says so once, then summarises."""
    import asyncio
    import concurrent.futures

    async def run() -> None:
        bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0", retry_max_s=0.2)
        await bus.start(lambda c, d: None)
        for _ in range(200):
            bus.publish_threadsafe([("precinct:75", "1"), ("city", "1")])
        await asyncio.sleep(1.5)
        await bus.stop()

    with caplog.at_level(logging.INFO, logger="board.bus"), \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        # a thread of its own: Playwright's sync API keeps a loop on this one
        pool.submit(asyncio.run, run()).result(timeout=60)
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    lost = [r for r in caplog.records if "connection lost" in r.getMessage()]
    assert 1 <= len(failures) <= 2, [r.getMessage() for r in failures]
    assert 1 <= len(lost) <= 2, [r.getMessage() for r in lost]


def test_throttled_summarises_then_says_recovered(caplog) -> None:
    log = logging.getLogger("board.test-throttle")
    t = logs.Throttled(log, every_s=0.3)
    with caplog.at_level(logging.INFO, logger="board.test-throttle"):
        for _ in range(50):
            t.failed("publish failed: %s", "down")
        time.sleep(0.35)
        t.failed("publish failed: %s", "down")
        assert t.recovered("publishing again")
        assert not t.recovered("publishing again")
    assert [r.getMessage() for r in caplog.records] == [
        "publish failed: down",
        "publish failed: down (and 49 more like it in 0s)",
        "publishing again",
    ]


# -- the database goes away --------------------------------------------------------------------


@pytest.fixture
def pg_behind_proxy(geo: GeoIndex) -> Iterator[tuple[str, TcpProxy]]:
    """A migrated, populated schema of our own on real PostgreSQL, reached through a proxy."""
    base = PG_URL.split("?")[0] if PG_URL.startswith("postgresql") else LOCAL_PG
    parsed = sa.make_url(base)
    schema = f"ops_{uuid.uuid4().hex[:8]}"
    admin = db.make_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    proxy = TcpProxy(parsed.port or 5432, parsed.host or "127.0.0.1").start()
    url = (f"postgresql://{parsed.username}@127.0.0.1:{proxy.port}/{parsed.database}"
           f"?options=-csearch_path%3D{schema}")
    engine = db.make_engine(url)
    try:
        db.migrate(engine)
        d = Dispatch(engine, geo)
        for cs in ("75-A", "75-B"):
            d.add_unit(SYSTEM, cs, "75")
        for name in ("sgt75", "admin"):
            role, precincts, unit = PEOPLE[name]
            auth.add_user(engine, name, PASSWORD, role, precincts, display_name=name.upper())
        from board.geo import store as geostore

        geostore.store(engine, geo)
        engine.dispose()
        yield url, proxy
    finally:
        engine.dispose()
        proxy.cut()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def test_database_down_is_a_503_that_says_so(pg_behind_proxy, geo, tmp_path: Path) -> None:
    url, proxy = pg_behind_proxy
    d = Dispatch(db.make_engine(url), geo)
    token = auth.create_token(d.engine, "admin", "ops-test")
    app = create_app(settings_for(url, tmp_path), d)
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(app, client=LOOPBACK) as c:
        assert login(c, "sgt75").status_code == 303
        assert c.get("/board/75").status_code == 200
        assert c.get("/api/v1/precincts/75/board", headers=bearer).status_code == 200

        proxy.cut()
        page = c.get("/board/75")
        assert page.status_code == 503
        assert page.headers["retry-after"] == "5"
        assert "database is not reachable" in page.text and "text/html" in page.headers[
            "content-type"]
        api = c.get("/api/v1/precincts/75/board", headers=bearer)
        assert api.status_code == 503 and api.headers["retry-after"] == "5"
        assert api.json()["error"] == "unavailable"
        o311 = c.get("/open311/v2/requests.json")
        assert o311.status_code == 503 and o311.json()[0]["code"] == 503
        o311_xml = c.get("/open311/v2/services.xml")  # in the format asked for
        assert o311_xml.status_code == 503 and "<code>503</code>" in o311_xml.text
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"].startswith("unreachable")
        assert c.get("/healthz").status_code == 200
        assert metric(c.get("/metrics").text, "board_db_unavailable_responses_total") >= 3

        proxy.restore()
        assert c.get("/board/75").status_code == 200  # the pool reconnects by itself
        assert c.get("/api/v1/precincts/75/board", headers=bearer).status_code == 200
        assert c.get("/readyz").status_code == 200
    d.engine.dispose()


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "board.cli.main", "serve", "--port", str(port)],
            env={**os.environ, "SECRET_KEY": "test", "BOARD_GEO_DIR": str(GEO_DIR), **env},
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)


def _wait_for(check, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_waits_for_a_database_that_is_down(pg_behind_proxy, tmp_path: Path) -> None:
    url, proxy = pg_behind_proxy
    proxy.cut()
    port, log = free_port(), tmp_path / "serve.log"
    proc = _serve({"DATABASE_URL": url, "BOARD_VAR_DIR": str(tmp_path)}, port, log)
    try:
        assert _wait_for(lambda: "database not reachable" in log.read_text(), 20), \
            log.read_text()
        time.sleep(1)
        assert proc.poll() is None, log.read_text()  # still waiting, not exited
        proxy.restore()
        ready = f"http://127.0.0.1:{port}/readyz"
        assert _wait_for(lambda: httpx.get(ready, timeout=2).status_code == 200, 40), \
            log.read_text()
    finally:
        _stop(proc)
    text = log.read_text()
    line = next(x for x in text.splitlines() if "database not reachable" in x)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING board\.health req=- ", line)
    assert "database reachable, starting" in text


def test_sqlite_serve_stops_cleanly_leaving_no_wal(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    var = tmp_path / "var"
    proc = _serve({"DATABASE_URL": "", "BOARD_VAR_DIR": str(var), "REDIS_URL": ""}, port, log)
    try:
        health = f"http://127.0.0.1:{port}/readyz"
        assert _wait_for(lambda: httpx.get(health, timeout=2).status_code == 200), \
            log.read_text()
        httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert (var / "board.db-wal").exists()  # WAL mode while it runs
    finally:
        _stop(proc)
    # uvicorn shuts down, then re-raises the signal it caught: killed by SIGTERM after a clean stop
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert (var / "board.db").exists()
    assert not (var / "board.db-wal").exists(), log.read_text()
    text = log.read_text()
    assert "Application startup complete" in text and "Finished server process" in text

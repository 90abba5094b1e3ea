"""Live updates in real Chromium: no one reloads a page.

- two supervisors on one precinct: one drags, the other sees the card change lanes and its
  marker change colour; the officer's queue gets the job (and the beep);
- the wall display rides out a server restart and shows what changed while it was down;
- two `board serve` OS processes over PostgreSQL + Redis behave as one board.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from redis import Redis

from board.auth import accounts as auth
from board.domain.access import SYSTEM
from board.geo import store as geostore
from board.geo.routing import GeoIndex
from board.settings import ROOT
from board.storage import db
from board.usecases import Dispatch
from tests.conftest import (
    GEO_DIR,
    PASSWORD,
    PEOPLE,
    PG_URL,
    browser_login,
    make_job,
    start_server,
    stop_server,
)
from tests.web.test_browser_dispatch import PHONE, drag

pytestmark = pytest.mark.browser

NEW, ASSIGNED = "#d62828", "#f77f00"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


def marker_colour(page, job: int) -> str | None:  # type: ignore[no-untyped-def]
    return page.evaluate(
        """(id) => { const m = window.boardMap.jobsLayer.getLayers()
                       .find((l) => l.options.jobId === String(id));
                     return m ? m.options.fillColor : null; }""", job)


def wait_live(page, timeout: float = 10_000) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("window.boardLive && window.boardLive.state === 'live'",
                           timeout=timeout)


def test_one_drags_the_other_sees_it(world, dispatch, live_server, browser) -> None:
    job = make_job(dispatch, "75", complaint="Blocked Driveway", descriptor="No Access")
    make_job(dispatch, "75")
    unit = world.unit("75-A")
    base = live_server.url

    a = browser_login(browser, base, "sgt75")
    b = browser_login(browser, base, "sgt75")
    officer = browser_login(browser, base, "off75a", **PHONE)
    a.goto(f"{base}/board/75")
    b.goto(f"{base}/board/75")
    officer.goto(f"{base}/my")
    for p in (a, b, officer):
        wait_live(p)
    b.wait_for_function("document.getElementById('map').dataset.markers === '2'")
    assert marker_colour(b, job) == NEW
    assert b.locator(f"#queue #job-{job}").count() == 1
    b.evaluate("window.__marker = 'no reload'")

    t0 = time.monotonic()
    drag(a, a.locator(f"#job-{job}"), a.locator(f"#unit-{unit} .stack"))
    b.wait_for_selector(f"#unit-{unit} #job-{job}", timeout=5000)
    took = time.monotonic() - t0
    assert b.locator(f"#queue #job-{job}").count() == 0
    b.wait_for_function(f"""() => {{ const m = window.boardMap.jobsLayer.getLayers()
        .find((l) => l.options.jobId === '{job}');
        return m && m.options.fillColor === '{ASSIGNED}'; }}""", timeout=5000)
    assert b.evaluate("window.__marker") == "no reload"
    assert b.locator("#live").get_attribute("data-state") == "live"
    assert "updated" in b.inner_text("#live")
    # The re-rendered forms carry this page's CSRF token again: B can act on the pushed card.
    assert b.locator(f"#job-{job} input[name=csrf]").first.input_value() != ""

    # The officer's queue got the job by itself, with the new-assignment sound.
    officer.wait_for_selector(f"#my-queue #job-{job}", timeout=5000)
    assert officer.evaluate("window.boardLive.beeps") == 1
    # B's drag still works on the pushed DOM (the drag glue re-binds after a live swap).
    drag(b, b.locator(f"#unit-{unit} #job-{job}"), b.locator(f"#unit-{world.unit('75-B')} .stack"))
    a.wait_for_selector(f"#unit-{world.unit('75-B')} #job-{job}", timeout=5000)
    officer.wait_for_selector(f"#my-queue #job-{job}", state="detached", timeout=5000)
    # Pure latency: a use case commits → the other browser shows it.
    other = b.locator(".job-card").first.get_attribute("data-job-id")
    version = int(b.locator(f"#job-{other}").get_attribute("data-version"))
    t1 = time.monotonic()
    dispatch.set_priority(world.actors["sgt75"], int(other), version, 1)
    b.wait_for_selector(f"#job-{other}[data-priority='1']", timeout=5000)
    latency = time.monotonic() - t1
    print(f"\ndrag on A → card in the lane on B: {took * 1000:.0f} ms (incl. the drag itself); "
          f"commit → other browser: {latency * 1000:.0f} ms")
    for p in (a, b, officer):
        p.context.close()


def test_officer_can_mute_the_sound(world, dispatch, live_server, browser) -> None:
    job = make_job(dispatch, "75")
    officer = browser_login(browser, live_server.url, "off75a", **PHONE)
    officer.goto(f"{live_server.url}/my")
    wait_live(officer)
    officer.click("#sound-toggle")
    assert officer.inner_text("#sound-toggle") == "Sound off"
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    officer.wait_for_selector(f"#my-queue #job-{job}", timeout=5000)
    assert officer.evaluate("window.boardLive.beeps") == 0
    officer.reload()
    assert officer.inner_text("#sound-toggle") == "Sound off"  # remembered on the device
    officer.context.close()


def test_wall_display_recovers_from_a_server_restart(world, dispatch, app, browser) -> None:
    token = auth.create_token(dispatch.engine, "wall75", "lobby")
    job = make_job(dispatch, "75")
    live = start_server(app)
    port = int(live.url.rsplit(":", 1)[1])
    ctx = browser.new_context(viewport={"width": 1600, "height": 900})
    wall = ctx.new_page()
    try:
        wall.goto(f"{live.url}/wall/75?token={token}")
        wait_live(wall)
        count = "#wall-counters li[data-k=unassigned] b"
        assert wall.inner_text(count) == "1"
        wall.wait_for_function("document.getElementById('map').dataset.markers === '1'")

        stop_server(live)
        wall.wait_for_selector("#live[data-state=reconnecting]", timeout=10_000)
        assert "RECONNECTING" in wall.inner_text("#live")
        # While it is down: a new job comes in, another is assigned.
        second = make_job(dispatch, "75", complaint="Illegal Parking", descriptor="Blocked Hydrant")
        dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-C"))
        time.sleep(1.0)

        live = start_server(app, port)
        wait_live(wall, timeout=25_000)
        wall.wait_for_function(f"document.querySelector('#lanes #job-{job}') && "
                               f"document.querySelector('#queue #job-{second}')", timeout=5000)
        assert wall.inner_text(count) == "1"
        assert wall.inner_text("#wall-counters li[data-k=assigned] b") == "1"
        assert "assign" in wall.inner_text("#ticker")
        wall.wait_for_function("document.getElementById('map').dataset.markers === '2'")
        assert marker_colour(wall, job) == ASSIGNED
        assert wall.evaluate("window.boardLive.opens") >= 2
        # And it keeps going after the restart.
        dispatch.hold(world.actors["sgt75"], second, 1, "waiting for callback")
        wall.wait_for_function(
            "document.querySelector('#wall-counters li[data-k=held] b').textContent === '1'",
            timeout=5000)
    finally:
        ctx.close()
        stop_server(live)


# -- two web processes ------------------------------------------------------------------------


def _admin_sql(statement: str) -> None:
    admin = db.make_engine(LOCAL_PG)
    with admin.begin() as conn:
        conn.exec_driver_sql(statement)
    admin.dispose()


def _schema_url(schema: str) -> str:
    return f"{LOCAL_PG}?options=-csearch_path%3D{schema}"


def _populate(dispatch: Dispatch) -> dict[str, int]:
    units = {cs: dispatch.add_unit(SYSTEM, cs, cs.split("-")[0])["unit_id"]
             for cs in ("75-A", "75-B", "75-C", "120-A")}
    for name, (role, precincts, unit) in PEOPLE.items():
        auth.add_user(dispatch.engine, name, None if role == "wall" else PASSWORD, role,
                      precincts, display_name=name.upper(), unit_callsign=unit)
    return units


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(url: str, port: int, tmp_path: Path) -> subprocess.Popen:
    """`board serve` as its own OS process, as the Procfile runs it."""
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS_URL,
           "SECRET_KEY": "shared-by-all-web-processes", "BOARD_GEO_DIR": str(GEO_DIR),
           "BOARD_VAR_DIR": str(tmp_path / f"var{port}")}
    with open(tmp_path / f"serve{port}.log", "w") as err:  # the child keeps its own copy
        proc = subprocess.Popen([sys.executable, "-m", "board.cli.main", "serve", "--port",
                                 str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / f"serve{port}.log").read_text()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise AssertionError(f"board serve on {port} did not come up: "
                         + (tmp_path / f"serve{port}.log").read_text()[-2000:])


def test_two_web_processes_over_postgres_and_redis(world, dispatch, browser, geo: GeoIndex,
                                                   tmp_path: Path) -> None:
    """An action on process A reaches a browser on process B through Redis.

    Two `board serve` OS processes on two ports. With DATABASE_URL (PostgreSQL) and REDIS_URL
    set, both use them; otherwise the test brings its own: the local PostgreSQL (a schema of
    its own in db `test`) and Redis.
    """
    schema = None
    if PG_URL.startswith("postgresql"):
        url, units = PG_URL, world.units
    else:
        schema = f"live_two_{uuid.uuid4().hex[:8]}"
        _admin_sql(f"CREATE SCHEMA {schema}")
        url = _schema_url(schema)
        engine = db.make_engine(url)
        db.migrate(engine)
        units = _populate(Dispatch(engine, geo))
        engine.dispose()
    writer = Dispatch(db.make_engine(url), geo)
    geostore.store(writer.engine, geo)

    redis = Redis.from_url(REDIS_URL)
    heard = redis.pubsub()
    heard.psubscribe("board:*precinct:75")
    procs, pages = [], []
    try:
        port_a, port_b = _free_port(), _free_port()
        procs = [_serve(url, port_a, tmp_path), _serve(url, port_b, tmp_path)]
        url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        job = make_job(writer, "75")
        unit = units["75-A"]
        a = browser_login(browser, url_a, "sgt75")
        b = browser_login(browser, url_b, "sgt75")
        officer_b = browser_login(browser, url_b, "off75a", **PHONE)
        pages = [a, b, officer_b]
        a.goto(f"{url_a}/board/75")
        b.goto(f"{url_b}/board/75")
        officer_b.goto(f"{url_b}/my")
        for p in pages:
            wait_live(p)
        while heard.get_message(timeout=0.1):  # forget the subscription confirmations
            pass

        t0 = time.monotonic()
        drag(a, a.locator(f"#job-{job}"), a.locator(f"#unit-{unit} .stack"))
        b.wait_for_selector(f"#unit-{unit} #job-{job}", timeout=5000)
        took = time.monotonic() - t0
        officer_b.wait_for_selector(f"#my-queue #job-{job}", timeout=5000)
        assert marker_colour(b, job) == ASSIGNED
        nudge = heard.get_message(timeout=2)
        assert nudge and nudge["type"] == "pmessage"  # process A announced it on Redis

        # And the other way: the officer on B acknowledges; supervisor A sees it.
        officer_b.locator(f"#job-{job} button.big", has_text="Acknowledge").click()
        a.wait_for_selector(f"#job-{job}[data-status=acknowledged]", timeout=5000)
        # A job made by a third party (a worker with no bus at all) still shows up: anti-entropy.
        third = make_job(writer, "75")
        b.wait_for_selector(f"#queue #job-{third}", timeout=6000)
        print(f"\nprocess A drag → browser on process B: {took * 1000:.0f} ms")
    finally:
        for p in pages:
            p.context.close()
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        heard.close()
        redis.close()
        writer.engine.dispose()
        if schema:
            _admin_sql(f"DROP SCHEMA {schema} CASCADE")


def test_an_open_job_page_follows_the_job(world, dispatch, live_server, browser) -> None:
    """A supervisor reading a job sees the officer acknowledge it without reloading."""
    job = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    sgt = browser_login(browser, live_server.url, "sgt75")
    sgt.goto(f"{live_server.url}/jobs/{job}")
    wait_live(sgt)
    assert sgt.locator(".timeline li").count() == 2
    dispatch.acknowledge(world.actors["off75a"], job, 2)
    sgt.wait_for_selector('.timeline li[data-kind="acknowledge"]', timeout=5000)
    assert "Acknowledged" in sgt.inner_text(f".job-page #job-{job} .status")
    # While the sergeant is typing a note, the page says so instead of reloading under them.
    sgt.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    sgt.fill("textarea[name=text]", "half a note")
    dispatch.en_route(world.actors["off75a"], job, 3)
    sgt.wait_for_selector("#job-changed:not([hidden])", timeout=5000)
    assert sgt.input_value("textarea[name=text]") == "half a note"
    assert not sgt.locator("#board-body").is_visible()  # the board it follows stays offstage
    sgt.context.close()


def test_the_citywide_counters_follow_a_job_row_by_row(world, dispatch, live_server,
                                                       browser) -> None:
    """A commander's /city page: an assignment in the 75th changes the 75th's row and the
    citywide line in place (the socket sends those two rows, not the table), and the table
    keeps its shape: one row per precinct, the citywide line still in its footer."""
    job = make_job(dispatch, "75")
    base = live_server.url
    page = browser_login(browser, base, "city")
    page.goto(f"{base}/city")
    wait_live(page)
    rows = page.locator("#city-counters tbody tr").count()
    assert rows > 2
    cell = "#city-75 [data-k='{}']"
    assert page.inner_text(cell.format("assigned")) == "0"
    unassigned = int(page.inner_text(cell.format("unassigned")))
    total_assigned = page.locator("#city-total td").nth(2)
    assert total_assigned.inner_text() == "0"
    page.evaluate("""() => { window.__marker = 'no reload';
        window.__sent = [];
        document.body.addEventListener('htmx:wsAfterMessage',
                                       (e) => window.__sent.push(e.detail.message)); }""")
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    page.wait_for_function(
        "document.querySelector(\"#city-75 [data-k='assigned']\").textContent === '1'",
        timeout=5000)
    assert page.inner_text(cell.format("unassigned")) == str(unassigned - 1)
    assert total_assigned.inner_text() == "1"
    assert page.locator("#city-counters tbody tr").count() == rows
    assert page.locator("#city-counters tfoot #city-total").count() == 1
    assert page.locator("#city-75").count() == 1
    assert page.evaluate("window.__marker") == "no reload"
    sent = "".join(page.evaluate("window.__sent"))
    assert 'id="city-75"' in sent and 'id="city-120"' not in sent
    assert 'id="city-counters"' not in sent
    page.context.close()

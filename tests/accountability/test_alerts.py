"""Supervisors' alerts, review count and command log, live on the board socket; the banner in
a browser."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from board.accountability.deadlines import DEADLINE_ACTOR
from tests.conftest import browser_login, make_job
from tests.live.test_live import recv_until, socket, web_login


def _now_clock(clock) -> None:  # type: ignore[no-untyped-def]
    """Alerts cover the last tour by the real clock: bring the test clock to now."""
    clock.now = datetime.now(UTC)


def test_p1_overdue_review_count_and_log_reach_supervisors_live(world, dispatch, clock,
                                                                live_server) -> None:
    _now_clock(clock)
    quiet = make_job(dispatch)  # Noise: P3, no alert
    sgt = web_login(live_server.url, "sgt75")
    cmd = web_login(live_server.url, "cmd")
    with socket(live_server.url, "/ws/board/75", sgt) as board, \
            socket(live_server.url, "/ws/board/75", cmd) as view:
        snap = board.recv(timeout=5)
        assert 'id="board-alerts"' in snap and 'class="alert ' not in snap
        assert 'board-alerts' not in view.recv(timeout=5)  # commanders read, are not alerted

        p1 = make_job(dispatch, complaint="Blocked Driveway", descriptor="No Access")
        text = recv_until(board, lambda t: 'data-seq' in t and f"#{p1} " in t)
        assert re.search(rf'class="alert alert-p1" data-seq="\d+" data-stage="dispatch" hidden>'
                         rf'\s*<strong>P1 job'
                         rf'</strong> <a href="/jobs/{p1}">', text)
        assert f'href="/jobs/{quiet}"' not in text.split('id="board-alerts"')[1]

        clock.advance(minutes=11)
        assert dispatch.mark_overdue(DEADLINE_ACTOR, quiet, "dispatch") is not None
        text = recv_until(board, lambda t: "alert-overdue" in t)
        assert re.search(rf'alert-overdue" data-seq="\d+" data-stage="dispatch" hidden>\s*'
                         rf'<strong>OVERDUE: not dispatched</strong> <a href="/jobs/{quiet}">',
                         text)

        dispatch.admin_close(world.actors["sgt75"], quiet, 1, "duplicate")
        text = recv_until(board, lambda t: 'id="review-count" class="count hot"' in t)
        assert re.search(r'id="review-count" class="count hot"[^>]*>1<', text)

        dispatch.log_entry(world.actors["sgt75"], "75", "Desk relieved by Sgt Ruiz")
        text = recv_until(board, lambda t: "Desk relieved by Sgt Ruiz" in t)
        assert 'id="log-latest"' in text
        seen = [recv_until(view, lambda t: 'data-seq' in t)]
        assert not any("Desk relieved" in t or "board-alerts" in t for t in seen)
    sgt.close()
    cmd.close()


def test_the_banner_shows_and_is_acknowledged_per_device(world, dispatch, clock,
                                                         live_server, browser) -> None:
    _now_clock(clock)
    page = browser_login(browser, live_server.url, "sgt75")
    page.goto(f"{live_server.url}/board/75")
    page.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    banner = page.locator("#board-alerts")
    assert banner.is_hidden()
    p1 = make_job(dispatch, complaint="Blocked Driveway", descriptor="No Access")
    banner.wait_for(state="visible", timeout=10000)
    assert f"#{p1} Blocked Driveway" in banner.inner_text()
    assert "P1 job" in banner.inner_text()
    page.wait_for_function("window.boardAlerts.beeps >= 1")  # the sound is on by default
    banner.get_by_role("button", name="Alert sound on").click()
    banner.get_by_role("button", name="Acknowledge").click()
    banner.wait_for(state="hidden")
    page.reload()  # remembered on this device
    page.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    assert page.locator("#board-alerts").is_hidden()
    clock.advance(minutes=11)
    dispatch.mark_overdue(DEADLINE_ACTOR, p1, "dispatch")
    page.locator("#board-alerts .alert-overdue").wait_for(state="visible", timeout=10000)
    assert page.locator("#board-alerts .alert-p1").is_hidden()  # acknowledged already
    assert page.locator("#board-alerts .alerts-sound").inner_text() == "Alert sound off"
    assert page.evaluate("window.boardAlerts.beeps") == 0  # muted on this device: silent
    page.context.close()


def test_the_wall_says_overdue_in_words(world, dispatch, clock) -> None:
    from board.live.render import Renderer
    from board.web.app import templates

    queued = make_job(dispatch)
    working = make_job(dispatch)
    dispatch.assign(world.actors["sgt75"], working, 1, world.unit("75-A"))
    clock.advance(minutes=11)
    wall = Renderer(dispatch.engine, dispatch.geo, templates().env, clock=clock).wall("75")
    for job, late in ((queued, "not dispatched"), (working, "not acknowledged")):
        card = wall.split(f'id="job-{job}"')[1].split("</article>")[0]
        assert f'<span class="badge late">OVERDUE: {late}</span>' in card


def test_a_device_opening_the_board_sees_only_alerts_still_to_act_on(world, dispatch, clock,
                                                                      client) -> None:
    """Never acknowledged on this device: not the tour's every alert, only open jobs' (one line
    each, its newest), of the last tour, still in this precinct."""
    from board.storage.schema import events
    from tests.web.test_pages import login

    clock.now = datetime.now(UTC) - timedelta(hours=9, minutes=50)  # all done by now
    d, sgt = dispatch, world.actors["sgt75"]
    p1 = {"complaint": "Blocked Driveway", "descriptor": "No Access"}
    stale = make_job(d, **p1)                     # open, but its alert is from the last tour
    clock.advance(hours=9)
    p1_closed = make_job(d, **p1)
    d.assign(sgt, p1_closed, 1, world.unit("75-A"))
    d.close(world.actors["off75a"], p1_closed, 2, "action_taken", note="done")
    p1_routed = make_job(d, **p1)
    d.route(world.actors["city"], p1_routed, 1, "120")
    late_closed = make_job(d)
    p1_open = make_job(d, **p1)
    late_open = make_job(d)
    d.assign(sgt, late_open, 1, world.unit("75-B"))
    clock.advance(minutes=11)
    for job, stage in ((late_closed, "dispatch"), (late_open, "ack"), (p1_open, "dispatch")):
        assert d.mark_overdue(DEADLINE_ACTOR, job, stage) is not None
    d.admin_close(sgt, late_closed, 1, "duplicate")
    clock.advance(minutes=35)
    assert d.mark_overdue(DEADLINE_ACTOR, late_open, "arrive") is not None
    with d.engine.connect() as conn:  # the alerts were there: 3 P1 arrivals, 4 overdue marks
        kinds = [r.kind for r in conn.execute(events.select().where(
            events.c.kind.in_(("create", "overdue"))))]
    assert kinds.count("overdue") == 4

    login(client, "sgt75")
    page = client.get("/board/75").text
    banner = page.split('id="board-alerts"')[1].split("</section>")[0]
    lines = re.findall(r'<strong>([^<]+)</strong> <a href="/jobs/(\d+)">', banner)
    # in the cards' words: the assigned job is late for acknowledgement first (and for arrival)
    assert lines == [("OVERDUE: not acknowledged", str(late_open)),
                     ("P1 OVERDUE: not dispatched", str(p1_open))]
    assert f"/jobs/{stale}" not in banner


def test_the_wall_ticker_leaves_out_what_only_supervisors_read(world, dispatch, clock) -> None:
    """Review findings, command-log entries and policy changes are not for the room."""
    from board.live.render import Renderer
    from board.web.app import templates

    sgt = world.actors["sgt75"]
    job = make_job(dispatch)
    dispatch.admin_close(sgt, job, 1, "duplicate")
    dispatch.review(sgt, job, 2, "spoken_to", "talked at roll call")
    dispatch.log_entry(sgt, "75", "Desk relieved by Sgt Ruiz")
    dispatch.set_policy(world.actors["admin"], "75", "photo_before_close", True)
    wall = Renderer(dispatch.engine, dispatch.geo, templates().env, clock=clock).wall("75")
    kinds = re.findall(r'data-kind="([a-z_]+)"', wall.split('id="ticker"')[1])
    assert "admin_close" in kinds
    assert not {"review", "log_entry", "set_policy"} & set(kinds)


def test_an_alert_leaves_when_its_job_gets_past_the_stage(world, dispatch, clock) -> None:
    """A P1 alerted as not dispatched, then as not acknowledged, leaves once on scene; an
    event from before the "dispatch" stage existed ("ack" for a job no unit had) reads as "not
    dispatched", on the banner and in the timeline: the event itself is never rewritten."""
    from board.accountability import alerts
    from board.storage import db
    from board.usecases import queries
    from board.web.app import templates

    _now_clock(clock)
    d, sgt, off = dispatch, world.actors["sgt75"], world.actors["off75a"]
    p1 = make_job(d, complaint="Blocked Driveway", descriptor="No Access")
    old = make_job(d)
    with db.write(d.engine) as conn:  # as the worker wrote it before this change
        d._event(conn, DEADLINE_ACTOR, "overdue", job=d._job(conn, old), payload={"stage": "ack"})

    def banner() -> dict[int, str]:
        with db.read(d.engine) as conn:
            return {a.job_id: a.text for a in alerts.recent(conn, "75", clock())}

    assert banner() == {p1: "P1 job", old: "OVERDUE: not dispatched"}
    clock.advance(minutes=6)
    assert d.mark_overdue(DEADLINE_ACTOR, p1, "dispatch") is not None
    assert banner()[p1] == "P1 OVERDUE: not dispatched"
    d.assign(sgt, p1, 1, world.unit("75-A"))
    assert p1 not in banner()  # dispatched: that alert is answered
    assert d.mark_overdue(DEADLINE_ACTOR, p1, "ack") is not None
    assert banner()[p1] == "P1 OVERDUE: not acknowledged"
    for version, step in enumerate(("acknowledge", "en_route", "on_scene"), 2):
        getattr(d, step)(off, p1, version)
    assert p1 not in banner()
    detail = queries.job(d.engine, sgt, old, clock())
    html = templates().env.get_template("partials/timeline.html").render(c=detail.card, d=detail)
    assert "OVERDUE: not dispatched" in html and "acknowledge" not in html

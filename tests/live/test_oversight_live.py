"""The review queue, the command log and the header's review count, live over a real socket:
a page that follows its socket ends up equal to a fresh load, only for its precinct's readers."""

from __future__ import annotations

import contextlib
import re

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from board.auth import accounts as auth
from board.live.replica import Replica, normal
from board.storage.schema import events
from tests.conftest import PASSWORD, make_job
from tests.live.test_fragments import assert_same
from tests.live.test_live import closed_with, recv_until, socket, web_login


def flagged_close(world, dispatch, precinct: str = "75") -> int:  # type: ignore[no-untyped-def]
    """A job closed without arriving, minutes after assignment: flagged for review."""
    job = make_job(dispatch, precinct)
    sgt, unit, off = {"75": ("sgt75", "75-A", "off75a"),
                      "120": ("sgt120", "120-A", "off120")}[precinct]
    dispatch.assign(world.actors[sgt], job, 1, world.unit(unit))
    dispatch.close(world.actors[off], job, 2, "action_taken", note="gone on arrival")
    return job


def last_seq(ws, texts: list[str], seq: int) -> None:  # type: ignore[no-untyped-def]
    """Read messages until one shows event `seq` (or later) was read, and what the hub sends
    right after it (the header's count comes in a message of its own), keeping them all."""
    def seen(t: str) -> bool:
        texts.append(t)
        m = re.search(r'id="live-beat" hidden data-seq="(\d+)"', t)
        return bool(m) and int(m[1]) >= seq
    recv_until(ws, seen, timeout=20)  # a busy machine: a generous bound, met in well under 1 s
    with contextlib.suppress(TimeoutError):
        while True:
            texts.append(ws.recv(timeout=0.5))


def followed(page: str, texts: list[str]) -> Replica:
    r = Replica(page)
    for t in texts:
        r.apply(t)
    return r


def test_the_review_page_follows_its_queue_and_the_header_count(world, dispatch,
                                                                 live_server) -> None:
    d, sgt = dispatch, world.actors["sgt75"]
    first, keep = flagged_close(world, d), flagged_close(world, d)
    client = web_login(live_server.url, "sgt75")
    page = client.get("/review/75").text
    texts: list[str] = []
    with socket(live_server.url, "/ws/review/75", client) as ws:
        second = flagged_close(world, d)
        flagged_close(world, d, "120")  # another precinct's queue: not on this page
        d.review(sgt, first, 3, "no_issue", "checked the timeline")
        d.review(sgt, second, 3, "reopened", "call the caller back")
        d.note(sgt, second, "called back")
        d.assign(sgt, second, 4, world.unit("75-B"))
        d.close(world.actors["off75b"], second, 5, "action_taken")  # back, flagged reopened
        third = flagged_close(world, d)
        last_seq(ws, texts, max_seq(d))
    now = client.get("/review/75").text
    got = followed(page, texts)
    for id_ in ("review-rows", "review-pending", "review-count"):
        assert_same(got.html(id_), normal(now, id_))
    rows = got.html("review-rows")
    assert f'id="review-{first}"' not in rows and f'id="review-{second}"' in rows
    assert f'id="review-{third}"' in rows and "Reopened" in rows
    assert f'id="review-{keep}"' in rows and "(3 to review)" in got.html("review-pending")
    # a review row is deleted and inserted by id, not the whole list sent on each change
    assert any(f'<div id="review-{first}" hx-swap-oob="delete">' in t for t in texts)
    assert not any('id="review-rows"' in t for t in texts[2:])
    client.close()


def max_seq(dispatch) -> int:  # type: ignore[no-untyped-def]
    with dispatch.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(events.c.seq))).scalar_one()


def test_the_command_log_page_follows_new_entries_and_corrections(world, dispatch,
                                                                  live_server) -> None:
    d, sgt = dispatch, world.actors["sgt75"]
    old = d.log_entry(sgt, "75", "Tour begins, 6 RMPs")["entry_id"]
    client = web_login(live_server.url, "sgt75")
    page = client.get("/log/75").text
    texts: list[str] = []
    with socket(live_server.url, "/ws/log/75", client) as ws:
        d.log_entry(world.actors["sgt120"], "120", "Not for the 75th")
        d.log_entry(sgt, "75", "<script>alert(1)</script> see #12")
        d.log_entry(sgt, "75", "Tour begins, 5 RMPs", corrects=old)
        seq = d.log_entry(sgt, "75", "Desk relieved")["seq"]
        last_seq(ws, texts, seq)
    now = client.get("/log/75").text
    got = followed(page, texts)
    assert_same(got.html("log-entries"), normal(now, "log-entries"))
    pushed = "".join(texts)
    assert "Not for the 75th" not in pushed
    assert "<script>alert" not in pushed and "&lt;script&gt;" in pushed
    assert '<a href="/jobs/12">#12</a>' in pushed
    entries = got.html("log-entries")
    assert entries.index("Desk relieved") < entries.index("Tour begins, 6 RMPs")
    assert "Tour begins, 5 RMPs" in got.html(f"log-{old}")  # under the one it corrects
    client.close()


def test_a_searched_log_is_not_live(world, live_server) -> None:
    client = web_login(live_server.url, "sgt75")
    assert 'ws-connect="/ws/log/75"' in client.get("/log/75").text
    assert "ws-connect" not in client.get("/log/75?q=desk").text
    client.close()


@pytest.mark.parametrize("path", ["/ws/review/75", "/ws/log/75"])
def test_only_the_precincts_readers_hear_its_queue_and_log(world, dispatch, live_server,
                                                          path) -> None:
    for who in ("sgt120", "off75a", "off120"):
        client = web_login(live_server.url, who)
        with socket(live_server.url, path, client) as ws:
            assert closed_with(ws) == 4403, who
        client.close()
    with socket(live_server.url, path) as ws:  # nobody logged in
        assert closed_with(ws) == 4401
    # a commander reads, without the forms that act
    flagged_close(world, dispatch)
    dispatch.log_entry(world.actors["sgt75"], "75", "Desk relieved")
    client = web_login(live_server.url, "cmd")
    with socket(live_server.url, path, client) as ws:
        snap = ws.recv(timeout=5)
        assert ("review-row" in snap) if "review" in path else ("Desk relieved" in snap)
        assert "<form" not in snap
    client.close()


def test_a_supervisor_of_several_precincts_counts_them_all_at_load_and_live(
        world, dispatch, live_server) -> None:
    """The header counts every precinct of yours, on every page and on every push."""
    auth.add_user(dispatch.engine, "sgtboth", PASSWORD, "supervisor", "75,120", "SGTBOTH")
    flagged_close(world, dispatch, "75")
    flagged_close(world, dispatch, "120")
    both = web_login(live_server.url, "sgtboth")
    one = web_login(live_server.url, "sgt75")

    def count(client: httpx.Client, path: str = "/board/75") -> str:
        return normal(client.get(path).text, "review-count")

    assert ">2<" in count(both) and ">2<" in count(both, "/log/120")
    assert ">1<" in count(one)
    index = both.get("/review", follow_redirects=False)
    assert index.status_code == 200  # several precincts: the count of each, not a redirect
    assert re.search(r"75 Pct</a></td><td>1<", index.text)
    assert re.search(r"120 Pct</a></td><td>1<", index.text)
    assert one.get("/review", follow_redirects=False).headers["location"] == "/review/75"

    page_both, page_one = both.get("/board/75").text, one.get("/board/75").text
    seen_both: list[str] = []
    seen_one: list[str] = []
    with socket(live_server.url, "/ws/board/75", both) as ws_both, \
            socket(live_server.url, "/ws/board/75", one) as ws_one:
        flagged_close(world, dispatch, "120")  # not on this board, but in sgtboth's count
        recv_until(ws_both, lambda t: seen_both.append(t) or 'id="review-count"' in t
                   and ">3<" in t)
        flagged_close(world, dispatch)
        seq = max_seq(dispatch)
        last_seq(ws_both, seen_both, seq)
        last_seq(ws_one, seen_one, seq)
    assert_same(followed(page_both, seen_both).html("review-count"), count(both))
    assert_same(followed(page_one, seen_one).html("review-count"), count(one))
    assert ">4<" in count(both) and ">2<" in count(one)
    both.close()
    one.close()


def test_a_pushed_review_row_records_a_finding_in_the_browser(world, dispatch, live_server,
                                                              browser) -> None:
    """Chromium: a row that arrives live can be acted on (its form gets the page's CSRF token),
    and what the supervisor was typing in another row and the timeline they opened stay."""
    from tests.conftest import browser_login

    first = flagged_close(world, dispatch)
    page = browser_login(browser, live_server.url, "sgt75")
    page.goto(f"{live_server.url}/review/75")
    page.wait_for_function("window.boardLive && window.boardLive.state === 'live'")
    row = page.locator(f"#review-{first}")
    row.locator("summary").click()
    row.locator("textarea[name=comment]").fill("half-written")
    second = flagged_close(world, dispatch)
    page.locator(f"#review-{second}").wait_for(timeout=10000)
    # The row and the header's count come in separate messages (two audiences): wait for both.
    expect(page.locator("#review-pending")).to_have_text("(2 to review)", timeout=10000)
    expect(page.locator("#review-count")).to_have_text("2", timeout=10000)
    assert row.locator("textarea[name=comment]").input_value() == "half-written"
    assert row.locator("details").evaluate("d => d.open")
    pushed = page.locator(f"#review-{second}")
    pushed.get_by_label("Officer spoken to").check()
    pushed.locator("textarea[name=comment]").fill("spoke to P.O. at roll call")
    pushed.get_by_role("button", name="Record finding").click()
    page.wait_for_url(f"{live_server.url}/review/75")
    page.locator(f"#review-{second}").wait_for(state="detached", timeout=10000)
    expect(page.locator("#review-count")).to_have_text("1", timeout=10000)
    page.context.close()

"""The review queue, command log and close policies as people use them: pages and form posts."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from board.domain.policies import NOTE_WITHOUT_ARRIVAL, PHOTO_BEFORE_CLOSE
from board.storage import db
from board.storage.schema import events
from tests.conftest import make_job
from tests.web.test_pages import login


def kinds(engine, kind: str) -> list[dict]:  # type: ignore[no-untyped-def]
    with db.read(engine) as conn:
        return [r.payload for r in conn.execute(
            sa.select(events.c.payload).where(events.c.kind == kind).order_by(events.c.seq))]


def flagged_close(world, dispatch) -> int:  # type: ignore[no-untyped-def]
    job = make_job(dispatch)
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    dispatch.close(world.actors["off75a"], job, 2, "action_taken")
    return job


def test_review_page_supervisor_acts_commander_reads_others_refused(world, dispatch,
                                                                    app) -> None:
    job = flagged_close(world, dispatch)
    with TestClient(app) as sgt, TestClient(app) as cmd, TestClient(app) as off, \
            TestClient(app) as other:
        csrf = login(sgt, "sgt75")
        page = sgt.get("/review/75").text
        assert f'id="review-{job}"' in page and "Closed within 5 minutes of assignment" in page
        assert '<details class="review-timeline">' in page and 'data-kind="assign"' in page
        assert re.search(r'id="review-count" class="count hot"[^>]*>1<', page)  # the nav count
        r = sgt.post(f"/review/75/{job}", data={"csrf": csrf, "version": 3, "finding": "no_issue",
                                                "comment": ""})
        assert "Not saved: Comment: is required" in r.text  # refused, said on the page
        r = sgt.post(f"/review/75/{job}", data={"csrf": csrf, "version": 3,
                                                "finding": "spoken_to", "comment": "Talked."})
        assert r.status_code == 200 and f'id="review-{job}"' not in r.text
        assert kinds(dispatch.engine, "review") == [{"finding": "spoken_to",
                                                     "comment": "Talked."}]

        job2 = flagged_close(world, dispatch)
        ccsrf = login(cmd, "cmd")
        page = cmd.get("/review/75").text
        assert f'id="review-{job2}"' in page and "Record finding" not in page
        r = cmd.post(f"/review/75/{job2}", data={"csrf": ccsrf, "version": 3,
                                                 "finding": "no_issue", "comment": "x"})
        assert r.status_code == 403
        login(off, "off75a")
        assert off.get("/review/75").status_code == 403
        assert off.get("/review").status_code == 403
        login(other, "sgt120")
        assert other.get("/review/75").status_code == 403
        assert len(kinds(dispatch.engine, "review")) == 1


def test_command_log_page_links_escapes_searches_prints_and_is_scoped(world, dispatch,
                                                                      app) -> None:
    job = make_job(dispatch)
    with TestClient(app) as sgt, TestClient(app) as cmd, TestClient(app) as off:
        csrf = login(sgt, "sgt75")
        r = sgt.post("/log/75", data={"csrf": csrf,
                                      "text": f"Job #{job} <b>handled</b> by 75-A"})
        assert r.status_code == 200
        assert f'<a href="/jobs/{job}">#{job}</a>' in r.text
        assert "&lt;b&gt;handled&lt;/b&gt;" in r.text and "<b>handled" not in r.text
        entry = int(re.search(r'data-entry-id="(\d+)"', r.text).group(1))
        r = sgt.post("/log/75", data={"csrf": csrf, "text": "75-B, not 75-A",
                                      "corrects": entry})
        assert re.search(r'class="log-corrections">\s*<li class="log-entry correction"', r.text)
        assert "75-B, not 75-A" in sgt.get("/log/75?q=75-B").text
        assert "No entries match" in sgt.get("/log/75?q=nothing-like-this").text
        assert "No entries match" in sgt.get("/log/75?from=2031-01-01").text
        assert sgt.get("/log/75?from=garbage").status_code == 422
        printed = sgt.get("/log/75/print").text  # the current tour
        assert "handled" in printed and "/static/print.css" in printed
        assert "Correct this entry" not in printed

        ccsrf = login(cmd, "cmd")
        assert "handled" in cmd.get("/log/75").text
        assert cmd.post("/log/75", data={"csrf": ccsrf, "text": "hi"}).status_code == 403
        login(off, "off75a")
        assert off.get("/log/75").status_code == 403
        assert off.get("/log/75/print").status_code == 403
    with db.read(dispatch.engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM command_log")).scalar() == 2


def test_policies_page_admins_edit_and_the_history_names_them(world, dispatch, app) -> None:
    with TestClient(app) as admin, TestClient(app) as sgt, TestClient(app) as off:
        csrf = login(admin, "admin")
        r = admin.post("/policies", data={"csrf": csrf, "scope": "75",
                                          "kind": PHOTO_BEFORE_CLOSE, "enabled": "on"})
        assert r.status_code == 200
        page = html.unescape(r.text)
        assert "A job with photos cannot be closed before a photo is viewed" in page
        assert "ADMIN" in page  # the history says who
        admin.post("/policies", data={"csrf": csrf, "scope": "120",
                                      "kind": NOTE_WITHOUT_ARRIVAL, "enabled": "on"})
        bad = admin.post("/policies", data={"csrf": csrf, "scope": "75",
                                            "kind": "note_quick_close", "minutes": "0"})
        assert "Not saved: Minutes: must be between 1 and 1440" in html.unescape(bad.text)
        scsrf = login(sgt, "sgt75")
        mine = sgt.get("/policies").text
        assert "Set a policy" not in mine
        # the 75th's supervisor reads the 75th's setting and change, not the 120th's
        assert "75 Pct" in mine and "120 Pct" not in mine
        assert sgt.post("/policies", data={"csrf": scsrf, "scope": "75",
                                           "kind": PHOTO_BEFORE_CLOSE}).status_code == 403
        login(off, "off75a")
        assert off.get("/policies").status_code == 403


def test_a_refused_close_keeps_what_the_officer_chose(world, dispatch, app) -> None:
    dispatch.set_policy(world.actors["admin"], "*", NOTE_WITHOUT_ARRIVAL, True)
    dispatch.set_policy(world.actors["admin"], "*", PHOTO_BEFORE_CLOSE, True)
    job = make_job(dispatch, media=("https://example.org/p.jpg",))
    dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    with TestClient(app) as off:
        csrf = login(off, "off75a")
        queue = off.get("/my").text
        assert "Closing without arriving on scene needs a note" in queue  # said up front
        r = off.post(f"/jobs/{job}/act/close",
                     data={"csrf": csrf, "version": 2, "disposition": "summons_issued",
                           "summons_count": "2", "note": "Two tickets written", "next": "/my"})
        assert r.status_code == 200 and r.url.path == "/my"
        text = html.unescape(r.text)
        assert "Not saved" in text and "open at least one before closing" in text
        assert re.search(r'<option value="summons_issued"[^>]*selected', r.text)
        assert 'name="summons_count"' in r.text and 'value="2"' in r.text
        assert ">Two tickets written</textarea>" in r.text
        assert '<details class="close-early" open>' in r.text
        again = off.get("/my").text  # kept once: a fresh look is a fresh form
        assert "Two tickets written" not in again


def test_nobody_reaches_another_precinct_by_url_or_form_field(world, dispatch, app) -> None:
    """A supervisor of the 75th, with the 120th's ids in a URL or a form field: refused, and
    nothing written; bad fields say which; a citywide supervisor cannot start a bogus log."""
    from board.usecases import Invalid

    job120 = make_job(dispatch, "120")
    dispatch.assign(world.actors["sgt120"], job120, 1, world.unit("120-A"))
    dispatch.close(world.actors["off120"], job120, 2, "action_taken")
    entry120 = dispatch.log_entry(world.actors["sgt120"], "120", "120 desk")["entry_id"]
    job75 = flagged_close(world, dispatch)
    before = len(kinds(dispatch.engine, "review")), len(kinds(dispatch.engine, "log_entry"))
    with TestClient(app) as sgt:
        csrf = login(sgt, "sgt75")
        for path in (f"/review/75/{job120}", f"/review/120/{job120}"):
            r = sgt.post(path, data={"csrf": csrf, "version": 3, "finding": "no_issue",
                                     "comment": "looks fine"})
            assert r.status_code == 403, path
        assert sgt.post("/log/120", data={"csrf": csrf, "text": "hi"}).status_code == 403
        r = sgt.post("/log/75", data={"csrf": csrf, "text": "fix", "corrects": entry120})
        assert f"no entry {entry120} in this precinct" in html.unescape(r.text)
        for data, says in (({"version": 3, "finding": "bogus", "comment": "x"}, "Finding:"),
                           ({"version": 3, "finding": "no_issue", "comment": "  "}, "Comment:"),
                           ({"version": "x", "finding": "no_issue", "comment": "ok"},
                            "Version:")):
            r = sgt.post(f"/review/75/{job75}", data={"csrf": csrf, **data})
            assert "Not saved: " + says in html.unescape(r.text), data
        r = sgt.post("/log/75", data={"csrf": csrf, "text": "x", "corrects": "abc"})
        assert "Not saved: Correction:" in html.unescape(r.text)
    assert (len(kinds(dispatch.engine, "review")),
            len(kinds(dispatch.engine, "log_entry"))) == before
    with pytest.raises(Invalid) as refused:
        dispatch.log_entry(world.actors["city"], "9999", "no such precinct")
    assert "precinct" in refused.value.errors


def test_a_long_queue_says_how_many_wait_beyond_the_rows_shown(world, dispatch, app,
                                                               monkeypatch) -> None:
    from board.accountability import reviews

    monkeypatch.setattr(reviews, "PAGE", 2)
    for _ in range(3):
        flagged_close(world, dispatch)
    with TestClient(app) as sgt:
        login(sgt, "sgt75")
        page = sgt.get("/review/75").text
    assert "(3 to review; the oldest 2 shown)" in page
    assert page.count('class="review-row"') == 2
    assert re.search(r'id="review-count" class="count hot"[^>]*>3<', page)


def test_a_saved_finding_log_entry_and_close_are_confirmed_on_the_page_they_land_on(
        world, dispatch, app) -> None:
    """Issue 17: after a finding, a close or a log entry nothing said it was saved. Each now
    lands with a polite status line (static/flash.js says it again once the page is up)."""
    job = flagged_close(world, dispatch)
    other = make_job(dispatch, "75")
    dispatch.assign(world.actors["sgt75"], other, 1, world.unit("75-A"))
    with TestClient(app) as sgt, TestClient(app) as off:
        csrf = login(sgt, "sgt75")
        r = sgt.post(f"/review/75/{job}", data={"csrf": csrf, "version": 3,
                                                "finding": "spoken_to", "comment": "Talked."})
        assert '<p class="flash flash-ok" role="status">Finding recorded.</p>' in r.text
        r = sgt.post("/log/75", data={"csrf": csrf, "text": "tour began"})
        assert '<p class="flash flash-ok" role="status">Log entry added.</p>' in r.text
        assert "Log entry added." not in sgt.get("/log/75").text  # said once, for that action
        ocsrf = login(off, "off75a")
        r = off.post(f"/jobs/{other}/act/close", data={
            "csrf": ocsrf, "version": 2, "disposition": "action_taken", "note": ""})
        assert f"Saved: close · job #{other}." in r.text
        refused = off.post(f"/jobs/{other}/act/close", data={
            "csrf": ocsrf, "version": 2, "disposition": "action_taken", "note": ""})
        assert "Saved:" not in refused.text  # a refusal is never confirmed

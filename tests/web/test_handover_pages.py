"""The handover report and the desk's memory on the web: page, CSV, scope; the job page's
earlier jobs at its place and the card's badge."""

from __future__ import annotations

import csv
import io

from starlette.testclient import TestClient

from tests.accountability.test_handover import tour_of_events
from tests.web.test_pages import login


def test_handover_page_and_csv_for_the_precincts_readers(world, clock, app) -> None:
    ids = tour_of_events(world, clock)
    with TestClient(app) as c:
        login(c, "sgt75")
        page = c.get("/handover/75")
        assert page.status_code == 200
        assert "75 Precinct · Tour handover" in page.text and "/static/print.css" in page.text
        assert f'href="/jobs/{ids["waiting"]}"' in page.text and "vehicle repair" in page.text
        r = c.get("/handover/75.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert {(x["section"], x["job"]) for x in rows if x["job"]} >= {
            ("carried_over", str(ids["waiting"])), ("flagged_close", str(ids["quick"])),
            ("caller_dispute", str(ids["quick"]))}
        assert c.get("/handover/75", params={"tour": "previous"}).status_code == 200
        assert c.get("/handover/75", params={"tour": "<script>"}).status_code == 400
        assert c.get("/handover/999").status_code == 404
    for who in ("off75a", "sgt120"):
        with TestClient(app) as c:
            login(c, who)
            assert c.get("/handover/75").status_code == 403
            assert c.get("/handover/75.csv").status_code == 403
    with TestClient(app) as c:
        login(c, "cmd")
        assert c.get("/handover/75").status_code == 200


def test_job_page_lists_earlier_jobs_here_and_the_card_counts_them(world, clock, app) -> None:
    from tests.conftest import make_job

    d = world.dispatch
    first = make_job(d, "75")  # make_job puts every job at 1 TEST STREET, one point
    d.admin_close(world.actors["sgt75"], first, 1, "duplicate")
    clock.advance(minutes=10)
    second = make_job(d, "75")
    with TestClient(app) as c:
        login(c, "sgt75")
        page = c.get(f"/jobs/{second}")
        section = page.text[page.text.index('id="place-memory-'):]
        assert f'href="/jobs/{first}"' in section and "duplicate" in section
        board = c.get("/board/75").text
        card = board[board.index(f'id="job-{second}"'):]
        assert "1 earlier here" in card[:card.index("</article>")]

"""QSTAT on the web: the sheet, the jobs behind a figure, CSV, the JSON API — and who may read."""

from __future__ import annotations

import csv
import io
import re

import pytest
from starlette.testclient import TestClient

from board.auth import accounts as auth
from tests.conftest import PASSWORD
from tests.qstat_helpers import add_history, utc
from tests.web.test_pages import login

DAY = {"from": "2026-11-28", "to": "2026-11-29"}


def _data(world) -> dict[str, int]:  # type: ignore[no-untyped-def]
    d = world.dispatch
    return {
        "quick": add_history(d, "75", utc("2026-11-28T14:00:00"), utc("2026-11-28T14:03:00")),
        "slow": add_history(d, "75", utc("2026-11-28T15:00:00"), utc("2026-11-28T17:00:00"),
                            "Illegal Parking"),
        "other": add_history(d, "120", utc("2026-11-28T15:00:00"),
                             utc("2026-11-28T15:01:00")),
    }


def test_page_links_figures_to_their_jobs_and_downloads_csv(world, app) -> None:
    ids = _data(world)
    with TestClient(app) as c:
        login(c, "sgt75")
        page = c.get("/qstat", params={**DAY, "by": "tour"})
        assert page.status_code == 200
        sheet = page.text[page.text.index('id="qstat-sheet"'):]
        row = re.search(r'data-figure="closed_within_5_min">.*?<a href="([^"]+)">([^<]+)</a>',
                        sheet, re.S)
        assert row and row.group(2) == "1"
        assert "<svg" in page.text and "Jobs received per day" in page.text
        listed = c.get(row.group(1).replace("&amp;", "&"))
        assert listed.status_code == 200
        assert f'href="/jobs/{ids["quick"]}"' in listed.text
        assert f'href="/jobs/{ids["slow"]}"' not in listed.text
        assert f'href="/jobs/{ids["other"]}"' not in listed.text

        r = c.get("/qstat.csv", params={**DAY, "by": "tour", "table": "groups"})
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [(x["group"], x["jobs"], x["closed_within_5_min"]) for x in rows] == [
            ("day", "2", "1")]
        assert rows[0]["median_assign_min"] == ""  # history: no data, not zero
        sheet_csv = list(csv.DictReader(io.StringIO(
            c.get("/qstat.csv", params={**DAY, "table": "sheet"}).text)))
        jobs = next(x for x in sheet_csv if x["figure"] == "jobs")
        assert (jobs["this_period"], jobs["previous_period"], jobs["change"],
                jobs["rank"], jobs["of_precincts"]) == ("2", "0", "2", "1", "2")
        for table in ("dispositions", "trend", "comparison"):
            assert c.get("/qstat.csv", params={**DAY, "table": table}).status_code == 200
        assert c.get("/qstat", params={"from": "2026-11-29", "to": "2026-11-28"}
                     ).status_code == 400
        assert c.get("/qstat", params={**DAY, "by": "<script>"}).status_code == 400


def test_other_precincts_figures_refused_on_page_csv_api_and_jobs(world, app, engine) -> None:
    _data(world)
    auth.add_user(engine, "cmd120", PASSWORD, "commander", "120")
    for who in ("sgt120", "cmd120"):
        with TestClient(app) as c:
            login(c, who)
            mine = c.get("/qstat", params=DAY)
            assert mine.status_code == 200 and "120 Pct" in mine.text
            assert c.get("/qstat", params={**DAY, "precinct": "75"}).status_code == 403
            assert c.get("/qstat.csv", params={**DAY, "precinct": "75"}).status_code == 403
            assert c.get("/qstat/jobs", params={**DAY, "precinct": "75",
                                                "figure": "jobs"}).status_code == 403
            # without a precinct, their own scope only: the 75th's jobs are not in it
            groups = list(csv.DictReader(io.StringIO(
                c.get("/qstat.csv", params={**DAY, "table": "groups"}).text)))
            assert [g["group"] for g in groups] == ["120"]
            token = auth.create_token(engine, who, "qstat")
            api = c.get("/api/v1/qstat", params={**DAY, "precinct": "75"},
                        headers={"Authorization": f"Bearer {token}"})
            assert api.status_code == 403 and api.json()["error"] == "forbidden"
            own = c.get("/api/v1/qstat", params=DAY, headers={"Authorization": f"Bearer {token}"})
            assert own.status_code == 200
            assert [g["group"] for g in own.json()["groups"]] == ["120"]
    for who in ("off75a",):
        with TestClient(app) as c:
            login(c, who)
            assert c.get("/qstat").status_code == 403
            assert c.get("/qstat.csv").status_code == 403
    with TestClient(app) as c:
        assert c.get("/api/v1/qstat").status_code == 401


def test_api_gives_the_same_figures_and_is_documented(world, app, engine) -> None:
    _data(world)
    token = auth.create_token(engine, "city", "qstat")
    with TestClient(app) as c:
        r = c.get("/api/v1/qstat", params={**DAY, "by": "precinct"},
                  headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        doc = r.json()
        assert doc["scope"] is None and doc["period"] == {"from": "2026-11-28",
                                                          "to": "2026-11-29"}
        by = {g["group"]: g for g in doc["groups"]}
        assert by["75"]["this_period"]["jobs"] == 2 and by["120"]["this_period"]["jobs"] == 1
        # 3 and 120 minutes: the mean of the two, and PERCENTILE.INC's 3 + 0.9 × 117
        assert by["75"]["this_period"]["median_close_min"] == pytest.approx(61.5)
        assert by["75"]["this_period"]["p90_close_min"] == pytest.approx(108.3)
        assert by["75"]["this_period"]["median_assign_min"] is None
        assert by["75"]["rank"]["jobs"] == 1 and by["120"]["rank"]["jobs"] == 2
        assert doc["total"]["this_period"]["jobs"] == 3
        assert "PERCENTILE.INC" in doc["definitions"]["percentile"]
        empty = c.get("/api/v1/qstat", params={"from": "2020-01-01", "to": "2020-01-02"},
                      headers={"Authorization": f"Bearer {token}"})
        assert empty.status_code == 200 and empty.json()["total"]["this_period"]["jobs"] == 0
        assert empty.json()["total"]["this_period"]["median_close_min"] is None
        bad = c.get("/api/v1/qstat", params={"by": "borough"},
                    headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 422
        blank = c.get("/api/v1/qstat?to=&by=", headers={"Authorization": f"Bearer {token}"})
        assert blank.status_code == 422 and set(blank.json()["fields"]) == {"to", "by"}
        spec = c.get("/api/v1/openapi.json").json()
        assert "get" in spec["paths"]["/api/v1/qstat"]


def test_text_from_the_citys_data_is_escaped_on_the_page(world, app) -> None:
    add_history(world.dispatch, "75", utc("2026-11-28T14:00:00"), utc("2026-11-28T14:03:00"),
                "<img src=x onerror=alert(1)>")
    with TestClient(app) as c:
        login(c, "sgt75")
        page = c.get("/qstat", params={**DAY, "by": "complaint_type"}).text
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_no_data_is_plain_text_and_drill_downs_page(world, app, monkeypatch) -> None:
    from board.accountability import qstat

    ids = [add_history(world.dispatch, "75", utc(f"2026-11-28T{h}:00:00"),
                       utc(f"2026-11-28T{h}:10:00")) for h in range(10, 15)]
    monkeypatch.setattr(qstat, "JOBS_LIMIT", 2)
    with TestClient(app) as c:
        login(c, "sgt75")
        page = c.get("/qstat", params={**DAY, "by": "tour"})
        sheet = page.text[page.text.index('id="qstat-sheet"'):]
        row = re.search(r'data-figure="median_assign_min">(.*?)</tr>', sheet, re.S)
        assert row and "no data" in row.group(1) and "<a " not in row.group(1)
        assert '<span class="no-data">no data</span>' in page.text
        # a figure with data still links to its jobs
        jobs_row = re.search(r'data-figure="jobs">(.*?)</tr>', sheet, re.S)
        assert jobs_row and '<a href="/qstat/jobs?' in jobs_row.group(1)

        listed, pages = [], []
        url = "/qstat/jobs?" + "&".join(f"{k}={v}" for k, v in {**DAY, "figure": "jobs"}.items())
        while url:
            r = c.get(url.replace("&amp;", "&"))
            assert r.status_code == 200
            pages.append(r.text)
            listed += [int(x) for x in re.findall(r'href="/jobs/(\d+)"', r.text)]
            nxt = re.search(r'<a href="([^"]+)" rel="next">', r.text)
            url = nxt.group(1) if nxt else ""
        assert listed == ids and len(pages) == 3
        assert "5 jobs, oldest first: 1–2 shown (page 1 of 3)" in pages[0]
        assert "5 jobs, oldest first: 5–5 shown (page 3 of 3)" in pages[2]
        assert 'rel="prev"' in pages[1] and 'rel="prev"' not in pages[0]
        for bad in ("0", "-1", "x", "9" * 12):
            assert c.get("/qstat/jobs", params={**DAY, "figure": "jobs", "page": bad}
                         ).status_code == 400


def test_chronic_locations_table_and_csv(world, app) -> None:
    from board.domain.access import SYSTEM
    from board.usecases import NewJob
    from tests.conftest import point_in

    lat, lon = point_in(world.dispatch.geo, "75")
    for hour in range(10, 15):
        at = utc(f"2026-11-28T{hour}:00:00")
        world.dispatch.create_job(SYSTEM, NewJob("Noise - Residential", "", address="=1 ODD ST",
                                                 lat=lat, lon=lon, created_at=at), "manual")
    with TestClient(app) as c:
        login(c, "sgt75")
        page = c.get("/qstat", params=DAY)
        table = page.text[page.text.index('id="qstat-chronic"'):]
        assert "=1 ODD ST" in table and "<td>5</td>" in table
        rows = list(csv.DictReader(io.StringIO(
            c.get("/qstat.csv", params={**DAY, "table": "chronic"}).text)))
        assert [(r["precinct"], r["address"], r["most_in_30_days"]) for r in rows] == [
            ("75", "'=1 ODD ST", "5")]
        login(c, "sgt120")
        assert c.get("/qstat.csv", params={**DAY, "table": "chronic", "precinct": "75"}
                     ).status_code == 403

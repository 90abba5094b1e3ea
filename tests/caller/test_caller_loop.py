"""Issue 16's caller's loop end to end, on a real SMTP server: an Open311 request with an email
and consent, worked and closed; the email arrives with the status page's address; the page
shows the resolution and no officer; the caller's answer reaches QSTAT (page, API, CSV, its
jobs) and "still there" tops the review queue."""

from __future__ import annotations

import csv
import io
import re

import pytest

from board.accountability import qstat, reviews
from board.auth import accounts as auth
from board.caller.notices import NoticeWorker
from board.domain.presence import Fix
from board.domain.qstat import period
from board.settings import Settings
from tests.caller.mail import SmtpServer
from tests.conftest import point_in
from tests.web.test_pages import login

V2 = "/open311/v2"
PUBLIC = "https://board.example.nyc"
PERIOD = {"from": "2026-11-27", "to": "2026-11-30", "precinct": "75"}


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def test_the_callers_loop_end_to_end(client, world, smtp, clock):
    d = world.dispatch
    key = auth.create_token(d.engine, "admin", "open311")
    lat, lon = point_in(d.geo, "75")
    # 1. an Open311 POST with an email and consent
    filed = client.post(f"{V2}/requests.json", data={
        "api_key": key, "service_code": "blocked-driveway", "lat": str(lat), "long": str(lon),
        "address_string": "12 ATLANTIC AVE", "description": "Van across my driveway",
        "email": "neighbour@example.org", "contact_consent": "true", "first_name": "Rosa"})
    assert filed.status_code == 200, filed.text
    job_id = int(filed.json()[0]["service_request_id"])
    # 2. assign, on scene, close (the officer takes 12 minutes)
    off, sgt = world.actors["off75a"], world.actors["sgt75"]
    d.assign(sgt, job_id, 1, world.unit("75-A"))
    clock.advance(minutes=4)
    d.acknowledge(off, job_id, 2)
    d.en_route(off, job_id, 3)
    clock.advance(minutes=6)
    d.on_scene(off, job_id, 4, Fix(lat + 30 / 111_195, lon, 10))  # 30 m away (±10 m)
    clock.advance(minutes=2)
    d.close(off, job_id, 5, "action_taken")
    # 3. the emails arrive with the status page's address
    settings = Settings.from_env({"SMTP_URL": smtp.url, "PUBLIC_URL": PUBLIC,
                                  "MAIL_FROM": "NYPD 311 <311@nypd.example>",
                                  "SECRET_KEY": "x", "BOARD_VAR_DIR": "/tmp"})
    worker = NoticeWorker.from_settings(d, settings)
    assert worker.run_once() == 2 and worker.run_once() == 0
    assert [m["To"] for m in smtp.inbox.messages] == ["neighbour@example.org"] * 2
    body = smtp.inbox.bodies()[1]
    url = re.search(rf"{re.escape(PUBLIC)}/r/[A-Za-z0-9_-]{{43}}", body).group(0)
    assert all(url in b for b in smtp.inbox.bodies())
    path = url.removeprefix(PUBLIC)
    listed = client.get(f"{V2}/requests/{job_id}.json", params={"api_key": key}).json()
    assert listed[0]["status_url"] == f"http://testserver{path}"  # the app has no PUBLIC_URL
    # 4. the status page shows the resolution and no officer
    page = client.get(path)
    assert page.status_code == 200
    resolution = "The Police Department responded to the complaint and took action to fix " \
                 "the condition."
    assert resolution in page.text or "took action" in page.text
    for private in ("OFF75A", "off75a", "75-A", "Rosa", "neighbour@", "ATLANTIC", "Van across"):
        assert private not in page.text, private
    # 5. the survey answer arrives in QSTAT and in its jobs list
    form_token = re.search(r'name="form_token" value="([0-9a-f]+)"', page.text).group(1)
    clock.advance(hours=3)
    sent = client.post(path, data={"form_token": form_token, "satisfaction": "2",
                                   "still_there": "yes"}, follow_redirects=False)
    assert sent.status_code == 303
    assert "Disagree" in client.get(path).text
    p = period(PERIOD["from"], PERIOD["to"], clock())
    s = qstat.sheet(d.engine, sgt, p, "precinct", "75", clock())
    t = s.total.now
    assert (t["surveys_answered"], t["satisfied_share"], t["dissatisfied_share"],
            t["disputed_by_caller"]) == (1, 0.0, 1.0, 1)
    for figure in ("surveys_answered", "dissatisfied_share", "disputed_by_caller"):
        rows, total = qstat.jobs_behind(d.engine, sgt, p, "all", "", figure, "75", clock())
        assert total == 1 and [r.job_id for r in rows] == [job_id], figure
    rows, total = qstat.jobs_behind(d.engine, sgt, p, "all", "", "satisfied_share", "75",
                                    clock())
    assert total == 0
    verdict = {v.label: v for v in s.verdicts}
    later = verdict["Closed later"]  # 12 min: not a quick close
    assert (later.closes, later.figures["surveys_answered"],
            later.figures["dissatisfied_share"]) == (1, 1, 1.0)
    assert verdict["Arrival confirmed by position"].figures["disputed_by_caller"] == 1
    assert verdict["Arrival not confirmed"].closes == 0
    assert verdict["Closed within 5 min of assignment"].figures["satisfied_share"] is None
    rows, total = qstat.jobs_behind(d.engine, sgt, p, "all", "", "verdict:confirmed", "75",
                                    clock())
    assert [r.job_id for r in rows] == [job_id]
    by_disposition = {v.label: v for v in s.verdicts if v.section == "Disposition"}
    assert by_disposition["action_taken"].figures["disputed_by_caller"] == 1
    token = auth.create_token(d.engine, "sgt75", "api")
    api = client.get("/api/v1/qstat", params=PERIOD,
                     headers={"Authorization": f"Bearer {token}"}).json()
    assert api["total"]["this_period"]["surveys_answered"] == 1
    assert api["total"]["this_period"]["dissatisfied_share"] == 1.0
    assert {v["closes"] for v in api["verdicts"]} >= {"Closed later", "action_taken"}
    login(client, "sgt75")
    sheet = list(csv.reader(io.StringIO(client.get("/qstat.csv", params={
        **PERIOD, "table": "sheet"}).text)))
    cells = {row[0]: row[2] for row in sheet[1:]}
    assert (cells["surveys_answered"], cells["dissatisfied_share"],
            cells["disputed_by_caller"]) == ("1", "1.0000", "1")
    verdict_csv = client.get("/qstat.csv", params={**PERIOD, "table": "verdicts"}).text
    assert "Closed later,1,1,0.0000,1.0000,1" in verdict_csv
    html = client.get("/qstat", params=PERIOD).text
    assert "The caller&#39;s verdict" in html or "The caller's verdict" in html
    jobs_page = client.get("/qstat/jobs", params={**PERIOD, "figure": "disputed_by_caller"})
    assert jobs_page.status_code == 200 and f"/jobs/{job_id}" in jobs_page.text
    # 6. "still there" reaches the top of the review queue
    queue = reviews.pending(d.engine, sgt, "75", clock())
    assert queue[0].id == job_id and "caller_disputed" in queue[0].flags
    job_page = client.get(f"/jobs/{job_id}").text
    assert "the caller answered: Disagree; problem still there: yes" in job_page
    assert "the caller says the problem is still there" in job_page
    assert "the caller was told (closed, by email)" in job_page
    assert "neighbour@" not in job_page  # the address only through the recorded reveal
    review_page = client.get("/review/75")
    assert review_page.status_code == 200
    assert "The caller says the problem is still there" in review_page.text

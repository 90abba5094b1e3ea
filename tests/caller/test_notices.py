"""The notice worker (board.caller.notices): email through a real SMTP server, texts through a
signed webhook; each notice once, none lost while the mail server is down."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa

from board.caller import notices as notices_mod
from board.caller.notices import NoticeWorker, SmsWebhook, SmtpMailer, sign
from board.caller.status import token_of
from board.domain.access import SYSTEM
from board.storage import db
from board.storage.schema import events, notices
from board.usecases import NewJob
from tests.caller.mail import SmtpServer
from tests.conftest import point_in

PUBLIC = "https://status.example.nyc"


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


def caller_job(d, email: str | None = "caller@example.org", consent: bool = True,
               phone: str | None = None) -> int:
    lat, lon = point_in(d.geo, "75")
    fields = {k: v for k, v in (("email", email), ("phone", phone)) if v}
    if consent:
        fields["contact_consent"] = True
    return d.create_job(SYSTEM, NewJob("Blocked Driveway", "No Access", address="1 FULTON ST",
                                       lat=lat, lon=lon, fields=fields),
                        source="open311")["job_id"]


def work(world, job_id: int, close: bool = True) -> None:
    d, off = world.dispatch, world.actors["off75a"]
    d.assign(world.actors["sgt75"], job_id, 1, world.unit("75-A"))
    for v, step in enumerate((d.acknowledge, d.en_route, d.on_scene), start=2):
        step(off, job_id, v)
    if close:
        d.close(off, job_id, 5, "action_taken")


def mail_worker(d, smtp: SmtpServer) -> NoticeWorker:
    return NoticeWorker(d, [SmtpMailer(smtp.url, "NYPD 311 <noreply@nypd.example>")], PUBLIC,
                        domain="nypd.example")


def sent_rows(d) -> list[tuple]:
    with db.read(d.engine) as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(notices.c.job_id, notices.c.stage, notices.c.channel, notices.c.state)
            .order_by(notices.c.id))]


def test_on_scene_and_close_each_send_one_email_with_the_status_address(world, smtp):
    d = world.dispatch
    job_id = caller_job(d)
    worker = mail_worker(d, smtp)
    work(world, job_id, close=False)
    assert worker.run_once() == 1
    work_close = d.close(world.actors["off75a"], job_id, 5, "summons_issued", summons_count=1)
    assert work_close["kind"] == "close"
    assert worker.run_once() == 1
    assert worker.run_once() == 0  # nothing twice
    url = f"{PUBLIC}/r/{token_of(d.engine, job_id)}"
    on_scene, closed = smtp.inbox.messages
    assert on_scene["To"] == "caller@example.org" and on_scene["X-Envelope-To"] == (
        "caller@example.org")
    assert on_scene["From"] == "NYPD 311 <noreply@nypd.example>"
    assert "on scene" in on_scene["Subject"] and "closed" in closed["Subject"]
    bodies = smtp.inbox.bodies()
    assert all(url in b for b in bodies)
    assert "summons" in bodies[1].casefold() and "OFF75A" not in "".join(bodies)
    assert on_scene["Message-ID"] != closed["Message-ID"]
    assert on_scene["Message-ID"].endswith("@nypd.example>")
    with db.read(d.engine) as conn:
        evs = conn.execute(sa.select(events.c.kind, events.c.payload, events.c.actor).where(
            events.c.kind == "notice_sent")).all()
    assert [(e.payload["stage"], e.payload["channel"]) for e in evs] == [
        ("on_scene", "email"), ("closed", "email")]
    assert all("caller@" not in json.dumps(e.payload) for e in evs)
    assert {e.actor for e in evs} == {"notice worker"}
    assert sent_rows(d) == [(job_id, "on_scene", "email", "sent"),
                            (job_id, "closed", "email", "sent")]


def test_no_consent_or_no_contact_no_notice(world, smtp):
    d = world.dispatch
    for job_id in (caller_job(d, consent=False), caller_job(d, email=None)):
        work(world, job_id)
    assert mail_worker(d, smtp).run_once() == 0
    assert smtp.inbox.messages == [] and sent_rows(d) == []


def test_a_mail_server_down_delays_notices_and_loses_none(world, smtp, clock):
    d = world.dispatch
    worker = mail_worker(d, smtp)
    smtp.stop()
    jobs = [caller_job(d, email=f"c{i}@example.org") for i in range(3)]
    for job_id in jobs:
        work(world, job_id)
    assert worker.run_once() == 0
    assert worker.run_once() == 0  # not due again before its backoff
    with db.read(d.engine) as conn:
        rows = conn.execute(sa.select(notices)).all()
    assert len(rows) == 6 and {(r.state, r.attempts) for r in rows} == {("pending", 1)}
    assert all("Refused" in r.last_error or "refused" in r.last_error for r in rows)
    clock.advance(seconds=31)
    assert worker.run_once() == 0  # still down: the next try waits twice as long
    smtp.start()
    clock.advance(seconds=30)
    assert worker.run_once() == 0  # backoff (60 s) not over yet
    clock.advance(seconds=31)
    assert worker.run_once() == 6
    for _ in range(3):
        clock.advance(minutes=20)
        assert worker.run_once() == 0
    got = Counter((m["To"], "on scene" in m["Subject"]) for m in smtp.inbox.messages)
    assert got == Counter({(f"c{i}@example.org", s): 1 for i in range(3) for s in (True, False)})
    with db.read(d.engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).where(
            events.c.kind == "notice_sent")).scalar() == 6


def test_a_crash_after_sending_resends_after_the_lease_with_the_same_message_id(
        world, smtp, clock, monkeypatch):
    d = world.dispatch
    job_id = caller_job(d)
    work(world, job_id)
    worker = mail_worker(d, smtp)
    real = d.notice_sent

    def crash(*a, **kw):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(d, "notice_sent", crash)
    with pytest.raises(RuntimeError):
        worker.run_once()
    assert len(smtp.inbox.messages) == 1  # sent, not recorded: the row stays claimed
    monkeypatch.setattr(d, "notice_sent", real)
    clock.advance(minutes=5)
    assert worker.run_once() == 1  # the other notice; the claimed one waits for its lease
    assert len(smtp.inbox.messages) == 2
    clock.advance(minutes=6)
    assert worker.run_once() == 1
    ids = Counter(m["Message-ID"] for m in smtp.inbox.messages)
    assert sorted(ids.values()) == [1, 2]  # the one resend carries the first's Message-ID
    assert worker.run_once() == 0
    assert {r[3] for r in sent_rows(d)} == {"sent"}


def test_two_workers_plan_and_claim_each_notice_once(world, smtp):
    d = world.dispatch
    job_id = caller_job(d)
    work(world, job_id)
    a, b = mail_worker(d, smtp), mail_worker(d, smtp)
    a.plan()
    b.plan()
    rows = b.due(d.clock())
    assert len(rows) == 2
    assert a.claim(rows[0], d.clock()) and not b.claim(rows[0], d.clock())
    assert a.deliver() + b.deliver() == 1  # the unclaimed one, once
    assert len(smtp.inbox.messages) == 1


class Gateway(BaseHTTPRequestHandler):
    got: list[tuple[dict, bytes]] = []
    answer = 200

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.got.append((dict(self.headers), body))
        self.send_response(Gateway.answer)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gateway():
    Gateway.got, Gateway.answer = [], 200
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_texts_go_to_the_webhook_signed(world, gateway, clock):
    d = world.dispatch
    job_id = caller_job(d, email=None, phone="+1 (718) 555-0100")
    work(world, job_id)
    worker = NoticeWorker(d, [SmsWebhook(gateway, "s3cret", clock=lambda: 1_800_000_000)],
                          PUBLIC)
    Gateway.answer = 503
    assert worker.run_once() == 0 and len(Gateway.got) == 2
    Gateway.answer = 200
    clock.advance(minutes=1)
    assert worker.run_once() == 2
    headers, body = Gateway.got[-1]
    sent = json.loads(body)
    assert sent["to"] == "+17185550100" and sent["stage"] == "closed"
    assert sent["status_url"] == f"{PUBLIC}/r/{token_of(d.engine, job_id)}"
    assert sent["status_url"] in sent["text"] and sent["service_request"] == str(job_id)
    assert headers["X-Board-Timestamp"] == "1800000000"
    assert headers["X-Board-Signature"] == sign("s3cret", "1800000000", body)
    assert headers["Idempotency-Key"] == sent["id"]
    # a gateway that refuses the message for good: failed, never retried
    other = caller_job(d, email=None, phone="7185550199")
    work(world, other)
    Gateway.answer = 400
    assert worker.run_once() == 0
    clock.advance(hours=1)
    before = len(Gateway.got)
    assert worker.run_once() == 0 and len(Gateway.got) == before
    assert {r[3] for r in sent_rows(d) if r[0] == other} == {"failed"}


def test_settings_pick_the_channels():
    from board.settings import Settings

    s = Settings.from_env({"SMTP_URL": "smtp://127.0.0.1:2525", "MAIL_FROM": "a@b.example",
                           "PUBLIC_URL": "https://x.example/", "SMS_WEBHOOK_URL":
                           "https://gw.example/hook", "SMS_WEBHOOK_SECRET": "k",
                           "SECRET_KEY": "t", "BOARD_VAR_DIR": "/tmp"})
    assert s.public_url == "https://x.example" and s.embedded_notices
    w = NoticeWorker.from_settings(None, s)  # type: ignore[arg-type]
    assert set(w.channels) == {"email", "sms"} and w.domain == "b.example"
    with pytest.raises(ValueError):
        SmtpMailer("http://x", "a@b")
    assert notices_mod.backoff(1) == timedelta(seconds=30)
    assert notices_mod.backoff(20) == timedelta(minutes=15)


def test_board_notices_once(world, smtp, monkeypatch, database_url, tmp_path, capsys):
    from board.cli.main import main
    from tests.conftest import GEO_DIR

    for name, value in (("DATABASE_URL", database_url), ("BOARD_GEO_DIR", str(GEO_DIR)),
                        ("BOARD_VAR_DIR", str(tmp_path)), ("SECRET_KEY", "t"),
                        ("PUBLIC_URL", PUBLIC)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["notices", "--once"]) == 2  # no channel configured: says so
    assert "SMTP_URL" in capsys.readouterr().err
    monkeypatch.setenv("SMTP_URL", smtp.url)
    work(world, caller_job(world.dispatch))
    assert main(["notices", "--once"]) == 0
    assert "2 notice(s) sent" in capsys.readouterr().out
    assert len(smtp.inbox.messages) == 2 and PUBLIC in smtp.inbox.bodies()[0]


def test_board_serve_runs_the_worker_on_the_embedded_default(world, smtp, tmp_path):
    import time

    from starlette.testclient import TestClient

    from board.settings import Settings
    from board.web.app import create_app
    from tests.conftest import GEO_DIR

    d = world.dispatch
    settings = Settings.from_env({"SECRET_KEY": "t", "BOARD_VAR_DIR": str(tmp_path),
                                  "BOARD_GEO_DIR": str(GEO_DIR), "SMTP_URL": smtp.url,
                                  "PUBLIC_URL": PUBLIC, "NOTICE_WORKER": "1",
                                  "DEADLINE_WORKER": "0"})
    with TestClient(create_app(settings, d)):
        work(world, caller_job(d))
        deadline = time.monotonic() + 30
        while len(smtp.inbox.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting on another thread's mail, bounded
    assert len(smtp.inbox.messages) == 2

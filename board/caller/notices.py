"""The notice worker: tells a caller who agreed to it that an officer is on scene and that the
request is closed, by email (SMTP) and text (a signed HTTP webhook), with the status page's
address. It runs outside the write path, from the events table.

Two steps a pass, each in its own transactions:

1. **Plan.** Read the `on_scene`, `close` and `admin_close` events after the `notices` cursor
   (and those of the last minute again: on PostgreSQL an event with a lower seq can commit
   after a higher one) and add one outbox row per job, stage and channel the caller gave with
   consent. The unique (job, stage, channel) key makes the plan idempotent: no notice is ever
   planned twice, whichever worker or restart plans it.
2. **Deliver.** For each due row: *claim* it first (state `sending`, attempts + 1, committed),
   then send, then record it as sent through the one write path (`Dispatch.notice_sent`: the
   row turns `sent` with a `notice_sent` event in one transaction). A failure puts the row back
   to `pending` with a backoff (30 s doubling to 15 min); a mail server that is down only
   delays notices. A recipient the server refuses for good is `failed` (never retried).

A crash between the send and its record leaves the row `sending`. Each claim sends at most
once; a claim older than the lease (10 min) is taken again and sent again, so a notice is never
lost. That resend carries the same Message-ID (email) and Idempotency-Key (webhook) as the
first try, so a mail store or SMS gateway that keeps them drops the duplicate. The other choice,
never resending an unrecorded claim, would lose the notice whenever the crash came before the
send: losing a notice is worse for the caller than a duplicate the receiver can recognise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import smtplib
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa

from board.caller.status import address, number_of
from board.domain.privacy import CONSENT
from board.storage import db
from board.storage.schema import cursors, events, jobs, notices, status_pages
from board.usecases import Dispatch
from board.usecases.caller import NOTICE_ACTOR

__all__ = ["NoticeWorker", "SmsWebhook", "SmtpMailer", "sign"]

log = logging.getLogger("board.notices")

CURSOR = "notices"
STAGE_OF = {"on_scene": "on_scene", "close": "closed", "admin_close": "closed"}
RESCAN = timedelta(minutes=1)
LEASE = timedelta(minutes=10)
BACKOFF_FIRST, BACKOFF_MAX = 30.0, 900.0
EMAIL = re.compile(r"^[^\s@<>,;\"]{1,64}@[^\s@<>,;\"]+\.[^\s@<>,;\"]+$")


class TemporaryFailure(Exception):
    """Try again later (server down, busy, 4xx SMTP reply, 5xx or 429 from the gateway)."""


class PermanentFailure(Exception):
    """Never try again (the recipient is refused for good)."""


@dataclass(frozen=True)
class Message:
    notice_id: int
    job_id: int
    stage: str
    channel: str
    to: str
    subject: str
    text: str
    status_url: str
    number: str
    message_id: str


class Channel(Protocol):
    name: str

    def send(self, m: Message) -> None: ...


class SmtpMailer:
    """Email through the SMTP server of SMTP_URL: smtp://[user:password@]host[:port]
    (?starttls=1 to upgrade), or smtps:// for TLS from the start."""

    name = "email"

    def __init__(self, url: str, mail_from: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
        self.ssl = parts.scheme == "smtps"
        self.host, self.port = parts.hostname, parts.port or (465 if self.ssl else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true")
        self.mail_from = mail_from
        self.timeout = timeout

    def send(self, m: Message) -> None:
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = m.to
        msg["Subject"] = " ".join(m.subject.split())  # 311 text never breaks a header
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = m.message_id
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(m.text)
        smtp_class = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        try:
            with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            if all(500 <= c < 600 for c in codes):
                raise PermanentFailure(f"recipient refused ({codes})") from e
            raise TemporaryFailure(f"recipient deferred ({codes})") from e
        except (smtplib.SMTPException, OSError) as e:
            raise TemporaryFailure(f"{type(e).__name__}: {e}"[:250]) from e


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook's signature: HMAC-SHA256 over "<timestamp>.<body>", hex, "sha256=" first."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class SmsWebhook:
    """Texts through an SMS gateway's HTTP webhook: a JSON POST, signed (docs/caller.md)."""

    name = "sms"

    def __init__(self, url: str, secret: str, timeout: float = 10.0,
                 clock: Any = time.time) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("SMS_WEBHOOK_URL must be an http(s) URL")
        if not secret:
            raise ValueError("SMS_WEBHOOK_SECRET is required with SMS_WEBHOOK_URL")
        self.url, self.secret, self.timeout, self.clock = url, secret, timeout, clock

    def body(self, m: Message) -> bytes:
        return json.dumps({"id": f"notice-{m.notice_id}", "to": m.to, "text": m.text,
                           "status_url": m.status_url, "stage": m.stage,
                           "service_request": m.number}, separators=(",", ":")).encode()

    def send(self, m: Message) -> None:
        body = self.body(m)
        stamp = str(int(self.clock()))
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "311-dispatch-board",
            "X-Board-Timestamp": stamp, "X-Board-Signature": sign(self.secret, stamp, body),
            "Idempotency-Key": f"notice-{m.notice_id}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                resp.read(1024)
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code not in (408, 409, 425, 429):
                raise PermanentFailure(f"gateway refused: HTTP {e.code}") from e
            raise TemporaryFailure(f"gateway: HTTP {e.code}") from e
        except (urllib.error.URLError, OSError) as e:
            raise TemporaryFailure(f"gateway unreachable: {e}"[:250]) from e


def _phone(value: Any) -> str | None:
    text = str(value or "").strip()
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15:
        return None
    return ("+" if text.startswith("+") else "") + digits


def _email(value: Any) -> str | None:
    text = str(value or "").strip()
    return text if EMAIL.fullmatch(text) else None


def contact_for(channel: str, fields: dict[str, Any]) -> str | None:
    """The caller's address on a channel, if they gave a usable one and agreed to notices."""
    if fields.get(CONSENT) is not True:
        return None
    if channel == "email":
        return _email(fields.get("email") or fields.get("email_address"))
    return _phone(fields.get("phone") or fields.get("phone_number"))


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1)))


class NoticeWorker:
    def __init__(self, dispatch: Dispatch, channels: list[Channel], public_url: str | None,
                 *, interval: float = 5.0, batch: int = 200, lease: timedelta = LEASE,
                 domain: str = "localhost") -> None:
        self.dispatch = dispatch
        self.channels = {c.name: c for c in channels}
        self.public_url = public_url or "http://localhost:8000"
        self.interval, self.batch, self.lease = interval, batch, lease
        self.domain = domain

    @classmethod
    def from_settings(cls, dispatch: Dispatch, settings: Any, **kw: Any) -> NoticeWorker:
        channels: list[Channel] = []
        if settings.smtp_url:
            channels.append(SmtpMailer(settings.smtp_url, settings.mail_from))
        if settings.sms_webhook_url:
            channels.append(SmsWebhook(settings.sms_webhook_url,
                                       settings.sms_webhook_secret or ""))
        if not settings.public_url:
            log.warning("PUBLIC_URL is not set: notices link to http://localhost:8000")
        domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
        return cls(dispatch, channels, settings.public_url, domain=domain, **kw)

    # -- plan ---------------------------------------------------------------------------------

    def plan(self) -> int:
        """Add the outbox rows the new events call for; returns how many were added."""
        now = self.dispatch.clock()
        added = 0
        with db.write(self.dispatch.engine) as conn:
            cursor = int(conn.execute(sa.select(cursors.c.value).where(
                cursors.c.name == CURSOR)).scalar() or 0)
            query = (sa.select(events.c.seq, events.c.job_id, events.c.kind, jobs.c.fields)
                     .join(jobs, jobs.c.id == events.c.job_id)
                     .where(events.c.kind.in_(list(STAGE_OF))).order_by(events.c.seq))
            rows = conn.execute(query.where(events.c.seq > cursor).limit(self.batch)).all()
            rows += conn.execute(query.where(events.c.seq <= cursor,
                                             events.c.at >= now - RESCAN)).all()
            for r in rows:
                for channel in self.channels:
                    if contact_for(channel, r.fields or {}) is None:
                        continue
                    added += db.insert_new(conn, notices, {
                        "job_id": r.job_id, "stage": STAGE_OF[r.kind], "channel": channel,
                        "event_seq": r.seq, "state": "pending", "attempts": 0, "next_at": now})
            top = max([cursor, *(r.seq for r in rows)])
            if top != cursor:
                self._set_cursor(conn, top, now)
        return added

    def _set_cursor(self, conn: sa.Connection, value: int, now: datetime) -> None:
        done = conn.execute(cursors.update().where(cursors.c.name == CURSOR).values(
            value=str(value), updated_at=now))
        if done.rowcount == 0:
            db.insert_new(conn, cursors, {"name": CURSOR, "value": str(value), "updated_at": now})

    # -- deliver ------------------------------------------------------------------------------

    def due(self, now: datetime) -> list[Any]:
        with db.read(self.dispatch.engine) as conn:
            return conn.execute(sa.select(notices).where(sa.or_(
                sa.and_(notices.c.state == "pending", notices.c.next_at <= now),
                sa.and_(notices.c.state == "sending", notices.c.claimed_at < now - self.lease)))
                .order_by(notices.c.next_at, notices.c.id).limit(self.batch)).all()

    def claim(self, row: Any, now: datetime) -> bool:
        """Take the row for one send, recorded before sending (another worker that read the
        same row finds its attempts changed and leaves it)."""
        with db.write(self.dispatch.engine) as conn:
            done = conn.execute(notices.update().where(
                notices.c.id == row.id, notices.c.state == row.state,
                notices.c.attempts == row.attempts).values(
                state="sending", claimed_at=now, attempts=row.attempts + 1))
            return done.rowcount == 1

    def message(self, row: Any) -> Message | None:
        with db.read(self.dispatch.engine) as conn:
            job = conn.execute(
                sa.select(jobs.c.id, jobs.c.external_key, jobs.c.complaint_type, jobs.c.fields,
                          jobs.c.resolution, status_pages.c.token)
                .outerjoin(status_pages, status_pages.c.job_id == jobs.c.id)
                .where(jobs.c.id == row.job_id)).first()
        to = contact_for(row.channel, job.fields or {}) if job else None
        if job is None or to is None or job.token is None:
            return None
        url = address(self.public_url, job.token)
        number = number_of(job.id, job.external_key)
        if row.stage == "on_scene":
            subject = f"311 request {number}: an officer is on scene"
            lead = f"An officer has arrived about your 311 request {number} ({job.complaint_type})."
        else:
            subject = f"311 request {number} is closed"
            lead = (f"Your 311 request {number} ({job.complaint_type}) is closed: "
                    f"{job.resolution or 'no resolution was given'}")
        if row.channel == "sms":
            text = f"NYC 311: {lead} Details and a 2-question survey: {url}"
        else:
            text = (f"{lead}\n\nFollow it, and tell us whether it was handled, on its status "
                    f"page:\n{url}\n\nYou get this message because you asked to be told. "
                    "Please do not reply to it.\n")
        return Message(row.id, job.id, row.stage, row.channel, to, subject, text, url, number,
                       f"<notice-{row.id}.{job.id}@{self.domain}>")

    def deliver(self) -> int:
        """Send what is due; returns how many were sent."""
        sent = 0
        for row in self.due(self.dispatch.clock()):
            channel = self.channels.get(row.channel)
            if channel is None or not self.claim(row, self.dispatch.clock()):
                continue
            m = self.message(row)
            if m is None:
                self._settle(row.id, "failed", "no usable contact or status page")
                continue
            try:
                channel.send(m)
            except PermanentFailure as e:
                self._settle(row.id, "failed", str(e))
                continue
            except Exception as e:  # TemporaryFailure, or anything unforeseen: try again
                self._settle(row.id, "pending", str(e) or type(e).__name__,
                             self.dispatch.clock() + backoff(row.attempts + 1))
                log.warning("notice %s (%s) not sent, will retry: %s", row.id, row.channel, e)
                continue
            self.dispatch.notice_sent(NOTICE_ACTOR, row.id, m.message_id)
            sent += 1
        return sent

    def _settle(self, notice_id: int, state: str, error: str,
                next_at: datetime | None = None) -> None:
        values: dict[str, Any] = {"state": state, "last_error": error[:300]}
        if next_at is not None:
            values["next_at"] = next_at
        with db.write(self.dispatch.engine) as conn:
            conn.execute(notices.update().where(notices.c.id == notice_id,
                                                notices.c.state == "sending").values(**values))

    # -- the loop -----------------------------------------------------------------------------

    def run_once(self) -> int:
        self.plan()
        return self.deliver()

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        log.info("notice worker running (%s)", ", ".join(self.channels) or "no channel")
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database outage: keep going, the outbox keeps the rest
                log.exception("notice pass failed; retrying")
            stop.wait(self.interval)

"""The 311 poller: new and updated NYPD requests from the city's Socrata API, into intake.

Query (SoQL) against data set erm2-nwe9::

    $select=:*,*
    $where=agency='NYPD' AND (:updated_at > 'T' OR (:updated_at = 'T' AND unique_key > 'K'))
    $order=:updated_at,unique_key
    $limit=1000

The cursor (T, K) is the last row handled, kept in the `cursors` table and saved after every
page, so a restarted poller resumes where it stopped. Pages are read by that key (keyset), not
by `$offset`: the feed changes while we read it (a row updated mid-run moves to the end of the
order), and offset paging would then silently skip a row. Ties on the timestamp (the city
refreshes thousands of rows in one second) are broken by the unique key. Importing is idempotent
on the unique key, so re-reading a page after a crash never creates a job twice.

A row the poller first sees already closed by the city becomes a history job (closed, never
dispatched, see board.intake.pipeline); a job it already has that the city closes later only has its
311 fields updated.

Transient failures (network, 429, 5xx, a garbled body) are retried with exponential backoff and
jitter, honouring Retry-After; a refused query (other 4xx: bad token, bad SoQL) is not retried
within a run. `run_once()` is one catch-up pass (tests, cron); `run_forever()` is the worker.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from board.domain.access import SYSTEM
from board.domain.clock import NEW_YORK
from board.intake.pipeline import Counts, Intake
from board.storage import db
from board.storage.schema import cursors
from board.usecases import Dispatch

__all__ = ["CURSOR_NAME", "DEFAULT_URL", "PollError", "Poller", "PollerConfig"]

log = logging.getLogger("board.poller")

DATASET = "erm2-nwe9"
DEFAULT_URL = f"https://data.cityofnewyork.us/resource/{DATASET}.json"
CURSOR_NAME = f"socrata:{DATASET}"
POLLER_ACTOR = dataclasses.replace(SYSTEM, name="311 poller", source="intake")
CURSOR_FIELDS = (":updated_at", "created_date")


class PollError(Exception):
    """The feed could not be read (after retries, or refused outright)."""


@dataclass(frozen=True)
class PollerConfig:
    url: str = DEFAULT_URL
    app_token: str | None = None
    page_size: int = 1000
    #: ":updated_at" sees updates (a request closed by NYPD); "created_date" only new requests,
    #: for proxies or mirrors of the data set that do not serve Socrata's system fields.
    cursor_field: str = ":updated_at"
    interval: float = 60.0
    #: Where a first run starts (ISO, in the cursor field's format); default: one day back.
    since: str | None = None
    max_attempts: int = 6
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.cursor_field not in CURSOR_FIELDS:
            raise ValueError(f"SOCRATA_CURSOR_FIELD must be one of {', '.join(CURSOR_FIELDS)}")
        if not 1 <= self.page_size <= 50_000:
            raise ValueError("SOCRATA_PAGE_SIZE must be 1 to 50000")
        if self.interval <= 0 or self.max_attempts < 1:
            raise ValueError("the poll interval must be > 0 and attempts >= 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PollerConfig:
        env = os.environ if env is None else env
        return cls(
            url=env.get("SOCRATA_URL") or DEFAULT_URL,
            app_token=env.get("SOCRATA_APP_TOKEN") or None,
            page_size=int(env.get("SOCRATA_PAGE_SIZE") or 1000),
            cursor_field=env.get("SOCRATA_CURSOR_FIELD") or ":updated_at",
            interval=float(env.get("SOCRATA_POLL_SECONDS") or 60),
            since=env.get("SOCRATA_SINCE") or None,
        )


@dataclass(frozen=True)
class Cursor:
    at: str
    key: str = ""


def _soql_text(value: str) -> str:
    """A SoQL string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


class Poller:
    """Reads the feed page by page and hands each page to `Intake` (one write path)."""

    def __init__(self, dispatch: Dispatch, config: PollerConfig | None = None, *,
                 client: httpx.Client | None = None,
                 sleep: Callable[[float], None] | None = None,
                 rng: Callable[[], float] = random.random) -> None:
        self.dispatch = dispatch
        self.config = config or PollerConfig()
        headers = {"Accept": "application/json", "User-Agent": "311-dispatch-board"}
        if self.config.app_token:
            headers["X-App-Token"] = self.config.app_token
        self.client = client or httpx.Client(timeout=self.config.timeout)
        self.headers = headers
        self.sleep = sleep if sleep is not None else time.sleep
        self.rng = rng

    # -- cursor --------------------------------------------------------------------------------

    def initial_cursor(self) -> Cursor:
        if self.config.since:
            return Cursor(self.config.since)
        start = self.dispatch.clock() - timedelta(days=1)
        if self.config.cursor_field == "created_date":  # floating New York time
            return Cursor(start.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M:%S.000"))
        return Cursor(start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))

    def load_cursor(self) -> Cursor:
        with db.read(self.dispatch.engine) as conn:
            value = conn.execute(sa.select(cursors.c.value)
                                 .where(cursors.c.name == CURSOR_NAME)).scalar()
        if value is None:
            return self.initial_cursor()
        try:
            data = json.loads(value)
            return Cursor(str(data["at"]), str(data.get("key", "")))
        except (ValueError, KeyError, TypeError):
            log.warning("stored cursor %r is unreadable; starting from the default", value)
            return self.initial_cursor()

    def save_cursor(self, cursor: Cursor) -> None:
        value = json.dumps({"at": cursor.at, "key": cursor.key}, separators=(",", ":"))
        now = self.dispatch.clock()
        with db.write(self.dispatch.engine) as conn:
            done = conn.execute(cursors.update().where(cursors.c.name == CURSOR_NAME)
                                .values(value=value, updated_at=now))
            if done.rowcount == 0:
                conn.execute(cursors.insert().values(name=CURSOR_NAME, value=value,
                                                     updated_at=now))

    # -- the feed ------------------------------------------------------------------------------

    def query(self, cursor: Cursor) -> dict[str, str]:
        """SoQL parameters for the page after `cursor`."""
        f = self.config.cursor_field
        at = _soql_text(cursor.at)
        after = f"{f} > {at}"
        if cursor.key:
            after = f"({after} OR ({f} = {at} AND unique_key > {_soql_text(cursor.key)}))"
        return {
            "$select": ":*,*",
            "$where": f"agency='NYPD' AND {after}",
            "$order": f"{f},unique_key",
            "$limit": str(self.config.page_size),
        }

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with (equal) jitter: never zero, never in lock-step."""
        ceiling = min(self.config.backoff_cap, self.config.backoff_base * 2 ** attempt)
        delay = ceiling / 2 + self.rng() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.backoff_cap))
        return delay

    def fetch(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """One page, retried on transient failures; PollError when it cannot be had."""
        problem = ""
        for attempt in range(self.config.max_attempts):
            retry_after = None
            try:
                resp = self.client.get(self.config.url, params=dict(params), headers=self.headers)
            except httpx.HTTPError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code == 200:
                    try:
                        data = resp.json()
                    except ValueError:
                        data = None
                    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
                        return data
                    problem = "the response is not a JSON array of rows"
                elif resp.status_code == 429 or resp.status_code >= 500:
                    problem = f"HTTP {resp.status_code}"
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                else:
                    raise PollError(f"the feed refused the query: HTTP {resp.status_code} "
                                    f"{resp.text[:300]!r}")
            if attempt + 1 < self.config.max_attempts:
                delay = self._delay(attempt, retry_after)
                log.warning("311 feed: %s; retrying in %.1fs", problem, delay)
                self.sleep(delay)
        raise PollError(f"the feed failed {self.config.max_attempts} times (last: {problem})")

    def run_once(self) -> Counts:
        """Catch up from the stored cursor to the end of the feed; the import counts."""
        intake = Intake(self.dispatch, actor=POLLER_ACTOR, quarantine_source="socrata")
        cursor = self.load_cursor()
        f = self.config.cursor_field
        while True:
            rows = self.fetch(self.query(cursor))
            last = None
            if rows:
                intake.batch(rows)
                last = next((r for r in reversed(rows) if r.get(f)), None)
                if last is not None:
                    cursor = Cursor(str(last[f]), str(last.get("unique_key", "")))
                    self.save_cursor(cursor)
            if len(rows) < self.config.page_size:
                break
            if last is None:  # a full page without the cursor field: we would loop forever
                raise PollError(f"the feed's rows carry no {f}; set SOCRATA_CURSOR_FIELD")
        if intake.counts.rows:
            log.info("311 feed: %s", intake.counts.summary())
        return intake.counts

    def run_forever(self, max_runs: int | None = None) -> None:
        """The worker: poll every interval; after failures, back off further (never exit)."""
        failures = 0
        runs = 0
        while max_runs is None or runs < max_runs:
            runs += 1
            try:
                self.run_once()
                failures = 0
                self.sleep(self.config.interval)
            except PollError as e:
                failures += 1
                delay = max(self.config.interval, self._delay(failures, None))
                log.error("311 feed: %s; next try in %.0fs", e, delay)
                self.sleep(delay)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def main() -> None:  # pragma: no cover - `python -m workers.poller`, like `board poll-311`
    from board import bootstrap
    from board.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    Poller(bootstrap.worker_dispatch(Settings.from_env()), PollerConfig.from_env()).run_forever()


if __name__ == "__main__":  # pragma: no cover
    main()

"""Prometheus metrics at /metrics, through prometheus_client.

Each `board serve` process is one uvicorn worker and keeps its own figures: scrape every web
process on its own port (README "Operating it"). Counters and histograms live in the client's
default registry (plus its process collector: memory, CPU, open files); figures that are a
reading of the present (sockets by audience, live tasks, intake lag) are collected at scrape
time from this app's hub and database.

Who may read it: when `METRICS_TOKEN` is set, only a request with `Authorization: Bearer
$METRICS_TOKEN`; otherwise only a client on the loopback interface. Everyone else gets 404, as
if there were nothing there.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import threading
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from board.domain.clock import NEW_YORK
from board.storage import db
from board.storage.schema import cursors

REQUEST_SECONDS = Histogram(
    "board_http_request_duration_seconds", "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
REQUESTS = Counter("board_http_requests", "HTTP responses by route template and status",
                   ["method", "route", "status"])
EVENTS = Counter("board_live_events", "Committed events the live hub read and pushed")
PUSH_LAG = Histogram(
    "board_live_push_lag_seconds", "From an event's commit to its fragment on the sockets' queues",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30))
SEND_DROPS = Counter("board_live_send_queue_drops",
                     "Sockets cut off because their bounded send queue was full", ["audience"])
LOGIN_FAILURES = Counter("board_login_failures", "Refused log-ins (wrong name or password)")
DB_UNAVAILABLE = Counter("board_db_unavailable_responses",
                         "Requests answered 503 because the database was unreachable")

INTAKE_CURSOR = "socrata:erm2-nwe9"

# Rows the database returned, by what read them: the measure of work that does not depend on
# how busy the machine is (a live update must read the rows its events touched, not a board).
ROWS_READ = Counter("board_db_rows_read", "Rows fetched from the database, by what read them "
                    "(catch_up: the live hub; request: an HTTP request; other)", ["path"])
_READING: ContextVar[str] = ContextVar("board_reading", default="other")
_counting = False


@contextmanager
def reading(path: str) -> Iterator[None]:
    """Count the rows fetched inside this block (and threads it starts) under `path`."""
    token = _READING.set(path)
    try:
        yield
    finally:
        _READING.reset(token)


def rows_read(path: str) -> float:
    """Rows fetched so far under `path` in this process."""
    return ROWS_READ.labels(path)._value.get()


def count_rows() -> None:
    """Count every row SQLAlchemy fetches from a cursor (once per process; idempotent). The
    result's fetch strategies are wrapped: one counter step per fetch call, not per statement,
    so it costs about a microsecond a read."""
    global _counting
    if _counting:
        return
    _counting = True
    from sqlalchemy.engine import cursor as sa_cursor

    inside = threading.local()  # a buffered fetchmany calls fetchall: count the outer one

    def counted(fn: Any, many: bool) -> Any:
        def fetch(self: Any, *args: Any, **kw: Any) -> Any:
            if getattr(inside, "on", False):
                return fn(self, *args, **kw)
            inside.on = True
            try:
                got = fn(self, *args, **kw)
            finally:
                inside.on = False
            n = len(got) if many else (got is not None)
            if n:
                ROWS_READ.labels(_READING.get()).inc(n)
            return got
        return fetch

    for cls in (sa_cursor.CursorFetchStrategy, sa_cursor.BufferedRowCursorFetchStrategy,
                sa_cursor.FullyBufferedCursorFetchStrategy):
        for name, many in (("fetchone", False), ("fetchmany", True), ("fetchall", True)):
            if name in vars(cls):
                setattr(cls, name, counted(vars(cls)[name], many))


def observe_events(evs: list[dict[str, Any]], now: datetime | None = None) -> None:
    """The hub pushed these events: count them and how long after commit they went out."""
    if not evs:
        return
    EVENTS.inc(len(evs))
    now = now or datetime.now(UTC)
    for ev in evs:
        at = ev.get("at")
        if isinstance(at, datetime):
            PUSH_LAG.observe(max((now - at).total_seconds(), 0.0))


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "(unmatched)"


class RequestMetrics:
    """ASGI middleware: latency and status per route template (never the raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine for a live socket: no frame of this kept for its hours.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500
        token = _READING.set("request")

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            _READING.reset(token)
            route, method = _route_of(scope), scope.get("method", "GET")
            REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            REQUESTS.labels(method, route, str(status)).inc()


def intake_lag(engine: sa.Engine, now: datetime | None = None) -> tuple[float, float] | None:
    """(seconds the poller's cursor is behind now, seconds since it last saved), or None."""
    with db.read(engine) as conn:
        row = conn.execute(sa.select(cursors.c.value, cursors.c.updated_at)
                           .where(cursors.c.name == INTAKE_CURSOR)).first()
    if row is None:
        return None
    now = now or datetime.now(UTC)
    try:
        at = datetime.fromisoformat(str(json.loads(row.value)["at"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return None
    if at.tzinfo is None:  # the created_date cursor is New York floating time
        at = at.replace(tzinfo=NEW_YORK)
    return (now - at).total_seconds(), (now - row.updated_at).total_seconds()


class AppCollector(Collector):
    """Readings of this process at scrape time: sockets, tasks, intake lag."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lag: tuple[float, float] | None = None

    def collect(self) -> Iterator[Metric]:
        sockets = GaugeMetricFamily("board_live_sockets", "Open live sockets by audience",
                                    labels=["audience"])
        counts = {"board": 0, "my": 0, "wall": 0, "city": 0}
        hub = getattr(self.app.state, "hub", None)
        for audience, subs in list(getattr(hub, "audiences", {}).items()):
            counts[audience[0]] = counts.get(audience[0], 0) + len(subs)
        for kind, n in sorted(counts.items()):
            sockets.add_metric([kind], n)
        yield sockets
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:
            tasks = 0
        yield GaugeMetricFamily("board_asyncio_tasks", "Tasks alive on this process's loop",
                                value=tasks)
        if self.lag is not None:
            yield GaugeMetricFamily(
                "board_intake_lag_seconds",
                "How far the 311 poller's cursor is behind now (the newest row it has read)",
                value=self.lag[0])
            yield GaugeMetricFamily(
                "board_intake_cursor_age_seconds",
                "Seconds since the 311 poller last saved its cursor", value=self.lag[1])


def allowed(request: Request) -> bool:
    """With METRICS_TOKEN set, only its bearer; without, only clients on the loopback."""
    token = request.app.state.settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    if not allowed(request):
        return PlainTextResponse("Not Found", 404)
    collector: AppCollector = request.app.state.metrics
    try:
        collector.lag = await run_in_threadpool(intake_lag, request.app.state.dispatch.engine)
    except sa.exc.SQLAlchemyError:
        collector.lag = None  # database away: the other figures still count
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    from prometheus_client import REGISTRY

    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                   "Cache-Control": "no-store"})


routes = [Route("/metrics", metrics)]

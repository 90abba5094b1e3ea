"""Is this process up, can it serve, and what it says while its database is away.

- `/healthz`: the process answers (no database touched): for a supervisor that restarts it.
- `/readyz`: the database answers `SELECT 1` and the bus is connected; 503 otherwise: for a
  load balancer that routes around it.
- A request that fails because the database cannot be reached gets 503 with Retry-After and a
  page saying so (JSON under /api/ and /open311/), not a bare 500; a socket is closed with 1013
  (try again later) and the page's reconnect loop brings it back.
- `wait_for_database`: a server started while PostgreSQL is down waits, saying so, instead of
  exiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket

from board.observability.logs import Throttled
from board.observability.metrics import DB_UNAVAILABLE
from board.storage import db
from board.web.errors import error_response, surface

log = logging.getLogger("board.health")
_outage = Throttled(log)

RETRY_AFTER_S = 5
READY_TIMEOUT_S = 3.0


def ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(run_in_threadpool(ping, request.app.state.dispatch.engine),
                               READY_TIMEOUT_S)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        checks["database"] = f"unreachable: {type(exc).__name__}"
    hub = getattr(request.app.state, "hub", None)
    checks["bus"] = "ok" if hub is not None and hub.bus.healthy else "disconnected"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", **checks},
                        200 if ok else 503, headers={"Cache-Control": "no-store"})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]


async def unavailable(conn: HTTPConnection, exc: Exception) -> Response | None:
    """The handler for db.UNAVAILABLE errors: 503 + Retry-After, in the caller's language."""
    DB_UNAVAILABLE.inc()
    _outage.failed("database unavailable, answering 503: %s", _first_line(exc))
    if isinstance(conn, WebSocket):
        await conn.close(code=1013, reason="database unavailable")
        return None
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
    detail = "The database is not reachable just now; try again shortly."
    if surface(conn.url.path) != "page":  # the API's JSON, Open311's list in XML or JSON
        return error_response(conn, 503, detail, headers)  # type: ignore[arg-type]
    return conn.app.state.templates.TemplateResponse(
        conn, "unavailable.html", {"actor": None, "csrf": "", "flashes": [],
                                   "retry_after": RETRY_AFTER_S},
        status_code=503, headers=headers)


def exception_handlers() -> dict[Any, Callable[..., Any]]:
    return {cls: unavailable for cls in db.UNAVAILABLE}


def wait_for_database(engine: sa.Engine, *, max_delay_s: float = 10.0,
                      give_up_s: float | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> None:
    """Block until the database answers, logging each failed try (backoff up to max_delay_s)."""
    started = time.monotonic()
    delay = 0.5
    while True:
        try:
            ping(engine)
            if time.monotonic() - started > 0.1:
                log.info("database reachable, starting")
            return
        except db.UNAVAILABLE as exc:
            if give_up_s is not None and time.monotonic() - started > give_up_s:
                raise
            log.warning("database not reachable (%s); retrying in %.1fs", _first_line(exc),
                        delay)
            sleep(delay)
            delay = min(delay * 2, max_delay_s)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

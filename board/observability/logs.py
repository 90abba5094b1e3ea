"""Logging: one line per event with time, level, request id, user and job.

`configure()` runs once at process start (every `board` command). Each HTTP request and socket
gets a request id (the client's `X-Request-ID` if it sent a sane one, else a new one), echoed in
the response header; every line logged while handling it names that id, the user once known
(`note_user`, called where an actor is resolved) and the job in the path. The access line per
request is ours (uvicorn's is turned off): path without the query string, so a token in a URL
never reaches the log.

`Throttled` keeps an outage from flooding the log: the first failure is logged, the rest are
counted and summarised at most once per interval.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("board.access")

FORMAT = ("%(asctime)s %(levelname)s %(name)s req=%(request_id)s user=%(user)s job=%(job)s "
          "%(message)s")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass
class RequestContext:
    """What the lines of one request share. Mutable, so a thread-pool call can fill in the user
    (run_in_threadpool copies the context, not the object)."""

    request_id: str
    scope: dict[str, Any] = field(default_factory=dict)
    user: str | None = None

    @property
    def job(self) -> str | None:
        params = self.scope.get("path_params") or {}
        value = params.get("job_id", params.get("id")) if "/jobs/" in self.scope.get(
            "path", "") else params.get("job_id")
        return None if value is None else str(value)


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "board_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def note_user(actor: Any) -> None:
    """Name the acting user on this request's log lines (no-op outside a request)."""
    ctx = _current.get()
    if ctx is not None and actor is not None:
        name = str(getattr(actor, "name", "") or "").replace(" ", "_")[:40]
        ctx.user = f"{getattr(actor, 'id', None)}:{name}"


class _SocketChatter(logging.Filter):
    """uvicorn logs two lines per socket ("[accepted]", "connection open/closed"); our access
    line already says it, with the request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        return not (msg.startswith("connection ") or '"WebSocket %s"' in msg)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged (not the one at start-up, which a
    test harness may have closed since)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class ContextFilter(logging.Filter):
    """Puts request id, user and job on every record (`-` when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _current.get()
        record.request_id = getattr(record, "request_id", None) or (
            ctx.request_id if ctx else "-")
        record.user = getattr(record, "user", None) or (ctx.user if ctx and ctx.user else "-")
        record.job = getattr(record, "job", None) or (ctx.job if ctx and ctx.job else "-")
        return True


def configure(level: str | int = "INFO", stream: Any = None) -> logging.Handler:
    """One handler on the root logger, our format; uvicorn's loggers go through it too."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_board", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler._board = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # RequestIds writes the access line
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _SocketChatter) for f in error_log.filters):
        error_log.addFilter(_SocketChatter())
    # A line per SQL connection attempt would bury the app's own lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler


def uvicorn_log_config() -> dict[str, Any]:
    """For uvicorn.run: keep the handlers `configure` set (uvicorn would replace them)."""
    return {"version": 1, "disable_existing_loggers": False}


class RequestIds:
    """ASGI middleware: a request id per request/socket, echoed as X-Request-ID; an access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if _SAFE_ID.fullmatch(sent) else uuid.uuid4().hex[:16]
        ctx = RequestContext(rid, scope)  # type: ignore[arg-type]
        scope.setdefault("state", {})["request_id"] = rid  # for board.web.errors' 500 answer
        token = _current.set(ctx)
        status = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "websocket.close" and not status:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = 500
            raise
        finally:
            ms = (time.perf_counter() - started) * 1000
            method = scope.get("method", "WS")
            client = (scope.get("client") or ("-",))[0]
            log.info("%s %s %s %.1fms %s", method, scope.get("path", ""), status or "-", ms,
                     client)
            _current.reset(token)


class Throttled:
    """Log the first of a run of similar failures, then a summary at most every `every_s`."""

    def __init__(self, logger: logging.Logger, every_s: float = 30.0) -> None:
        self.logger = logger
        self.every_s = every_s
        self._lock = threading.Lock()
        self._since: float | None = None
        self._suppressed = 0
        self._last: str = ""

    def failed(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self._last = msg % args if args else msg
            if self._since is not None and now - self._since < self.every_s:
                self._suppressed += 1
                return
            count, self._suppressed, self._since = self._suppressed, 0, now
        if count:
            self.logger.warning("%s (and %d more like it in %.0fs)", self._last, count,
                                self.every_s)
        else:
            self.logger.warning("%s", self._last)

    def recovered(self, msg: str) -> bool:
        """The failures stopped: say so once, with how many went unlogged. True if it logged."""
        if self._since is None:  # the common case, no lock: nothing was failing
            return False
        with self._lock:
            if self._since is None:
                return False
            count, self._suppressed, self._since = self._suppressed, 0, None
        self.logger.info("%s%s", msg, f" ({count} more failures not logged)" if count else "")
        return True

"""The app factory: one Starlette app per process, wired to the database, map and bus."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from board import bootstrap
from board.accountability.commandlog import linked
from board.auth.oidc import SingleSignOn
from board.auth.sessions import timeouts_of as session_timeouts
from board.auth.throttle import LoginGuard
from board.domain.clock import NEW_YORK
from board.domain.dispositions import ADMINISTRATIVE, FIELD
from board.domain.evidence import DEFAULT_SUMMONS_PATTERN, MAX_PHOTOS
from board.domain.lifecycle import LABELS
from board.domain.presence import sentence
from board.domain.priorities import PRIORITY_LABELS, STAGE_WORDS, event_stage
from board.live import cards
from board.live.frames import RawSend
from board.observability import logs, memory, metrics, redact
from board.settings import ROOT, Settings
from board.storage import db
from board.usecases import Dispatch
from board.usecases.caller import SATISFACTION
from board.web import (
    api,
    browser_policy,
    caller,
    errors,
    handover,
    health,
    open311,
    oversight,
    pages,
    sockets,
    sso,
    validation,
    wall,
)
from board.web import (
    qstat as qstat_pages,
)

NODE = ROOT / "node_modules"
# The front-end libraries, installed from the npm registry by package.json, served as /vendor/…
VENDOR = {
    "htmx.min.js": NODE / "htmx.org" / "dist" / "htmx.min.js",
    "ws.js": NODE / "htmx-ext-ws" / "dist" / "ws.js",
    "sortable.min.js": NODE / "sortablejs" / "Sortable.min.js",
    "leaflet": NODE / "leaflet" / "dist",
    "markercluster": NODE / "leaflet.markercluster" / "dist",
}


def _fmt_age(then: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def _fmt_time(value: datetime | None) -> str:
    """Times as the precinct reads them: New York local time, whatever the server's zone."""
    return value.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _fmt_local(value: datetime | None) -> str:
    """A time for the public: 'Nov 28, 2026, 5:04 PM', New York local time."""
    if value is None:
        return ""
    t = value.astimezone(NEW_YORK)
    return f"{t:%b} {t.day}, {t.year}, {t.hour % 12 or 12}:{t:%M} {'AM' if t.hour < 12 else 'PM'}"


def _overdue_words(stage: str | None, unit_id: int | None, status: str | None = None) -> str:
    """An overdue event's stage in the words the card and the banner use ("not dispatched")."""
    named = event_stage(stage, unit_id, status)
    return STAGE_WORDS.get(named or "", named or "late")


def _unit_status(activity: str, reason: str | None) -> str:
    """A unit's status as people say it: "on meal", "out of service: vehicle", "en route"."""
    if activity == "out_of_service" and reason and reason.strip().casefold() == "meal":
        return "on meal"
    words = activity.replace("_", " ")
    return f"{words}: {reason}" if reason else words


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(ROOT / "templates"))
    # The templates ship with the code: not a stat of each file on every render (a live
    # update renders several partials).
    t.env.auto_reload = False
    t.env.filters["age"] = _fmt_age
    t.env.filters["when"] = _fmt_time
    t.env.globals["unit_status"] = _unit_status
    t.env.filters["local"] = _fmt_local
    t.env.globals.update(
        STATUS_LABELS={s.value: label for s, label in LABELS.items()},
        PRIORITY_LABELS=PRIORITY_LABELS, FIELD_DISPOSITIONS=FIELD,
        ADMIN_DISPOSITIONS=ADMINISTRATIVE, linked=linked, presence_sentence=sentence,
        SATISFACTION_LABELS=SATISFACTION, overdue_words=_overdue_words,
        # create_app sets these two from its use cases (the department's settings)
        ASK_POSITION=False, SUMMONS_PATTERN=DEFAULT_SUMMONS_PATTERN, MAX_PHOTOS=MAX_PHOTOS,
    )
    cards.install(t.env)  # job_card(c, mode): one rendering per card, shared with the hub
    return t


def _vendor_mounts() -> list[BaseRoute]:
    missing = [str(p) for p in VENDOR.values() if not p.exists()]
    if missing:
        raise RuntimeError(f"front-end assets missing ({', '.join(missing)}): run `npm ci`")
    files = {name: path for name, path in VENDOR.items() if path.is_file()}

    async def vendor_file(request: Request) -> Response:
        path = files.get(request.path_params["name"])
        if path is None:
            return Response("not found", 404)
        return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

    return [Mount("/vendor/leaflet", StaticFiles(directory=VENDOR["leaflet"])),
            Mount("/vendor/markercluster", StaticFiles(directory=VENDOR["markercluster"])),
            Route("/vendor/{name}", vendor_file)]


def _start_deadlines(dispatch: Dispatch) -> threading.Event:
    """The embedded default's deadline worker: a thread of `board serve` (workers/deadlines.py)."""
    from board.accountability.deadlines import DeadlineWorker

    stop = threading.Event()
    threading.Thread(target=DeadlineWorker(dispatch).run_forever, args=(stop,),
                     name="deadlines", daemon=True).start()
    return stop


def _start_notices(dispatch: Dispatch, settings: Settings) -> threading.Event | None:
    """The embedded default's notice worker: a thread of `board serve` (workers/notices.py),
    when a channel (SMTP_URL, SMS_WEBHOOK_URL) is configured."""
    if not (settings.smtp_url or settings.sms_webhook_url):
        return None
    from board.caller.notices import NoticeWorker

    stop = threading.Event()
    worker = NoticeWorker.from_settings(dispatch, settings)
    threading.Thread(target=worker.run_forever, args=(stop,), name="notices",
                     daemon=True).start()
    return stop


def create_app(settings: Settings | None = None, dispatch: Dispatch | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    if dispatch is None:
        dispatch = bootstrap.open_dispatch(settings)
    metrics.count_rows()  # rows read, by what read them: at /metrics (board_db_rows_read)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The live hub: committed events → fragments → sockets (see board/live/).
        hub = bootstrap.hub(settings, dispatch, app.state.templates.env,
                            timeouts=session_timeouts(settings))
        await hub.start()
        app.state.hub = hub
        dispatch.listeners.append(hub.committed)
        deadlines = _start_deadlines(dispatch) if settings.embedded_deadlines else None
        notices = _start_notices(dispatch, settings) if settings.embedded_notices else None
        trimming = asyncio.create_task(memory.keep_giving_back(), name="memory-give-back")
        try:
            yield
        finally:
            trimming.cancel()
            for stop in (deadlines, notices):
                if stop is not None:
                    stop.set()
            with suppress(ValueError):
                dispatch.listeners.remove(hub.committed)
            await hub.stop()
            db.close(dispatch.engine)

    app = Starlette(
        routes=[
            *pages.routes, *sso.routes, *oversight.routes, *qstat_pages.routes, *wall.routes,
            *handover.routes,
            *sockets.routes, *api.routes, *open311.routes, *caller.routes,
            *health.routes, *metrics.routes,
            *_vendor_mounts(),
            Mount("/static", StaticFiles(directory=ROOT / "static"), name="static"),
        ],
        # RawSend first: the live sockets write ready-made frames to the server's connection.
        middleware=[Middleware(RawSend), Middleware(logs.RequestIds),
                    Middleware(metrics.RequestMetrics),
                    Middleware(browser_policy.SecurityHeaders),
                    Middleware(validation.RefuseControlCharacters),
                    Middleware(browser_policy.Sessions, secret_key=settings.secret_key,
                               https_only=settings.https_only),
                    # Innermost: a live socket straight to its endpoint (board/web/sockets.py).
                    Middleware(sockets.Shortcut)],
        lifespan=lifespan,
        exception_handlers={**errors.exception_handlers, **health.exception_handlers()},
    )
    app.state.settings = settings
    app.state.dispatch = dispatch
    app.state.templates = templates()
    # the officer's forms ask for a position only when the department's setting says so
    app.state.templates.env.globals["ASK_POSITION"] = dispatch.arrival_position == "ask"
    app.state.templates.env.globals["SUMMONS_PATTERN"] = dispatch.summons_pattern
    # one count of failed log-ins for every process of this database
    app.state.login_guard = LoginGuard.shared(dispatch.engine)
    app.state.sso = SingleSignOn(settings) if settings.oidc_enabled else None
    redact.install()  # uvicorn's access log, when it is on, never shows a token
    app.state.metrics = metrics.AppCollector(app)
    return app

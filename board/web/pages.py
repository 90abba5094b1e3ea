"""The HTML pages: supervisor board, officer queue, job page, login. Server-rendered.

Every form post goes through the same use cases as the API; a refused change comes back as a
message on the page the user was on, with the current state rendered again.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from board.accountability import alerts
from board.auth import accounts as auth
from board.domain.access import Actor, Forbidden, Role
from board.domain.evidence import MAX_BYTES as MAX_PHOTO_BYTES
from board.domain.evidence import MAX_PHOTOS
from board.domain.flags import FLAG_LABELS, FLAG_SHORT
from board.domain.lifecycle import TransitionError
from board.domain.privacy import contact_of, public_fields
from board.observability.metrics import LOGIN_FAILURES
from board.settings import ROOT
from board.storage import db
from board.usecases import Conflict, Dispatch, Invalid, NotFound, UnitConflict, queries
from board.web import inputs
from board.web.api import BY_NAME, Action, allowed_actions, fix_of
from board.web.validation import (
    Integer,
    bounded_json,
    form_value,
    has_control,
    path_id,
    read_form,
)
from board.web.wording import refusal

Page = Callable[[Request, Actor], Awaitable[Response]]
#: A page that shows what only a recorded view may show: no browser or proxy keeps it.
NO_STORE = {"Cache-Control": "no-store"}
#: Sec-Fetch-Site values of a request the user made on this board (or typed in the address
#: bar); a browser that sends no such header counts as same-origin.
SAME_ORIGIN = ("same-origin", "none")


def _dispatch(request: Request) -> Dispatch:
    return request.app.state.dispatch


def _now() -> datetime:
    return datetime.now(UTC)


def flash(request: Request, kind: str, text: str) -> None:
    request.session.setdefault("flash", []).append([kind, text])


def render(request: Request, actor: Actor | None, name: str, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> Response:
    from board.accountability import reviews

    flashes = request.session.pop("flash", [])
    kept = request.session.pop("kept", None)
    to_review = reviews.count(_dispatch(request).engine, actor) if actor else 0
    return request.app.state.templates.TemplateResponse(
        request, name, {"actor": actor, "csrf": auth.csrf_token(request), "now": _now(),
                        "flashes": flashes, "kept": kept, "review_count": to_review,
                        "FLAG_LABELS": FLAG_LABELS, "FLAG_SHORT": FLAG_SHORT,
                        "tile_url": request.app.state.settings.tile_url, **context},
        status_code=status, headers=headers)


def _safe_next(value: str | None, default: str) -> str:
    """Only same-site paths: a form's `next` must never send anyone elsewhere."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """Log-in required; out-of-scope reads are 403, missing things 404."""
    async def endpoint(request: Request) -> Response:
        actor = await run_in_threadpool(auth.current_actor, request)
        if actor is None:
            return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
        try:
            return await handler(request, actor)
        except Forbidden as e:
            return render(request, actor, "error.html", 403, message=str(e), code=403)
        except NotFound as e:
            return render(request, actor, "error.html", 404, message=str(e), code=404)
    return endpoint


def home_of(actor: Actor) -> str:
    first = sorted(p for p in actor.precincts if p != "*")
    if actor.role is Role.OFFICER:
        return "/my"
    if actor.role is Role.WALL and first:
        return f"/wall/{first[0]}"
    return f"/board/{first[0]}" if first else "/city"


async def board_pick(request: Request) -> Response:
    """The precinct picker's answer (GET /board?precinct=75): that precinct's board. Only the
    shape of a precinct name is trusted here; the board page decides who may read it."""
    precinct = request.query_params.get("precinct", "")
    if not (precinct.isalnum() and len(precinct) <= 8):
        return RedirectResponse("/", 303)
    return RedirectResponse(f"/board/{precinct}", 303)


async def home(request: Request) -> Response:
    actor = await run_in_threadpool(auth.current_actor, request)
    return RedirectResponse(home_of(actor) if actor else "/login", 303)


async def login(request: Request) -> Response:
    if request.method == "GET":
        return render(request, None, "login.html", next=request.query_params.get("next", ""),
                      username="", sso=getattr(request.app.state, "sso", None))
    form = await request.form()
    if not auth.csrf_ok(request, form.get("csrf")):
        return render(request, None, "login.html", 403, next="", username="")
    username, password = str(form.get("username", ""))[:200], str(form.get("password", ""))
    if has_control(username):  # no user has such a name: refused before the database sees it
        flash(request, "error", "A user name has no control characters.")
        return render(request, None, "login.html", 400, next="", username="")
    address = request.client.host if request.client else ""
    device = auth.known_device(request, username)
    try:
        outcome = await run_in_threadpool(auth.login, _dispatch(request).engine, username,
                                          password, request.app.state.login_guard, address,
                                          None, device)
    except auth.Busy:
        flash(request, "error", "The server is busy: try again in a moment.")
        return render(request, None, "login.html", 503, next=form.get("next", ""),
                      username=username, headers={"Retry-After": "2"})
    actor = outcome.actor
    if outcome.retry_after:
        LOGIN_FAILURES.inc()
        minutes = max(1, round(outcome.retry_after / 60))
        wait = f"try again in about {minutes} minute{'s' if minutes > 1 else ''}"
        flash(request, "error", "This account is locked to new devices after repeated failed "
              f"log-ins: {wait} (or from a device you used before), or ask an admin to unlock "
              "it." if outcome.locked
              else f"Too many failed log-ins: {wait}.")
        return render(request, None, "login.html", 429, next=form.get("next", ""),
                      username=username, headers={"Retry-After": str(outcome.retry_after)})
    if actor is None or actor.role is Role.WALL:
        LOGIN_FAILURES.inc()
        flash(request, "error", "Wrong user name or password.")
        return render(request, None, "login.html", 401, next=form.get("next", ""),
                      username=username)
    await run_in_threadpool(auth.start_session, request, actor.id)
    done = RedirectResponse(_safe_next(str(form.get("next", "")), home_of(actor)), 303)
    auth.remember_device(request, done, username)
    return done


async def logout(request: Request) -> Response:
    """Revoke this browser's session, and close its open sockets in every process; a session
    that came through single sign-on then ends at the provider too, where it offers that."""
    form = await request.form()
    if not auth.csrf_ok(request, form.get("csrf")):
        return RedirectResponse("/login", 303)
    via_sso = bool(request.session.get("sso"))
    ended = await run_in_threadpool(auth.end_session, request)
    await announce_revoked(request, ended)
    sso = getattr(request.app.state, "sso", None)
    if via_sso and sso is not None and (away := await sso.logout_url()):
        return RedirectResponse(away, 303)
    return RedirectResponse("/login", 303)


async def announce_revoked(request: Request, session_ids: list[int]) -> None:
    """Tell every web process's hub (this one first) to close these sessions' sockets."""
    hub = getattr(request.app.state, "hub", None)
    if hub is not None and session_ids:
        await hub.revoke(session_ids)


def _precincts_of(request: Request, actor: Actor) -> list[str]:
    geo = _dispatch(request).geo
    if actor.citywide:
        return geo.precincts() if geo else []
    return sorted(actor.precincts, key=lambda p: (len(p), p))


@page
async def board_page(request: Request, actor: Actor) -> Response:
    precinct = request.path_params["precinct"]
    geo = _dispatch(request).geo
    if geo is not None and precinct not in geo.precincts():
        raise NotFound(f"no precinct {precinct}")
    view = await run_in_threadpool(queries.board, _dispatch(request).engine, actor, precinct,
                                   _now(), _dispatch(request).places)
    mode = "supervisor" if actor.may("assign") else "view"
    template = "partials/board_body.html" if request.headers.get("HX-Request") else "board.html"
    panel = {}
    if mode == "supervisor" and template == "board.html":
        panel = await run_in_threadpool(alerts.supervisor_panel, _dispatch(request).engine,
                                        precinct, _now())
    return render(request, actor, template, view=view, precinct=precinct, mode=mode,
                  units=view.lanes, precincts=_precincts_of(request, actor), **panel)


@page
async def unrouted_page(request: Request, actor: Actor) -> Response:
    """Jobs no precinct polygon took (no or far-off coordinates): citywide eyes route them."""
    if not actor.citywide:
        raise Forbidden("the unrouted queue is for citywide supervisors")

    def read() -> list[queries.Card]:
        with db.read(_dispatch(request).engine) as conn:
            return queries.unrouted_cards(conn, actor, _now())
    cards = await run_in_threadpool(read)
    return render(request, actor, "unrouted.html", cards=cards,
                  precincts=_precincts_of(request, actor))


@page
async def geo_json(request: Request, actor: Actor) -> Response:
    """Boundaries for the map: the precinct, its sectors and station house."""
    precinct = request.path_params["precinct"]
    queries.check_precinct(actor, precinct)
    geo = _dispatch(request).geo
    feature = geo.precinct_feature(precinct) if geo else None
    if feature is None:
        raise NotFound(f"no precinct {precinct}")
    return JSONResponse({"precinct": feature, "sectors": geo.sector_features(precinct),
                         "house": geo.station_house(precinct),
                         "bounds": geo.precinct_bounds(precinct)})


@page
async def job_page(request: Request, actor: Actor) -> Response:
    job_id = _int_or_404(request.path_params["job_id"])
    detail = await run_in_threadpool(queries.job, _dispatch(request).engine, actor, job_id, _now())
    return await _job_view(request, actor, detail)


async def _job_view(request: Request, actor: Actor, detail: queries.JobDetail,
                    contact: dict[str, Any] | None = None) -> Response:
    """The job page; `contact` only right after a recorded reveal."""
    units, loads = [], {}
    if actor.may("assign") and detail.row.precinct:
        units = await run_in_threadpool(queries.precinct_units, _dispatch(request).engine, actor,
                                        detail.row.precinct)
        loads = await run_in_threadpool(queries.unit_loads, _dispatch(request).engine, actor,
                                        detail.row.precinct)
    allowed = allowed_actions(actor, detail.row)
    rel = await run_in_threadpool(queries.related, _dispatch(request).engine, actor, detail.row,
                                  _now())
    memory = await run_in_threadpool(queries.place_memory, _dispatch(request).engine, actor,
                                     detail.row, _dispatch(request).places)
    c = replace(detail.card, incident=rel.incident, here_before=len(memory.earlier),
                chronic=memory.chronic)
    response = render(request, actor, "job.html", d=detail, c=c, units=units, loads=loads,
                      rel=rel,
                      memory=memory,
                      mode="view", next_url=f"/jobs/{detail.row.id}",
                      fields=public_fields(detail.row.fields), contact=contact,
                      may_view_photo="view_photo" in allowed,
                      may_view_contact="view_contact" in allowed and bool(
                          contact_of(detail.row.fields)))
    return offline_shell(response) if actor.role is Role.OFFICER and not contact else response


def offline_shell(response: Response) -> Response:
    """Mark an officer's page the phone may keep for offline use (static/sw.js keeps only
    pages marked so: never a supervisor's screen, never a revealed contact)."""
    response.headers["X-Offline-Shell"] = "1"
    return response


@page
async def photo_page(request: Request, actor: Actor) -> Response:
    """Opening a photo is recorded, whoever opens it: QSTAT counts closes made without
    looking, and no photo is shown without its event."""
    if request.headers.get("sec-fetch-site", "same-origin") not in SAME_ORIGIN:
        # a link or an <img> on another site would record a view in this user's name
        raise HTTPException(403, "open photos from the board itself")
    job_id = _int_or_404(request.path_params["job_id"])
    index = _int_or_404(request.path_params["index"], least=0)
    detail = await run_in_threadpool(queries.job, _dispatch(request).engine, actor, job_id, _now())
    if not 0 <= index < len(detail.row.media or []):
        raise NotFound("no such photo")
    _ev, url = await run_in_threadpool(_dispatch(request).view_photo, actor, job_id, index)
    return render(request, actor, "photo.html", headers=NO_STORE, c=detail.card, url=url,
                  index=index)


@page
async def evidence_page(request: Request, actor: Actor) -> Response:
    """An officer's photo of a close, shown only as this recorded view: the picture travels
    inside the page (a data: URL), so no address for it exists to be read or passed on."""
    import base64

    job_id = _int_or_404(request.path_params["job_id"])
    n = _int_or_404(request.path_params["n"], least=0)
    detail = await run_in_threadpool(queries.job, _dispatch(request).engine, actor, job_id, _now())
    try:
        _ev, photo = await run_in_threadpool(_dispatch(request).view_evidence, actor, job_id, n)
    except Invalid:
        raise NotFound("no such photo") from None
    inline = f"data:{photo.content_type};base64,{base64.b64encode(photo.data).decode()}"
    response = render(request, actor, "evidence.html", c=detail.card, src=inline, n=n)
    response.headers["Cache-Control"] = "no-store"
    return response


async def contact_post(request: Request) -> Response:
    """The caller's contact details, shown once per recorded reveal (a form post, so a link or
    a prefetch never reveals them)."""
    job_id = _int_or_404(request.path_params["job_id"])
    actor = await run_in_threadpool(auth.current_actor, request)
    if actor is None:
        return RedirectResponse("/login", 303)
    form = await request.form()
    if not auth.csrf_ok(request, form.get("csrf") or request.headers.get("X-CSRF-Token")):
        raise HTTPException(403, "missing or stale form token: reload the page")
    dispatch = _dispatch(request)
    try:
        _ev, contact = await run_in_threadpool(dispatch.view_contact, actor, job_id)
    except Forbidden as e:
        return render(request, actor, "error.html", 403, message=str(e), code=403)
    except NotFound as e:
        return render(request, actor, "error.html", 404, message=str(e), code=404)
    except Invalid as e:
        flash(request, "error", refusal(e))
        return RedirectResponse(f"/jobs/{job_id}", 303)
    detail = await run_in_threadpool(queries.job, dispatch.engine, actor, job_id, _now())
    response = await _job_view(request, actor, detail, contact)
    response.headers.update(NO_STORE)
    return response


@page
async def officer_page(request: Request, actor: Actor) -> Response:
    q = await run_in_threadpool(queries.officer_queue, _dispatch(request).engine, actor, _now())
    return offline_shell(render(request, actor, "officer.html", q=q, mode="officer"))


def _int(value: Any, name: str = "id") -> int:
    """One whole number from a form field (board.web.validation reads it)."""
    return form_value(Integer(), value, name)


def _opt_int(value: Any, name: str) -> int | None:
    return None if value in (None, "") else _int(value, name)


def _job_action(action: Action) -> Callable[[Dispatch, Actor, int, Any], Any]:
    """A form post of an API action: the same body model read from the form, the same call."""
    return lambda d, a, j, f: action.do(d, a, j, read_form(action.body, f))


# Form posts: action name → the use case, from the API's table (the same fields either way).
ACTIONS: dict[str, Callable[[Dispatch, Actor, int, Any], Any]] = {
    name: _job_action(BY_NAME[name]) for name in (
        "acknowledge", "en_route", "on_scene", "close", "admin_close", "hold", "release",
        "reopen", "priority", "note", "route")
}


def _close(d: Dispatch, actor: Actor, job_id: int, form: Any) -> Any:
    """Close one job, or (ticked "together") every worked job of its incident alike: each
    311 request still gets its own close event and resolution. The officer's photos come as
    files of a multipart form (board.domain.evidence checks their bytes)."""
    body = read_form(BY_NAME["close"].body, form)
    photos = _uploads(form, "photos")
    if not form.get("together"):
        return d.close(actor, job_id, body.version, body.disposition, body.summons_count,
                       body.note, position=fix_of(body), summons=body.summons_numbers,
                       photos=photos)
    if photos or body.summons_numbers:
        raise Invalid({"together": "photos and summons numbers belong to one job: close it "
                                   "on its own"})
    return d.close_incident(actor, _int(form.get("incident"), "incident"), body.disposition,
                            body.summons_count, body.note)


def _uploads(form: Any, name: str) -> list[bytes]:
    """The bytes of the files sent under `name` (an empty file input sends none)."""
    out = []
    for f in form.getlist(name):
        if isinstance(f, str):
            if f:
                raise Invalid({name: "must be a file"})
            continue
        data = f.file.read(MAX_PHOTO_BYTES + 1)
        if f.filename or data:
            out.append(data)
    return out


ACTIONS.update({
    "close": _close,
    "link": lambda d, a, j, f: d.link(a, j, _int(f.get("version"), "version"),
                                      _int(f.get("lead_id"), "lead_id")),
    "unlink": lambda d, a, j, f: d.link(a, j, _int(f.get("version"), "version"), None),
    "assign_incident": lambda d, a, j, f: d.assign_incident(
        a, _int(f.get("incident"), "incident"), _int(f.get("unit_id"), "unit_id")),
})


def move(d: Dispatch, actor: Actor, job_id: int, form: Any) -> Any:
    """A drag (or "Assign to…"): to a unit's stack at a position, or back to the queue."""
    if form.get("unit_id") == "queue":
        back = read_form(inputs.WithReason, form)
        return d.unassign(actor, job_id, back.version, back.reason)
    to = read_form(inputs.Assign, form)
    current = queries.job_unit(d.engine, actor, job_id)
    if current is None:
        return d.assign(actor, job_id, to.version, to.unit_id, to.position)
    if current == to.unit_id:
        return d.reorder(actor, job_id, to.version, to.position or 0)
    return d.reassign(actor, job_id, to.version, to.unit_id, to.position)


#: The phone's script marks its taps with this header: it needs a plain answer it can trust,
#: never a redirect it cannot see into (static/offline.js).
TAP = "X-Board-Tap"
#: Set on the answer to a form post whose change was written (or had been, by the same tap).
SAVED = "X-Board-Saved"
#: Why a tap was not taken, when it may be sent again later: signed-out | stale-form.
REFUSED = "X-Board-Refused"
REQUEST_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _not_taken(why: str, text: str, status: int) -> Response:
    return Response(text, status_code=status, media_type="text/plain",
                    headers={REFUSED: why, "Cache-Control": "no-store"})


def _request_key(request: Request) -> str | None:
    """The client's key for this tap (the Idempotency-Key header): the same tap sent again is
    answered as done, not as a conflict with itself."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not REQUEST_KEY.fullmatch(key):
        raise Invalid({"Idempotency-Key": "must be 8 to 64 letters, digits, - or _"})
    return key


async def _post(request: Request, run: Callable[[Dispatch, Actor, Any], Any],
                default_next: str, done: str | None = None) -> Response:
    """Run one write from a form. `done` is the confirmation a plain form post lands with
    (a polite status the next page announces); refusals say why beside the kept form."""
    tap = request.headers.get(TAP) == "1"
    actor = await run_in_threadpool(auth.current_actor, request)
    if actor is None:
        if tap:
            return _not_taken("signed-out", "Not sent: you were signed out.", 401)
        return RedirectResponse("/login", 303)
    form = await request.form()
    sent = form.get("csrf") or request.headers.get("X-CSRF-Token")
    if not auth.csrf_ok(request, sent):
        if tap:
            return _not_taken("stale-form", "Not sent: this page is out of date.", 403)
        raise HTTPException(403, "missing or stale form token: reload the page")
    back = _safe_next(form.get("next") or _referer_path(request), default_next)
    status, message = 200, ""
    try:
        actor = replace(actor, request_key=_request_key(request))
        await run_in_threadpool(run, _dispatch(request), actor, form)
    except (Conflict, UnitConflict) as e:
        message = f"Not saved: {e}. The page now shows the current state."
        flash(request, "conflict", message)
        status = 409
    except (TransitionError, Invalid) as e:
        message = f"Not saved: {refusal(e)}"
        flash(request, "error", message)
        keep(request, form)
        status = 422
    except (Forbidden, NotFound) as e:
        code = 403 if isinstance(e, Forbidden) else 404
        if tap:  # the phone shows the reason as it is
            return Response(f"Not saved: {e}", status_code=code, media_type="text/plain")
        return render(request, actor, "error.html", code, message=str(e), code=code)
    finally:
        await form.close()  # a close's photos were spooled to temporary files
    if request.headers.get("HX-Request"):
        # Script callers re-fetch what they show; the status says whether it took and the
        # body says why not, so the message is shown here rather than on the next page.
        request.session.pop("flash", None)
        request.session.pop("kept", None)
        saved = {SAVED: "1"} if status == 200 else {}
        return Response(message, status_code=204 if status == 200 else status,
                        media_type="text/plain", headers={"HX-Trigger": "board-changed", **saved})
    if status == 200 and done and not tap:
        flash(request, "ok", done)
    return RedirectResponse(back, 303, headers={SAVED: "1"} if status == 200 else None)


KEPT_FIELDS = ("disposition", "summons_count", "summons_numbers", "note", "text", "comment",
               "finding", "reason")


def keep(request: Request, form: Any) -> None:
    """A refused form comes back filled in as it was sent: what the person chose is not lost."""
    request.session["kept"] = {
        "action": request.url.path,
        **{k: str(form.get(k))[:2000] for k in KEPT_FIELDS if form.get(k) not in (None, "")}}


def _referer_path(request: Request) -> str | None:
    ref = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    prefix = f"{request.url.scheme}://{host}"
    return ref[len(prefix):] if host and ref.startswith(prefix) else None


#: A close with photos is a multipart form: the photos and a few KB of fields.
MAX_UPLOAD = MAX_PHOTOS * MAX_PHOTO_BYTES + 256 * 1024


async def job_action(request: Request) -> Response:
    action = request.path_params["action"]
    job_id = _int_or_404(request.path_params["job_id"])
    if action not in ACTIONS:
        raise HTTPException(404, "no such action")
    if request.headers.get("content-type", "").startswith("multipart/"):
        size = request.headers.get("content-length", "")
        if action != "close" or not size.isdigit() or int(size) > MAX_UPLOAD:
            return _too_large(request, job_id)
    return await _post(request, lambda d, a, f: ACTIONS[action](d, a, job_id, f),
                       f"/jobs/{job_id}", f"Saved: {action.replace('_', ' ')} · job #{job_id}.")


def _too_large(request: Request, job_id: int) -> Response:
    """A multipart post over the limit, refused before it is read: said where the officer is."""
    message = (f"Not saved: photos may be at most {MAX_PHOTOS} of "
               f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB each on a close")
    if request.headers.get("HX-Request"):
        return Response(message, status_code=413, media_type="text/plain")
    flash(request, "error", message)
    return RedirectResponse(f"/jobs/{job_id}", 303)


async def job_move(request: Request) -> Response:
    job_id = _int_or_404(request.path_params["job_id"])
    return await _post(request, lambda d, a, f: move(d, a, job_id, f), f"/jobs/{job_id}")


async def ping(request: Request) -> Response:
    """The phone's heartbeat: a dead link shows within seconds, not at the socket's timeout."""
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


async def service_worker(request: Request) -> Response:
    """The officer's offline shell, served from the root so it may cover /my and /jobs/…."""
    return FileResponse(ROOT / "static" / "sw.js", media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


def _unit_status(d: Dispatch, actor: Actor, unit_id: int, form: Any) -> Any:
    b = read_form(inputs.UnitStatus, form)
    return d.unit_status(actor, unit_id, b.version, b.status, b.reason)


async def unit_status(request: Request) -> Response:
    unit_id = _int_or_404(request.path_params["unit_id"])
    return await _post(request, lambda d, a, f: _unit_status(d, a, unit_id, f), "/")


def _my_position(d: Dispatch, actor: Actor, form: Any) -> Any:
    at = read_form(inputs.Position, form)
    return d.unit_position(actor, at.lat, at.lon)


async def my_position(request: Request) -> Response:
    return await _post(request, _my_position, "/my")


def _int_or_404(value: str, least: int = 1) -> int:
    """A path segment naming a row; one that cannot name anything is a 404 page."""
    number = 0 if value == "0" else path_id(value)
    if number is None or number < least:
        raise HTTPException(404, "not found")
    return number


@page
async def rules_page(request: Request, actor: Actor) -> Response:
    """Priority rules and stage deadlines; supervisors change them for jobs to come."""
    rules = await run_in_threadpool(_dispatch(request).rules)
    return render(request, actor, "rules.html", rules=rules, editable=actor.may_set_rules())


def _set_rule(d: Dispatch, actor: Actor, form: Any) -> Any:
    from board.domain.priorities import Rule

    return d.set_rule(actor, Rule(**read_form(inputs.RuleChange, form).model_dump()))


async def rules_post(request: Request) -> Response:
    return await _post(request, _set_rule, "/rules")


def _admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("only an admin works the quarantine")


@page
async def quarantine_page(request: Request, actor: Actor) -> Response:
    """Rows intake could not use, with the reason; the admin fixes and retries them."""
    from board.intake.quarantine import quarantine_rows

    _admin(actor)
    rows = await run_in_threadpool(quarantine_rows, _dispatch(request).engine)
    return render(request, actor, "quarantine.html", rows=rows)


def _retry(d: Dispatch, actor: Actor, quarantine_id: int, form: Any) -> Any:
    from board.intake.quarantine import retry

    _admin(actor)
    text = str(form.get("raw", "")).strip()
    raw = bounded_json(text, "raw") if text else None
    if raw is not None and not isinstance(raw, dict):
        raise Invalid({"raw": "must be a JSON object of column: value"})
    outcome = retry(d, quarantine_id, raw)
    if outcome.kind == "quarantined":
        raise Invalid({"raw": f"still quarantined: {outcome.reason}"})
    return outcome


async def quarantine_retry(request: Request) -> Response:
    quarantine_id = _int_or_404(request.path_params["quarantine_id"])
    return await _post(request, lambda d, a, f: _retry(d, a, quarantine_id, f),
                       "/admin/quarantine")


routes = [
    Route("/rules", rules_page),
    Route("/rules", rules_post, methods=["POST"]),
    Route("/admin/quarantine", quarantine_page),
    Route("/admin/quarantine/{quarantine_id}/retry", quarantine_retry, methods=["POST"]),
    Route("/", home),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/board", board_pick),
    Route("/board/{precinct}", board_page),
    Route("/geo/{precinct}.json", geo_json),
    Route("/unrouted", unrouted_page),
    Route("/jobs/{job_id}", job_page),
    Route("/jobs/{job_id}/photos/{index}", photo_page),
    Route("/jobs/{job_id}/evidence/{n}", evidence_page),
    Route("/jobs/{job_id}/contact", contact_post, methods=["POST"]),
    Route("/jobs/{job_id}/act/{action}", job_action, methods=["POST"]),
    Route("/jobs/{job_id}/move", job_move, methods=["POST"]),
    Route("/units/{unit_id}/status", unit_status, methods=["POST"]),
    Route("/my", officer_page),
    Route("/my/position", my_position, methods=["POST"]),
    Route("/ping", ping),
    Route("/sw.js", service_worker),
]

"""The oversight pages: the review queue, close policies and the command log.

Reads go through board.accountability.reviews / .commandlog (scope-checked), writes through the
use cases (`Dispatch.review`, `set_policy`, `log_entry`) by the form-post helper of every page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from board.accountability import commandlog, reviews
from board.domain.access import Actor, Forbidden, Role
from board.domain.clock import NEW_YORK
from board.domain.policies import CITYWIDE, KINDS
from board.storage import db
from board.storage.schema import events
from board.usecases import FINDINGS, Dispatch, Invalid, NotFound
from board.web import inputs
from board.web.pages import _dispatch, _int_or_404, _post, _precincts_of, page, render
from board.web.validation import FORM, check, read_form
from board.web.wording import refusal


def _clock(request: Request) -> datetime:
    """The time the use cases stamp entries with: tours and windows agree with them."""
    return _dispatch(request).clock()


def _precinct(request: Request) -> str:
    precinct = request.path_params["precinct"]
    geo = _dispatch(request).geo
    if geo is not None and precinct not in geo.precincts():
        raise NotFound(f"no precinct {precinct}")
    return precinct


def _only_precinct(actor: Actor) -> str | None:
    """The one precinct of someone who has exactly one (their /review and /log go there)."""
    mine = [p for p in actor.precincts if p != CITYWIDE]
    return mine[0] if len(mine) == 1 and not actor.citywide else None


# -- review queue ---------------------------------------------------------------------------

@page
async def review_index(request: Request, actor: Actor) -> Response:
    """/review: straight to your precinct's queue; with several (or citywide), the count of
    each, adding up to the header's."""
    if actor.role not in reviews.READERS:
        raise Forbidden("the review queue is for supervisors and commanders")
    only = _only_precinct(actor)
    if only:
        return RedirectResponse(f"/review/{quote(only)}", 303)
    found = await run_in_threadpool(reviews.counts, _dispatch(request).engine, actor)
    names = set(found) if actor.citywide else actor.precincts  # yours with none say 0
    counts = [(p, found.get(p, 0)) for p in sorted(names, key=lambda p: (len(p), p))]
    return render(request, actor, "review_index.html", counts=counts)


@page
async def review_page(request: Request, actor: Actor) -> Response:
    precinct = _precinct(request)
    found = await run_in_threadpool(reviews.queue, _dispatch(request).engine, actor,
                                    precinct, _clock(request))
    return render(request, actor, "review.html", queue=found, rows=found.rows, precinct=precinct,
                  can_review=actor.may("review"), findings=FINDINGS)


async def review_post(request: Request) -> Response:
    precinct = request.path_params["precinct"]
    job_id = _int_or_404(request.path_params["job_id"])
    def finding(d: Dispatch, a: Actor, form: Any) -> Any:
        b = read_form(inputs.Finding, form)
        return d.review(a, job_id, b.version, b.finding, b.comment)
    return await _post(request, finding, f"/review/{quote(precinct)}", "Finding recorded.")


# -- close policies -------------------------------------------------------------------------

def _policy_history(engine: sa.Engine, actor: Actor, limit: int = 50) -> list[Any]:
    """The latest policy changes an actor reads: citywide ones and their precincts'."""
    q = sa.select(events.c.at, events.c.actor, events.c.payload).where(
        events.c.kind == "set_policy")
    if not actor.citywide:
        q = q.where(events.c.precinct.is_(None)
                    | events.c.precinct.in_(sorted(actor.precincts)))
    with db.read(engine) as conn:
        return conn.execute(q.order_by(events.c.seq.desc()).limit(limit)).all()


@page
async def policies_page(request: Request, actor: Actor) -> Response:
    d = _dispatch(request)
    settings = await run_in_threadpool(d.policies, actor)
    history = await run_in_threadpool(_policy_history, d.engine, actor)
    return render(request, actor, "policies.html", settings=settings, history=history,
                  kinds=KINDS, editable=actor.role is Role.ADMIN,
                  precincts=_precincts_of(request, actor))


def _set_policy(d: Dispatch, actor: Actor, form: Any) -> Any:
    """The form's fields read by the API's model (a checkbox is "on" or absent)."""
    fields = {k: form.get(k) for k in ("scope", "kind", "minutes", "metres") if form.get(k)}
    codes = ",".join(str(v) for v in form.getlist("dispositions") if v)
    b = check(inputs.PolicyChange, {**fields, "dispositions": codes,
                                    "enabled": form.get("enabled") == "on"}, context=FORM)
    return d.set_policy(actor, b.scope, b.kind, b.enabled, b.minutes, metres=b.metres,
                        dispositions=[c for c in b.dispositions.split(",") if c])


async def policies_post(request: Request) -> Response:
    return await _post(request, _set_policy, "/policies")


# -- command log ----------------------------------------------------------------------------

def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid({name: "a date as YYYY-MM-DD"}) from None


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), NEW_YORK)


@page
async def log_index(request: Request, actor: Actor) -> Response:
    if actor.role not in commandlog.READERS:
        raise Forbidden("the command log is for supervisors and commanders")
    only = _only_precinct(actor)
    if only:
        return RedirectResponse(f"/log/{quote(only)}", 303)
    return render(request, actor, "log_index.html", precincts=_precincts_of(request, actor))


@page
async def log_page(request: Request, actor: Actor) -> Response:
    """The log book: newest first, searchable by text and New York dates (to included)."""
    precinct = _precinct(request)
    qp = request.query_params
    text = qp.get("q", "").strip()[:200]
    status = 200
    try:
        since_day, until_day = _day(qp.get("from"), "from"), _day(qp.get("to"), "to")
    except Invalid as e:
        since_day = until_day = None
        request.session.setdefault("flash", []).append(["error", refusal(e)])
        status = 422
    since = _local_midnight(since_day) if since_day else None
    until = _local_midnight(until_day + timedelta(days=1)) if until_day else None
    entries = await run_in_threadpool(
        lambda: commandlog.entries(_dispatch(request).engine, actor, precinct, text=text,
                                   since=since, until=until))
    tour_day, tour = commandlog.tour_of(_clock(request))
    return render(request, actor, "log.html", status, precinct=precinct, entries=entries,
                  q=text, since=qp.get("from", ""), until=qp.get("to", ""),
                  can_write=actor.may("log_entry"), linked=commandlog.linked,
                  tour_day=tour_day.isoformat(), tour=tour, TOURS=commandlog.TOUR_LABELS)


@page
async def log_print(request: Request, actor: Actor) -> Response:
    """One tour of the log, oldest first, laid out for paper."""
    precinct = _precinct(request)
    qp = request.query_params
    tour = qp.get("tour", "")
    try:
        day = _day(qp.get("date"), "date")
    except Invalid:
        day = None
    if day is None or tour not in commandlog.TOURS:
        day, tour = commandlog.tour_of(_clock(request))
    start, end = commandlog.tour_window(day, tour)
    entries = await run_in_threadpool(
        lambda: commandlog.entries(_dispatch(request).engine, actor, precinct, since=start,
                                   until=end))
    entries.reverse()
    return render(request, actor, "log_print.html", precinct=precinct, entries=entries,
                  day=day, tour=tour, tour_label=commandlog.TOUR_LABELS[tour], start=start,
                  end=end, linked=commandlog.linked, printed_at=_clock(request))


def _log_entry(precinct: str) -> Callable[[Dispatch, Actor, Any], Any]:
    def write(d: Dispatch, a: Actor, form: Any) -> Any:
        b = read_form(inputs.LogEntry, form)
        return d.log_entry(a, precinct, b.text, b.corrects)
    return write


async def log_post(request: Request) -> Response:
    precinct = request.path_params["precinct"]
    return await _post(request, _log_entry(precinct), f"/log/{quote(precinct)}",
                       "Log entry added.")


routes = [
    Route("/review", review_index),
    Route("/review/{precinct}", review_page),
    Route("/review/{precinct}/{job_id}", review_post, methods=["POST"]),
    Route("/policies", policies_page),
    Route("/policies", policies_post, methods=["POST"]),
    Route("/log", log_index),
    Route("/log/{precinct}", log_page),
    Route("/log/{precinct}", log_post, methods=["POST"]),
    Route("/log/{precinct}/print", log_print),
]

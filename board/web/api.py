"""The JSON API under /api/v1: every use case, for machines, by bearer token only.

One table, ENDPOINTS, drives both the router and the OpenAPI document served at
/api/v1/openapi.json (board.web.openapi), so the two cannot drift apart. Each endpoint names its
body as a pydantic model (board.web.inputs) and its answer as one (board.web.outputs); the same
validates a request (422 with a message per field, board.web.validation) and is the request-body
schema of the document.

Writes go through board.usecases.Dispatch (the one write path) and reads through
board.usecases.queries, so role and precinct scope are checked where they are for the web pages. A
refusal never carries job data: 403 and 404 bodies are a fixed error code and a generic
sentence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from board.auth import accounts as auth
from board.domain.access import Actor, Forbidden
from board.domain.dispositions import DISPOSITIONS
from board.domain.lifecycle import TransitionError
from board.domain.lifecycle import allowed_actions as lifecycle_allowed
from board.domain.policies import KINDS as POLICY_KINDS
from board.domain.policies import Policy
from board.domain.presence import Fix
from board.domain.priorities import Rule
from board.domain.privacy import contact_fields, contact_of, public_fields, public_payload
from board.live.audiences import board_of
from board.storage import idempotency
from board.storage.db import UNAVAILABLE as READ_BACK_FAILED
from board.usecases import Conflict, Dispatch, Invalid, NewJob, NotFound, UnitConflict, queries
from board.web import inputs, openapi, outputs
from board.web.endpoint import PREFIX, Call, Endpoint, Views
from board.web.errors import api_error
from board.web.validation import path_code, path_id, read_json

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


class Unauthorized(Exception):
    pass


# -- JSON out ---------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _plain(value: Any) -> Any:
    """Event payloads and 311 fields as JSON: datetimes become ISO strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def card_json(c: queries.Card) -> dict[str, Any]:
    step = c.next_step
    return {
        "id": c.id, "version": c.version, "status": c.status, "status_label": c.status_label,
        "priority": c.priority, "complaint_type": c.complaint_type, "descriptor": c.descriptor,
        "address": c.address, "precinct": c.precinct, "sector": c.sector, "lat": c.lat,
        "lon": c.lon, "received_at": _iso(c.received_at), "created_at": _iso(c.created_at),
        "unit_id": c.unit_id, "unit": c.unit, "stack_pos": c.stack_pos, "photos": c.photos,
        "overdue": c.overdue, "disposition": c.disposition, "closed_at": _iso(c.closed_at),
        "external_key": c.external_key, "flags": sorted(c.flags),
        "next_step": {"action": step[0], "label": step[1]} if step else None,
    }


def event_json(e: Any) -> dict[str, Any]:
    """An event, from a use case's dict or a timeline row."""
    get = e.get if isinstance(e, dict) else lambda k: getattr(e, k)
    return {
        "seq": get("seq"), "job_id": get("job_id"), "unit_id": get("unit_id"),
        "precinct": get("precinct"), "at": _iso(get("at")), "kind": get("kind"),
        "actor": get("actor"), "source": get("source"), "before": get("before"),
        "after": get("after"),
        "payload": _plain(public_payload(get("kind"), get("payload"))),
    }


def unit_json(u: Any) -> dict[str, Any]:
    return {
        "id": u.id, "callsign": u.callsign, "precinct": u.precinct, "sector": u.sector,
        "status": u.status, "status_reason": u.status_reason, "lat": u.lat, "lon": u.lon,
        "position_at": _iso(u.position_at), "version": u.version,
    }


def lane_json(lane: queries.Lane, as_json: Callable[[queries.Card], dict[str, Any]] = card_json
              ) -> dict[str, Any]:
    return {
        "id": lane.id, "version": lane.version, "callsign": lane.callsign, "sector": lane.sector,
        "status": lane.status, "status_reason": lane.status_reason, "activity": lane.activity,
        "lat": lane.lat, "lon": lane.lon, "jobs": [as_json(c) for c in lane.jobs],
    }


# Each followed board's cards as JSON from its last read, by card id (board audience → id →
# (the card, its JSON)): bounded by the boards this process follows and their cards.
_KEPT_JSON: dict[tuple[Any, ...], dict[int, tuple[queries.Card, dict[str, Any]]]] = {}


def _kept_json(audience: tuple[Any, ...]) -> Callable[[queries.Card], dict[str, Any]]:
    """card_json for a read of a followed board, kept by card for its next read: the cards no
    event touched since are the very objects this read had (the hub brings its view up to
    date, it does not read it again), so a supervisor's read before each write converts the
    cards that changed, not the board."""
    last = _KEPT_JSON.get(audience, {})
    kept: dict[int, tuple[queries.Card, dict[str, Any]]] = {}
    _KEPT_JSON[audience] = kept

    def as_json(c: queries.Card) -> dict[str, Any]:
        was = last.get(c.id)
        out = was[1] if was is not None and was[0] is c else card_json(c)
        kept[c.id] = (c, out)
        return out
    return as_json


# The API's name for a use case where it differs from the event kind.
API_NAME = {"set_priority": "priority"}


def allowed_actions(actor: Actor, row: Any) -> list[str]:
    """What this actor may do to this job now: lifecycle and role and scope agree."""
    names = []
    for action in lifecycle_allowed(row.status):
        try:
            actor.check(action, row.precinct, row.unit_id)
        except Forbidden:
            continue
        names.append(API_NAME.get(action, action))
    return names


def job_json(d: queries.JobDetail, actor: Actor) -> dict[str, Any]:
    """The whole job. Photo addresses and the caller's contact details are left out on
    purpose: view_photo and view_contact hand them out and record who saw them."""
    r = d.row
    return {
        **card_json(d.card),
        "source": r.source, "route_method": r.route_method, "location_type": r.location_type,
        "borough": r.borough, "fields": _plain(public_fields(r.fields)),
        "has_contact": bool(contact_of(r.fields)), "resolution": r.resolution,
        "summons_count": r.summons_count, "administrative": bool(r.administrative),
        "ack_due": _iso(r.ack_due), "arrive_due": _iso(r.arrive_due),
        "close_due": _iso(r.close_due), "external_status": r.external_status,
        "updated_at": _iso(r.updated_at),
        "unit_detail": unit_json(d.unit) if d.unit is not None else None,
        "allowed_actions": allowed_actions(actor, r),
        "timeline": [event_json(e) for e in d.timeline],
    }


def rule_json(r: Rule) -> dict[str, Any]:
    return {"complaint_type": r.complaint_type, "descriptor": r.descriptor,
            "priority": r.priority, "ack_minutes": r.ack_minutes,
            "arrive_minutes": r.arrive_minutes, "close_minutes": r.close_minutes}


# -- the endpoints ----------------------------------------------------------------------------




def _in_scope_precinct(call: Call) -> str:
    precinct = call.path["precinct"]
    queries.check_precinct(call.actor, precinct)
    geo = call.dispatch.geo
    if geo is not None and precinct not in geo.precincts():
        raise NotFound(f"no precinct {precinct}")
    return precinct


def get_board(call: Call) -> dict[str, Any]:
    precinct = _in_scope_precinct(call)
    followed = _followed_board(call, precinct)
    # The JSON cards carry no place memory (card_json): not read, however chronic the places.
    view = followed or queries.board(
        call.dispatch.engine, call.actor, precinct, call.now, memory=False)
    as_json = _kept_json(board_of(call.actor, precinct)) if followed else card_json
    return {
        "precinct": view.precinct, "queue": [as_json(c) for c in view.queue],
        "lanes": [lane_json(lane, as_json) for lane in view.lanes],
        "closed": [as_json(c) for c in view.closed],
        "unrouted": [as_json(c) for c in view.unrouted], "counters": view.counters,
    }


# How long a board read waits for the hub to read a write just committed (the reader's own,
# mostly: a console reads the board right after each write): a catch-up takes milliseconds.
FOLLOW_WAIT_S = 0.05


def _followed_board(call: Call, precinct: str) -> queries.BoardView | None:
    """The board as this process's sockets of the reader's audience show it, when it holds
    every event committed before the request and no deadline lies between its moment and now
    (None: read it). The hub brought it up to date from the rows each event touched, so a
    supervisor's read before each write costs what changed, not the whole board."""
    if call.live is None:
        return None
    screen = call.live.view_of(board_of(call.actor, precinct),
                               lambda: queries.newest_seq(call.dispatch.engine), FOLLOW_WAIT_S)
    base = screen.view.base if screen is not None else None
    now = call.now
    if base is None or base.now is None or now < base.now or (
            base.next_due is not None and now >= base.next_due):
        return None  # its cards' overdue was worked out for another moment
    return screen.view


def get_units(call: Call) -> dict[str, Any]:
    rows = queries.precinct_units(call.dispatch.engine, call.actor, _in_scope_precinct(call))
    return {"units": [unit_json(u) for u in rows]}


def get_job(call: Call) -> dict[str, Any]:
    detail = queries.job(call.dispatch.engine, call.actor, call.path["job_id"], call.now)
    return job_json(detail, call.actor)


def create_job(call: Call) -> dict[str, Any]:
    b: inputs.NewJob = call.body
    ev = call.dispatch.create_job(call.actor, NewJob(
        b.complaint_type, b.descriptor, address=b.address, lat=b.lat, lon=b.lon,
        description=b.description, fields=contact_fields(b.email, b.phone, b.contact_consent)))
    return job_created(call, ev)


def job_created(call: Call, ev: dict[str, Any]) -> dict[str, Any]:
    """The created job, read back; or, when that read fails, what was written."""
    try:
        detail = queries.job(call.dispatch.engine, call.actor, ev["job_id"], call.now)
    except READ_BACK_FAILED:
        log.warning("job %s created; its read-back failed: answered from its event",
                    ev["job_id"])
        return {"id": ev["job_id"], "event": event_json(ev), "job": None}
    return job_json(detail, call.actor)


def _card_after(call: Call, job_id: int) -> dict[str, Any] | None:
    """The job as it is after a write, or None: the write has committed, so a read that fails
    now (the database gone meanwhile) must not turn its success into a 503 that a client
    retries, storing it twice. The answer's event says what was written."""
    try:
        return card_json(queries.job_card(call.dispatch.engine, call.actor, job_id, call.now))
    except (Forbidden, NotFound):
        return None
    except READ_BACK_FAILED:
        log.warning("write committed (job %s); its read-back failed: answered without the card",
                    job_id)
        return None


@dataclass(frozen=True)
class Action:
    """A use case on one job: its API name, its body model, and how to call it. The HTML
    forms (board.web.pages) post the same fields and go through the same table."""

    name: str
    summary: str
    body: type[BaseModel]
    # the event, or (event, what a recorded reveal shows) for view_photo and view_contact
    do: Callable[[Dispatch, Actor, int, Any], Any]

    @property
    def versioned(self) -> bool:
        return "version" in self.body.model_fields


ACTIONS: tuple[Action, ...] = (
    Action("assign", "Put a new or held job on a unit's stack.", inputs.Assign,
           lambda d, a, j, b: d.assign(a, j, b.version, b.unit_id, b.position)),
    Action("reassign", "Move a job a unit has to another unit.", inputs.Assign,
           lambda d, a, j, b: d.reassign(a, j, b.version, b.unit_id, b.position)),
    Action("unassign", "Return a job to the precinct queue, with a reason.", inputs.WithReason,
           lambda d, a, j, b: d.unassign(a, j, b.version, b.reason)),
    Action("reorder", "Move a job within its unit's stack.", inputs.Reorder,
           lambda d, a, j, b: d.reorder(a, j, b.version, b.position)),
    Action("acknowledge", "The unit acknowledges its assigned job.", inputs.Versioned,
           lambda d, a, j, b: d.acknowledge(a, j, b.version)),
    Action("en_route", "The unit is on its way.", inputs.Versioned,
           lambda d, a, j, b: d.en_route(a, j, b.version)),
    Action("on_scene", "The unit has arrived; optionally with the phone's position (lat, lon, "
           "accuracy_m): the event records the distance to the job.", inputs.OnScene,
           lambda d, a, j, b: d.on_scene(a, j, b.version, fix_of(b))),
    Action("close", "Close a worked job with a 311 disposition; optionally the phone's "
           "position and the summons numbers.", inputs.Close,
           lambda d, a, j, b: d.close(a, j, b.version, b.disposition, b.summons_count, b.note,
                                      position=fix_of(b), summons=b.summons_numbers)),
    Action("admin_close", "Close a queued job administratively (duplicate, …).",
           inputs.AdminClose,
           lambda d, a, j, b: d.admin_close(a, j, b.version, b.disposition, b.note)),
    Action("hold", "Put a queued job on hold, with a reason.", inputs.WithReason,
           lambda d, a, j, b: d.hold(a, j, b.version, b.reason)),
    Action("release", "Release a held job back to the queue.", inputs.Versioned,
           lambda d, a, j, b: d.release(a, j, b.version)),
    Action("reopen", "Reopen a closed job, with a reason.", inputs.WithReason,
           lambda d, a, j, b: d.reopen(a, j, b.version, b.reason)),
    Action("priority", "Set an open job's priority.", inputs.SetPriority,
           lambda d, a, j, b: d.set_priority(a, j, b.version, b.priority)),
    Action("note", "Add a note to the timeline (no version needed).", inputs.AddNote,
           lambda d, a, j, b: d.note(a, j, b.text)),
    Action("route", "Route a job to a precinct (and sector) by hand.", inputs.Route,
           lambda d, a, j, b: d.route(a, j, b.version, b.precinct, b.sector)),
    Action("view_photo", "Open one of the caller's photos; records that it was seen. The "
           "answer's url is the photo.", inputs.ViewPhoto,
           lambda d, a, j, b: _revealed("url", d.view_photo(a, j, b.index))),
    Action("view_contact", "Show the caller's contact details (supervisors and the job's own "
           "officer); records who saw them. The answer's contact holds them.", inputs.Nothing,
           lambda d, a, j, b: _revealed("contact", d.view_contact(a, j))),
)
BY_NAME = {a.name: a for a in ACTIONS}
#: The actions whose answer shows what only a recorded view may show (never cached).
REVEALS = ("view_photo", "view_contact")
#: What they reveal, beside their event (_revealed): never kept for a retry.
REVEALED = ("url", "contact")


def fix_of(body: inputs.Positioned) -> Fix | None:
    """The phone's position a step carries, if any (accuracy only goes with one)."""
    if body.lat is None or body.lon is None:
        if body.accuracy_m is not None:
            raise Invalid({"accuracy_m": "goes with lat and lon: give them too, or neither"})
        return None
    return Fix(body.lat, body.lon, body.accuracy_m)


def _revealed(name: str, result: tuple[dict[str, Any], Any]) -> tuple[dict[str, Any], dict]:
    """A recorded reveal: its event, and what it revealed to go beside it (never inside it)."""
    ev, what = result
    return ev, {name: what}


def _action_run(action: Action) -> Callable[[Call], dict[str, Any]]:
    def run(call: Call) -> dict[str, Any]:
        done = action.do(call.dispatch, call.actor, call.path["job_id"], call.body)
        ev, revealed = done if isinstance(done, tuple) else (done, {})
        return {**action_written(call, ev), **revealed}
    return run


def action_written(call: Call, ev: dict[str, Any]) -> dict[str, Any]:
    """An action's answer from its event. (Made from the event alone, a reveal's answer has no
    url or contact: a client that lost the first answer asks again, recorded again.)"""
    return {"event": event_json(ev), "job": _card_after(call, call.path["job_id"])}


def my_queue(call: Call) -> dict[str, Any]:
    q = queries.officer_queue(call.dispatch.engine, call.actor, call.now)
    return {"unit": unit_json(q.unit) if q.unit is not None else None,
            "jobs": [card_json(c) for c in q.jobs]}


def _unit_after(call: Call, ev: dict[str, Any]) -> dict[str, Any]:
    try:
        rows = queries.precinct_units(call.dispatch.engine, call.actor, ev["precinct"])
    except Forbidden:
        rows = []
    except READ_BACK_FAILED:  # committed already: answered from the event (see _card_after)
        log.warning("write committed (unit %s); its read-back failed", ev["unit_id"])
        rows = []
    unit = next((unit_json(u) for u in rows if u.id == ev["unit_id"]), None)
    return {"event": event_json(ev), "unit": unit}


def my_position(call: Call) -> dict[str, Any]:
    ev = call.dispatch.unit_position(call.actor, call.body.lat, call.body.lon)
    return _unit_after(call, ev)


def unit_status(call: Call) -> dict[str, Any]:
    b: inputs.UnitStatus = call.body
    ev = call.dispatch.unit_status(call.actor, call.path["unit_id"], b.version, b.status,
                                   b.reason)
    return _unit_after(call, ev)


def get_dispositions(call: Call) -> dict[str, Any]:
    return {"dispositions": [
        {"code": d.code, "label": d.label, "resolution": d.resolution,
         "administrative": d.administrative, "summons": d.summons,
         "arrival_expected": d.arrival_expected} for d in DISPOSITIONS]}


def get_rules(call: Call) -> dict[str, Any]:
    return {"rules": [rule_json(r) for r in call.dispatch.rules()]}


def set_rule(call: Call) -> dict[str, Any]:
    return rule_written(call, call.dispatch.set_rule(call.actor, Rule(**call.body.model_dump())))


def rule_written(call: Call, ev: dict[str, Any]) -> dict[str, Any]:
    rule = Rule(**{name: ev["payload"][name] for name in Rule.__dataclass_fields__})
    return {"event": event_json(ev), "rule": rule_json(rule)}


def policy_json(p: Policy) -> dict[str, Any]:
    return {"scope": p.scope, "kind": p.kind, "text": p.text, "enabled": p.enabled,
            "minutes": p.minutes, "metres": p.metres, "dispositions": list(p.dispositions)}


def get_policies(call: Call) -> dict[str, Any]:
    return {"policies": [policy_json(p) for p in call.dispatch.policies(call.actor)],
            "kinds": dict(POLICY_KINDS)}


def set_policy(call: Call) -> dict[str, Any]:
    b: inputs.PolicyChange = call.body
    return policy_written(call, call.dispatch.set_policy(
        call.actor, b.scope, b.kind, b.enabled, b.minutes, metres=b.metres,
        dispositions=split_codes(b.dispositions)))


def policy_written(call: Call, ev: dict[str, Any]) -> dict[str, Any]:
    p = ev["payload"]
    return {"event": event_json(ev),
            "policy": policy_json(Policy(p["kind"], p["enabled"], p["minutes"], p["scope"],
                                         p.get("metres"), tuple(p.get("dispositions") or ())))}


def split_codes(text: str) -> list[str]:
    return [c for c in text.replace(",", " ").split() if c]


def get_openapi(call: Call | None) -> dict[str, Any]:
    return openapi_document()


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of this table (built once: see board.web.openapi)."""
    return openapi.document(ENDPOINTS)


ACTION_ERRORS = (401, 403, 404, 409, 422)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/precincts/{precinct}/board", "get_board", "board",
             "A precinct's board: queue, unit lanes with stacked jobs, recently closed, "
             "counters (and the unrouted queue for citywide users).", get_board, outputs.Board,
             (401, 403, 404)),
    Endpoint("GET", "/precincts/{precinct}/units", "get_units", "board",
             "Every unit of a precinct, off duty included, with its version.", get_units,
             outputs.UnitList, (401, 403, 404)),
    Endpoint("POST", "/jobs", "create_job", "jobs",
             "Create a job by hand; it is routed by its coordinates and prioritised by the "
             "rules.", create_job, outputs.JobDetail, (401, 403, 422), body=inputs.NewJob,
             status=201, also=(outputs.JobWritten,),
             location=lambda job: f"{PREFIX}/jobs/{job['id']}", answer=job_created),
    Endpoint("GET", "/jobs/{job_id}", "get_job", "jobs",
             "A job: every field, its flags and its whole timeline.", get_job,
             outputs.JobDetail, (401, 403, 404)),
    *(Endpoint("POST", f"/jobs/{{job_id}}/{a.name}", f"job_{a.name}", "actions", a.summary,
               _action_run(a), outputs.ActionResult,
               ACTION_ERRORS if a.versioned else (401, 403, 404, 422), body=a.body,
               no_store=a.name in REVEALS, answer=action_written)
      for a in ACTIONS),
    Endpoint("GET", "/me/queue", "my_queue", "officer",
             "My unit's stack, top job first (empty for users without a unit).", my_queue,
             outputs.OfficerQueue),
    Endpoint("POST", "/me/position", "my_position", "officer",
             "Report my unit's position (with the officer's consent).", my_position,
             outputs.UnitResult, (401, 403, 422), body=inputs.Position, answer=_unit_after),
    Endpoint("POST", "/units/{unit_id}/status", "unit_status", "units",
             "Put a unit out of service (with a reason), off duty or back to available.",
             unit_status, outputs.UnitResult, (401, 403, 404, 409, 422),
             body=inputs.UnitStatus, answer=_unit_after),
    Endpoint("GET", "/dispositions", "get_dispositions", "reference",
             "The 311 resolution outcomes a job can be closed with.", get_dispositions,
             outputs.DispositionList),
    Endpoint("GET", "/rules", "get_rules", "reference",
             "Priority and stage-deadline rules on complaint type and descriptor.", get_rules,
             outputs.RuleList),
    Endpoint("POST", "/rules", "set_rule", "reference",
             "Add or change a rule; it applies to jobs that come in from now on.", set_rule,
             outputs.RuleResult, (401, 403, 422), body=inputs.RuleChange, answer=rule_written),
    Endpoint("GET", "/policies", "get_policies", "policies",
             "Close policies: the citywide settings and your precincts' (supervisors, "
             "commanders, admins).", get_policies, outputs.PolicyList, (401, 403)),
    Endpoint("PUT", "/policies", "set_policy", "policies",
             "Turn a close policy on or off, citywide or for one precinct (admins: citywide "
             "admins for citywide settings). Every change is a set_policy event.", set_policy,
             outputs.PolicyResult, (401, 403, 422), body=inputs.PolicyChange,
             answer=policy_written),
    Endpoint("GET", "/openapi.json", "openapi", "reference", "This document.", get_openapi,
             outputs.OpenAPI, (), public=True),
)


# -- serving ----------------------------------------------------------------------------------


PATH_TYPES = {"job_id": (path_id, "job"), "unit_id": (path_id, "unit"),
              "precinct": (path_code, "precinct")}


def _path_params(raw: dict[str, str]) -> dict[str, Any]:
    """Path values read by board.web.validation; one that cannot name anything is a 404."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        read, what = PATH_TYPES.get(name, (str, name))
        out[name] = read(value)
        if out[name] is None:
            raise NotFound(f"no such {what}")
    return out


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


def authenticate(dispatch: Dispatch, token: str | None, origin: dict[str, Any] | None = None
                 ) -> Actor:
    """The token's user (a live token of an enabled user), with where the request came from."""
    actor = (auth.token_actor(dispatch.engine, token, "api", **(origin or {}))
             if token else None)
    if actor is None:
        raise Unauthorized("send Authorization: Bearer <token> (board tokens create USER)")
    return actor


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY (reading stops there)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


WRITES = openapi.WRITES
IDEMPOTENCY_KEY = re.compile(openapi.IDEMPOTENCY_KEY["pattern"])


class KeyInUse(Exception):
    """The first request with this Idempotency-Key has not answered yet."""


KEY_IN_USE = outputs.KEY_IN_USE


@dataclass(frozen=True)
class Sent:
    """What _handle needs of the HTTP request beyond the path values."""

    method: str
    path: str
    key: str | None


def idempotency_key(key: str | None) -> str | None:
    """The header's key, or None without one; a malformed key is a 422."""
    if key is None:
        return None
    if len(key) > openapi.IDEMPOTENCY_KEY["maxLength"] or not IDEMPOTENCY_KEY.fullmatch(key):
        raise Invalid({"Idempotency-Key": "must be 1 to 100 printable ASCII characters"})
    return key


def _handle(ep: Endpoint, dispatch: Dispatch, token: str | None, raw_path: dict[str, str],
            raw: bytes | None, origin: dict[str, Any] | None = None,
            req: Sent | None = None, live: Views | None = None) -> tuple[int, Any, bool]:
    """In a worker thread: who, then which, then what, then do it. 401 before 404 before 422.
    Returns (status, answer, replayed)."""
    actor = authenticate(dispatch, token, origin) if not ep.public else None
    path = _path_params(raw_path)
    body = None
    if ep.body is not None:
        if raw is None:
            raise Invalid({"body": f"is larger than {MAX_BODY // 1024} KB"})
        body = read_json(ep.body, raw)
    call = Call(dispatch, actor, path, body, live)  # type: ignore[arg-type]
    key = idempotency_key(req.key) if req is not None and req.method in WRITES else None
    if req is None or key is None or actor is None or actor.id is None:
        return ep.status, ep.run(call), False
    return _once(ep, call, replace(req, key=key), raw or b"")


def _once(ep: Endpoint, call: Call, req: Sent, raw: bytes) -> tuple[int, Any, bool]:
    """A write under an Idempotency-Key: claimed first, so a retry (or a racing copy) of the
    same request answers what the first one answered, and nothing is written twice."""
    engine, actor_id, key = call.dispatch.engine, call.actor.id, req.key
    assert actor_id is not None and key is not None
    print_ = idempotency.fingerprint(req.method, req.path, raw)
    held = idempotency.claim(engine, actor_id, key, print_, call.now)
    if held is not None:
        if held.fingerprint != print_:
            raise Invalid({"Idempotency-Key": "was used for a different request (method, path "
                                              "or body); use a new key for a new request"})
        if held.status is not None:
            return held.status, held.response, True
        if held.written is None or ep.answer is None:
            raise KeyInUse(KEY_IN_USE)
        # committed, never answered (its process died, or the database went, after the commit)
        payload = ep.answer(call, held.written)
        _store_answer(engine, actor_id, key, ep.status, payload)
        return ep.status, payload, True
    try:
        payload = ep.run(replace(call, actor=replace(call.actor, idempotency_key=key)))
    except idempotency.ClaimLost:  # a retry took the claim meanwhile: this write rolled back
        raise KeyInUse(KEY_IN_USE) from None
    except Exception:
        try:
            idempotency.release(engine, actor_id, key)
        except READ_BACK_FAILED:
            log.warning("could not release an Idempotency-Key after a failed write")
        raise
    _store_answer(engine, actor_id, key, ep.status,
                  _without_reveals(payload) if ep.no_store else payload)
    return ep.status, payload, False


def _without_reveals(payload: Any) -> Any:
    """What a reveal's retry gets: its event, not the photo address or the caller's contact
    (kept 24 h beside the key, they would outlive the one recorded view)."""
    return {k: v for k, v in payload.items() if k not in REVEALED} if isinstance(
        payload, dict) else payload


def _store_answer(engine: Any, actor_id: int, key: str, status: int, payload: Any) -> None:
    """Keep the answer for a retry; if that fails the claim's event answers it instead."""
    try:
        idempotency.answer(engine, actor_id, key, status, payload)
    except READ_BACK_FAILED:
        log.warning("write committed; storing its Idempotency-Key answer failed")


def error_response(exc: Exception) -> JSONResponse | None:
    """The API's answer to a refusal (shapes in board.web.outputs); None for anything that is a
    bug, left to raise to board.web.errors (a JSON 500 with the request id)."""
    if isinstance(exc, Unauthorized):
        return api_error(401, str(exc), {"WWW-Authenticate": 'Bearer realm="board"'})
    if isinstance(exc, Forbidden):
        return api_error(403, str(exc))
    if isinstance(exc, NotFound):
        return api_error(404, str(exc))
    if isinstance(exc, Conflict):
        return api_error(409, str(exc), job_id=exc.job_id, by=exc.by, kind=exc.kind,
                         at=_iso(exc.at), your_version=exc.expected, current_version=exc.current)
    if isinstance(exc, UnitConflict):
        return api_error(409, str(exc), unit_id=exc.unit_id, by=exc.by, kind=exc.kind,
                         at=_iso(exc.at), your_version=exc.expected, current_version=exc.current)
    if isinstance(exc, TransitionError):
        return JSONResponse({"error": "invalid_transition", "detail": str(exc),
                             "action": API_NAME.get(exc.action, exc.action),
                             "status": exc.status.value}, 409)
    if isinstance(exc, Invalid):
        return api_error(422, str(exc), fields=exc.errors)
    if isinstance(exc, KeyInUse):
        return api_error(409, str(exc), {"Retry-After": "1"})
    return None


class PathEndpoints:
    """The ASGI app of one path: its methods from ENDPOINTS, JSON 405 for any other."""

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.endpoints = endpoints
        self.methods = frozenset(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        ep = self.endpoints.get(request.method)
        if ep is None:
            allow = ", ".join(sorted(self.methods))
            response: Response = api_error(405, f"use {allow}", {"Allow": allow})
        else:
            response = await serve(ep, request)
        await response(scope, receive, send)


async def serve(ep: Endpoint, request: Request) -> Response:
    raw = await _read_body(request) if ep.body is not None else b""
    try:
        status, payload, replayed = await run_in_threadpool(
            _handle, ep, request.app.state.dispatch, _bearer(request),
            dict(request.path_params), raw, auth.origin_of(request),
            Sent(request.method, request.url.path,
                 request.headers.get("idempotency-key")),
            getattr(request.app.state, "hub", None))
    except Exception as exc:
        refused = error_response(exc)
        if refused is None:
            raise
        return refused
    headers = {"Location": ep.location(payload)} if ep.location else {}
    if ep.no_store:
        headers["Cache-Control"] = "no-store"
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(payload, status, headers=headers)


_JOB_ACTION = re.compile(r"/jobs/[^/]+/([^/]+)/?")


async def no_route(scope: Scope, receive: Receive, send: Send) -> None:
    """Anything under /api/v1 the table does not have: JSON, and 422 for an unknown action."""
    request = Request(scope, receive)
    rest = request.url.path.removeprefix(PREFIX)
    match = _JOB_ACTION.fullmatch(rest)
    response: Response
    if match and request.method == "POST":
        try:
            await run_in_threadpool(authenticate, request.app.state.dispatch, _bearer(request))
        except Unauthorized as exc:
            response = error_response(exc)  # type: ignore[assignment]
        else:
            known = ", ".join(a.name for a in ACTIONS)
            response = api_error(422, "unknown action", fields={
                "action": f"unknown action {match.group(1)[:40]!r}; one of: {known}"})
    elif allow := _other_methods(scope):
        response = api_error(405, f"use {allow}", {"Allow": allow})
    else:
        response = api_error(404, f"no such endpoint; see {PREFIX}/openapi.json")
    await response(scope, receive, send)


def _other_methods(scope: Scope) -> str:
    """The methods of an app route outside this table at the same path (/api/v1/qstat), or
    "" when no route has the path: a path that exists with another method is a 405."""
    from starlette.routing import Match

    path = scope["path"] if scope["path"].startswith(PREFIX) else PREFIX + scope["path"]
    outer = {**scope, "path": path, "root_path": ""}
    for route in scope["app"].router.routes:
        methods = getattr(route, "methods", None)
        if methods and route.matches(outer)[0] is Match.PARTIAL:
            return ", ".join(sorted(methods))
    return ""


def _build_routes() -> list[BaseRoute]:
    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in ENDPOINTS:
        by_path.setdefault(ep.path, {})[ep.method] = ep
    inner = [Route(path, PathEndpoints(eps), name="api:" + "|".join(e.name for e in eps.values()))
             for path, eps in by_path.items()]
    return [Mount(PREFIX, app=Router(inner, default=no_route), name="api")]


routes: list[BaseRoute] = _build_routes()

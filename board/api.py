"""The JSON API under /api/v1: every use case, for machines, by bearer token only.

One table, ENDPOINTS, drives both the router and the OpenAPI document served at
/api/v1/openapi.json, so the two cannot drift apart. Each endpoint declares its typed body
fields (Field); the same declaration validates a request (422 with a message per field) and
becomes the request-body schema of the document.

Writes go through board.usecases.Dispatch (the one write path) and reads through
board.queries, so role and precinct scope are checked where they are for the web pages. A
refusal never carries job data: 403 and 404 bodies are a fixed error code and a generic
sentence.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from board import auth, queries
from board.access import Actor, Forbidden
from board.dispositions import ADMINISTRATIVE, DISPOSITIONS, FIELD
from board.lifecycle import TransitionError
from board.lifecycle import allowed_actions as lifecycle_allowed
from board.priorities import ANY, Rule
from board.privacy import contact_of, public_fields, public_payload
from board.usecases import (
    UNIT_STATUSES,
    Conflict,
    Dispatch,
    Invalid,
    NewJob,
    NotFound,
    UnitConflict,
)

PREFIX = "/api/v1"
MAX_BODY = 64 * 1024
INT_MAX = 2**31 - 1  # every integer column is a 32-bit INTEGER on PostgreSQL
CODE = r"[0-9A-Za-z]{1,8}"  # a precinct or sector id


class Unauthorized(Exception):
    pass


# -- typed request fields -------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One JSON body field: its type and limits, checked on the way in and documented."""

    name: str
    kind: str  # "integer" | "number" | "string"
    doc: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    multiline: bool = False
    default: Any = None

    def parse(self, value: Any) -> Any:
        """The value, checked; ValueError with the message for the client otherwise."""
        if self.kind == "string":
            return self._string(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be {'an integer' if self.kind == 'integer' else 'a number'}")
        if self.kind == "integer" and not isinstance(value, int):
            raise ValueError("must be an integer")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        lo, hi = self._bounds()
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"must be between {_num(lo)} and {_num(hi)}")
        return float(value) if self.kind == "number" else value

    def _bounds(self) -> tuple[float | None, float | None]:
        if self.kind == "integer":
            return (-INT_MAX - 1 if self.minimum is None else self.minimum,
                    INT_MAX if self.maximum is None else self.maximum)
        return self.minimum, self.maximum

    def _string(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        if "\x00" in value or (not self.multiline and not value.isprintable()):
            raise ValueError("must not contain control characters")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters")
        if self.enum is not None and value not in self.enum:
            raise ValueError(f"must be one of: {', '.join(self.enum)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ValueError("is not a valid code (letters and digits, at most 8)")
        return value

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": self.kind, "description": self.doc}
        lo, hi = self._bounds()
        if lo is not None:
            s["minimum"] = lo
        if hi is not None:
            s["maximum"] = hi
        if self.max_length is not None:
            s["maxLength"] = self.max_length
        if self.pattern is not None:
            s["pattern"] = f"^{self.pattern}$"
        if self.enum is not None:
            s["enum"] = list(self.enum)
        if self.default is not None:
            s["default"] = self.default
        return s


def _num(value: float | None) -> str:
    return "∞" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def required(f: Field) -> Field:
    return replace(f, required=True)


def read_fields(data: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """A request body checked against its fields: the values, or Invalid naming every bad one."""
    if not isinstance(data, dict):
        raise Invalid({"body": "must be a JSON object"})
    known = {f.name for f in fields}
    errors = {str(k)[:60]: "is not a field of this request" for k in data if k not in known}
    values: dict[str, Any] = {}
    for f in fields:
        value = data.get(f.name)
        if value is None:
            if f.required:
                errors[f.name] = "is required"
            values[f.name] = f.default
            continue
        try:
            values[f.name] = f.parse(value)
        except ValueError as e:
            errors[f.name] = str(e)
    if errors:
        raise Invalid(errors)
    return values


def parse_json(raw: bytes) -> Any:
    """Strict JSON (no NaN or Infinity); an empty body is an empty object."""
    if not raw.strip():
        return {}

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw, parse_constant=no_constants)
    except RecursionError:
        raise Invalid({"body": "is nested too deeply"}) from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Invalid({"body": f"is not valid JSON ({str(e)[:120]})"}) from None


VERSION = Field("version", "integer", "The job version this change is made against; a stale one "
                "gets 409.", required=True, minimum=1)
UNIT_ID = Field("unit_id", "integer", "The unit to put the job on.", required=True, minimum=1)
POSITION = Field("position", "integer", "Place in the unit's stack, 0 = top; default the end.",
                 minimum=0, maximum=10_000)
REASON = Field("reason", "string", "Why, for the timeline.", required=True, max_length=300)
NOTE = Field("note", "string", "Optional note on the close.", max_length=2000, multiline=True,
             default="")
PRIORITY = Field("priority", "integer", "1 urgent, 2 high, 3 routine, 4 low.", required=True,
                 minimum=1, maximum=4)
LAT = Field("lat", "number", "Latitude (WGS84).", minimum=-90, maximum=90)
LON = Field("lon", "number", "Longitude (WGS84).", minimum=-180, maximum=180)
MINUTES = {"minimum": 1, "maximum": 525_600}

CREATE_FIELDS = (
    Field("complaint_type", "string", "311 complaint type, e.g. Noise - Residential.",
          required=True, max_length=120),
    Field("descriptor", "string", "311 descriptor, e.g. Loud Music/Party.", max_length=200,
          default=""),
    Field("address", "string", "Incident address.", max_length=300, default=""),
    LAT, LON,
    Field("description", "string", "What the caller said.", max_length=2000, multiline=True,
          default=""),
)
RULE_FIELDS = (
    Field("complaint_type", "string", "311 complaint type the rule applies to.", required=True,
          max_length=120),
    Field("descriptor", "string", f"Descriptor, or {ANY!r} for any.", max_length=200,
          default=ANY),
    PRIORITY,
    Field("ack_minutes", "integer", "Minutes to acknowledge.", required=True, **MINUTES),
    Field("arrive_minutes", "integer", "Minutes to arrive on scene.", required=True, **MINUTES),
    Field("close_minutes", "integer", "Minutes to close.", required=True, **MINUTES),
)


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


def lane_json(lane: queries.Lane) -> dict[str, Any]:
    return {
        "id": lane.id, "version": lane.version, "callsign": lane.callsign, "sector": lane.sector,
        "status": lane.status, "status_reason": lane.status_reason, "activity": lane.activity,
        "lat": lane.lat, "lon": lane.lon, "jobs": [card_json(c) for c in lane.jobs],
    }


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


@dataclass(frozen=True)
class Call:
    """One authenticated request, as an endpoint's run() sees it (in a worker thread)."""

    dispatch: Dispatch
    actor: Actor
    path: dict[str, Any]
    body: dict[str, Any]

    @property
    def now(self) -> datetime:
        return self.dispatch.clock()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under PREFIX
    name: str  # the OpenAPI operationId
    tag: str
    summary: str
    run: Callable[[Call], Any]
    returns: str  # a schema under components/schemas
    errors: tuple[int, ...] = (401,)
    body: tuple[Field, ...] | None = None
    status: int = 200
    public: bool = False
    location: Callable[[Any], str] | None = None  # Location header of a 201


def _in_scope_precinct(call: Call) -> str:
    precinct = call.path["precinct"]
    queries.check_precinct(call.actor, precinct)
    geo = call.dispatch.geo
    if geo is not None and precinct not in geo.precincts():
        raise NotFound(f"no precinct {precinct}")
    return precinct


def get_board(call: Call) -> dict[str, Any]:
    view = queries.board(call.dispatch.engine, call.actor, _in_scope_precinct(call), call.now)
    return {
        "precinct": view.precinct, "queue": [card_json(c) for c in view.queue],
        "lanes": [lane_json(lane) for lane in view.lanes],
        "closed": [card_json(c) for c in view.closed],
        "unrouted": [card_json(c) for c in view.unrouted], "counters": view.counters,
    }


def get_units(call: Call) -> dict[str, Any]:
    rows = queries.precinct_units(call.dispatch.engine, call.actor, _in_scope_precinct(call))
    return {"units": [unit_json(u) for u in rows]}


def get_job(call: Call) -> dict[str, Any]:
    detail = queries.job(call.dispatch.engine, call.actor, call.path["job_id"], call.now)
    return job_json(detail, call.actor)


def create_job(call: Call) -> dict[str, Any]:
    b = call.body
    if (b["lat"] is None) != (b["lon"] is None):
        missing = "lon" if b["lon"] is None else "lat"
        raise Invalid({missing: "give both lat and lon, or neither"})
    ev = call.dispatch.create_job(call.actor, NewJob(
        b["complaint_type"], b["descriptor"], address=b["address"], lat=b["lat"], lon=b["lon"],
        description=b["description"]))
    detail = queries.job(call.dispatch.engine, call.actor, ev["job_id"], call.now)
    return job_json(detail, call.actor)


def _card_after(call: Call, job_id: int) -> dict[str, Any] | None:
    try:
        return card_json(queries.job(call.dispatch.engine, call.actor, job_id, call.now).card)
    except (Forbidden, NotFound):
        return None


@dataclass(frozen=True)
class Action:
    name: str
    summary: str
    fields: tuple[Field, ...]
    # the event, or (event, what a recorded reveal shows) for view_photo and view_contact
    do: Callable[[Dispatch, Actor, int, dict[str, Any]], Any]
    versioned: bool = True


ACTIONS: tuple[Action, ...] = (
    Action("assign", "Put a new or held job on a unit's stack.", (VERSION, UNIT_ID, POSITION),
           lambda d, a, j, b: d.assign(a, j, b["version"], b["unit_id"], b["position"])),
    Action("reassign", "Move a job a unit has to another unit.", (VERSION, UNIT_ID, POSITION),
           lambda d, a, j, b: d.reassign(a, j, b["version"], b["unit_id"], b["position"])),
    Action("unassign", "Return a job to the precinct queue, with a reason.", (VERSION, REASON),
           lambda d, a, j, b: d.unassign(a, j, b["version"], b["reason"])),
    Action("reorder", "Move a job within its unit's stack.", (VERSION, required(POSITION)),
           lambda d, a, j, b: d.reorder(a, j, b["version"], b["position"])),
    Action("acknowledge", "The unit acknowledges its assigned job.", (VERSION,),
           lambda d, a, j, b: d.acknowledge(a, j, b["version"])),
    Action("en_route", "The unit is on its way.", (VERSION,),
           lambda d, a, j, b: d.en_route(a, j, b["version"])),
    Action("on_scene", "The unit has arrived.", (VERSION,),
           lambda d, a, j, b: d.on_scene(a, j, b["version"])),
    Action("close", "Close a worked job with a 311 disposition.", (
        VERSION,
        Field("disposition", "string", "A field disposition code (GET /dispositions).",
              required=True, enum=tuple(d.code for d in FIELD)),
        Field("summons_count", "integer", "Summonses issued; required for summons_issued.",
              minimum=0, maximum=1000),
        NOTE,
    ), lambda d, a, j, b: d.close(a, j, b["version"], b["disposition"], b["summons_count"],
                                  b["note"])),
    Action("admin_close", "Close a queued job administratively (duplicate, …).", (
        VERSION,
        Field("disposition", "string", "An administrative disposition code.", required=True,
              enum=tuple(d.code for d in ADMINISTRATIVE)),
        NOTE,
    ), lambda d, a, j, b: d.admin_close(a, j, b["version"], b["disposition"], b["note"])),
    Action("hold", "Put a queued job on hold, with a reason.", (VERSION, REASON),
           lambda d, a, j, b: d.hold(a, j, b["version"], b["reason"])),
    Action("release", "Release a held job back to the queue.", (VERSION,),
           lambda d, a, j, b: d.release(a, j, b["version"])),
    Action("reopen", "Reopen a closed job, with a reason.", (VERSION, REASON),
           lambda d, a, j, b: d.reopen(a, j, b["version"], b["reason"])),
    Action("priority", "Set an open job's priority.", (VERSION, PRIORITY),
           lambda d, a, j, b: d.set_priority(a, j, b["version"], b["priority"])),
    Action("note", "Add a note to the timeline (no version needed).", (
        Field("text", "string", "The note.", required=True, max_length=2000, multiline=True),
    ), lambda d, a, j, b: d.note(a, j, b["text"]), versioned=False),
    Action("route", "Route a job to a precinct (and sector) by hand.", (
        VERSION,
        Field("precinct", "string", "Precinct id, e.g. 75.", required=True, pattern=CODE),
        Field("sector", "string", "Sector id within the precinct.", pattern=CODE),
    ), lambda d, a, j, b: d.route(a, j, b["version"], b["precinct"], b["sector"])),
    Action("view_photo", "Open one of the caller's photos; records that it was seen. The "
           "answer's url is the photo.", (
               Field("index", "integer", "Which photo, from 0.", required=True, minimum=0,
                     maximum=1000),
           ), lambda d, a, j, b: _revealed("url", d.view_photo(a, j, b["index"])),
           versioned=False),
    Action("view_contact", "Show the caller's contact details (supervisors and the job's own "
           "officer); records who saw them. The answer's contact holds them.", (),
           lambda d, a, j, b: _revealed("contact", d.view_contact(a, j)), versioned=False),
)


def _revealed(name: str, result: tuple[dict[str, Any], Any]) -> tuple[dict[str, Any], dict]:
    """A recorded reveal: its event, and what it revealed to go beside it (never inside it)."""
    ev, what = result
    return ev, {name: what}


def _action_run(action: Action) -> Callable[[Call], dict[str, Any]]:
    def run(call: Call) -> dict[str, Any]:
        job_id = call.path["job_id"]
        done = action.do(call.dispatch, call.actor, job_id, call.body)
        ev, revealed = done if isinstance(done, tuple) else (done, {})
        return {"event": event_json(ev), "job": _card_after(call, job_id), **revealed}
    return run


def my_queue(call: Call) -> dict[str, Any]:
    q = queries.officer_queue(call.dispatch.engine, call.actor, call.now)
    return {"unit": unit_json(q.unit) if q.unit is not None else None,
            "jobs": [card_json(c) for c in q.jobs]}


def _unit_after(call: Call, ev: dict[str, Any]) -> dict[str, Any]:
    try:
        rows = queries.precinct_units(call.dispatch.engine, call.actor, ev["precinct"])
    except Forbidden:
        rows = []
    unit = next((unit_json(u) for u in rows if u.id == ev["unit_id"]), None)
    return {"event": event_json(ev), "unit": unit}


def my_position(call: Call) -> dict[str, Any]:
    ev = call.dispatch.unit_position(call.actor, call.body["lat"], call.body["lon"])
    return _unit_after(call, ev)


def unit_status(call: Call) -> dict[str, Any]:
    b = call.body
    ev = call.dispatch.unit_status(call.actor, call.path["unit_id"], b["version"], b["status"],
                                   b["reason"])
    return _unit_after(call, ev)


def get_dispositions(call: Call) -> dict[str, Any]:
    return {"dispositions": [
        {"code": d.code, "label": d.label, "resolution": d.resolution,
         "administrative": d.administrative, "summons": d.summons,
         "arrival_expected": d.arrival_expected} for d in DISPOSITIONS]}


def get_rules(call: Call) -> dict[str, Any]:
    return {"rules": [rule_json(r) for r in call.dispatch.rules()]}


def set_rule(call: Call) -> dict[str, Any]:
    rule = Rule(**{f.name: call.body[f.name] for f in RULE_FIELDS})
    ev = call.dispatch.set_rule(call.actor, rule)
    return {"event": event_json(ev), "rule": rule_json(rule)}


def get_openapi(call: Call | None) -> dict[str, Any]:
    return openapi()


ACTION_ERRORS = (401, 403, 404, 409, 422)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/precincts/{precinct}/board", "get_board", "board",
             "A precinct's board: queue, unit lanes with stacked jobs, recently closed, "
             "counters (and the unrouted queue for citywide users).", get_board, "Board",
             (401, 403, 404)),
    Endpoint("GET", "/precincts/{precinct}/units", "get_units", "board",
             "Every unit of a precinct, off duty included, with its version.", get_units,
             "UnitList", (401, 403, 404)),
    Endpoint("POST", "/jobs", "create_job", "jobs",
             "Create a job by hand; it is routed by its coordinates and prioritised by the "
             "rules.", create_job, "JobDetail", (401, 403, 422), body=CREATE_FIELDS, status=201,
             location=lambda job: f"{PREFIX}/jobs/{job['id']}"),
    Endpoint("GET", "/jobs/{job_id}", "get_job", "jobs",
             "A job: every field, its flags and its whole timeline.", get_job, "JobDetail",
             (401, 403, 404)),
    *(Endpoint("POST", f"/jobs/{{job_id}}/{a.name}", f"job_{a.name}", "actions", a.summary,
               _action_run(a), "ActionResult",
               ACTION_ERRORS if a.versioned else (401, 403, 404, 422), body=a.fields)
      for a in ACTIONS),
    Endpoint("GET", "/me/queue", "my_queue", "officer",
             "My unit's stack, top job first (empty for users without a unit).", my_queue,
             "OfficerQueue"),
    Endpoint("POST", "/me/position", "my_position", "officer",
             "Report my unit's position (with the officer's consent).", my_position,
             "UnitResult", (401, 403, 422), body=(required(LAT), required(LON))),
    Endpoint("POST", "/units/{unit_id}/status", "unit_status", "units",
             "Put a unit out of service (with a reason), off duty or back to available.",
             unit_status, "UnitResult", (401, 403, 404, 409, 422), body=(
                 Field("version", "integer", "The unit version this change is made against.",
                       required=True, minimum=1),
                 Field("status", "string", "The unit's new status.", required=True,
                       enum=UNIT_STATUSES),
                 Field("reason", "string", "Required for out_of_service.", max_length=200,
                       default=""),
             )),
    Endpoint("GET", "/dispositions", "get_dispositions", "reference",
             "The 311 resolution outcomes a job can be closed with.", get_dispositions,
             "DispositionList"),
    Endpoint("GET", "/rules", "get_rules", "reference",
             "Priority and stage-deadline rules on complaint type and descriptor.", get_rules,
             "RuleList"),
    Endpoint("POST", "/rules", "set_rule", "reference",
             "Add or change a rule; it applies to jobs that come in from now on.", set_rule,
             "RuleResult", (401, 403, 422), body=RULE_FIELDS),
    Endpoint("GET", "/openapi.json", "openapi", "reference", "This document.", get_openapi,
             "OpenAPI", (), public=True),
)


# -- serving ----------------------------------------------------------------------------------


def _path_params(raw: dict[str, str]) -> dict[str, Any]:
    """Path values checked like body fields; one that cannot name anything is a 404."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ("job_id", "unit_id"):
            what = name.removesuffix("_id")
            if not (value.isascii() and value.isdigit() and len(value) <= 10):
                raise NotFound(f"no such {what}")
            number = int(value)
            if not 0 < number <= INT_MAX:
                raise NotFound(f"no such {what}")
            out[name] = number
        elif name == "precinct":
            if not re.fullmatch(CODE, value):
                raise NotFound("no such precinct")
            out[name] = value
        else:
            out[name] = value
    return out


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    return token


def authenticate(dispatch: Dispatch, token: str | None) -> Actor:
    actor = auth.token_actor(dispatch.engine, token, source="api") if token else None
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


def _handle(ep: Endpoint, dispatch: Dispatch, token: str | None, raw_path: dict[str, str],
            raw: bytes | None) -> Any:
    """In a worker thread: who, then which, then what, then do it. 401 before 404 before 422."""
    actor = authenticate(dispatch, token) if not ep.public else None
    path = _path_params(raw_path)
    body: dict[str, Any] = {}
    if ep.body is not None:
        if raw is None:
            raise Invalid({"body": f"is larger than {MAX_BODY // 1024} KB"})
        body = read_fields(parse_json(raw), ep.body)
    return ep.run(Call(dispatch, actor, path, body))  # type: ignore[arg-type]


def error_response(exc: Exception) -> JSONResponse | None:
    """The API's answer to a refusal; None for anything that is a bug (left to raise)."""
    if isinstance(exc, Unauthorized):
        return JSONResponse({"error": "unauthorized", "detail": str(exc)}, 401,
                            headers={"WWW-Authenticate": 'Bearer realm="board"'})
    if isinstance(exc, Forbidden):
        return JSONResponse({"error": "forbidden", "detail": str(exc)}, 403)
    if isinstance(exc, NotFound):
        return JSONResponse({"error": "not_found", "detail": str(exc)}, 404)
    if isinstance(exc, Conflict):
        return JSONResponse({
            "error": "conflict", "detail": str(exc), "job_id": exc.job_id, "by": exc.by,
            "kind": exc.kind, "at": _iso(exc.at), "your_version": exc.expected,
            "current_version": exc.current}, 409)
    if isinstance(exc, UnitConflict):
        return JSONResponse({
            "error": "conflict", "detail": str(exc), "unit_id": exc.unit_id, "by": exc.by,
            "kind": exc.kind, "at": _iso(exc.at), "your_version": exc.expected,
            "current_version": exc.current}, 409)
    if isinstance(exc, TransitionError):
        return JSONResponse({"error": "invalid_transition", "detail": str(exc),
                             "action": API_NAME.get(exc.action, exc.action),
                             "status": exc.status.value}, 409)
    if isinstance(exc, Invalid):
        return JSONResponse({"error": "invalid", "detail": str(exc), "fields": exc.errors}, 422)
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
            response: Response = JSONResponse(
                {"error": "method_not_allowed", "detail": f"use {allow}"}, 405,
                headers={"Allow": allow})
        else:
            response = await serve(ep, request)
        await response(scope, receive, send)


async def serve(ep: Endpoint, request: Request) -> Response:
    raw = await _read_body(request) if ep.body is not None else b""
    try:
        payload = await run_in_threadpool(_handle, ep, request.app.state.dispatch,
                                          _bearer(request), dict(request.path_params), raw)
    except Exception as exc:
        refused = error_response(exc)
        if refused is None:
            raise
        return refused
    headers = {"Location": ep.location(payload)} if ep.location else None
    return JSONResponse(payload, ep.status, headers=headers)


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
            response = JSONResponse({
                "error": "invalid", "detail": "unknown action",
                "fields": {"action": f"unknown action {match.group(1)[:40]!r}; one of: {known}"},
            }, 422)
    else:
        response = JSONResponse({"error": "not_found",
                                 "detail": f"no such endpoint; see {PREFIX}/openapi.json"}, 404)
    await response(scope, receive, send)


def _build_routes() -> list[BaseRoute]:
    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in ENDPOINTS:
        by_path.setdefault(ep.path, {})[ep.method] = ep
    inner = [Route(path, PathEndpoints(eps), name="api:" + "|".join(e.name for e in eps.values()))
             for path, eps in by_path.items()]
    return [Mount(PREFIX, app=Router(inner, default=no_route), name="api")]


routes: list[BaseRoute] = _build_routes()


# -- the OpenAPI document ---------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _t(kind: str, null: bool = False, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"] if null else kind, **more}


def _obj(props: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), **more}


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


TIME = {"type": "string", "format": "date-time"}
NTIME = {"type": ["string", "null"], "format": "date-time"}

CARD = {
    "id": _t("integer"), "version": _t("integer"),
    "status": _t("string", enum=["new", "held", "assigned", "acknowledged", "en_route",
                                 "on_scene", "closed"]),
    "status_label": _t("string"), "priority": _t("integer", minimum=1, maximum=4),
    "complaint_type": _t("string"), "descriptor": _t("string"), "address": _t("string"),
    "precinct": _t("string", True), "sector": _t("string", True), "lat": _t("number", True),
    "lon": _t("number", True), "received_at": TIME, "created_at": TIME,
    "unit_id": _t("integer", True), "unit": _t("string", True),
    "stack_pos": _t("integer", True), "photos": _t("integer"),
    "overdue": _t("string", True, description="what the job is late for, e.g. not on scene"),
    "disposition": _t("string", True), "closed_at": NTIME, "external_key": _t("string", True),
    "flags": _list(_t("string", enum=["quick_close", "no_arrival", "photos_unviewed",
                                      "reopened"])),
    "next_step": {"oneOf": [{"type": "null"},
                            _obj({"action": _t("string"), "label": _t("string")})]},
}
EVENT = {
    "seq": _t("integer"), "job_id": _t("integer", True), "unit_id": _t("integer", True),
    "precinct": _t("string", True), "at": TIME, "kind": _t("string"), "actor": _t("string"),
    "source": _t("string", description="web, api, intake, open311, system, …"),
    "before": _t("string", True), "after": _t("string", True),
    "payload": _t("object", additionalProperties=True),
}
UNIT = {
    "id": _t("integer"), "callsign": _t("string"), "precinct": _t("string"),
    "sector": _t("string", True), "status": _t("string", enum=list(UNIT_STATUSES)),
    "status_reason": _t("string", True), "lat": _t("number", True), "lon": _t("number", True),
    "position_at": NTIME, "version": _t("integer"),
}
DETAIL = {
    **CARD, "source": _t("string"), "route_method": _t("string"),
    "location_type": _t("string"), "borough": _t("string"),
    "fields": _t("object", description="the 311 request's own fields, without photo "
                 "addresses or the caller's contact details", additionalProperties=True),
    "has_contact": _t("boolean", description="the caller left contact details: "
                      "view_contact shows them and records who saw them"),
    "resolution": _t("string", True), "summons_count": _t("integer", True),
    "administrative": _t("boolean"), "ack_due": TIME, "arrive_due": TIME, "close_due": TIME,
    "external_status": _t("string", True), "updated_at": TIME,
    "unit_detail": {"oneOf": [{"type": "null"}, _ref("Unit")]},
    "allowed_actions": _list(_t("string")), "timeline": _list(_ref("Event")),
}
LANE = {
    "id": _t("integer"), "version": _t("integer"), "callsign": _t("string"),
    "sector": _t("string", True), "status": _t("string"), "status_reason": _t("string", True),
    "activity": _t("string"), "lat": _t("number", True), "lon": _t("number", True),
    "jobs": _list(_ref("Card")),
}
RULE = {f.name: {k: v for k, v in f.schema().items() if k != "default"} for f in RULE_FIELDS}

SCHEMAS: dict[str, Any] = {
    "Card": _obj(CARD, description="A job as every screen shows it."),
    "Event": _obj(EVENT, description="One append-only timeline event."),
    "Unit": _obj(UNIT),
    "Lane": _obj(LANE, description="A unit on tour with its stack of jobs, top first."),
    "JobDetail": _obj(DETAIL, description="Every field of a job (photo addresses come from "
                      "view_photo, which records the view), its flags and timeline."),
    "Board": _obj({
        "precinct": _t("string"), "queue": _list(_ref("Card")), "lanes": _list(_ref("Lane")),
        "closed": _list(_ref("Card")), "unrouted": _list(_ref("Card")),
        "counters": _t("object", additionalProperties={"type": "integer"}),
    }),
    "UnitList": _obj({"units": _list(_ref("Unit"))}),
    "ActionResult": _obj({"event": _ref("Event"),
                          "job": {"oneOf": [{"type": "null"}, _ref("Card")]}}) | {"properties": {
        "event": _ref("Event"), "job": {"oneOf": [{"type": "null"}, _ref("Card")]},
        "url": _t("string", description="view_photo: the photo's address"),
        "contact": _t("object", additionalProperties={"type": "string"},
                      description="view_contact: the caller's contact details")}},
    "UnitResult": _obj({"event": _ref("Event"),
                        "unit": {"oneOf": [{"type": "null"}, _ref("Unit")]}}),
    "OfficerQueue": _obj({"unit": {"oneOf": [{"type": "null"}, _ref("Unit")]},
                          "jobs": _list(_ref("Card"))}),
    "Disposition": _obj({"code": _t("string"), "label": _t("string"),
                         "resolution": _t("string", description="the text 311 publishes"),
                         "administrative": _t("boolean"), "summons": _t("boolean"),
                         "arrival_expected": _t("boolean")}),
    "DispositionList": _obj({"dispositions": _list(_ref("Disposition"))}),
    "Rule": _obj(RULE),
    "RuleList": _obj({"rules": _list(_ref("Rule"))}),
    "RuleResult": _obj({"event": _ref("Event"), "rule": _ref("Rule")}),
    "OpenAPI": _t("object", description="An OpenAPI 3.1 document.",
                  additionalProperties=True),
    "Error": _obj({"error": _t("string"), "detail": _t("string")}),
    "InvalidError": _obj({
        "error": _t("string", const="invalid"), "detail": _t("string"),
        "fields": _t("object", additionalProperties={"type": "string"},
                     description="field name → what is wrong with it"),
    }),
    "ConflictError": _obj({
        "error": _t("string", const="conflict"), "detail": _t("string"),
        "job_id": _t("integer"), "by": _t("string", description="who changed it"),
        "kind": _t("string", description="what they did"), "at": NTIME,
        "your_version": _t("integer"), "current_version": _t("integer"),
    }),
    "UnitConflictError": _obj({
        "error": _t("string", const="conflict"), "detail": _t("string"),
        "unit_id": _t("integer"), "by": _t("string", description="who changed it"),
        "kind": _t("string", description="what they did"), "at": NTIME,
        "your_version": _t("integer"), "current_version": _t("integer"),
    }),
    "TransitionError": _obj({
        "error": _t("string", const="invalid_transition"), "detail": _t("string"),
        "action": _t("string"), "status": _t("string"),
    }),
}


def _error(description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}},
            **more}


ERROR_RESPONSES = {
    401: ("Unauthorized", _error(
        "No bearer token, or not a valid one.", _ref("Error"),
        headers={"WWW-Authenticate": {"schema": {"type": "string"}}})),
    403: ("Forbidden", _error("Out of role or out of precinct scope. Carries no job data.",
                              _ref("Error"))),
    404: ("NotFound", _error("No such job, unit or precinct.", _ref("Error"))),
    409: ("Conflict", _error(
        "A stale version (who changed it, and the current version) or a step the job's "
        "status does not allow.",
        {"oneOf": [_ref("ConflictError"), _ref("UnitConflictError"),
                   _ref("TransitionError")]})),
    422: ("Invalid", _error("Bad input: malformed JSON, wrong types, missing or unknown "
                            "fields, refused values; one message per field.",
                            _ref("InvalidError"))),
}

PATH_PARAMS = {
    "job_id": {"name": "job_id", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1, "maximum": INT_MAX}},
    "unit_id": {"name": "unit_id", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": INT_MAX}},
    "precinct": {"name": "precinct", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": f"^{CODE}$"},
                 "description": "Precinct id, e.g. 75."},
}


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": ep.name, "tags": [ep.tag], "summary": ep.summary}
    params = [PATH_PARAMS[name] for name in re.findall(r"{(\w+)}", ep.path)]
    if params:
        op["parameters"] = params
    if ep.body is not None:
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {f.name: f.schema() for f in ep.body}}
        needed = [f.name for f in ep.body if f.required]
        if needed:
            schema["required"] = needed
        op["requestBody"] = {"required": bool(needed),
                             "content": {"application/json": {"schema": schema}}}
    responses: dict[str, Any] = {str(ep.status): {
        "description": "Created." if ep.status == 201 else "OK.",
        "content": {"application/json": {"schema": _ref(ep.returns)}}}}
    if ep.location:
        responses[str(ep.status)]["headers"] = {"Location": {"schema": {"type": "string"}}}
    for code in ep.errors:
        responses[str(code)] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[code][0]}"}
    op["responses"] = responses
    if ep.public:
        op["security"] = []
    return op


@cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document, from the same ENDPOINTS table the router is built from."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        paths.setdefault(PREFIX + ep.path, {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "311 Dispatch Board API", "version": "1",
            "description": "Every dispatch use case as JSON. Authenticate with "
                           "`Authorization: Bearer <token>` (`board tokens create USER`). "
                           "Writes name the job version they were made against.",
        },
        "security": [{"bearerAuth": []}],
        "tags": [{"name": t} for t in dict.fromkeys(ep.tag for ep in ENDPOINTS)],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `board tokens create USER`; it acts as that "
                               "user, with the user's role and precincts."}},
            "schemas": SCHEMAS,
            "responses": dict(ERROR_RESPONSES.values()),
        },
    }

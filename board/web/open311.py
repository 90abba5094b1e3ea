"""Open311 GeoReport v2 under /open311/v2/, so any Open311 client can file and follow requests.

Every resource answers in both of the spec's formats, by the URL's extension: ``.xml`` (the
spec's default) or ``.json`` (board.web.open311_format writes them).

* ``GET services.{json,xml}`` — the NYPD complaint types (priority rules + the known types);
  service_code is a slug of the type ("noise-residential"). ``metadata`` is true where the
  service has attributes.
* ``GET services/{code}.{json,xml}`` — a service definition: its attributes. A type whose
  priority rules name descriptors (Blocked Driveway: No Access) offers them as the optional
  ``descriptor`` attribute (a single-value list), so a client's choice reaches the priority.
* ``POST requests.{json,xml}`` — form-encoded (api_key, service_code, lat, long,
  address_string, description, media_url, ``attribute[descriptor]``, …), read by one model
  (board.web.inputs.ServiceRequest) through board.web.validation; the request becomes a job through
  ``Dispatch.create_job`` with source "open311", routed and prioritised like any other.
* ``GET requests/{id}.{json,xml}`` and ``GET requests.{json,xml}`` (service_request_id,
  service_code, start_date, end_date, status=open|closed) — status_notes is the closed job's
  public resolution text, expected_datetime its close deadline. Without an API key the public
  view leaves out the caller's description and photos (as the city's open data does).
* ``GET servicerequestupdates.{json,xml}?start_date=…&end_date=…`` — the
  servicerequestupdates extension: each request's public steps (received, assigned, on the
  way, on scene, closed with its resolution, reopened) from the events, no key needed.
* ``status_url`` in a request, for a key that may see its details: the caller's public status
  page (board.web.caller). A POST may carry ``contact_consent`` (yes/no) beside ``email`` and
  ``phone``: with it the caller gets notices (board.caller.notices).
* ``GET resolutions.{json,xml}?since=ISO`` (API key) — the outbound record of resolutions for
  the 311 system: every close, from the append-only events, with a cursor (``after=seq``).

The API key is a bearer token from ``board tokens create`` (form/query ``api_key`` or an
``Authorization: Bearer`` header). Errors use the spec's format, a list of
``{"code", "description"}`` (``<errors><error>…`` in XML), with status 400 / 403 / 404 (and
500 with the request id, from board.web.errors); bad input is never a 500. Times are ISO 8601 in
New York time with the offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.auth import accounts as auth
from board.caller.status import address
from board.domain.access import Actor, Role
from board.domain.clock import NEW_YORK
from board.domain.lifecycle import Status
from board.domain.priorities import ANY
from board.domain.privacy import CONSENT
from board.intake.dates import parse_datetime
from board.storage import db
from board.storage.schema import events, jobs, status_pages
from board.usecases import Dispatch, Forbidden, Invalid, NewJob
from board.web import inputs
from board.web.open311_format import FORMATS, error_for, respond
from board.web.validation import Integer, Text, form_value, path_id, read_form

__all__ = ["KNOWN_TYPES", "routes", "service_code", "services"]

#: NYPD complaint types of NYC 311 offered even before a priority rule names them.
KNOWN_TYPES = (
    "Noise - Residential", "Noise - Street/Sidewalk", "Noise - Commercial", "Noise - Vehicle",
    "Noise - Park", "Noise - House of Worship", "Illegal Parking", "Blocked Driveway",
    "Abandoned Vehicle", "Encampment", "Illegal Fireworks", "Traffic", "Drinking",
    "Panhandling", "Non-Emergency Police Matter", "Animal Abuse", "Vending",
    "Urinating in Public", "Drug Activity", "Disorderly Youth", "Bike/Roller/Skate Chronic",
    "Squeegee", "Posting Advertisement",
)
AGENCY = "NYPD"
MAX_RESULTS = 1000
DEFAULT_WINDOW = timedelta(days=90)
_SLUG = re.compile(r"[^a-z0-9]+")


def service_code(complaint_type: str) -> str:
    """'Noise - Street/Sidewalk' -> 'noise-street-sidewalk'."""
    return _SLUG.sub("-", complaint_type.casefold()).strip("-")


def services(dispatch: Dispatch) -> dict[str, str]:
    """service_code -> complaint type: the rules' types first, then the known ones."""
    return {code: s.name for code, s in catalogue(dispatch).items()}


@dataclass(frozen=True)
class Service:
    """A complaint type as Open311 offers it, with the descriptors its rules name."""

    code: str
    name: str
    descriptors: tuple[str, ...] = ()


def catalogue(dispatch: Dispatch) -> dict[str, Service]:
    """service_code -> Service: the rules' types first (with their descriptors), then the
    known ones."""
    found: dict[str, tuple[str, list[str]]] = {}
    for rule in dispatch.rules():
        code = service_code(rule.complaint_type)
        if rule.complaint_type == ANY or not code:
            continue
        name, descriptors = found.setdefault(code, (rule.complaint_type, []))
        if rule.descriptor != ANY and rule.descriptor not in descriptors:
            descriptors.append(rule.descriptor)
    for name in KNOWN_TYPES:
        found.setdefault(service_code(name), (name, []))
    return {code: Service(code, name, tuple(sorted(d)))
            for code, (name, d) in found.items()}


def definition(service: Service) -> dict[str, Any]:
    """GeoReport v2's service definition: the attributes a request of this service takes."""
    attributes = []
    if service.descriptors:
        attributes.append({
            "variable": True, "code": DESCRIPTOR, "datatype": "singlevaluelist",
            "required": False, "datatype_description": "One of the listed values.",
            "order": 1, "description": f"What kind of {service.name} it is (sets priority).",
            "values": [{"key": d, "name": d} for d in service.descriptors],
        })
    return {"service_code": service.code, "attributes": attributes}


DESCRIPTOR = "descriptor"


# --------------------------------------------------------------------------- plumbing


class Problem(Exception):
    """An Open311 error: HTTP status + description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _dispatch(request: Request) -> Dispatch:
    return request.app.state.dispatch


def _when(value: datetime | None) -> str | None:
    return value.astimezone(NEW_YORK).isoformat(timespec="seconds") if value else None


def _key_from(request: Request, form: Any = None) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    key = (form.get("api_key") if form is not None else None) or request.query_params.get(
        "api_key")
    return key.strip() if isinstance(key, str) and key.strip() else None


def _actor(request: Request, key: str | None, required: bool) -> Actor | None:
    if key is None:
        if required:
            raise Problem(403, "api_key is required")
        return None
    if len(key) > 200:
        raise Problem(403, "api_key is not valid")
    actor = auth.token_actor(_dispatch(request).engine, key, "open311",
                             **auth.origin_of(request))
    if actor is None:
        raise Problem(403, "api_key is not valid")
    return actor


def _date_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return parse_datetime(raw)
    except (ValueError, OverflowError):
        raise Problem(400, f"{name} must be an ISO 8601 date/time") from None


def endpoint(handler: Any) -> Any:
    """Run a handler in the format the URL asks for; a Problem (bad input, bad key, not
    found) becomes a spec error in that format."""
    async def run(request: Request) -> Response:
        try:
            fmt = request.path_params.pop("format", "json")
            if fmt not in FORMATS:
                raise Problem(404, f"no such format {fmt[:10]!r}: use .xml or .json")
            return await handler(request, fmt)
        except Problem as p:
            return error_for(request, p.status, p.description)
    return run


# --------------------------------------------------------------------------- representation


def _request_json(row: Any, detailed: bool, base_url: str = "",
                  public_url: str | None = None) -> dict[str, Any]:
    """A request as GeoReport v2 shows it. media_url is never the photo itself: for a key in
    the job's precinct it is the board's recorded view of the first photo (opening it writes a
    view_photo event), for anyone else blank. status_url, the caller's public status page,
    goes only to such a key too (the client that filed it passes it on): listed for anyone,
    the addresses would let strangers answer other callers' surveys."""
    closed = row.status == Status.CLOSED.value
    media = list(row.media or [])
    fields = row.fields or {}
    return {
        "service_request_id": str(row.id),
        "status": "closed" if closed else "open",
        "status_notes": (row.resolution or "") if closed else "",
        "service_name": row.complaint_type,
        "service_code": service_code(row.complaint_type),
        "description": (fields.get("description") or row.descriptor or "") if detailed
        else row.descriptor or "",
        "agency_responsible": AGENCY,
        "service_notice": "",
        "requested_datetime": _when(row.created_at),
        "updated_datetime": _when(row.updated_at),
        "expected_datetime": _when(row.close_due),
        "address": row.address or "",
        "address_id": "",
        "zipcode": fields.get("incident_zip", ""),
        "lat": row.lat,
        "long": row.lon,
        "media_url": f"{base_url}jobs/{row.id}/photos/0" if detailed and media else "",
        "status_url": address(public_url or base_url, row.status_token)
        if detailed and getattr(row, "status_token", None) else "",
    }


def _public_url(request: Request) -> str | None:
    return request.app.state.settings.public_url


def _may_see_details(actor: Actor | None, row: Any) -> bool:
    return actor is not None and actor.role is not Role.WALL and actor.sees(row.precinct)


# --------------------------------------------------------------------------- endpoints


@endpoint
async def get_services(request: Request, fmt: str) -> Response:
    found = await run_in_threadpool(catalogue, _dispatch(request))
    return respond(fmt, "services", [
        {"service_code": s.code, "service_name": s.name,
         "description": f"NYPD 311: {s.name}", "metadata": bool(s.descriptors),
         "type": "realtime", "keywords": "", "group": AGENCY}
        for s in found.values()
    ])


@endpoint
async def get_service(request: Request, fmt: str) -> Response:
    code = request.path_params["code"]
    found = await run_in_threadpool(catalogue, _dispatch(request))
    if code not in found:
        raise Problem(404, f"service_code {code[:120]!r} is not a service of this jurisdiction")
    return respond(fmt, "service_definition", definition(found[code]))


def _new_job(form: Any, found: dict[str, Service]) -> NewJob:
    try:
        b = read_form(inputs.ServiceRequest, form)
    except Invalid as e:
        raise Problem(400, "; ".join(f"{k} {v}" for k, v in e.errors.items())) from None
    service = found.get(b.service_code)
    if service is None:
        raise Problem(400, f"service_code {b.service_code!r} is not a service of this "
                      "jurisdiction")
    if b.lat is None and not b.address_string and not b.address_id:
        raise Problem(400, "a location is required: lat and long, or address_string")
    descriptor = _descriptor(form, service)
    fields = {"service_code": service.code}
    for name in ("address_string", "address_id", "email", "device_id", "account_id",
                 "first_name", "last_name", "phone"):
        if getattr(b, name):
            fields[name] = getattr(b, name)
    if b.contact_consent and (b.email or b.phone):
        fields[CONSENT] = True
    return NewJob(complaint_type=service.name, descriptor=descriptor,
                  address=b.address_string, lat=b.lat, lon=b.long, fields=fields,
                  media=(b.media_url,) if b.media_url else (),
                  description=b.description[:2000])


def _descriptor(form: Any, service: Service) -> str:
    """The descriptor attribute: one of the service definition's values, or none."""
    name = f"attribute[{DESCRIPTOR}]"
    raw = form.get(name)
    if raw in (None, ""):
        return ""
    try:
        value = form_value(Text(200), raw, name)
    except Invalid as e:
        raise Problem(400, "; ".join(f"{k} {v}" for k, v in e.errors.items())) from None
    if value not in service.descriptors:
        raise Problem(400, f"{name} must be one of the service definition's values")
    return value


@endpoint
async def post_request(request: Request, fmt: str) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Problem(400, "the body must be form-encoded (application/x-www-form-urlencoded)")
    try:
        form = await request.form(max_files=0, max_fields=50)
    except Exception:  # malformed body, or files: the client's fault, said as such
        raise Problem(400, "the body must be well-formed form fields, without files (a photo "
                      "goes by media_url)") from None
    dispatch = _dispatch(request)
    actor = await run_in_threadpool(_actor, request, _key_from(request, form), True)
    assert actor is not None
    if actor.role in (Role.WALL, Role.COMMANDER):
        raise Problem(403, "this api_key may not file requests")
    found = await run_in_threadpool(catalogue, dispatch)
    new = _new_job(form, found)
    try:
        ev = await run_in_threadpool(dispatch.create_job, actor, new, "open311")
    except Invalid as e:
        raise Problem(400, str(e)) from None
    except Forbidden as e:
        raise Problem(403, str(e)) from None
    return respond(fmt, "service_requests", [
        {"service_request_id": str(ev["job_id"]), "service_notice": "", "account_id": None}])


def _select_requests(engine: sa.Engine, where: list[Any], limit: int) -> list[Any]:
    q = (sa.select(jobs, status_pages.c.token.label("status_token"))
         .outerjoin(status_pages, status_pages.c.job_id == jobs.c.id)
         .where(*where).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()))
    with db.read(engine) as conn:
        return list(conn.execute(q.limit(limit)))


@endpoint
async def get_request(request: Request, fmt: str) -> Response:
    raw = request.path_params["id"]
    if path_id(raw) is None:
        raise Problem(404, f"no service request {raw[:40]!r}")
    dispatch = _dispatch(request)
    actor = await run_in_threadpool(_actor, request, _key_from(request), False)
    rows = await run_in_threadpool(_select_requests, dispatch.engine,
                                   [jobs.c.id == int(raw)], 1)
    if not rows:
        raise Problem(404, f"no service request {raw}")
    return respond(fmt, "service_requests", [
        _request_json(rows[0], _may_see_details(actor, rows[0]), str(request.base_url),
                      _public_url(request))])


@endpoint
async def get_requests(request: Request, fmt: str) -> Response:
    dispatch = _dispatch(request)
    actor = await run_in_threadpool(_actor, request, _key_from(request), False)
    params = request.query_params
    ids_text = params.get("service_request_id", "").strip()
    where: list[Any] = []
    if ids_text:  # the spec: given ids, every other filter is ignored
        parts = [p.strip() for p in ids_text.split(",") if p.strip()]
        if len(parts) > MAX_RESULTS or not all(path_id(p) is not None for p in parts):
            raise Problem(400, "service_request_id must be a comma-separated list of ids")
        where.append(jobs.c.id.in_([int(p) for p in parts]))
    else:
        code = params.get("service_code", "").strip()
        if code:
            types = await run_in_threadpool(services, dispatch)
            wanted = [types[c] for c in (p.strip() for p in code.split(",")) if c in types]
            if not wanted:
                raise Problem(400, f"service_code {code[:120]!r} is not a service of this "
                                   "jurisdiction")
            where.append(sa.func.lower(jobs.c.complaint_type).in_([w.lower() for w in wanted]))
        start, end = _date_param(request, "start_date"), _date_param(request, "end_date")
        if start is None and end is None:
            start = dispatch.clock() - DEFAULT_WINDOW
        if start is not None and end is not None and end < start:
            raise Problem(400, "end_date is before start_date")
        if start is not None:
            where.append(jobs.c.created_at >= start)
        if end is not None:
            where.append(jobs.c.created_at <= end)
        status = {s.strip().lower() for s in params.get("status", "").split(",") if s.strip()}
        if status - {"open", "closed"}:
            raise Problem(400, "status must be open or closed")
        if status == {"open"}:
            where.append(jobs.c.status != Status.CLOSED.value)
        elif status == {"closed"}:
            where.append(jobs.c.status == Status.CLOSED.value)
    rows = await run_in_threadpool(_select_requests, dispatch.engine, where, MAX_RESULTS)
    return respond(fmt, "service_requests", [
        _request_json(r, _may_see_details(actor, r), str(request.base_url), _public_url(request))
        for r in rows])


def _resolutions(engine: sa.Engine, actor: Actor, since: datetime | None,
                 after: int | None) -> list[dict[str, Any]]:
    q = (sa.select(events.c.seq, events.c.at, events.c.kind, events.c.payload,
                   events.c.precinct, jobs.c.id, jobs.c.external_key, jobs.c.source,
                   jobs.c.status)
         .join(jobs, jobs.c.id == events.c.job_id)
         .where(events.c.kind.in_(["close", "admin_close"]))
         .order_by(events.c.seq).limit(MAX_RESULTS))
    if since is not None:
        q = q.where(events.c.at >= since)
    if after is not None:
        q = q.where(events.c.seq > after)
    if not actor.citywide:
        q = q.where(events.c.precinct.in_(sorted(actor.precincts)))
    with db.read(engine) as conn:
        rows = conn.execute(q).all()
    return [{
        "seq": r.seq,
        "service_request_id": str(r.id),
        "external_key": r.external_key,
        "source": r.source,
        "disposition": r.payload.get("disposition"),
        "resolution": r.payload.get("resolution"),
        "status_notes": r.payload.get("resolution"),
        "administrative": bool(r.payload.get("administrative", False)),
        "summons_count": r.payload.get("summons_count"),
        "closed_at": _when(r.at),
        "current_status": "closed" if r.status == Status.CLOSED.value else "open",
    } for r in rows]


@endpoint
async def get_resolutions(request: Request, fmt: str) -> Response:
    actor = await run_in_threadpool(_actor, request, _key_from(request), True)
    assert actor is not None
    if actor.role is Role.WALL:
        raise Problem(403, "this api_key may not read resolutions")
    since = _date_param(request, "since")
    after_text = request.query_params.get("after", "").strip()
    try:
        after = form_value(Integer(0), after_text, "after") if after_text else None
    except Invalid:
        raise Problem(400, "after must be an event sequence number") from None
    rows = await run_in_threadpool(_resolutions, _dispatch(request).engine, actor, since, after)
    return respond(fmt, "resolutions", rows)


# The servicerequestupdates extension: each request's public steps, from the events.
UPDATES = {"create": "Received", "history": "Closed by 311", "assign": "Assigned to an officer",
           "reassign": "Assigned to an officer", "en_route": "Officer on the way",
           "on_scene": "Officer on scene", "close": "Closed", "admin_close": "Closed",
           "reopen": "Reopened"}
CLOSING = ("close", "admin_close", "history")


def _updates(engine: sa.Engine, where: list[Any]) -> list[dict[str, Any]]:
    q = (sa.select(events.c.seq, events.c.job_id, events.c.kind, events.c.at, events.c.payload)
         .where(events.c.kind.in_(list(UPDATES)), events.c.job_id.is_not(None), *where)
         .order_by(events.c.seq).limit(MAX_RESULTS))
    with db.read(engine) as conn:
        rows = conn.execute(q).all()
    out = []
    for r in rows:
        text = UPDATES[r.kind]
        resolution = (r.payload or {}).get("resolution")
        if r.kind in CLOSING and resolution:
            text = f"{text}: {resolution}"
        out.append({"update_id": str(r.seq), "service_request_id": str(r.job_id),
                    "status": "closed" if r.kind in CLOSING else "open",
                    "updated_datetime": _when(r.at), "description": text, "media_url": ""})
    return out


@endpoint
async def get_updates(request: Request, fmt: str) -> Response:
    """GET servicerequestupdates: the public steps of requests (no officer, unit or caller
    detail), by start_date / end_date (default the last day) or service_request_id, in
    order, at most MAX_RESULTS; the last update_id is a cursor for `after`."""
    dispatch = _dispatch(request)
    params = request.query_params
    start, end = _date_param(request, "start_date"), _date_param(request, "end_date")
    if start is None and end is None:
        start = dispatch.clock() - timedelta(days=1)
    if start is not None and end is not None and end < start:
        raise Problem(400, "end_date is before start_date")
    where: list[Any] = []
    if start is not None:
        where.append(events.c.at >= start)
    if end is not None:
        where.append(events.c.at <= end)
    one = params.get("service_request_id", "").strip()
    if one:
        if path_id(one) is None:
            raise Problem(400, "service_request_id must be one request's id")
        where.append(events.c.job_id == int(one))
    after_text = params.get("after", "").strip()
    if after_text:
        try:
            where.append(events.c.seq > form_value(Integer(0), after_text, "after"))
        except Invalid:
            raise Problem(400, "after must be an update_id") from None
    rows = await run_in_threadpool(_updates, dispatch.engine, where)
    return respond(fmt, "service_request_updates", rows)


@endpoint
async def not_found(request: Request, fmt: str) -> Response:
    raise Problem(404, "no such Open311 resource (this server speaks GeoReport v2: "
                  "services, requests, resolutions, in .xml or .json)")


V2 = "/open311/v2"
routes: list = [
    Route(V2 + "/services.{format}", get_services, methods=["GET"]),
    Route(V2 + "/services/{code}.{format}", get_service, methods=["GET"]),
    Route(V2 + "/requests.{format}", post_request, methods=["POST"]),
    Route(V2 + "/requests.{format}", get_requests, methods=["GET"]),
    Route(V2 + "/requests/{id}.{format}", get_request, methods=["GET"]),
    Route(V2 + "/resolutions.{format}", get_resolutions, methods=["GET"]),
    Route(V2 + "/servicerequestupdates.{format}", get_updates, methods=["GET"]),
    Route(V2 + "/{rest:path}", not_found, methods=["GET", "POST", "PUT", "DELETE"]),
]

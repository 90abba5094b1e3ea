"""Open311 GeoReport v2 under /open311/v2/, so any Open311 client can file and follow requests.

* ``GET services.json`` — the NYPD complaint types (priority rules + the known types);
  service_code is a slug of the type ("noise-residential").
* ``POST requests.json`` — form-encoded (api_key, service_code, lat, long, address_string,
  description, media_url, …); the request becomes a job through ``Dispatch.create_job`` with
  source "open311", routed and prioritised like any other.
* ``GET requests/{id}.json`` and ``GET requests.json`` (service_request_id, service_code,
  start_date, end_date, status=open|closed) — status_notes is the closed job's public
  resolution text, expected_datetime its close deadline. Without an API key the public view
  leaves out the caller's description and photos (as the city's open data does).
* ``GET resolutions.json?since=ISO`` (API key) — the outbound record of resolutions for the
  311 system: every close, from the append-only events, with a cursor (``after=seq``).

The API key is a bearer token from ``board tokens create`` (form/query ``api_key`` or an
``Authorization: Bearer`` header). Errors use the spec's format, a JSON array of
``{"code", "description"}``, with status 400 / 403 / 404; bad input is never a 500.
Times are ISO 8601 in New York time with the offset.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from board import auth, db
from board.access import Actor, Role
from board.lifecycle import Status
from board.nyc311 import NEW_YORK, clean_text, parse_datetime
from board.priorities import ANY
from board.schema import events, jobs
from board.usecases import Dispatch, Forbidden, Invalid, NewJob

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
MAX_FIELD = 4000
_SLUG = re.compile(r"[^a-z0-9]+")


def service_code(complaint_type: str) -> str:
    """'Noise - Street/Sidewalk' -> 'noise-street-sidewalk'."""
    return _SLUG.sub("-", complaint_type.casefold()).strip("-")


def services(dispatch: Dispatch) -> dict[str, str]:
    """service_code -> complaint type: the rules' types first, then the known ones."""
    out: dict[str, str] = {}
    for name in [r.complaint_type for r in dispatch.rules()] + list(KNOWN_TYPES):
        code = service_code(name)
        if name != ANY and code and code not in out:
            out[code] = name
    return out


# --------------------------------------------------------------------------- plumbing


class Problem(Exception):
    """An Open311 error: HTTP status + description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": status, "description": description}], status_code=status)


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
    actor = auth.token_actor(_dispatch(request).engine, key, source="open311")
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
    """Run a handler; a Problem (bad input, bad key, not found) becomes a spec error."""
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Problem as p:
            return _error(p.status, p.description)
    return run


# --------------------------------------------------------------------------- representation


def _request_json(row: Any, detailed: bool, base_url: str = "") -> dict[str, Any]:
    """A request as GeoReport v2 shows it. media_url is never the photo itself: for a key in
    the job's precinct it is the board's recorded view of the first photo (opening it writes a
    view_photo event), for anyone else blank."""
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
    }


def _may_see_details(actor: Actor | None, row: Any) -> bool:
    return actor is not None and actor.role is not Role.WALL and actor.sees(row.precinct)


# --------------------------------------------------------------------------- endpoints


@endpoint
async def get_services(request: Request) -> Response:
    found = await run_in_threadpool(services, _dispatch(request))
    return JSONResponse([
        {"service_code": code, "service_name": name,
         "description": f"NYPD 311: {name}", "metadata": False, "type": "realtime",
         "keywords": "", "group": AGENCY}
        for code, name in found.items()
    ])


def _form_text(form: Any, name: str, limit: int = MAX_FIELD) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Problem(400, f"{name} must be text, not a file")
    if len(value) > limit:
        raise Problem(400, f"{name} is longer than {limit} characters")
    return clean_text(value, limit)


def _coordinate(form: Any, name: str, low: float, high: float) -> float | None:
    text = _form_text(form, name, 64)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Problem(400, f"{name} must be a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise Problem(400, f"{name} must be between {low:g} and {high:g}")
    return value


def _new_job(form: Any, types: dict[str, str]) -> NewJob:
    code = _form_text(form, "service_code", 120)
    if not code:
        raise Problem(400, "service_code is required")
    if code not in types:
        raise Problem(400, f"service_code {code!r} is not a service of this jurisdiction")
    lat = _coordinate(form, "lat", -90.0, 90.0)
    lon = _coordinate(form, "long", -180.0, 180.0)
    if (lat is None) != (lon is None):
        raise Problem(400, "lat and long go together")
    address = _form_text(form, "address_string", 300)
    if lat is None and not address and not _form_text(form, "address_id", 120):
        raise Problem(400, "a location is required: lat and long, or address_string")
    media = _form_text(form, "media_url", 2000)
    if media and not re.match(r"^https?://[^\s/]+", media, re.IGNORECASE):
        raise Problem(400, "media_url must be an http(s) URL")
    description = _form_text(form, "description", MAX_FIELD)
    fields = {"service_code": code}
    for name in ("address_string", "address_id", "email", "device_id", "account_id",
                 "first_name", "last_name", "phone"):
        value = _form_text(form, name, 300)
        if value:
            fields[name] = value
    return NewJob(complaint_type=types[code], address=address, lat=lat, lon=lon,
                  fields=fields, media=(media,) if media else (),
                  description=description[:2000])


@endpoint
async def post_request(request: Request) -> Response:
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
    types = await run_in_threadpool(services, dispatch)
    new = _new_job(form, types)
    try:
        ev = await run_in_threadpool(dispatch.create_job, actor, new, "open311")
    except Invalid as e:
        raise Problem(400, str(e)) from None
    except Forbidden as e:
        raise Problem(403, str(e)) from None
    return JSONResponse([{"service_request_id": str(ev["job_id"]), "service_notice": "",
                          "account_id": None}])


def _select_requests(engine: sa.Engine, where: list[Any], limit: int) -> list[Any]:
    q = sa.select(jobs).where(*where).order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
    with db.read(engine) as conn:
        return list(conn.execute(q.limit(limit)))


@endpoint
async def get_request(request: Request) -> Response:
    raw = request.path_params["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise Problem(404, f"no service request {raw[:40]!r}")
    dispatch = _dispatch(request)
    actor = await run_in_threadpool(_actor, request, _key_from(request), False)
    rows = await run_in_threadpool(_select_requests, dispatch.engine,
                                   [jobs.c.id == int(raw)], 1)
    if not rows:
        raise Problem(404, f"no service request {raw}")
    return JSONResponse([_request_json(rows[0], _may_see_details(actor, rows[0]),
                                       str(request.base_url))])


@endpoint
async def get_requests(request: Request) -> Response:
    dispatch = _dispatch(request)
    actor = await run_in_threadpool(_actor, request, _key_from(request), False)
    params = request.query_params
    ids_text = params.get("service_request_id", "").strip()
    where: list[Any] = []
    if ids_text:  # the spec: given ids, every other filter is ignored
        parts = [p.strip() for p in ids_text.split(",") if p.strip()]
        if len(parts) > MAX_RESULTS or not all(p.isdigit() and len(p) <= 12 for p in parts):
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
    return JSONResponse([_request_json(r, _may_see_details(actor, r), str(request.base_url))
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
async def get_resolutions(request: Request) -> Response:
    actor = await run_in_threadpool(_actor, request, _key_from(request), True)
    assert actor is not None
    if actor.role is Role.WALL:
        raise Problem(403, "this api_key may not read resolutions")
    since = _date_param(request, "since")
    after_text = request.query_params.get("after", "").strip()
    if after_text and not (after_text.isdigit() and len(after_text) <= 18):
        raise Problem(400, "after must be an event sequence number")
    after = int(after_text) if after_text else None
    rows = await run_in_threadpool(_resolutions, _dispatch(request).engine, actor, since, after)
    return JSONResponse(rows)


@endpoint
async def not_found(request: Request) -> Response:
    raise Problem(404, "no such Open311 resource (this server speaks GeoReport v2 in JSON)")


routes: list = [
    Route("/open311/v2/services.json", get_services, methods=["GET"]),
    Route("/open311/v2/requests.json", post_request, methods=["POST"]),
    Route("/open311/v2/requests.json", get_requests, methods=["GET"]),
    Route("/open311/v2/requests/{id}.json", get_request, methods=["GET"]),
    Route("/open311/v2/resolutions.json", get_resolutions, methods=["GET"]),
    Route("/open311/v2/{rest:path}", not_found, methods=["GET", "POST", "PUT", "DELETE"]),
]

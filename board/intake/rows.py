"""Parsing 311 rows: NYC Open Data rows -> `Request311` or `BadRow`.

No database, no network. Two input shapes are accepted, mapped by header *name* (never by
position):

* the NYC Open Data CSV export ("Unique Key", "Created Date" as ``MM/DD/YYYY hh:mm:ss AM``, ...),
  including older exports (before ~2015) which have no "Resolution Description" but extra
  school / garage / ferry columns;
* the Socrata JSON API of data set ``erm2-nwe9`` (``unique_key``, ``created_date`` as ISO 8601
  floating time, ``location`` as an object, system fields such as ``:updated_at``).

Every header is normalised (lowercase, runs of non-alphanumerics -> ``_``, ``_`` stripped at both
ends) so that "X Coordinate (State Plane)" and ``x_coordinate_state_plane`` are the same column,
then passed through the small `ALIASES` table.

Timestamps are read by board.intake.dates: without an explicit offset they are New York local
time, returned as timezone-aware UTC datetimes.

Text is untrusted: whitespace is stripped, control / bidi-override characters are removed and each
value is capped at `MAX_TEXT` characters (what is cut is recorded in `Request311.cut`). HTML
escaping is the templates' job, not ours. A cell over `MAX_CELL` makes the row bad (quarantined),
not the file (board.intake.files reads files as streams, one row in memory at a time).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from board.domain.clock import NEW_YORK
from board.domain.privacy import MEDIA_FIELDS
from board.intake.dates import EARLIEST_UTC, FUTURE_SLACK, day_text, parse_datetime
from board.intake.text import MAX_TEXT, clean_text

__all__ = [
    "ALIASES",
    "EXTRA_CELLS",
    "MAX_CELL",
    "MAX_TEXT",
    "SHORT_ROW",
    "MEDIA_FIELDS",
    "NEW_YORK",
    "BadRow",
    "Request311",
    "clean_text",
    "closed_by_city",
    "has_agency",
    "is_nypd",
    "normalise_header",
    "normalise_row",
    "parse_row",
]

MAX_KEY = 64
MAX_MEDIA = 20
#: A cell longer than this makes its row bad: no 311 field is anywhere near it.
MAX_CELL = 128 * 1024

#: Key under which `read_csv` puts cells beyond the header (a misaligned / corrupt line).
EXTRA_CELLS = "__extra_cells__"
#: Key under which `read_csv` names the first header column a short line has no cell for.
SHORT_ROW = "__short_row__"

#: Alternative spellings -> the canonical Socrata field name of data set erm2-nwe9.
#: Kept deliberately small; every entry says where the spelling comes from.  Exact canonical
#: names always win over an alias when a row carries both.
ALIASES: dict[str, str] = {
    # Third-party extracts of the same data set (e.g. the BigQuery public copy
    # new_york.311_service_requests) and hand-made exports shorten these.
    "x_coordinate": "x_coordinate_state_plane",
    "y_coordinate": "y_coordinate_state_plane",
    "taxi_pickup_location": "taxi_pick_up_location",
    # Open311 GeoReport v2 names for the same concepts (status_notes is how 311 sends the
    # resolution description; address / zipcode / lat / long are the request location).
    "service_request_id": "unique_key",
    "requested_datetime": "created_date",
    "status_notes": "resolution_description",
    "address": "incident_address",
    "zipcode": "incident_zip",
    "zip": "incident_zip",
    "zip_code": "incident_zip",
    "lat": "latitude",
    "long": "longitude",
    "lon": "longitude",
    "lng": "longitude",
}


_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_LOCATION_PAIR = re.compile(r"^\(?\s*([^,()\s]+)\s*,\s*([^,()\s]+)\s*\)?$")
_WKT_POINT = re.compile(r"^POINT\s*\(\s*(\S+)\s+(\S+)\s*\)$", re.IGNORECASE)
_URL_SPLIT = re.compile(r"[\s,;|]+")


class BadRow(ValueError):
    """A row that cannot become a request; `.reason` is short and human-readable."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Request311:
    unique_key: str
    created_at: datetime
    closed_at: datetime | None
    agency: str
    complaint_type: str
    descriptor: str
    location_type: str
    address: str
    borough: str
    zip: str
    status: str
    resolution: str
    lat: float | None
    lon: float | None
    media_urls: tuple[str, ...] = ()
    #: Every non-empty source field under its snake_case Socrata name (for the job page).
    fields: dict[str, str] = field(default_factory=dict, hash=False)
    updated_at: datetime | None = None
    #: Fields whose text was longer than MAX_TEXT: name -> length before the cut.
    cut: dict[str, int] = field(default_factory=dict, hash=False)


# --------------------------------------------------------------------------- text helpers


def normalise_header(name: str) -> str:
    """'X Coordinate (State Plane)' -> 'x_coordinate_state_plane'; ':updated_at' -> 'updated_at'."""
    return _header(str(name))


@lru_cache(maxsize=4096)
def _header(name: str) -> str:
    # every row of a file repeats the same few dozen headers: normalise each once
    return _NON_ALNUM.sub("_", name.lower()).strip("_")


# --------------------------------------------------------------------------- rows


def normalise_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    """Map a raw row to canonical field names, keeping the raw values.

    Exact canonical names win over `ALIASES`; for duplicate names the first non-empty wins.
    """
    simple = _simple_plan(tuple(row))
    if simple is not None:  # every column has its own canonical name: no choosing to do
        return {name: row[key] for key, name in simple}
    out: dict[str, Any] = {}
    aliased: list[tuple[str, Any]] = []
    for key, value in row.items():
        if key is None or key in (EXTRA_CELLS, SHORT_ROW):
            continue
        name = normalise_header(key)
        if not name:
            continue
        if name in ALIASES:
            aliased.append((ALIASES[name], value))
        elif _is_empty(out.get(name)):
            out[name] = value
    for name, value in aliased:
        if _is_empty(out.get(name)):
            out[name] = value
    return out


@lru_cache(maxsize=256)
def _simple_plan(keys: tuple[Any, ...]) -> tuple[tuple[Any, str], ...] | None:
    """(key, canonical name) for each column of a file's rows, when no two columns share a
    name and none is an alias; None when `normalise_row` must weigh values. Rows of one file
    share their keys, so this runs once per file (per key set for JSON rows)."""
    plan = []
    for key in keys:
        if key is None or key in (EXTRA_CELLS, SHORT_ROW):
            continue
        if not isinstance(key, str):
            return None
        name = normalise_header(key)
        if not name:
            continue
        if name in ALIASES:
            return None
        plan.append((key, name))
    names = [name for _, name in plan]
    return tuple(plan) if len(set(names)) == len(names) else None


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, dict | list | tuple):
        return not value
    return False


def _agency_value(row: Mapping[Any, Any]) -> str | None:
    for key, value in row.items():
        if key is not None and normalise_header(key) == "agency":
            return clean_text(value)
    return None


def is_nypd(row: Mapping[Any, Any]) -> bool:
    """True when the row's agency column says NYPD (any case). No agency column -> False."""
    agency = _agency_value(row)
    return agency is not None and agency.casefold() == "nypd"


def has_agency(row: Mapping[Any, Any]) -> bool:
    """Whether the row has an agency column at all (a row without one is not "not NYPD")."""
    return any(key is not None and normalise_header(key) == "agency" for key in row)


def closed_by_city(req: Request311) -> bool:
    """The city had already closed this request: its status is Closed and it has a closed date."""
    return req.closed_at is not None and req.status.casefold() == "closed"


def _date(fields: Mapping[str, Any], name: str, label: str, required: bool) -> datetime | None:
    raw = fields.get(name)
    if _is_empty(raw):
        if required:
            raise BadRow(f"missing {label} date")
        return None
    try:
        return parse_datetime(raw)
    except (ValueError, OverflowError, TypeError):
        raise BadRow(f"unparseable {label} date: {clean_text(raw, 80)!r}") from None


# --------------------------------------------------------------------------- coordinates


def _number(raw: Any, label: str) -> float | None:
    if _is_empty(raw):
        return None
    if isinstance(raw, bool):
        raise BadRow(f"non-numeric {label}: {raw!r}")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise BadRow(f"non-numeric {label}: {clean_text(raw, 80)!r}") from None
    if not math.isfinite(value):
        raise BadRow(f"non-numeric {label}: {clean_text(raw, 80)!r}")
    return value


def _location_pair(raw: Any) -> tuple[Any, Any] | None:
    """A Location column/object -> (lat, lon) raw values, or None when it is empty."""
    if _is_empty(raw):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except ValueError:
                raise BadRow(f"unparseable location: {clean_text(text, 80)!r}") from None
        else:
            m = _LOCATION_PAIR.match(text)
            if m:
                return m.group(1), m.group(2)
            m = _WKT_POINT.match(text)
            if m:  # WKT is x y, i.e. lon lat
                return m.group(2), m.group(1)
            raise BadRow(f"unparseable location: {clean_text(text, 80)!r}")
    if isinstance(raw, Mapping):
        if "latitude" in raw or "longitude" in raw:  # Socrata legacy location object
            if _is_empty(raw.get("latitude")) and _is_empty(raw.get("longitude")):
                return None
            return raw.get("latitude"), raw.get("longitude")
        coords = raw.get("coordinates")  # GeoJSON Point
        if isinstance(coords, list | tuple) and len(coords) >= 2:
            return coords[1], coords[0]
    raise BadRow(f"unparseable location: {clean_text(raw, 80)!r}")


def _coordinates(fields: Mapping[str, Any]) -> tuple[float | None, float | None]:
    lat = _number(fields.get("latitude"), "latitude")
    lon = _number(fields.get("longitude"), "longitude")
    if lat is None or lon is None:
        pair = _location_pair(fields.get("location"))
        if pair is not None:
            lat = _number(pair[0], "latitude")
            lon = _number(pair[1], "longitude")
    if lat is not None and not -90.0 <= lat <= 90.0:
        raise BadRow(f"latitude out of range: {lat!r}")
    if lon is not None and not -180.0 <= lon <= 180.0:
        raise BadRow(f"longitude out of range: {lon!r}")
    if lat is None or lon is None:
        return None, None  # no usable point: the job goes to the unrouted queue
    return lat, lon


# --------------------------------------------------------------------------- media


def _media_urls(fields: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for name in sorted(MEDIA_FIELDS & fields.keys()):
        for candidate in _url_candidates(fields[name]):
            url = _safe_url(candidate)
            if url and url not in found:
                found.append(url)
    return tuple(found[:MAX_MEDIA])


def _url_candidates(raw: Any) -> Iterator[str]:
    if raw is None:
        return
    if isinstance(raw, Mapping):  # Socrata "url" column: {"url": ..., "description": ...}
        yield from _url_candidates(raw.get("url"))
    elif isinstance(raw, list | tuple):
        for item in raw:
            yield from _url_candidates(item)
    elif isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                yield from _url_candidates(json.loads(text))
                return
            except ValueError:
                pass
        yield from (part for part in _URL_SPLIT.split(text) if part)


def _safe_url(candidate: str) -> str | None:
    if len(candidate) > MAX_TEXT or candidate != clean_text(candidate):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return candidate


# --------------------------------------------------------------------------- address


def _address(text: Mapping[str, str]) -> str:
    """A dispatchable address line.

    The export's "Incident Address" holds only the street name for INTERSECTION and BLOCKFACE
    rows and is empty for subway rows (whose line / platform sit in the bridge-highway columns),
    so compose something an officer can use; the raw columns stay in `fields`.
    """
    address = text.get("incident_address", "")
    kind = text.get("address_type", "").upper()
    street = text.get("street_name", "") or address
    s1, s2 = text.get("intersection_street_1", ""), text.get("intersection_street_2", "")
    c1, c2 = text.get("cross_street_1", ""), text.get("cross_street_2", "")
    if kind == "INTERSECTION" and s1 and s2:
        return f"{s1} & {s2}"
    if kind == "BLOCKFACE" and street and c1 and c2:
        return f"{street} between {c1} and {c2}"
    if address:
        return address
    if s1 and s2:
        return f"{s1} & {s2}"
    if street:
        return street
    parts = [
        text.get(k, "")
        for k in ("bridge_highway_name", "bridge_highway_direction", "bridge_highway_segment")
    ]
    parts = [p for p in parts if p]
    if parts:
        where = ", ".join(parts)
        location_type = text.get("location_type", "")
        return f"{location_type}: {where}" if location_type else where
    return text.get("landmark", "")


# --------------------------------------------------------------------------- parse


def parse_row(row: Mapping[Any, Any]) -> Request311:
    """Turn one CSV-export or Socrata-JSON row into a `Request311`; raise `BadRow` if unusable."""
    if not isinstance(row, Mapping):
        raise BadRow("row is not a mapping")
    if row.get(EXTRA_CELLS):
        raise BadRow("row has more cells than the header")
    if row.get(SHORT_ROW):
        raise BadRow(short_row_reason(row))
    raw = normalise_row(row)
    text: dict[str, str] = {}
    cut: dict[str, int] = {}
    for name, value in raw.items():
        if type(value) is str and len(value) <= MAX_TEXT and value.isprintable():
            if value := value.strip():  # the common cell: nothing to clean, nothing to cut
                text[name] = value
            continue
        if type(value) is str:
            if len(value) > MAX_CELL:
                raise BadRow(f"cell {name!r} is {len(value):,} characters long (over the "
                             f"{MAX_CELL:,} a 311 field can be)")
            # clean_text's own fast path, without the call (41 cells a row)
            whole = value.strip() if value.isprintable() else clean_text(value, MAX_CELL)
        else:
            whole = clean_text(value, MAX_CELL)
        if len(whole) > MAX_TEXT:
            cut[name] = len(whole)
            whole = whole[:MAX_TEXT].rstrip()
        if whole:
            text[name] = whole

    if "unique_key" not in raw:
        raise BadRow("missing unique key")
    raw_key = raw["unique_key"]
    if raw_key is not None and (isinstance(raw_key, bool)
                                or not isinstance(raw_key, str | int)):
        raise BadRow(f"unique key is a JSON {_json_kind(raw_key)}, not a string")
    key = text.get("unique_key", "")
    if not key:
        raise BadRow("blank unique key")
    if len(key) > MAX_KEY:
        raise BadRow("unique key too long")

    created = _date(raw, "created_date", "created", required=True)
    assert created is not None
    closed = _date(raw, "closed_date", "closed", required=False)
    updated = _date(raw, "updated_at", "updated", required=False) or _date(
        raw, "resolution_action_updated_date", "resolution updated", required=False
    )
    lat, lon = _coordinates(raw)

    return Request311(
        unique_key=key,
        created_at=created,
        closed_at=closed,
        agency=text.get("agency", "").upper(),
        complaint_type=text.get("complaint_type", ""),
        descriptor=text.get("descriptor", ""),
        location_type=text.get("location_type", ""),
        address=_address(text),
        borough=text.get("borough", ""),
        zip=text.get("incident_zip", ""),
        status=text.get("status", ""),
        resolution=text.get("resolution_description", ""),
        lat=lat,
        lon=lon,
        media_urls=_media_urls(raw),
        fields=text,
        updated_at=updated,
        cut=cut,
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, float) else type(value).__name__


def check_dates(req: Request311, now: datetime) -> None:
    """BadRow for dates no real request has: before 311 began, in the future, closed before
    created. (The caller gives `now`: parsing stays free of clocks.)"""
    # compared in UTC, as parsed: one time zone on both sides spares each comparison two
    # offset look-ups
    latest = (now + FUTURE_SLACK).astimezone(UTC)
    for label, value in (("created", req.created_at), ("closed", req.closed_at)):
        if value is None:
            continue
        if value < EARLIEST_UTC:
            raise BadRow(f"{label} date {day_text(value)} is before NYC 311 began (2003)")
        if value > latest:
            raise BadRow(f"{label} date {day_text(value)} is in the future")
    if req.closed_at is not None and req.closed_at < req.created_at:
        raise BadRow(f"closed date {day_text(req.closed_at)} is before the created date "
                     f"{day_text(req.created_at)}")


def short_row_reason(row: Mapping[Any, Any]) -> str:
    """Why a short CSV line is bad: it stops before a column (a file cut off mid-row)."""
    present = sum(1 for k in row if k is not None and k not in (SHORT_ROW, EXTRA_CELLS))
    return (f"row ends before the {row[SHORT_ROW]} column ({present} cells; "
            "was the file cut short?)")

"""Proof of presence: how far from the job the phone said it was, and how the board says it.

"On scene" and "Close" may carry one position from the officer's phone (lat, lon and the
accuracy the browser reported). The event records the distance to the job's location and the
accuracy, and whether that confirms the officer was there: within the distance of the close
policy in force ("On scene needs a position within N m"), or DEFAULT_WITHIN_M when no such
policy is set, with an accuracy no coarser than that distance. Pure rules, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG): what haversine distances assume
DEFAULT_WITHIN_M = 200
MAX_ACCURACY_M = 10_000
ASK, OFF = "ask", "off"  # the department's setting (ARRIVAL_POSITION)
SETTINGS = (ASK, OFF)

# The payload keys a position leaves on an on_scene or close event.
KEYS = ("lat", "lon", "accuracy_m", "distance_m", "within_m", "confirmed")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine): good to a few metres across a city."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Fix:
    """One position from the phone, as the API and the form send it."""

    lat: float
    lon: float
    accuracy_m: float | None = None


def record(fix: Fix | None, job_lat: float | None, job_lon: float | None,
           within_m: int | None, asked: bool = True) -> dict[str, Any]:
    """What an on_scene or close event keeps of a position (empty: nothing to say).

    `asked`: the department asks phones for a position (ARRIVAL_POSITION=ask). When it does
    not and none came, the event says nothing, so such arrivals are never flagged.
    """
    limit = within_m or DEFAULT_WITHIN_M
    if fix is None:
        return {"confirmed": False, "within_m": limit} if asked else {}
    out: dict[str, Any] = {"lat": round(fix.lat, 6), "lon": round(fix.lon, 6),
                           "accuracy_m": None if fix.accuracy_m is None
                           else round(fix.accuracy_m, 1), "within_m": limit}
    if job_lat is None or job_lon is None:
        out.update(distance_m=None, confirmed=None)  # nothing to measure from
        return out
    far = round(distance_m(fix.lat, fix.lon, job_lat, job_lon))
    coarse = fix.accuracy_m is not None and fix.accuracy_m > limit
    out.update(distance_m=far, confirmed=far <= limit and not coarse)
    return out


def confirmed(payload: Mapping[str, Any] | None) -> bool | None:
    """Whether an event's position confirms presence; None when it records no judgement."""
    return (payload or {}).get("confirmed")


def recorded(payload: Mapping[str, Any] | None) -> bool:
    """Whether the event says anything about a position (events before this did not)."""
    return "confirmed" in (payload or {})


def refusal(payload: Mapping[str, Any], step: str) -> str | None:
    """Why the "position within N m" policy refuses this step, or None when it is met."""
    limit = payload.get("within_m") or DEFAULT_WITHIN_M
    if payload.get("confirmed"):
        return None
    if "distance_m" not in payload:
        return (f"{step} needs your position within {limit} m of the job: allow this phone "
                "to share its location and try again")
    if payload.get("distance_m") is None:
        return None  # the job has no location to measure from: the policy cannot apply
    return (f"{step} needs your position within {limit} m of the job; this phone "
            f"said {length(payload['distance_m'])} away{_plus_minus(payload)}")


def length(metres: float) -> str:
    """35 m, 950 m, 2.4 km, 12 km: as a person says it."""
    if metres < 1000:
        return f"{round(metres)} m"
    km = metres / 1000
    return f"{km:.1f} km" if km < 10 else f"{round(km)} km"


def _plus_minus(payload: Mapping[str, Any]) -> str:
    acc = payload.get("accuracy_m")
    return "" if acc is None else f" (±{length(acc)})"


def sentence(kind: str, payload: Mapping[str, Any] | None) -> str | None:
    """The job page's words for an event's position; None when the event recorded none.

    "on scene confirmed 35 m away (±10 m)", "on scene, no position given",
    "on scene 2.4 km away".
    """
    p = payload or {}
    if not recorded(p):
        return None
    step = "on scene" if kind == "on_scene" else "closed"
    if "distance_m" not in p:
        return f"{step}, no position given"
    if p["distance_m"] is None:
        return f"{step}, position given (the job has no location to measure from)"
    far = f"{length(p['distance_m'])} away{_plus_minus(p)}"
    if p.get("confirmed"):
        return f"{step} confirmed {far}"
    acc = p.get("accuracy_m")
    if acc is not None and acc > (p.get("within_m") or DEFAULT_WITHIN_M) \
            and p["distance_m"] <= (p.get("within_m") or DEFAULT_WITHIN_M):
        return f"{step} {far}: too coarse to confirm"
    return f"{step} {far}"

"""A job's QSTAT facts: one row per job, folded from its events as they are written.

QSTAT reads these rows rather than scanning a city-year of events for every page. The fold is
pure and deterministic: the write path applies it to each event in the event's own transaction
(board/factstore.py), and a rebuild from the events table gives the same rows.

What the figures mean: to assign = receipt → first assignment; to acknowledge, to arrive and to
close = first assignment → that step; receipt → close = the 311 created time → the (latest)
close. A history row (closed by the city before it was imported) has only receipt → close:
everything that needs dispatch events stays None, which QSTAT shows as "no data".

Evidence (issue 16): the latest arrival's distance from the job and whether its position
confirmed it (an arrival without one is unconfirmed); the latest field close's number of
officer's photos and, for a summons, of summons numbers (None: not closed in the field, or
closed before the board counted them).

The card's flags (`flags`: board.domain.flags.step, one event at a time, with the round of work
they need kept beside them): a card shows them, and a close works them out, without folding the
job's timeline again, however long that has grown.
"""

from __future__ import annotations

from dataclasses import astuple
from typing import Any

from board.domain.flags import Fact, Progress, step
from board.domain.qstat import local_day, minutes, tour

OVERDUE_STAGES = ("dispatch", "ack", "arrive", "close")  # as events name them
# Statuses in which a job has no unit: late to acknowledge there means late to be dispatched.
NOT_DISPATCHED = ("new", "held")

COLUMNS = (
    "job_id", "precinct", "sector", "unit_id", "complaint_type", "created_at", "day", "tour",
    "history", "has_photos", "closed_at", "disposition", "summons_count", "administrative",
    "assigned_at", "acked_at", "arrived_at", "assign_min", "ack_min", "arrive_min", "close_min",
    "receipt_close_min", "photo_viewed", "reopens", "quick_close", "no_arrival",
    "overdue_dispatch", "overdue_ack", "overdue_arrive", "overdue_close", "satisfaction",
    "still_there", "caller_disputed",
    "arrival_distance_m", "arrival_confirmed", "evidence_photos", "summons_numbers",
    "flags", "round_assigned_at", "round_arrived", "round_viewed", "round_presence",
)

# board.domain.flags.Progress as the row keeps it: the job's current round of work (since its
# last reopen), in Progress's field order.
ROUND = ("round_assigned_at", "round_arrived", "round_viewed", "round_presence")

# The job's columns the fold reads (its current state, after the event's change).
JOB_COLUMNS = ("id", "precinct", "sector", "complaint_type", "created_at", "history",
               "media", "closed_at", "disposition", "summons_count", "administrative")


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def fold(prior: dict[str, Any] | None, job: Any, kind: str, at: Any,
         payload: dict[str, Any], unit_id: int | None = None) -> dict[str, Any]:
    """The job's facts after one more event (its kind, time, payload and unit).

    The unit is the event's, so a rebuild from the events gives the same row as the write
    path did one event at a time. Nothing here reads the job's earlier events: the row carries
    what the flags need of them (its round of work, `ROUND`).
    """
    f: dict[str, Any] = dict(prior) if prior else {
        "assigned_at": None, "acked_at": None, "arrived_at": None, "photo_viewed": False,
        "reopens": 0, "quick_close": None, "no_arrival": None,
        "overdue_dispatch": False, "overdue_ack": False, "overdue_arrive": False,
        "overdue_close": False, "unit_id": None, "satisfaction": None, "still_there": None,
        "caller_disputed": False, "arrival_distance_m": None, "arrival_confirmed": None,
        "evidence_photos": None, "summons_numbers": None, "flags": [],
        "round_assigned_at": None, "round_arrived": False, "round_viewed": False,
        "round_presence": None,
    }
    created = _get(job, "created_at")
    f.update(
        job_id=_get(job, "id"), precinct=_get(job, "precinct"), sector=_get(job, "sector"),
        complaint_type=_get(job, "complaint_type"), created_at=created,
        day=local_day(created), tour=tour(created), history=bool(_get(job, "history")),
        has_photos=bool(_get(job, "media")), closed_at=_get(job, "closed_at"),
        disposition=_get(job, "disposition"), summons_count=_get(job, "summons_count"),
        administrative=bool(_get(job, "administrative")),
    )
    f["flags"] = _flags_after(f, Fact(kind, at, payload))
    if unit_id is not None:
        f["unit_id"] = unit_id  # the unit that last had it: for a closed job, who closed it
    if kind in ("assign", "reassign") and f["assigned_at"] is None:
        f["assigned_at"] = at
    elif kind == "acknowledge" and f["acked_at"] is None:
        f["acked_at"] = at
    elif kind == "on_scene":
        # proof of presence: the latest arrival's, an arrival without a position unconfirmed
        f["arrived_at"] = f["arrived_at"] or at
        f["arrival_distance_m"] = payload.get("distance_m")
        f["arrival_confirmed"] = payload.get("confirmed") is True
    elif kind == "view_photo":
        f["photo_viewed"] = True
    elif kind == "reopen":
        f["reopens"] += 1
        f["quick_close"] = f["no_arrival"] = None
        f["evidence_photos"] = f["summons_numbers"] = None
    elif kind in ("close", "admin_close"):
        flagged = set(f["flags"])
        f["quick_close"] = "quick_close" in flagged
        f["no_arrival"] = "no_arrival" in flagged
        field_close = kind == "close"
        f["evidence_photos"] = len(payload.get("evidence") or ()) if field_close else None
        f["summons_numbers"] = (len(payload.get("summons_numbers") or ())
                                if field_close and f["disposition"] == "summons_issued" else None)
    elif kind == "overdue" and payload.get("stage") in OVERDUE_STAGES:
        f[f"overdue_{_overdue_stage(payload, f)}"] = True
    elif kind == "survey_answer":  # the caller's verdict (one per request)
        f["satisfaction"] = payload.get("satisfaction")
        f["still_there"] = payload.get("still_there")
    elif kind == "caller_disputed":
        f["caller_disputed"] = True
    assigned = f["assigned_at"]
    f["assign_min"] = minutes(assigned, created)
    f["ack_min"] = minutes(f["acked_at"], assigned)
    f["arrive_min"] = minutes(f["arrived_at"], assigned)
    f["close_min"] = minutes(f["closed_at"], assigned)
    f["receipt_close_min"] = minutes(f["closed_at"], created)
    return f


def round_of(row: Any) -> Progress:
    """The round of work a facts row keeps (ROUND), as board.domain.flags.Progress."""
    return Progress(*(_get(row, c) for c in ROUND))


def _flags_after(f: dict[str, Any], e: Fact) -> list[str]:
    """The card's flags after `e` (board.domain.flags.step), the row's round of work moved
    past it first as Progress.see moves it."""
    p = round_of(f)
    p.see(e)
    f.update(zip(ROUND, astuple(p), strict=True))
    return sorted(step(f["flags"] or (), p, e, f["has_photos"]))


def _overdue_stage(payload: dict[str, Any], f: dict[str, Any]) -> str:
    """The stage an overdue event counts for: "ack" only if a unit had the job.

    The deadline worker writes "dispatch" for a job no unit has; events from before it did
    say "ack" with the status it was late in (or, older still, nothing: then "never assigned"
    stands for "not dispatched"); the event itself is never rewritten.
    """
    stage = payload["stage"]
    if stage != "ack":
        return stage
    status = payload.get("status")
    undispatched = status in NOT_DISPATCHED if status else f["assigned_at"] is None
    return "dispatch" if undispatched else "ack"

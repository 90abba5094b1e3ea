"""Accountability flags, computed from a job's events and never typed in by anyone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

QUICK_CLOSE = timedelta(minutes=5)

FLAG_LABELS = {
    "quick_close": "Closed within 5 minutes of assignment",
    "no_arrival": "Closed without arriving on scene",
    "photos_unviewed": "Closed without viewing the caller's photos",
    "reopened": "Reopened",
}


@dataclass(frozen=True)
class Fact:
    """The part of an event the flags need."""

    kind: str
    at: datetime
    payload: dict[str, Any]


def flags(events: Iterable[Fact], has_photos: bool) -> set[str]:
    """Flags of a job's latest close (and whether it was ever reopened), in event order."""
    result: set[str] = set()
    assigned_at: datetime | None = None
    arrived = viewed = False
    for e in events:
        if e.kind in ("assign", "reassign"):
            assigned_at = e.at if e.kind == "assign" or assigned_at is None else assigned_at
        elif e.kind == "on_scene":
            arrived = True
        elif e.kind == "view_photo":
            viewed = True
        elif e.kind == "reopen":
            result = {"reopened"}
            assigned_at, arrived = None, False
        elif e.kind == "close":
            if assigned_at is not None and e.at - assigned_at <= QUICK_CLOSE:
                result.add("quick_close")
            if not arrived and e.payload.get("arrival_expected", True):
                result.add("no_arrival")
            if has_photos and not viewed:
                result.add("photos_unviewed")
    return result

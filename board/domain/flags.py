"""Accountability flags, computed from a job's events and never typed in by anyone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from board.domain.presence import confirmed

QUICK_CLOSE = timedelta(minutes=5)

FLAG_LABELS = {
    "quick_close": "Closed within 5 minutes of assignment",
    "no_arrival": "Closed without arriving on scene",
    "photos_unviewed": "Closed without viewing the caller's photos",
    "reopened": "Reopened",
    "overdue": "Went overdue",
    "administrative": "Closed administratively",
    "caller_disputed": "The caller says the problem is still there",
    "unconfirmed": "On scene not confirmed by the phone's position",
}
# The same flags in a word or two, for a card on a crowded board (the full label is its title
# and what a screen reader reads).
FLAG_SHORT = {
    "quick_close": "≤5 min", "no_arrival": "no arrival", "photos_unviewed": "photos unseen",
    "reopened": "reopened", "overdue": "went overdue", "administrative": "admin close",
    "caller_disputed": "caller disputes", "unconfirmed": "arrival unconfirmed",
}


@dataclass(frozen=True)
class Fact:
    """The part of an event the flags need."""

    kind: str
    at: datetime
    payload: dict[str, Any]


@dataclass
class Progress:
    """Where a job's current round of work stands (since its last reopen)."""

    assigned_at: datetime | None = None
    arrived: bool = False
    viewed: bool = False
    #: whether the phone's position confirmed presence this round (None: nothing recorded,
    #: as before positions were asked for, or with ARRIVAL_POSITION=off)
    presence: bool | None = None

    def see(self, e: Fact) -> None:
        if e.kind in ("assign", "reassign"):
            # a reassignment keeps the first assignment's clock: the job was not new again
            self.assigned_at = e.at if e.kind == "assign" or self.assigned_at is None \
                else self.assigned_at
        elif e.kind == "on_scene":
            self.arrived = True
            self.presence = confirmed(e.payload)
        elif e.kind == "close" and confirmed(e.payload):
            self.presence = True  # a position at the scene on closing confirms it too
        elif e.kind == "view_photo":
            self.viewed = True
        elif e.kind == "reopen":
            self.assigned_at, self.arrived, self.presence = None, False, None


def progress(events: Iterable[Fact]) -> Progress:
    p = Progress()
    for e in events:
        p.see(e)
    return p


def close_flags(p: Progress, at: datetime, arrival_expected: bool, has_photos: bool) -> set[str]:
    """What a field close at `at` would be flagged for, given the job's progress."""
    result = set()
    if p.assigned_at is not None and at - p.assigned_at <= QUICK_CLOSE:
        result.add("quick_close")
    if not p.arrived and arrival_expected:
        result.add("no_arrival")
    if has_photos and not p.viewed:
        result.add("photos_unviewed")
    if p.arrived and arrival_expected and p.presence is False:
        result.add("unconfirmed")
    return result


def step(kept: Iterable[str], p: Progress, e: Fact, has_photos: bool) -> set[str]:
    """The flags after one more event, `p` already past it (Progress.see): a reopen leaves
    "reopened" (and "overdue", which stays once any stage went overdue); a close adds its own.
    Kept one event at a time, this is what a card shows without reading its timeline."""
    kept = set(kept)
    if e.kind == "overdue":
        return kept | {"overdue"}
    if e.kind == "reopen":
        return {"reopened"} | (kept & {"overdue"})
    if e.kind == "close":
        return kept | close_flags(p, e.at, e.payload.get("arrival_expected", True), has_photos)
    if e.kind == "admin_close":
        return kept | {"administrative"}
    return kept


def flags(events: Iterable[Fact], has_photos: bool) -> set[str]:
    """Flags of a job's latest close (and whether it was ever reopened or overdue)."""
    result: set[str] = set()
    p = Progress()
    for e in events:
        p.see(e)
        result = step(result, p, e, has_photos)
    return result

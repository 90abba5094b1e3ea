"""The job lifecycle: which action may move a job from which status, and why not otherwise.

Pure rules, no I/O: the use cases ask here before they write anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    HELD = "held"
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


WORKING = (Status.ASSIGNED, Status.ACKNOWLEDGED, Status.EN_ROUTE, Status.ON_SCENE)
OPEN = (Status.NEW, Status.HELD, *WORKING)

# Why an action needs this status: said back to the user when it is refused.
_NEEDS = {
    "assign": "it must be new or held (use reassign for a job a unit already has)",
    "reassign": "only a job that a unit has can be reassigned",
    "unassign": "only a job that a unit has can be returned to the queue",
    "acknowledge": "only a newly assigned job can be acknowledged",
    "en_route": "a unit goes en route to a job it has been assigned or has acknowledged",
    "on_scene": "a unit arrives on a job it has acknowledged or is en route to",
    "close": "only a job a unit is working can be closed with a disposition",
    "admin_close": "only a job nobody is working (new or held) can be closed administratively",
    "hold": "only a job in the queue can be put on hold",
    "release": "only a held job can be released",
    "reopen": "only a closed job can be reopened",
    "set_priority": "a closed job's priority no longer matters",
    "route": "a closed job stays where it was worked",
}

ALLOWED: dict[str, tuple[tuple[Status, ...], Status | None]] = {
    # action: (statuses it may start from, status it ends in; None = unchanged)
    "assign": ((Status.NEW, Status.HELD), Status.ASSIGNED),
    "reassign": (WORKING, Status.ASSIGNED),
    "unassign": (WORKING, Status.NEW),
    "acknowledge": ((Status.ASSIGNED,), Status.ACKNOWLEDGED),
    "en_route": ((Status.ASSIGNED, Status.ACKNOWLEDGED), Status.EN_ROUTE),
    "on_scene": ((Status.ACKNOWLEDGED, Status.EN_ROUTE), Status.ON_SCENE),
    "close": (WORKING, Status.CLOSED),
    "admin_close": ((Status.NEW, Status.HELD), Status.CLOSED),
    "hold": ((Status.NEW,), Status.HELD),
    "release": ((Status.HELD,), Status.NEW),
    "reopen": ((Status.CLOSED,), Status.NEW),
    "set_priority": (OPEN, None),
    "route": (OPEN, None),
    "note": (tuple(Status), None),
    "view_photo": (tuple(Status), None),
    "view_contact": (tuple(Status), None),
}

LABELS = {
    Status.NEW: "New",
    Status.HELD: "On hold",
    Status.ASSIGNED: "Assigned",
    Status.ACKNOWLEDGED: "Acknowledged",
    Status.EN_ROUTE: "En route",
    Status.ON_SCENE: "On scene",
    Status.CLOSED: "Closed",
}

# The officer's next step from each status: (action, button label).
NEXT_STEP = {
    Status.ASSIGNED: ("acknowledge", "Acknowledge"),
    Status.ACKNOWLEDGED: ("en_route", "En route"),
    Status.EN_ROUTE: ("on_scene", "On scene"),
    Status.ON_SCENE: ("close", "Close"),
}


@dataclass
class TransitionError(Exception):
    action: str
    status: Status

    def __str__(self) -> str:
        label = LABELS[self.status].lower()
        verb = self.action.replace("_", " ")
        return f"cannot {verb} a job that is {label}: {_NEEDS[self.action]}"


def transition(action: str, status: Status | str) -> Status:
    """The status after `action`, or TransitionError saying why it is refused."""
    if action not in ALLOWED:
        raise ValueError(f"unknown action {action!r}")
    status = Status(status)
    sources, target = ALLOWED[action]
    if status not in sources:
        raise TransitionError(action, status)
    return target or status


def allowed_actions(status: Status | str) -> list[str]:
    status = Status(status)
    return [a for a, (sources, _) in ALLOWED.items() if status in sources]

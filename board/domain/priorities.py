"""Priority and stage deadlines of a job, from rules on complaint type and descriptor.

The most specific rule wins: (type, descriptor) over (type, any) over the default. Supervisors
edit the rules; the defaults below are a starting point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ANY = "*"
PRIORITY_LABELS = {1: "P1 urgent", 2: "P2 high", 3: "P3 routine", 4: "P4 low"}


@dataclass(frozen=True)
class Rule:
    complaint_type: str
    descriptor: str
    priority: int
    ack_minutes: int
    arrive_minutes: int
    close_minutes: int

    def matches(self, complaint_type: str, descriptor: str) -> bool:
        return self.complaint_type.casefold() == complaint_type.casefold() and (
            self.descriptor == ANY or self.descriptor.casefold() == descriptor.casefold()
        )


DEFAULT_RULE = Rule(ANY, ANY, 3, 10, 45, 120)

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("Blocked Driveway", "No Access", 1, 5, 20, 60),
    Rule("Blocked Driveway", ANY, 2, 5, 30, 90),
    Rule("Illegal Parking", "Blocked Hydrant", 2, 5, 30, 90),
    Rule("Illegal Parking", "Double Parked Blocking Traffic", 2, 5, 30, 90),
    Rule("Illegal Parking", ANY, 3, 10, 45, 120),
    Rule("Traffic", "Drag Racing", 1, 5, 15, 60),
    Rule("Illegal Fireworks", ANY, 2, 5, 30, 90),
    Rule("Noise - Residential", "Banging/Pounding", 3, 10, 45, 120),
    Rule("Noise - Residential", ANY, 3, 10, 45, 120),
    Rule("Noise - Street/Sidewalk", "Loud Talking", 4, 15, 60, 180),
    Rule("Noise - Residential", "Loud Talking", 4, 15, 60, 180),
    Rule("Noise - Commercial", ANY, 3, 10, 45, 120),
    Rule("Noise - Vehicle", ANY, 3, 10, 45, 120),
    Rule("Encampment", ANY, 2, 10, 60, 240),
    Rule("Abandoned Vehicle", ANY, 4, 30, 240, 1440),
)


def rule_for(rules: tuple[Rule, ...] | list[Rule], complaint_type: str, descriptor: str) -> Rule:
    """The most specific matching rule; the default when none matches."""
    exact = [r for r in rules if r.descriptor != ANY and r.matches(complaint_type, descriptor)]
    if exact:
        return exact[0]
    general = [r for r in rules if r.descriptor == ANY and r.matches(complaint_type, descriptor)]
    return general[0] if general else DEFAULT_RULE


@dataclass(frozen=True)
class Deadlines:
    acknowledge: datetime
    arrive: datetime
    close: datetime


def deadlines(rule: Rule, received_at: datetime) -> Deadlines:
    """Every stage runs from when the job came in: the caller waits from then, not from dispatch."""
    return Deadlines(
        received_at + timedelta(minutes=rule.ack_minutes),
        received_at + timedelta(minutes=rule.arrive_minutes),
        received_at + timedelta(minutes=rule.close_minutes),
    )


# The stage a job is in decides which deadline it can be late for.
_STAGE = {"new": "dispatch", "held": "dispatch", "assigned": "ack", "acknowledged": "arrive",
          "en_route": "arrive", "on_scene": "close"}


def overdue_stage(status: str, due: Deadlines, now: datetime) -> str | None:
    """The stage a job (in `status`) is late for now, or None; a closed job is never late.
    Past the close deadline every open job is late for its close."""
    stage = _STAGE.get(status)
    if stage is None:
        return None
    if now > due.close:
        return "close"
    return stage if now > stage_due(stage, due) else None


def overdue(status: str, due: Deadlines, now: datetime) -> str | None:
    """What a job is late for ("not on scene"), or None: the card's words."""
    stage = overdue_stage(status, due, now)
    return STAGE_WORDS[stage] if stage else None


# Overdue events: a stage is late when its deadline passed before the job got past it.
# (The names are the event payload's: {"stage": "dispatch" | "ack" | "arrive" | "close"}.)
# A job nobody has been given is late for dispatch, not for acknowledgement: both fall due at
# the acknowledge deadline, but only an assigned job can be "not acknowledged".
STAGES = ("dispatch", "ack", "arrive", "close")
STAGE_STATUSES = {  # a job in these statuses has not got past the stage yet
    "dispatch": ("new", "held"),
    "ack": ("assigned",),
    "arrive": ("new", "held", "assigned", "acknowledged", "en_route"),
    "close": ("new", "held", "assigned", "acknowledged", "en_route", "on_scene"),
}
# One name per stage, on the card, the alert banner, the timeline, QSTAT and the docs.
STAGE_WORDS = {"dispatch": "not dispatched", "ack": "not acknowledged", "arrive": "not on scene",
               "close": "not closed"}


def stage_due(stage: str, due: Deadlines) -> datetime:
    return {"dispatch": due.acknowledge, "ack": due.acknowledge, "arrive": due.arrive,
            "close": due.close}[stage]


def late_stages(status: str, due: Deadlines, now: datetime) -> list[str]:
    """The stages whose deadline has passed while the job (in `status`) had not got past them."""
    return [s for s in STAGES if status in STAGE_STATUSES[s] and now > stage_due(s, due)]


def event_stage(stage: str | None, unit_id: int | None,
                status: str | None = None) -> str | None:
    """The stage an `overdue` event names, in today's terms. Events are never rewritten: those
    written before "dispatch" existed say "ack" for a job that had no unit (the status it was
    late in, when the event says it; else the event's unit), which was late for dispatch."""
    if stage != "ack":
        return stage
    undispatched = status in STAGE_STATUSES["dispatch"] if status else unit_id is None
    return "dispatch" if undispatched else "ack"


def passed(stage: str | None, status: str) -> bool:
    """Whether a job now in `status` has got past `stage` (an alert for it is answered)."""
    return status not in STAGE_STATUSES.get(stage or "", ())

"""Close policies: rules an admin turns on, per precinct or citywide, that can refuse a close.

Pure checks, no I/O: the close use case gathers the job's progress (board.domain.flags.Progress) and
the policies in effect, and asks here whether the officer may close now. A precinct's own
setting of a policy overrides the citywide one (as the most specific priority rule wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from board.domain.flags import Progress

CITYWIDE = "*"
PHOTO_BEFORE_CLOSE = "photo_before_close"
NOTE_WITHOUT_ARRIVAL = "note_without_arrival"
NOTE_QUICK_CLOSE = "note_quick_close"

KINDS = {
    PHOTO_BEFORE_CLOSE: "A job with photos cannot be closed before a photo is viewed",
    NOTE_WITHOUT_ARRIVAL: "Closing without arriving on scene needs a note",
    NOTE_QUICK_CLOSE: "Closing within N minutes of assignment needs a note",
}
MAX_MINUTES = 1440


@dataclass(frozen=True)
class Policy:
    kind: str
    enabled: bool
    minutes: int | None = None
    scope: str = CITYWIDE

    @property
    def text(self) -> str:
        """As the close form and the policies page say it."""
        if self.kind == NOTE_QUICK_CLOSE:
            return f"Closing within {self.minutes} minutes of assignment needs a note"
        return KINDS[self.kind]


class PolicyError(ValueError):
    pass


def check(kind: str, enabled: bool, minutes: int | None, scope: str) -> Policy:
    """A well-formed policy setting, or PolicyError saying what is wrong."""
    if kind not in KINDS:
        raise PolicyError(f"no policy {kind!r}")
    if kind == NOTE_QUICK_CLOSE:
        if minutes is None or not 1 <= minutes <= MAX_MINUTES:
            raise PolicyError(f"give the minutes, 1 to {MAX_MINUTES}")
    else:
        minutes = None
    return Policy(kind, enabled, minutes, scope)


def in_effect(policies: Iterable[Policy], precinct: str | None) -> list[Policy]:
    """The enabled policies for a precinct: its own setting of a kind, else the citywide one."""
    chosen: dict[str, Policy] = {}
    for p in policies:
        if p.scope == CITYWIDE:
            chosen.setdefault(p.kind, p)
    for p in policies:
        if p.scope != CITYWIDE and p.scope == precinct:
            chosen[p.kind] = p
    return [chosen[k] for k in KINDS if k in chosen and chosen[k].enabled]


def refusals(active: Iterable[Policy], progress: Progress, at: datetime, *,
             arrival_expected: bool, has_photos: bool, note: str) -> list[str]:
    """Why these policies refuse closing now (empty: the close may go ahead)."""
    reasons = []
    for p in active:
        if p.kind == PHOTO_BEFORE_CLOSE and has_photos and not progress.viewed:
            reasons.append("this job has the caller's photos: open at least one before "
                           "closing it")
        elif (p.kind == NOTE_WITHOUT_ARRIVAL and arrival_expected and not progress.arrived
              and not note):
            reasons.append("you did not record arriving on scene: add a note saying why")
        elif (p.kind == NOTE_QUICK_CLOSE and p.minutes is not None and not note
              and progress.assigned_at is not None
              and at - progress.assigned_at <= timedelta(minutes=p.minutes)):
            reasons.append(f"closing within {p.minutes} minutes of assignment: add a note "
                           "saying what was done")
    return reasons

"""Close policies: rules an admin turns on, per precinct or citywide, that can refuse a close.

Pure checks, no I/O: the close use case gathers the job's progress (board.domain.flags.Progress) and
the policies in effect, and asks here whether the officer may close now. A precinct's own
setting of a policy overrides the citywide one (as the most specific priority rule wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from board.domain import presence
from board.domain.dispositions import BY_CODE, FIELD
from board.domain.flags import Progress

CITYWIDE = "*"
PHOTO_BEFORE_CLOSE = "photo_before_close"
NOTE_WITHOUT_ARRIVAL = "note_without_arrival"
NOTE_QUICK_CLOSE = "note_quick_close"
POSITION_ON_SCENE = "position_on_scene"
EVIDENCE_PHOTO = "evidence_photo"

KINDS = {
    PHOTO_BEFORE_CLOSE: "A job with photos cannot be closed before a photo is viewed",
    NOTE_WITHOUT_ARRIVAL: "Closing without arriving on scene needs a note",
    NOTE_QUICK_CLOSE: "Closing within N minutes of assignment needs a note",
    POSITION_ON_SCENE: "On scene needs a position within N m",
    EVIDENCE_PHOTO: "Closing with chosen dispositions needs an officer's photo",
}
MAX_MINUTES = 1440
MIN_METRES, MAX_METRES = 10, 5000


@dataclass(frozen=True)
class Policy:
    kind: str
    enabled: bool
    minutes: int | None = None
    scope: str = CITYWIDE
    metres: int | None = None  # the N of position_on_scene
    dispositions: tuple[str, ...] = ()  # the dispositions evidence_photo applies to

    @property
    def text(self) -> str:
        """As the close form and the policies page say it."""
        if self.kind == NOTE_QUICK_CLOSE:
            return f"Closing within {self.minutes} minutes of assignment needs a note"
        if self.kind == POSITION_ON_SCENE:
            return f"On scene needs a position within {self.metres} m of the job"
        if self.kind == EVIDENCE_PHOTO:
            labels = ", ".join(BY_CODE[c].label for c in self.dispositions if c in BY_CODE)
            return f"Closing as {labels or 'the chosen dispositions'} needs an officer's photo"
        return KINDS[self.kind]


class PolicyError(ValueError):
    pass


def check(kind: str, enabled: bool, minutes: int | None, scope: str,
          metres: int | None = None, dispositions: Iterable[str] = ()) -> Policy:
    """A well-formed policy setting, or PolicyError saying what is wrong."""
    if kind not in KINDS:
        raise PolicyError(f"no policy {kind!r}")
    if kind == NOTE_QUICK_CLOSE:
        if minutes is None or not 1 <= minutes <= MAX_MINUTES:
            raise PolicyError(f"give the minutes, 1 to {MAX_MINUTES}")
    else:
        minutes = None
    if kind == POSITION_ON_SCENE:
        if metres is None or not MIN_METRES <= metres <= MAX_METRES:
            raise PolicyError(f"give the metres, {MIN_METRES} to {MAX_METRES}")
    else:
        metres = None
    codes: tuple[str, ...] = ()
    if kind == EVIDENCE_PHOTO:
        chosen = set(dispositions)
        codes = tuple(d.code for d in FIELD if d.code in chosen)  # in the form's order
        if not codes or len(codes) != len(chosen):
            raise PolicyError("choose the field dispositions that need a photo")
    return Policy(kind, enabled, minutes, scope, metres, codes)


def within_m(active: Iterable[Policy]) -> int | None:
    """The distance that confirms presence under the policies in effect (None: the default)."""
    return next((p.metres for p in active if p.kind == POSITION_ON_SCENE), None)


def arrival_refusal(active: Iterable[Policy], position: Mapping[str, Any]) -> str | None:
    """Why "On scene" is refused under a position policy (None: it may go ahead)."""
    if not any(p.kind == POSITION_ON_SCENE for p in active):
        return None
    return presence.refusal(position, "on scene")


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
             arrival_expected: bool, has_photos: bool, note: str,
             position: Mapping[str, Any] | None = None, disposition: str = "",
             evidence: int = 0) -> list[str]:
    """Why these policies refuse closing now (empty: the close may go ahead). `position`:
    what the close records of the phone's position; `evidence`: the officer's photos sent."""
    reasons = []
    for p in active:
        if p.kind == POSITION_ON_SCENE and arrival_expected and progress.presence is not True:
            why = presence.refusal(position or {}, "closing")
            if why:
                reasons.append(why)
        elif p.kind == EVIDENCE_PHOTO and disposition in p.dispositions and not evidence:
            reasons.append(f"closing as {BY_CODE[disposition].label!r} needs a photo: "
                           "take or attach one")
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

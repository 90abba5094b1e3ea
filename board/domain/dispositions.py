"""How a job ends: the department's public 311 resolution outcomes and administrative closes.

The text of each disposition is exactly what 311 publishes, so what the officer picks is what
the complainant reads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Disposition:
    code: str
    label: str
    resolution: str
    administrative: bool = False
    summons: bool = False
    arrival_expected: bool = True


DISPOSITIONS: tuple[Disposition, ...] = (
    Disposition(
        "action_taken", "Action taken",
        "The Police Department responded to the complaint and took action to fix the condition.",
    ),
    Disposition(
        "summons_issued", "Summons issued",
        "The Police Department issued a summons in response to the complaint.",
        summons=True,
    ),
    Disposition(
        "no_evidence", "No evidence of the violation",
        "The Police Department responded to the complaint and with the information available "
        "observed no evidence of the violation at that time.",
    ),
    Disposition(
        "gone_on_arrival", "Gone on arrival",
        "The Police Department responded and upon arrival those responsible for the condition "
        "were gone.",
    ),
    Disposition(
        "unable_to_gain_entry", "Unable to gain entry",
        "The Police Department responded to the complaint but officers were unable to gain entry "
        "into the premises.",
    ),
    Disposition(
        "action_not_necessary", "Police action not necessary",
        "The Police Department responded to the complaint and determined that police action was "
        "not necessary.",
    ),
    Disposition(
        "no_encampment", "No encampment found",
        "The Police Department visited the location and no Encampment was found.",
    ),
    Disposition(
        "additional_info", "Reviewed, information provided",
        "The Police Department reviewed your complaint and provided additional information below.",
        arrival_expected=False,
    ),
    # Administrative closes: from the queue, by a supervisor, never counted as police work.
    Disposition(
        "not_police_jurisdiction", "Not police jurisdiction",
        "This complaint does not fall under the Police Department's jurisdiction.",
        administrative=True, arrival_expected=False,
    ),
    Disposition(
        "duplicate", "Duplicate",
        "The Police Department reviewed your complaint and found it duplicates an earlier "
        "complaint about the same condition.",
        administrative=True, arrival_expected=False,
    ),
    Disposition(
        "insufficient_information", "Insufficient information",
        "The Police Department reviewed your complaint but did not have enough information "
        "to act on it.",
        administrative=True, arrival_expected=False,
    ),
)

BY_CODE = {d.code: d for d in DISPOSITIONS}
BY_RESOLUTION = {d.resolution: d for d in DISPOSITIONS}
FIELD = [d for d in DISPOSITIONS if not d.administrative]
ADMINISTRATIVE = [d for d in DISPOSITIONS if d.administrative]


MAX_SUMMONSES = 99


class DispositionError(ValueError):
    pass


def check_close(code: str, summons_count: int | None, *, administrative: bool) -> Disposition:
    """The disposition for a close, refusing one that does not fit how the job is closed."""
    d = BY_CODE.get(code)
    if d is None:
        raise DispositionError(f"unknown disposition {code!r}")
    if d.administrative != administrative:
        kind = "an administrative" if d.administrative else "a field"
        raise DispositionError(f"{d.label!r} is {kind} disposition")
    if d.summons:
        if summons_count is None or not 1 <= summons_count <= MAX_SUMMONSES:
            raise DispositionError(
                f"a summons disposition needs the number of summonses (1 to {MAX_SUMMONSES})")
    elif summons_count:
        raise DispositionError(f"{d.label!r} records no summonses")
    return d

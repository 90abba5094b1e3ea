"""What QSTAT counts by: New York local days, the three tours, periods and the percentile.

Pure rules, no I/O. A day is a New York calendar day, so a daylight-saving day is 23 or 25
hours long; a tour is read off the New York wall clock (day 07–15, evening 15–23, midnight
23–07). The percentile is a spreadsheet's PERCENTILE.INC (linear interpolation between the
two nearest ranks, PostgreSQL's percentile_cont), so the median of an even count is the mean of
the two middle values, as MEDIAN() gives; both engines use this one definition.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from board.domain.clock import NEW_YORK

DEFAULT_DAYS = 28  # CompStat's period
QUICK_MINUTES = 5.0  # "closed within 5 minutes" (of assignment or of receipt), 5:00 included

TOURS = ("day", "evening", "midnight")
TOUR_LABELS = {"day": "Day (07–15)", "evening": "Evening (15–23)", "midnight": "Midnight (23–07)"}


def local_day(at: datetime) -> date:
    """The New York calendar day of an instant."""
    return at.astimezone(NEW_YORK).date()


def tour(at: datetime) -> str:
    """The tour an instant falls in, by the New York wall clock."""
    hour = at.astimezone(NEW_YORK).hour
    if 7 <= hour < 15:
        return "day"
    if 15 <= hour < 23:
        return "evening"
    return "midnight"


def tour_window(at: datetime) -> tuple[str, datetime, datetime]:
    """The tour an instant falls in, with its UTC start and end: 8 hours on the New York wall
    clock (a midnight tour that crosses a clock change is 7 or 9 hours). The midnight tour
    runs 23:00 to 07:00 the next morning, as the precinct's tours do."""
    local = at.astimezone(NEW_YORK)
    name, d = tour(at), local.date()
    one = timedelta(days=1)
    start, end = {
        "day": ((d, 7), (d, 15)),
        "evening": ((d, 15), (d, 23)),
        "midnight": ((d, 23), (d + one, 7)) if local.hour >= 23 else ((d - one, 23), (d, 7)),
    }[name]
    return (name, datetime.combine(start[0], time(start[1]), NEW_YORK).astimezone(UTC),
            datetime.combine(end[0], time(end[1]), NEW_YORK).astimezone(UTC))


def previous_tour(at: datetime) -> tuple[str, datetime, datetime]:
    """The tour before the one an instant falls in."""
    _, start, _ = tour_window(at)
    return tour_window(start - timedelta(seconds=1))


def day_start(day: date) -> datetime:
    """The instant (UTC) a New York day begins: local midnight, whatever the offset that day."""
    return datetime.combine(day, time(0), tzinfo=NEW_YORK).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """New York days `start` (included) to `end` (excluded)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("the period must end after it starts")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def since(self) -> datetime:
        return day_start(self.start)

    @property
    def until(self) -> datetime:
        return day_start(self.end)

    def previous(self) -> Period:
        """The period of the same number of days just before this one."""
        return Period(self.start - timedelta(days=self.days), self.start)

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def label(self) -> str:
        last = self.end - timedelta(days=1)
        return f"{self.start.isoformat()} to {last.isoformat()}"


MAX_DAYS = 400
#: a day as the API's document says it (Python 3.11's fromisoformat takes more: 20260101)
DAY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _day(text: str) -> date:
    if not re.fullmatch(DAY, text):
        raise ValueError(text)
    return date.fromisoformat(text)


def period(start: str | None, end: str | None, now: datetime) -> Period:
    """A period from `YYYY-MM-DD` texts; by default the last 28 days through today."""
    today = local_day(now)
    try:
        to = _day(end) if end else today + timedelta(days=1)
        since = _day(start) if start else to - timedelta(days=DEFAULT_DAYS)
    except ValueError:
        raise ValueError("dates are YYYY-MM-DD") from None
    if to <= since:
        raise ValueError("'to' must be after 'from' ('to' is excluded)")
    if (to - since).days > MAX_DAYS:
        raise ValueError(f"a period is at most {MAX_DAYS} days")
    return Period(since, to)


PERCENTILE_METHOD = (
    "linear interpolation between the two nearest ranks, as a spreadsheet's PERCENTILE.INC and "
    "MEDIAN() (PostgreSQL percentile_cont): the value at position p × (n − 1) of the sorted "
    "values, counted from 0; the median of an even count is the mean of the two middle values"
)


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The percentile (fraction 0.5 = median) of values sorted ascending, PERCENTILE.INC.

    Position fraction × (n − 1), counted from 0, interpolated between the values either side,
    with the arithmetic PostgreSQL's percentile_cont uses (low + (high − low) × proportion), so
    both engines give the same float. None when there are none.
    """
    if not sorted_values:
        return None
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("a percentile's fraction is between 0 and 1")
    position = fraction * (len(sorted_values) - 1)
    low = int(position)  # floor: position is never negative
    high = min(low + 1, len(sorted_values) - 1) if position > low else low
    lo, hi = float(sorted_values[low]), float(sorted_values[high])
    return lo + (hi - lo) * (position - low)


def minutes(later: datetime | None, earlier: datetime | None) -> float | None:
    """Minutes between two instants, or None when either is unknown."""
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds() / 60, 4)


def share(part: int | None, whole: int | None) -> float | None:
    """A fraction, or None ("no data") when nothing was there to count."""
    if not whole or part is None:
        return None
    return part / whole


# Complaint types whose summons rate QSTAT reports (about 27% of illegal-parking requests).
SUMMONS_TYPES = ("Illegal Parking", "Blocked Driveway")


#: The city survey's 5-point scale (1 strongly disagree … 5 strongly agree): these answers and
#: above count as satisfied, these and below as dissatisfied (3 is neither).
SATISFIED = 4
DISSATISFIED = 2

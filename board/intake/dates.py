"""311 dates: every timestamp without an offset is New York local time (DST aware), returned as
aware UTC; dates before 2003, more than a day ahead, or a close before the creation are refused."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from board.domain.clock import NEW_YORK
from board.intake.text import clean_text

#: Dates outside [EARLIEST, now + FUTURE_SLACK] are typos or placeholders (NYC 311 began in
#: March 2003; the city's clocks and ours may differ by a little, never by a day).
EARLIEST = datetime(2003, 1, 1, tzinfo=NEW_YORK)


FUTURE_SLACK = timedelta(days=1)


EARLIEST_UTC = EARLIEST.astimezone(UTC)


_EXPORT_DATE = re.compile(r"(\d\d)/(\d\d)/(\d{4}) (\d\d):(\d\d):(\d\d) ([AP]M)$")


_DATE_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p", "%m/%d/%Y")


def day_text(value: datetime) -> str:
    """New York local time, four-digit year (year 1 as 0001, not 1)."""
    with contextlib.suppress(OverflowError):  # the first hours of year 1 have no New York time
        value = value.astimezone(NEW_YORK)
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


def parse_datetime(value: Any) -> datetime:
    """Parse a 311 timestamp to aware UTC. Naive times are New York local time.

    Accepts ``MM/DD/YYYY hh:mm:ss AM``, ``MM/DD/YYYY HH:MM:SS`` and ISO 8601 with or without
    fractional seconds / ``Z`` / offset (an explicit offset is honoured). Raises ValueError.

    DST: an ambiguous local time (the repeated hour in November) is taken as the first
    occurrence (EDT); a non-existent one (the skipped hour in March) as standard time, which
    is what `zoneinfo` does with ``fold=0``.
    """
    if isinstance(value, datetime):
        dt = value
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=NEW_YORK)
        return dt.astimezone(UTC)
    text = clean_text(value, 64)
    if not text:
        raise ValueError("empty")
    return _parse_text(text)


def new_york_text(value: Any) -> str:
    """A 311 timestamp as New York local ISO 8601 ("2022-05-01T00:03:09-04:00"): the same
    moment written by the export and by the API reads the same. ValueError as parse_datetime."""
    text = clean_text(value, 64) if isinstance(value, str) else ""
    hour = _export_hour(text) if _EXPORT_DATE.match(text) else None
    if hour is not None and text[14:16] < "60" and text[17:19] < "60":
        return hour.local + text[13:19] + hour.offset
    return parse_datetime(value).astimezone(NEW_YORK).isoformat()


@dataclass(frozen=True, slots=True)
class _Hour:
    utc: datetime  # its start
    local: str  # New York's reading of its start, to the hour: "2022-05-01T00"
    offset: str  # "-04:00"


# seconds into an hour, as the timedelta to add to its start
_INTO_HOUR = tuple(timedelta(seconds=s) for s in range(3600))


def _export_hour(text: str) -> _Hour | None:
    """The New York wall-clock hour of an export date ("05/01/2022 12:03:09 AM"), or None when
    it cannot be read by the hour (before 1900). ValueError for a date that does not exist."""
    return _new_york_hour(text[:13] + text[19:])


@lru_cache(maxsize=16384)
def _new_york_hour(key: str) -> _Hour | None:
    # New York's offset changes only on the hour (2 AM) since 1883, when it left local mean
    # time at 12:03:58: within an hour, a moment is the hour's start plus its minutes and
    # seconds. A city-year export has ~9,000 hours and millions of dates.
    month, day, year, hour = int(key[0:2]), int(key[3:5]), int(key[6:10]), int(key[11:13])
    if not 1 <= hour <= 12:
        raise ValueError(f"hour {hour} in a 12-hour time")
    if year < 1900:
        return None
    hour = hour % 12 + (12 if key[14:16] == "PM" else 0)
    start = datetime(year, month, day, hour, tzinfo=NEW_YORK).astimezone(UTC)
    local = start.astimezone(NEW_YORK).isoformat()  # fold=0, as parse_datetime reads it
    return _Hour(start, local[:13], local[19:])


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> datetime:
    # cached: a row names the same moment in several columns, and the job's fields again
    m = _EXPORT_DATE.match(text)
    if m and (hour := _export_hour(text)) is not None and text[14:16] < "60" \
            and text[17:19] < "60":
        return hour.utc + _INTO_HOUR[int(text[14:16]) * 60 + int(text[17:19])]
    if m:  # the export's own format, read without strptime (a city-year is millions of dates)
        month, day, year, hour, minute, second = (int(g) for g in m.groups()[:6])
        if not 1 <= hour <= 12:
            raise ValueError(f"hour {hour} in a 12-hour time")
        hour = hour % 12 + (12 if m.group(7) == "PM" else 0)
        dt = datetime(year, month, day, hour, minute, second)
    elif text[4:5] == "-":  # ISO 8601, as the Socrata API writes it
        iso = text[:-1] + "+00:00" if text[-1:] in "zZ" else text
        dt = datetime.fromisoformat(iso)
    else:
        dt = None
        for fmt in _DATE_FORMATS:
            try:
                dt = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if dt is None:
            iso = text[:-1] + "+00:00" if text[-1:] in "zZ" else text
            dt = datetime.fromisoformat(iso)  # ValueError if not ISO 8601
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=NEW_YORK)
    return dt.astimezone(UTC)

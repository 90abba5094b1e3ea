"""New York local time: the one zone the department's days, tours and printed times are read in,
whatever zone the server runs in."""

from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")

"""QSTAT tables as rows: the CSV downloads, the `board qstat` output and the API share these.

A figure nobody could measure (history rows have no dispatch events) is an empty CSV cell and
"no data" on screen, never a zero.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from board.accountability.qstat import FIGURE_KEYS, FIGURES, RANKED, SHARES, Line, Sheet

# The columns scripts rely on come first; the rest follow in sheet order.
LEADING = ("jobs", "closed", "median_close_min", "p90_close_min", "closed_within_5_min",
           "closed_within_5_min_share")
GROUP_COLUMNS = ("group", *LEADING, *(k for k in FIGURE_KEYS if k not in LEADING))
LABELS = {k: label for k, label, _ in FIGURES}


def cell(name: str, value: Any) -> str:
    """A figure as a CSV cell: shares as fractions to 4 places, minutes to 1."""
    if value is None:
        return ""
    if name in SHARES:
        return f"{value:.4f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def shown(name: str, value: Any) -> str:
    """A figure as people read it."""
    if value is None:
        return "no data"
    if name in SHARES:
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return f"{value:,}"


def change_shown(name: str, value: float | None) -> str:
    if value is None:
        return "no data"
    if name in SHARES:
        return f"{value * 100:+.1f} pts"
    if isinstance(value, float):
        return f"{value:+.1f}"
    return f"{value:+,}"


def text(value: str) -> str:
    """A text cell from the city's data (complaint types) that a spreadsheet must not run as a
    formula: a leading =, +, -, @ or control character is quoted away."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def group_rows(lines: Sequence[Line]) -> list[list[str]]:
    """One row per group for the period: the `board qstat` CSV and the page's group table."""
    return [[text(line.key), *(cell(k, line.now.get(k)) for k in GROUP_COLUMNS[1:])]
            for line in lines]


SHEET_COLUMNS = ("figure", "label", "this_period", "previous_period", "change", "rank",
                 "of_precincts")


def sheet_rows(sheet: Sheet) -> list[list[str]]:
    """The CompStat sheet of the scope: this period, previous, change, rank citywide."""
    t = sheet.total
    ranked = bool(t.rank)
    return [[k, LABELS[k], cell(k, t.now.get(k)), cell(k, t.before.get(k)),
             cell(k, t.change(k)), str(t.rank.get(k, "")) if ranked and k in RANKED else "",
             str(sheet.precincts_ranked) if ranked and k in RANKED else ""]
            for k in FIGURE_KEYS]


def to_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def to_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned plain text for a terminal; empty cells read "no data"."""
    body = [[c if c != "" else "no data" for c in r] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in body]
    return "\n".join(lines) + "\n"

"""311 files as streams of rows: the NYC Open Data CSV export and the Socrata JSON array, one row
in memory at a time, with a clear error naming the line where a file is broken."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from board.intake.rows import EXTRA_CELLS, SHORT_ROW, normalise_header

#: The CSV reader's own limit: far above MAX_CELL (so a long cell is one bad row, not a broken
#: file) and still a bound on memory when a quote never closes.
CSV_FIELD_LIMIT = 16 * 1024 * 1024


def read_csv(path: str | Path) -> Iterator[dict[str, str]]:
    """Rows of a CSV export as dicts keyed by header (BOM tolerated), one at a time.

    Cells beyond the header go under `EXTRA_CELLS`; a line with fewer cells than the header
    names the first column it lacks under `SHORT_ROW` (parse_row rejects both). Blank lines
    are skipped. Raises csv.Error naming the line on broken quoting: a quoted cell that never
    ends (it would swallow the rest of the file) or a stray quote after a closing one.
    """
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        header: list[str] | None = None
        start = 1  # the line the next row starts on (a quoted cell may span lines)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise csv.Error(_quote_problem(exc, start)) from None
            start = reader.line_num + 1
            if not cells:
                continue
            if header is None:
                header = cells
                continue
            row = dict(zip(header, cells, strict=False))
            if len(cells) > len(header):
                row[EXTRA_CELLS] = cells[len(header):]  # type: ignore[assignment]
            elif len(cells) < len(header):
                # name the column that matters most: without Agency it cannot even be sorted
                missing = header[len(cells):]
                row[SHORT_ROW] = next((h for h in missing if normalise_header(h) == "agency"),
                                      missing[0])
            yield row


def _quote_problem(exc: csv.Error, line: int) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return (f"line {line}: a quoted cell starts on this line and never ends "
                "(an unbalanced quote)")
    if "field larger than field limit" in text:
        return (f"line {line}: a cell starting on this line runs past "
                f"{CSV_FIELD_LIMIT // (1024 * 1024)} MiB (an unbalanced quote?)")
    return (f"line {line}: {text}: a quote opened on this line closes in the wrong place (an "
            f"unbalanced quote, or a quote inside a quoted cell not written twice: \"\")")


def read_json(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a Socrata JSON array, or of JSON lines (one object per line), one at a time.

    Raises ValueError (with the line or item number) on malformed JSON or a non-object row:
    that is a broken file, not a bad row.
    """
    with open(path, encoding="utf-8-sig") as fh:
        first = _first_char(fh)
        if first == "[":
            for index, item in enumerate(_array_items(fh, path)):
                if not isinstance(item, dict):
                    raise ValueError(f"{path}: item {index} is not a JSON object")
                yield item
            return
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}: line {lineno}: invalid JSON ({exc})") from None
            if not isinstance(item, dict):
                raise ValueError(f"{path}: line {lineno}: not a JSON object")
            yield item


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


_CHUNK = 1 << 16


def _array_items(fh: Any, path: str | Path) -> Iterator[Any]:
    """The items of a top-level JSON array, decoded one at a time from a growing buffer.

    json.load would hold the whole export (gigabytes for a city-year) in memory; this holds one
    item plus a read chunk. A decode that fails before the end of the file reads more and tries
    again (chunks double, so a huge item costs O(n log n), not O(n^2)).
    """
    decoder = json.JSONDecoder()
    buf, pos, eof = "", 0, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        # read as much again as is still unparsed: a huge item doubles the buffer each time
        chunk = fh.read(max(_CHUNK, len(buf) - pos))
        buf, pos = buf[pos:] + chunk, 0
        eof = not chunk
        return bool(chunk)

    def skip_space() -> str:
        nonlocal pos
        while True:
            pos = _JSON_SPACE.match(buf, pos).end()  # type: ignore[union-attr]
            if pos < len(buf):
                return buf[pos]
            if not fill():
                return ""

    def malformed(what: str) -> ValueError:
        return ValueError(f"{path}: malformed JSON ({what} in item {index})")

    index = 0
    if skip_space() != "[":
        raise ValueError(f"{path}: malformed JSON (no array)")
    pos += 1
    if skip_space() == "]":
        pos += 1
    else:
        while True:
            skip_space()
            while True:
                try:
                    item, end = decoder.raw_decode(buf, pos)
                except json.JSONDecodeError as exc:
                    if eof or not fill():
                        raise malformed(exc.msg) from None
                    continue
                break
            pos = end
            yield item
            index += 1
            after = skip_space()
            pos += 1
            if after == "]":
                break
            if after != ",":
                raise malformed("expected ',' or ']'" if after else "the file ends")
    if skip_space():
        raise ValueError(f"{path}: malformed JSON (extra data after the array)")


def _first_char(fh: Any) -> str:
    """Peek at the first non-whitespace character of a text file, then rewind."""
    while True:
        chunk = fh.read(4096)
        if not chunk:
            fh.seek(0)
            return ""
        stripped = chunk.lstrip("\ufeff \t\r\n")
        if stripped:
            fh.seek(0)
            return stripped[0]


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Dispatch on suffix (.csv / .json / .jsonl / .ndjson), else sniff the first character."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".json", ".jsonl", ".ndjson"):
        return read_json(path)
    with open(path, encoding="utf-8-sig") as fh:
        first = _first_char(fh)
    return read_json(path) if first in ("[", "{") else read_csv(path)

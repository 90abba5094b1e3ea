"""Untrusted 311 text made safe to keep: one stripped line, no control or bidi-override
characters, bounded in length. (Escaping is the templates' job.)"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

MAX_TEXT = 2000


# Bidi embedding / override / isolate characters: can visually disguise text.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value: Any, limit: int = MAX_TEXT) -> str:
    """Untrusted text -> one stripped line without control characters, at most `limit` chars.

    Tabs and line breaks become spaces; other control (Cc), surrogate (Cs) and bidi-override
    characters are dropped. Internal runs of spaces are kept (311 addresses contain them).
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        value = _scalar_text(value)
    if value.isprintable():  # the common case: no control, format, separator or bidi character
        return value.strip()[:limit].rstrip()
    out = []
    for ch in value:
        if ch in "\t\r\n\v\f\x85\u2028\u2029":
            out.append(" ")
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
            continue
        else:
            out.append(ch)
    return "".join(out).strip()[:limit].rstrip()


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    # Socrata objects (location, url columns): keep them as compact JSON in `fields`.
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)

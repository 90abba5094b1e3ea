"""What counts as text in a field a person fills in: one rule, used by the input layer's
patterns (board.web.validation, and so the OpenAPI document) and by the use cases' last
clean-up (board.usecases.core._text), so a value the document calls valid is never emptied
into a refusal afterwards (audit defect 11: a hold reason of unassigned-plane characters).

Not text: control characters (Cc), invisible formatting characters (Cf: bidi overrides, zero
widths, the BOM; but the joiners U+200C/U+200D and the tags of flag emoji, which scripts and
emoji need), and line and paragraph separators (Zl, Zp). Everything else is text and kept as
sent: spaces (Zs), private-use characters, and code points not assigned yet (in a plane of
their own or not: they may be assigned tomorrow). Lone surrogates are refused apart by the
input layer (no JSON Schema dialect can name them) and stripped here.

The rule is kept to what every regex dialect reads quickly: a class of a few hundred code
points. (Refusing whole unassigned planes put 900,000 code points in it, which schema-driven
clients and fuzzers expand one by one.)
"""

from __future__ import annotations

import re
import unicodedata

_NOT_TEXT = ("Cc", "Cf", "Zl", "Zp")
_FORMATTING_KEPT = frozenset([0x200C, 0x200D, *range(0xE0020, 0xE0080)])
#: where those categories are: planes 0 and 1, and plane 14's start
_LOOKED_AT = (range(0x20000), range(0xE0000, 0xE1000))


def _escape(cp: int) -> str:
    """A code point in a pattern: \\uXXXX in the BMP (every regex dialect reads it), the
    character itself above it (one code point to Python, ECMA-262 with u, and Rust)."""
    return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)


#: the code points that are not text (computed once at import)
_FOUND = tuple(cp for span in _LOOKED_AT for cp in span
               if not 0xD800 <= cp <= 0xDFFF and cp not in _FORMATTING_KEPT
               and unicodedata.category(chr(cp)) in _NOT_TEXT)


def _ranges(skip: str) -> list[tuple[int, int]]:
    """(first, last) of every run of code points that are not text (but `skip`), in order."""
    runs: list[tuple[int, int]] = []
    for cp in _FOUND:
        if chr(cp) in skip:
            continue
        if runs and cp == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], cp)
        else:
            runs.append((cp, cp))
    return runs


def _class(skip: str = "") -> str:
    """The regex character-class body of every code point that is not text (but `skip`)."""
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}"
                   for a, b in _ranges(skip))


#: not text in a one-line field / in a multi-line one (which keeps tab and line breaks)
NOT_TEXT = _class()
NOT_TEXT_MULTILINE = _class("\t\n\r")
_STRIP = re.compile(f"[{_class(chr(9) + chr(10))}\\ud800-\\udfff]")  # and lone surrogates


def plain(value: str) -> str:
    """`value` without what is not text (tab and newline kept), stripped of spaces at the ends."""
    if not value.isprintable():  # the common case skips the per-character filter
        value = _STRIP.sub("", value)
    return value.strip()

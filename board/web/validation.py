"""One validation layer for what clients send: JSON bodies, HTML forms, Open311 forms, paths.

Every input is a pydantic model built from the field types below. The same model checks a
request and, through pydantic's JSON Schema, is that request's part of the OpenAPI document,
so the document and the server agree by construction:

* integers are JSON Schema integers: ``2`` and ``2.0`` are integers, ``"2"`` and ``true`` are
  not, and every one fits a 32-bit INTEGER column;
* an optional field may be sent as ``null`` (documented as nullable) and means "not given";
* text has no control characters nor others that are not text (board.domain.text: a newline
  only where the field is multi-line, like a note) and a required text field is not blank.

A form sends text only, so ``read_form`` reads numbers from their digits and an empty field
as "not given"; otherwise it is the same model and the same messages. Every refusal is
``board.usecases.Invalid`` with one message per field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Mapping
from functools import lru_cache
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from board.domain.text import NOT_TEXT, NOT_TEXT_MULTILINE
from board.usecases import Invalid

INT_MAX = 2**31 - 1  # every integer column is a 32-bit INTEGER on PostgreSQL
FORM = "form"  # the validation context of a form: values arrive as text
CODE = r"[0-9A-Za-z]{1,8}"  # a precinct or sector id

# Characters a query string does not take: C0 and C1 controls, DEL, line and paragraph
# separators (tab and line breaks are text there).
_CONTROL = r"\u0000-\u001f\u007f-\u009f\u2028\u2029"
_CONTROL_MULTILINE = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
# What no text field takes: board.domain.text's rule (controls, invisible formatting
# characters, line and paragraph separators; private-use and unassigned code points are text),
# the rule the use cases clean with, so a value these patterns take is never emptied into a
# refusal there. A multi-line field takes tab and line breaks.
LINE = f"^[^{NOT_TEXT}]*$"
LINES = f"^[^{NOT_TEXT_MULTILINE}]*$"
NONBLANK_LINE = f"^[^{NOT_TEXT}]*[^\\s{NOT_TEXT}][^{NOT_TEXT}]*$"
NONBLANK_LINES = f"^[^{NOT_TEXT_MULTILINE}]*[^\\s{NOT_TEXT_MULTILINE}][^{NOT_TEXT_MULTILINE}]*$"

M = TypeVar("M", bound=BaseModel)
_CONTROL_IN_LINE = re.compile(f"[{_CONTROL}]")
_CONTROL_IN_LINES = re.compile(f"[{_CONTROL_MULTILINE}]")


class Input(BaseModel):
    """A request's fields: unknown ones are refused, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re", frozen=True)


# -- field types ------------------------------------------------------------------------------


def _from_form(info: ValidationInfo) -> bool:
    return info.context == FORM


def _integer(value: Any, info: ValidationInfo) -> Any:
    """JSON Schema's integer: 2.0 is one; a form's digits are one; the rest is left to Strict."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _from_form(info):
        text = value.strip()
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 10):
            raise PydanticCustomError("whole_number", "must be a whole number")
        return int(text)
    return value


def _number(value: Any, info: ValidationInfo) -> Any:
    """A number; a form's text read as one (NaN and infinities fail the range check)."""
    if isinstance(value, str) and _from_form(info):
        try:
            value = float(value.strip())
        except ValueError:
            raise PydanticCustomError("number", "must be a number") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value) if abs(value) <= 2**53 else math.inf  # out of every range below
    return value


def _unicode(value: Any) -> Any:
    """Text that cannot be stored (a lone surrogate from a JSON escape) is refused here."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError("unicode", "must be valid Unicode text") from None
    return value


def _one_line(value: str) -> str:
    # A pattern's `$` also matches before one final newline (as JSON Schema tools in Python
    # read it); such a value is taken, without the newline.
    return value[:-1] if value.endswith("\n") else value


def _within(low: float, high: float) -> AfterValidator:
    """The range check, with both ends in the message (NaN and infinities are outside)."""
    def check(value: Any) -> Any:
        if not low <= value <= high:
            raise PydanticCustomError("range", "must be between {low} and {high}",
                                      {"low": f"{low:g}", "high": f"{high:g}"})
        return value
    return AfterValidator(check)


def Integer(minimum: int = -INT_MAX - 1, maximum: int = INT_MAX, doc: str = "") -> Any:  # noqa: N802
    """An integer within [minimum, maximum] (and always within a 32-bit column)."""
    low, high = max(minimum, -INT_MAX - 1), min(maximum, INT_MAX)
    return Annotated[int, Field(json_schema_extra={"minimum": low, "maximum": high},
                                description=doc or None), Strict(), BeforeValidator(_integer),
                     _within(low, high)]


def Number(minimum: float, maximum: float, doc: str = "") -> Any:  # noqa: N802
    """A finite number within [minimum, maximum]."""
    return Annotated[float, Field(json_schema_extra={"minimum": minimum, "maximum": maximum},
                                  description=doc or None), Strict(), BeforeValidator(_number),
                     _within(minimum, maximum)]


#: pattern → what a value that does not match it is told
PATTERN_MESSAGES: dict[str, str] = {}


def Text(max_length: int, doc: str = "", *, required: bool = False,  # noqa: N802
         multiline: bool = False, pattern: str | None = None, says: str = "") -> Any:
    """Text of at most max_length characters; required text is not blank. A pattern of its
    own replaces the control-character rule (and says what is wrong in `says`)."""
    if pattern is None:
        if required:
            pattern = NONBLANK_LINES if multiline else NONBLANK_LINE
        else:
            pattern = LINES if multiline else LINE
    if says:
        PATTERN_MESSAGES[pattern] = says
    after = [] if multiline else [AfterValidator(_one_line)]
    return Annotated[str, Field(max_length=max_length, min_length=1 if required else 0,
                                pattern=pattern, description=doc or None), Strict(),
                     BeforeValidator(_unicode), *after]


_YES = frozenset({"true", "yes", "1", "on", "y"})
_NO = frozenset({"false", "no", "0", "off", "n"})


def _yes_no(value: Any, info: ValidationInfo) -> Any:
    """A form's yes/no (true/false, 1/0, on/off) as a bool; JSON sends a real boolean."""
    if _from_form(info) and isinstance(value, str):
        word = value.strip().casefold()
        if word in _YES:
            return True
        if word in _NO:
            return False
        raise PydanticCustomError("yes_no", "must be yes or no")
    return value


def YesNo(doc: str = "") -> Any:  # noqa: N802
    """A yes/no answer: a JSON boolean, or in a form yes/no, true/false, 1/0, on/off."""
    return Annotated[bool, Field(description=doc or None), Strict(),
                     BeforeValidator(_yes_no)]


def Code(doc: str = "", *, also: tuple[str, ...] = ()) -> Any:  # noqa: N802
    """A precinct or sector id: letters and digits, at most 8 (or one of the words `also`,
    such as "*" for citywide)."""
    pattern = f"^({'|'.join(map(re.escape, also))}|{CODE})$" if also else f"^{CODE}$"
    return Annotated[str, Field(pattern=pattern, description=doc or None), Strict(),
                     AfterValidator(_one_line)]


PATTERN_MESSAGES.update({
    f"^{CODE}$": "is not a valid code (letters and digits, at most 8)",
    LINE: "must not contain control or other characters that are not text",
    LINES: "must not contain control or other characters that are not text",
    NONBLANK_LINE: "must not be blank or contain control or other characters that are not text",
    NONBLANK_LINES: "must not be blank or contain control or other characters that are not "
                    "text",
})


# -- reading ----------------------------------------------------------------------------------

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "string_too_long":
        return f"is longer than {ctx['max_length']} characters"
    if kind == "string_too_short":
        return "is required"
    if kind == "string_pattern_mismatch":
        return PATTERN_MESSAGES.get(ctx.get("pattern", ""), "is not in the expected form")
    if kind in ("literal_error", "enum"):
        return f"must be one of: {ctx.get('expected', '')}".replace("'", "")
    return str(error["msg"])


def errors_of(exc: ValidationError) -> dict[str, str]:
    """field name → what is wrong with it; the first problem of each field."""
    out: dict[str, str] = {}
    for error in exc.errors():
        loc = error["loc"]
        name = str(loc[0])[:60] if loc else "body"
        out.setdefault(name, _message(error))
    return out


def check(model: type[M], data: Any, *, context: str | None = None) -> M:
    """data as the model, or Invalid naming every bad field."""
    if not isinstance(data, Mapping):
        raise Invalid({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    for group in getattr(model, "together", ()):
        given = [name for name in group if data.get(name) is not None]
        if given and len(given) < len(group):
            errors.update({name: f"goes with {' and '.join(given)}: give both or neither"
                           for name in group if name not in given})
    try:
        value = model.model_validate(dict(data), context=context)
    except ValidationError as e:
        raise Invalid({**errors_of(e), **errors}) from None
    if errors:
        raise Invalid(errors)
    return value


def parse_json(raw: bytes) -> Any:
    """Strict JSON (no NaN or Infinity); an empty body is an empty object."""
    if not raw.strip():
        return {}

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw, parse_constant=no_constants)
    except RecursionError:
        raise Invalid({"body": "is nested too deeply"}) from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Invalid({"body": f"is not valid JSON ({str(e)[:120]})"}) from None


class _TooBig(ValueError):
    pass


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _depth(text: str) -> int:
    """How deep a JSON text nests, counted before parsing (strings left out)."""
    deepest = depth = 0
    for ch in _JSON_STRING.sub("", text):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _short_number(limit: int, read: Any) -> Any:
    def parse(literal: str) -> Any:
        if len(literal) > limit:
            raise _TooBig(f"has a number longer than {limit} characters")
        value = read(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise _TooBig("has a number out of range")
        return value
    return parse


def bounded_json(text: str, name: str, *, max_chars: int = 64 * 1024, max_depth: int = 4,
                 max_number: int = 40) -> Any:
    """JSON typed by a person (an admin's edit of a quarantined row): bounded in size, nesting
    and the length of each number before and while it is parsed, so a hostile text is a 422
    naming the field, never a parser's recursion, a 5,000-digit integer or an infinity that
    the database would choke on later."""
    if len(text) > max_chars:
        raise Invalid({name: f"is longer than {max_chars // 1024} KB"})
    if _depth(text) > max_depth:
        raise Invalid({name: f"nests deeper than {max_depth} levels"})

    def no_constants(constant: str) -> Any:
        raise _TooBig(f"has {constant}, which is not JSON")

    try:
        return json.loads(text, parse_int=_short_number(max_number, int),
                          parse_float=_short_number(max_number, float),
                          parse_constant=no_constants)
    except _TooBig as e:
        raise Invalid({name: str(e)}) from None
    except RecursionError:  # the count above makes this unreachable; kept as a guard
        raise Invalid({name: "nests too deeply"}) from None
    except ValueError as e:  # JSONDecodeError is one
        raise Invalid({name: f"is not valid JSON ({str(e)[:120]})"}) from None


def read_json(model: type[M], raw: bytes) -> M:
    """A JSON request body as the model."""
    return check(model, parse_json(raw))


def read_form(model: type[M], form: Mapping[str, Any]) -> M:
    """A form's fields as the model. Fields the model does not have (the CSRF token, where
    to go next) are the page's business, not refused; an empty field is not given; a file
    where text belongs is refused."""
    data: dict[str, Any] = {}
    for name in model.model_fields:
        value = form.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise Invalid({name: "must be text, not a file"})
        data[name] = value
    return check(model, data, context=FORM)


@lru_cache(maxsize=64)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def form_value(kind: Any, value: Any, name: str) -> Any:
    """One form field read as one of the types above (for a page posting a single value)."""
    try:
        return _adapter(kind).validate_python(value, context=FORM)
    except ValidationError as e:
        raise Invalid({name: _message(e.errors()[0])}) from None


def path_id(value: str) -> int | None:
    """A path segment naming a row by id (1 … INT_MAX), or None when it cannot name one."""
    if value.isascii() and value.isdigit() and len(value) <= 10 and 0 < int(value) <= INT_MAX:
        return int(value)
    return None


def path_code(value: str) -> str | None:
    """A path segment naming a precinct, or None when it cannot name one."""
    return value if re.fullmatch(CODE, value) else None


# -- the edge: paths, query strings, a form's free text ----------------------------------------


def has_control(value: str, *, multiline: bool = False) -> bool:
    """True when text holds a character no text field takes (NUL above all: PostgreSQL
    cannot store it, and a query that binds it fails in the driver)."""
    return bool((_CONTROL_IN_LINES if multiline else _CONTROL_IN_LINE).search(value))


def query_problem(scope: Scope) -> str | None:
    """What is wrong with a request's query string, or None. Query values are text a user
    typed in a search box or a link the app built: a tab or a line break is text, any other
    control character is not. (A path is read by path_id / path_code: one with a control
    character names nothing, a 404.)"""
    raw = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if has_control(name) or has_control(value, multiline=True):
            return f"query parameter {name[:40]!r} contains a control character"
    return None


class RefuseControlCharacters:
    """Every HTTP request's query string, checked before any handler reads it:
    a 400 in the form of the surface that was asked (JSON, Open311, the app's page)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine when it passes one on: no frame of this kept for a socket's hours.
        problem = query_problem(scope) if scope["type"] == "http" else None
        if problem is None:
            return self.app(scope, receive, send)
        from board.web.errors import error_response

        return error_response(Request(scope, receive), 400, problem)(scope, receive, send)

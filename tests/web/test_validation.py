"""board.web.validation, the one reader of client input: JSON Schema's integers, nullable optional
fields, text without control characters, forms read by the same models (microseconds, no I/O)."""

from __future__ import annotations

import re

import pytest

from board.usecases import Invalid
from board.web import inputs
from board.web.validation import (
    INT_MAX,
    LINE,
    LINES,
    NONBLANK_LINE,
    NONBLANK_LINES,
    Integer,
    check,
    form_value,
    read_form,
    read_json,
)


def refused(model, data, form: bool = False) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(Invalid) as e:
        read_form(model, data) if form else check(model, data)
    return e.value.errors


@pytest.mark.parametrize("value", [1, 2.0, INT_MAX, float(INT_MAX)])
def test_integers_as_json_schema_says(value) -> None:  # type: ignore[no-untyped-def]
    assert check(inputs.Versioned, {"version": value}).version == int(value)


@pytest.mark.parametrize("value", ["2", True, 2.5, 0, INT_MAX + 1, 1e308, [], None])
def test_not_integers_or_out_of_range(value) -> None:  # type: ignore[no-untyped-def]
    assert "version" in refused(inputs.Versioned, {"version": value})


def test_ranges_name_both_ends_and_nan_is_outside() -> None:
    assert refused(inputs.Position, {"lat": 95, "lon": 0})["lat"] == "must be between -90 and 90"
    assert "between" in refused(inputs.Position, {"lat": "nan", "lon": "0"}, form=True)["lat"]


def test_an_optional_null_is_not_given_and_a_pair_goes_together() -> None:
    assert check(inputs.Assign, {"version": 1, "unit_id": 2, "position": None}).position is None
    assert refused(inputs.NewJob, {"complaint_type": "x", "lat": 40.6, "lon": None}) == {
        "lon": "goes with lat: give both or neither"}


@pytest.mark.parametrize(("pattern", "good", "bad"), [
    (LINE, ["", "Noise - Residential", "ÄÖ 東京 🚓", "a\u00a0b", "👨\u200d👩", "\u0378",
            "\U00040000", "\ue000"],
     ["a\tb", "a\nb", "\x00", "\x85", "\u2028", "\u202e", "\u200b", "\ufeff", "\U000e0001"]),
    (LINES, ["", "line one\nline two\r\n\ttabbed"], ["\x00", "\x07", "\x1b[31m"]),
    (NONBLANK_LINE, ["x", " x "], ["", "   ", "\x01", "a\x01", "\u00a0", "\u200b "]),
    (NONBLANK_LINES, ["x", "a\nb"], ["", " \n\t", "\x01", "\x01\n"]),
])
def test_text_patterns(pattern, good, bad) -> None:  # type: ignore[no-untyped-def]
    assert all(re.search(pattern, v) for v in good), pattern
    assert not any(re.search(pattern, v) for v in bad), pattern


def test_text_refusals_name_the_field() -> None:
    assert refused(inputs.AddNote, {"text": "\x01"}) == {
        "text": "must not be blank or contain control or other characters that are not text"}
    assert refused(inputs.AddNote, {"text": "x" * 2001}) == {
        "text": "is longer than 2000 characters"}
    assert "is not a field" in refused(inputs.AddNote, {"text": "x", "colour": 1})["colour"]
    assert refused(inputs.Route, {"version": 1, "precinct": "75;--"})["precinct"].startswith(
        "is not a valid code")


def test_a_form_is_read_by_the_same_model() -> None:
    form = {"version": " 3 ", "unit_id": "7", "position": "", "csrf": "token", "next": "/x"}
    assert read_form(inputs.Assign, form) == inputs.Assign(version=3, unit_id=7)
    assert refused(inputs.Assign, {"version": "3.5", "unit_id": "x"}, form=True) == {
        "version": "must be a whole number", "unit_id": "must be a whole number"}
    assert form_value(Integer(1, 4), "2", "priority") == 2
    with pytest.raises(Invalid):
        form_value(Integer(1, 4), "5", "priority")


def test_json_bodies() -> None:
    assert read_json(inputs.AddNote, b'{"text": "hi"}').text == "hi"
    assert refused(inputs.AddNote, []) == {"body": "must be a JSON object"}
    with pytest.raises(Invalid) as e:
        read_json(inputs.AddNote, b'{"text": NaN}')
    assert "body" in e.value.errors
    with pytest.raises(Invalid) as e:
        read_json(inputs.AddNote, b'{"text": "\\ud800"}')
    assert e.value.errors == {"text": "must be valid Unicode text"}

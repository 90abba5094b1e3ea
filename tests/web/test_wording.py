"""Refusals on pages name fields by their labels, never by internal names."""

from __future__ import annotations

from board.usecases import Invalid
from board.web.wording import FIELD_LABELS, label, refusal


def test_a_refusal_reads_with_labels() -> None:
    e = Invalid({"summons_count": "must be at least 1", "unit_id": "75-B is off duty"})
    assert refusal(e) == "Summons count: must be at least 1; Unit: 75-B is off duty"
    assert "summons_count" in str(e)  # the API keeps the field's name for its clients


def test_an_unlisted_field_reads_as_words_and_other_errors_as_they_are() -> None:
    assert label("arrive_minutes") == "Arrive minutes"
    assert refusal(ValueError("no such job")) == "no such job"
    assert all(v[:1].isupper() and "_" not in v for v in FIELD_LABELS.values())


def test_the_app_user_and_unit_status_words() -> None:
    from board.web.app import _unit_status

    assert _unit_status("out_of_service", "meal") == "on meal"
    assert _unit_status("out_of_service", "vehicle") == "out of service: vehicle"
    assert _unit_status("en_route", None) == "en route"

"""Dispositions: 311's own resolution texts, and which close each one fits."""

from __future__ import annotations

import csv
from functools import cache

import pytest

from board.domain.dispositions import (
    ADMINISTRATIVE,
    BY_CODE,
    BY_RESOLUTION,
    DISPOSITIONS,
    FIELD,
    Disposition,
    DispositionError,
    check_close,
)
from board.settings import DEMO_HOUR as HOUR_CSV

# Administrative closes the department needs but whose text the sample hour does not contain.
NOT_IN_SAMPLE = {"duplicate", "insufficient_information"}


@cache
def published_resolutions() -> frozenset[str]:
    with HOUR_CSV.open(encoding="utf-8", newline="") as f:
        return frozenset(
            row["Resolution Description"] for row in csv.DictReader(f)
            if row["Agency"] == "NYPD" and row["Resolution Description"]
        )


@pytest.mark.parametrize(
    "d", [d for d in DISPOSITIONS if d.code not in NOT_IN_SAMPLE], ids=lambda d: d.code)
def test_resolution_text_is_exactly_what_311_publishes(d: Disposition) -> None:
    assert d.resolution in published_resolutions()


def test_every_closing_text_in_the_sample_has_a_disposition() -> None:
    # the one NYPD text without a disposition is the "still open" status, not an outcome
    missing = published_resolutions() - {d.resolution for d in DISPOSITIONS}
    assert missing == {
        "Your complaint has been received by the Police Department and additional information "
        "will be available later."
    }


def test_codes_labels_and_texts_are_unique() -> None:
    codes = [d.code for d in DISPOSITIONS]
    assert len(codes) == len(set(codes))
    assert len({d.label for d in DISPOSITIONS}) == len(DISPOSITIONS)
    assert len({d.resolution for d in DISPOSITIONS}) == len(DISPOSITIONS)
    assert set(BY_CODE) == set(codes)
    assert all(BY_RESOLUTION[d.resolution] is d for d in DISPOSITIONS)


def test_field_and_administrative_split() -> None:
    assert {d.code for d in ADMINISTRATIVE} == {
        "not_police_jurisdiction", "duplicate", "insufficient_information"}
    assert {d.code for d in FIELD} == {
        "action_taken", "summons_issued", "no_evidence", "gone_on_arrival",
        "unable_to_gain_entry", "action_not_necessary", "no_encampment", "additional_info"}
    assert [d.code for d in DISPOSITIONS if d.summons] == ["summons_issued"]
    # administrative closes never expect an arrival; "information provided" does not either
    assert all(not d.arrival_expected for d in ADMINISTRATIVE)
    assert [d.code for d in FIELD if not d.arrival_expected] == ["additional_info"]


# -- check_close ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 17])
def test_summons_needs_a_count_of_one_or_more(count: int) -> None:
    d = check_close("summons_issued", count, administrative=False)
    assert d is BY_CODE["summons_issued"]


@pytest.mark.parametrize("count", [None, 0, -1])
def test_summons_without_a_count_is_refused(count: int | None) -> None:
    with pytest.raises(DispositionError, match="number of summonses"):
        check_close("summons_issued", count, administrative=False)


@pytest.mark.parametrize("d", [d for d in FIELD if not d.summons], ids=lambda d: d.code)
def test_non_summons_field_dispositions(d: Disposition) -> None:
    assert check_close(d.code, None, administrative=False) is d
    assert check_close(d.code, 0, administrative=False) is d  # zero summonses is no summons
    with pytest.raises(DispositionError, match="records no summonses"):
        check_close(d.code, 1, administrative=False)
    with pytest.raises(DispositionError, match="records no summonses"):
        check_close(d.code, -2, administrative=False)


@pytest.mark.parametrize("d", ADMINISTRATIVE, ids=lambda d: d.code)
def test_administrative_dispositions(d: Disposition) -> None:
    assert check_close(d.code, None, administrative=True) is d
    with pytest.raises(DispositionError, match="is an administrative disposition"):
        check_close(d.code, None, administrative=False)


@pytest.mark.parametrize("d", FIELD, ids=lambda d: d.code)
def test_field_disposition_refused_for_an_administrative_close(d: Disposition) -> None:
    with pytest.raises(DispositionError) as caught:
        check_close(d.code, 1 if d.summons else None, administrative=True)
    assert str(caught.value) == f"{d.label!r} is a field disposition"


@pytest.mark.parametrize("code", ["", "closed", "ACTION_TAKEN", "Action taken", "summons"])
def test_unknown_code_is_refused(code: str) -> None:
    for administrative in (False, True):
        with pytest.raises(DispositionError, match="unknown disposition"):
            check_close(code, None, administrative=administrative)


def test_disposition_error_is_a_value_error() -> None:
    assert issubclass(DispositionError, ValueError)

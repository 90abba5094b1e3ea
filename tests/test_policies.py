"""Close policies as pure rules: which apply where, and what they refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from board.flags import Progress
from board.policies import (
    NOTE_QUICK_CLOSE,
    NOTE_WITHOUT_ARRIVAL,
    PHOTO_BEFORE_CLOSE,
    Policy,
    PolicyError,
    check,
    in_effect,
    refusals,
)

T = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def test_a_precinct_setting_overrides_the_citywide_one() -> None:
    rows = [Policy(PHOTO_BEFORE_CLOSE, True), Policy(NOTE_WITHOUT_ARRIVAL, True),
            Policy(PHOTO_BEFORE_CLOSE, False, scope="75"),
            Policy(NOTE_QUICK_CLOSE, True, 10, scope="75")]
    assert [p.kind for p in in_effect(rows, "75")] == [NOTE_WITHOUT_ARRIVAL, NOTE_QUICK_CLOSE]
    assert [p.kind for p in in_effect(rows, "120")] == [PHOTO_BEFORE_CLOSE,
                                                         NOTE_WITHOUT_ARRIVAL]
    assert in_effect([], "75") == []


def test_each_policy_refuses_its_case_and_only_that() -> None:
    fresh = Progress(assigned_at=T, arrived=False, viewed=False)
    worked = Progress(assigned_at=T - timedelta(hours=1), arrived=True, viewed=True)
    photo = [Policy(PHOTO_BEFORE_CLOSE, True)]
    assert refusals(photo, fresh, T, arrival_expected=True, has_photos=True, note="x")
    assert not refusals(photo, fresh, T, arrival_expected=True, has_photos=False, note="")
    assert not refusals(photo, worked, T, arrival_expected=True, has_photos=True, note="")
    arrive = [Policy(NOTE_WITHOUT_ARRIVAL, True)]
    assert refusals(arrive, fresh, T, arrival_expected=True, has_photos=False, note="")
    assert not refusals(arrive, fresh, T, arrival_expected=True, has_photos=False, note="why")
    assert not refusals(arrive, fresh, T, arrival_expected=False, has_photos=False, note="")
    quick = [Policy(NOTE_QUICK_CLOSE, True, 10)]
    assert refusals(quick, fresh, T + timedelta(minutes=9), arrival_expected=True,
                    has_photos=False, note="")
    assert not refusals(quick, fresh, T + timedelta(minutes=11), arrival_expected=True,
                        has_photos=False, note="")
    assert not refusals(quick, fresh, T, arrival_expected=True, has_photos=False, note="ok")


def test_settings_are_checked() -> None:
    assert check(NOTE_QUICK_CLOSE, True, 10, "75").text == (
        "Closing within 10 minutes of assignment needs a note")
    assert check(PHOTO_BEFORE_CLOSE, True, 99, "*").minutes is None
    with pytest.raises(PolicyError):
        check(NOTE_QUICK_CLOSE, True, None, "*")
    with pytest.raises(PolicyError):
        check(NOTE_QUICK_CLOSE, True, 0, "*")
    with pytest.raises(PolicyError):
        check("no_lunch", True, None, "*")

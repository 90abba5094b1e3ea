"""Proof of presence: distances, what an event records, and the job page's words."""

from __future__ import annotations

import pytest

from board.domain.presence import (
    DEFAULT_WITHIN_M,
    Fix,
    distance_m,
    length,
    record,
    refusal,
    sentence,
)

# The 75th Precinct station house, 1000 Sutter Ave, Brooklyn, and points near it.
JOB = (40.6706, -73.8806)


def north(metres: float) -> tuple[float, float]:
    """A point `metres` due north of the job (one degree of latitude is about 111.2 km)."""
    return JOB[0] + metres / 111_195, JOB[1]


def test_haversine_distances() -> None:
    assert distance_m(*JOB, *JOB) == 0
    assert distance_m(*JOB, *north(35)) == pytest.approx(35, abs=0.5)
    # JFK to LaGuardia, about 17.1 km apart
    assert distance_m(40.6413, -73.7781, 40.7769, -73.8740) == pytest.approx(17_100, rel=0.01)
    assert distance_m(0, 0, 0, 180) == pytest.approx(20_015_000, rel=0.001)  # half the globe


def test_a_position_near_the_job_confirms_the_arrival() -> None:
    got = record(Fix(*north(35), 10), *JOB, None)
    assert got["distance_m"] == 35 and got["accuracy_m"] == 10
    assert got["confirmed"] is True and got["within_m"] == DEFAULT_WITHIN_M
    assert sentence("on_scene", got) == "on scene confirmed 35 m away (±10 m)"


def test_a_far_position_is_recorded_unconfirmed() -> None:
    got = record(Fix(*north(2400)), *JOB, None)
    assert got["confirmed"] is False and got["distance_m"] == 2400
    assert sentence("on_scene", got) == "on scene 2.4 km away"
    assert "2.4 km away" in refusal(got, "on scene")


def test_the_policy_distance_decides() -> None:
    assert record(Fix(*north(150)), *JOB, 100)["confirmed"] is False
    assert record(Fix(*north(150)), *JOB, 300)["confirmed"] is True
    assert record(Fix(*north(150)), *JOB, 300)["within_m"] == 300


def test_a_coarse_fix_does_not_confirm() -> None:
    got = record(Fix(*north(20), 900), *JOB, None)
    assert got["confirmed"] is False
    assert sentence("on_scene", got) == "on scene 20 m away (±900 m): too coarse to confirm"


def test_no_position() -> None:
    got = record(None, *JOB, None)
    assert got == {"confirmed": False, "within_m": DEFAULT_WITHIN_M}
    assert sentence("on_scene", got) == "on scene, no position given"
    assert "allow this phone" in refusal(got, "on scene")
    # the department does not ask: nothing is recorded, nothing flagged
    assert record(None, *JOB, None, asked=False) == {}
    assert sentence("on_scene", {}) is None


def test_a_job_without_a_location_cannot_be_measured() -> None:
    got = record(Fix(40.7, -73.9, 5), None, None, None)
    assert got["distance_m"] is None and got["confirmed"] is None
    assert refusal(got, "on scene") is None
    assert "no location" in sentence("on_scene", got)


def test_closing_words_and_lengths() -> None:
    assert sentence("close", record(Fix(*north(12), 4), *JOB, None)) == \
        "closed confirmed 12 m away (±4 m)"
    assert [length(m) for m in (0, 999.4, 1000, 2449, 12_345)] == \
        ["0 m", "999 m", "1.0 km", "2.4 km", "12 km"]


def test_the_position_and_photo_policies() -> None:
    from datetime import UTC, datetime

    from board.domain.flags import Progress
    from board.domain.policies import (
        EVIDENCE_PHOTO,
        POSITION_ON_SCENE,
        PolicyError,
        arrival_refusal,
        check,
        refusals,
        within_m,
    )

    at = datetime(2026, 11, 28, 22, tzinfo=UTC)
    near = check(POSITION_ON_SCENE, True, None, "75", metres=100)
    assert near.text == "On scene needs a position within 100 m of the job"
    assert within_m([near]) == 100 and within_m([]) is None
    far = record(Fix(*north(150)), *JOB, 100)
    assert "said 150 m away" in arrival_refusal([near], far)
    assert arrival_refusal([], far) is None
    assert arrival_refusal([near], record(Fix(*north(20)), *JOB, 100)) is None
    # closing: a confirmed arrival is enough; else the close's own position must confirm
    arrived = Progress(assigned_at=at, arrived=True, presence=True)
    unconfirmed = Progress(assigned_at=at, arrived=True, presence=False)
    kw = {"arrival_expected": True, "has_photos": False, "note": ""}
    assert not refusals([near], arrived, at, position={}, **kw)
    assert refusals([near], unconfirmed, at, position=record(None, *JOB, 100), **kw)
    assert not refusals([near], unconfirmed, at, position=record(Fix(*JOB), *JOB, 100), **kw)
    assert not refusals([near], unconfirmed, at, position={},
                        **{**kw, "arrival_expected": False})
    photo = check(EVIDENCE_PHOTO, True, None, "*", dispositions=["summons_issued"])
    assert refusals([photo], arrived, at, disposition="summons_issued", evidence=0, **kw)
    assert not refusals([photo], arrived, at, disposition="summons_issued", evidence=1, **kw)
    assert not refusals([photo], arrived, at, disposition="action_taken", evidence=0, **kw)
    for bad in ({"metres": None}, {"metres": 5}, {"metres": 5001}):
        with pytest.raises(PolicyError):
            check(POSITION_ON_SCENE, True, None, "*", **bad)
    for codes in ([], ["duplicate"], ["nonsense"]):
        with pytest.raises(PolicyError):
            check(EVIDENCE_PHOTO, True, None, "*", dispositions=codes)

"""Accountability flags computed from a job's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from board.domain.flags import FLAG_LABELS, QUICK_CLOSE, Fact, flags, progress
from board.domain.jobfacts import fold

T0 = datetime(2022, 5, 1, 0, 0, tzinfo=UTC)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def ev(kind: str, minute: float, **payload: Any) -> Fact:
    return Fact(kind, at(minute), payload)


def worked(close_minute: float, **close_payload: Any) -> list[Fact]:
    """Assigned at 0, acknowledged, en route, on scene, closed at `close_minute`."""
    return [
        ev("assign", 0, unit="75A"),
        ev("acknowledge", 0.5),
        ev("en_route", 1),
        ev("on_scene", 2),
        ev("close", close_minute, disposition="action_taken", **close_payload),
    ]


def test_labels_cover_every_flag() -> None:
    assert set(FLAG_LABELS) == {"quick_close", "no_arrival", "photos_unviewed", "reopened",
                                "overdue", "administrative", "caller_disputed", "unconfirmed"}
    assert timedelta(minutes=5) == QUICK_CLOSE


def test_no_events_no_flags() -> None:
    assert flags([], has_photos=False) == set()
    assert flags([], has_photos=True) == set()


def test_an_open_job_has_no_close_flags() -> None:
    events = [ev("assign", 0), ev("acknowledge", 1)]
    assert flags(events, has_photos=True) == set()


# -- quick close ------------------------------------------------------------------------------


def test_close_four_minutes_after_assign_is_quick() -> None:
    assert flags(worked(4), has_photos=False) == {"quick_close"}


def test_close_six_minutes_after_assign_is_not_quick() -> None:
    assert flags(worked(6), has_photos=False) == set()


def test_quick_close_boundary_is_inclusive() -> None:
    assert flags(worked(5), has_photos=False) == {"quick_close"}
    events = worked(5)
    events[-1] = Fact("close", at(5) + timedelta(microseconds=1), {})
    assert flags(events, has_photos=False) == set()


def test_reassign_keeps_the_original_assign_time() -> None:
    events = [
        ev("assign", 0),
        ev("reassign", 3, unit="75B"),
        ev("on_scene", 4),
        ev("close", 7),  # 4 min after the reassign, 7 after the assign
    ]
    assert flags(events, has_photos=False) == set()
    events[-1] = ev("close", 4.5)
    assert flags(events, has_photos=False) == {"quick_close"}


def test_reassign_without_a_seen_assign_starts_the_clock() -> None:
    events = [ev("reassign", 10), ev("on_scene", 11), ev("close", 13)]
    assert flags(events, has_photos=False) == {"quick_close"}


def test_unassign_then_assign_again_restarts_the_clock() -> None:
    # What the code does: "unassign" is ignored and the next "assign" overwrites the time,
    # so the five minutes run from the latest assignment.
    events = [
        ev("assign", 0),
        ev("unassign", 2, reason="wrong unit"),
        ev("assign", 20),
        ev("on_scene", 21),
        ev("close", 23),
    ]
    assert flags(events, has_photos=False) == {"quick_close"}
    events[-1] = ev("close", 26)
    assert flags(events, has_photos=False) == set()


def test_unassign_alone_does_not_stop_the_clock() -> None:
    # closing requires a unit again, so this only documents that unassign is not a clock event
    events = [ev("assign", 0), ev("unassign", 1), ev("on_scene", 2), ev("close", 3)]
    assert flags(events, has_photos=False) == {"quick_close"}


def test_close_without_any_assign_is_not_quick() -> None:
    events = [ev("on_scene", 0), ev("close", 1)]
    assert flags(events, has_photos=False) == set()


# -- no arrival -------------------------------------------------------------------------------


def test_close_without_on_scene_is_flagged() -> None:
    events = [ev("assign", 0), ev("acknowledge", 1), ev("en_route", 2), ev("close", 30)]
    assert flags(events, has_photos=False) == {"no_arrival"}


def test_close_with_on_scene_is_not_flagged() -> None:
    assert "no_arrival" not in flags(worked(30), has_photos=False)


def test_close_where_no_arrival_is_expected_is_not_flagged() -> None:
    events = [ev("assign", 0), ev("close", 30, arrival_expected=False)]
    assert flags(events, has_photos=False) == set()
    events = [ev("assign", 0), ev("close", 30, arrival_expected=True)]
    assert flags(events, has_photos=False) == {"no_arrival"}


def test_quick_close_without_arrival_carries_both_flags() -> None:
    events = [ev("assign", 0), ev("acknowledge", 1), ev("close", 2)]
    assert flags(events, has_photos=False) == {"quick_close", "no_arrival"}


# -- photos -----------------------------------------------------------------------------------


def test_photos_not_viewed_before_close_is_flagged() -> None:
    assert flags(worked(30), has_photos=True) == {"photos_unviewed"}


def test_photos_viewed_before_close_is_not_flagged() -> None:
    events = worked(30)
    events.insert(1, ev("view_photo", 0.2, index=0))
    assert flags(events, has_photos=True) == set()


def test_photos_viewed_only_after_close_is_flagged() -> None:
    events = [*worked(30), ev("view_photo", 31, index=0)]
    assert flags(events, has_photos=True) == {"photos_unviewed"}


def test_no_photos_nothing_to_view() -> None:
    assert flags(worked(30), has_photos=False) == set()


def test_every_close_flag_at_once() -> None:
    events = [ev("assign", 0), ev("close", 1)]
    assert flags(events, has_photos=True) == {"quick_close", "no_arrival", "photos_unviewed"}


# -- reopened ---------------------------------------------------------------------------------


def test_reopen_restarts_the_flag_set_with_only_reopened() -> None:
    events = [ev("assign", 0), ev("close", 1), ev("reopen", 60, reason="caller called back")]
    assert flags(events, has_photos=True) == {"reopened"}
    assert flags(events, has_photos=False) == {"reopened"}


def test_a_second_close_computes_its_flags_anew() -> None:
    first = [ev("assign", 0), ev("close", 1)]  # quick, no arrival
    assert flags(first, has_photos=False) == {"quick_close", "no_arrival"}
    second = [
        *first,
        ev("reopen", 60),
        ev("assign", 61),
        ev("acknowledge", 62),
        ev("on_scene", 70),
        ev("close", 80),
    ]
    assert flags(second, has_photos=False) == {"reopened"}


def test_arrival_before_reopen_does_not_count_for_the_second_close() -> None:
    events = [*worked(30), ev("reopen", 60), ev("assign", 61), ev("close", 90)]
    assert flags(events, has_photos=False) == {"reopened", "no_arrival"}


def test_assign_time_before_reopen_does_not_count_for_the_second_close() -> None:
    # a reassign after reopen (no fresh assign seen) starts the clock itself
    events = [*worked(30), ev("reopen", 60), ev("reassign", 100), ev("close", 102)]
    assert flags(events, has_photos=False) == {"reopened", "quick_close", "no_arrival"}


def test_photo_views_before_reopen_still_count_after_it() -> None:
    # What the code does: "viewed" survives a reopen (the photos were looked at).
    events = [
        ev("assign", 0), ev("view_photo", 1), ev("on_scene", 10), ev("close", 30),
        ev("reopen", 60), ev("assign", 61), ev("on_scene", 70), ev("close", 90),
    ]
    assert flags(events, has_photos=True) == {"reopened"}


def test_reopened_stays_through_later_reopens() -> None:
    events = [
        *worked(30), ev("reopen", 60), ev("assign", 61), ev("on_scene", 70), ev("close", 90),
        ev("reopen", 100),
    ]
    assert flags(events, has_photos=False) == {"reopened"}


def test_an_administrative_close_raises_no_field_flags() -> None:
    # admin_close is its own event kind: no quick close, no arrival or photo flags, only its own
    events = [ev("admin_close", 1, disposition="duplicate", arrival_expected=False)]
    assert flags(events, has_photos=True) == {"administrative"}


def test_went_overdue_is_a_flag_that_outlives_a_reopen() -> None:
    events = [ev("overdue", 0, stage="ack"), *worked(20), ev("reopen", 30)]
    assert flags(events, has_photos=False) == {"overdue", "reopened"}
    assert flags(worked(20), has_photos=False) == set()


def test_flags_accepts_any_iterable() -> None:
    assert flags(iter(worked(4)), has_photos=False) == {"quick_close"}
    assert flags((e for e in worked(6)), has_photos=False) == set()


def test_every_flag_has_a_short_form_for_a_crowded_card() -> None:
    from board.domain.flags import FLAG_LABELS, FLAG_SHORT

    assert set(FLAG_SHORT) == set(FLAG_LABELS)


KINDS = ("assign", "reassign", "unassign", "acknowledge", "on_scene", "view_photo", "note",
         "close", "admin_close", "reopen", "overdue")
PAYLOADS = st.fixed_dictionaries({}, optional={
    "confirmed": st.sampled_from([True, False, None]), "arrival_expected": st.booleans(),
    "stage": st.sampled_from(["ack", "arrive", "close"])})
JOB = {"id": 1, "precinct": "75", "sector": "75A", "complaint_type": "Noise - Residential",
       "created_at": T0, "history": False, "closed_at": None, "disposition": None,
       "summons_count": None, "administrative": False}


@given(st.lists(st.tuples(st.sampled_from(KINDS), st.floats(0, 30), PAYLOADS), max_size=30),
       st.booleans())
def test_the_facts_row_keeps_the_flags_its_timeline_gives(steps, photos) -> None:
    """job_facts.flags, folded one event at a time from the row and the event alone (what
    the write path does), equals flags() of the whole timeline after every event, whatever
    the order: a card and a close need not read the timeline."""
    job = {**JOB, "media": ["a.jpg"] if photos else []}
    seen: list[Fact] = []
    row = None
    minute = 0.0
    for kind, gap, payload in steps:
        minute += gap
        seen.append(ev(kind, minute, **payload))
        row = fold(row, job, kind, at(minute), payload)
        assert set(row["flags"]) == flags(seen, photos)
        p = progress(seen)
        assert (row["round_assigned_at"], bool(row["round_arrived"]), row["round_viewed"],
                row["round_presence"]) == (p.assigned_at, p.arrived, p.viewed, p.presence)

"""Priority rules, stage deadlines and overdue stages: pure functions of rules and clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from board.domain.lifecycle import Status
from board.domain.priorities import (
    ANY,
    DEFAULT_RULE,
    DEFAULT_RULES,
    PRIORITY_LABELS,
    Deadlines,
    Rule,
    deadlines,
    overdue,
    rule_for,
)

RECEIVED = datetime(2022, 5, 1, 0, 7, 30, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# -- rules ------------------------------------------------------------------------------------


def test_blocked_driveway_no_access_outranks_loud_talking() -> None:
    driveway = rule_for(DEFAULT_RULES, "Blocked Driveway", "No Access")
    talking = rule_for(DEFAULT_RULES, "Noise - Street/Sidewalk", "Loud Talking")
    assert driveway.priority == 1
    assert talking.priority == 4
    assert driveway.priority < talking.priority  # 1 is the most urgent
    assert (driveway.ack_minutes, driveway.arrive_minutes, driveway.close_minutes) == (5, 20, 60)
    assert (talking.ack_minutes, talking.arrive_minutes, talking.close_minutes) == (15, 60, 180)


def test_most_specific_rule_wins_whatever_the_order() -> None:
    general = Rule("Blocked Driveway", ANY, 2, 5, 30, 90)
    exact = Rule("Blocked Driveway", "No Access", 1, 5, 20, 60)
    assert rule_for([general, exact], "Blocked Driveway", "No Access") is exact
    assert rule_for([exact, general], "Blocked Driveway", "No Access") is exact
    assert rule_for([general, exact], "Blocked Driveway", "Partial Access") is general


def test_first_of_equally_specific_rules_wins() -> None:
    a = Rule("Encampment", ANY, 2, 10, 60, 240)
    b = Rule("Encampment", ANY, 4, 30, 240, 1440)
    assert rule_for([a, b], "Encampment", "") is a
    assert rule_for([b, a], "Encampment", "") is b


def test_matching_is_case_insensitive_on_type_and_descriptor() -> None:
    r = rule_for(DEFAULT_RULES, "BLOCKED DRIVEWAY", "no access")
    assert r.priority == 1
    r = rule_for(DEFAULT_RULES, "noise - street/sidewalk", "LOUD TALKING")
    assert r.priority == 4
    assert Rule("Straße", "X", 1, 1, 1, 1).matches("STRASSE", "x")  # casefold, not lower


def test_type_any_descriptor_rule() -> None:
    r = rule_for(DEFAULT_RULES, "Illegal Fireworks", "Anything at all")
    assert (r.complaint_type, r.descriptor, r.priority) == ("Illegal Fireworks", ANY, 2)
    r = rule_for(DEFAULT_RULES, "Blocked Driveway", "Partial Access")
    assert (r.descriptor, r.priority) == (ANY, 2)
    r = rule_for(DEFAULT_RULES, "Abandoned Vehicle", "With License Plate")
    assert (r.priority, r.close_minutes) == (4, 1440)


def test_descriptor_of_another_type_does_not_match() -> None:
    # "Loud Talking" is P4 only under the two noise types that have that rule
    r = rule_for(DEFAULT_RULES, "Noise - Commercial", "Loud Talking")
    assert (r.complaint_type, r.descriptor, r.priority) == ("Noise - Commercial", ANY, 3)


def test_unknown_type_gets_the_default_rule() -> None:
    assert rule_for(DEFAULT_RULES, "Animal Abuse", "Neglected") is DEFAULT_RULE
    assert rule_for([], "Blocked Driveway", "No Access") is DEFAULT_RULE
    # a type with only specific rules falls to the default for another descriptor
    assert rule_for(DEFAULT_RULES, "Traffic", "Congestion/Gridlock") is DEFAULT_RULE
    assert rule_for(DEFAULT_RULES, "Noise - Street/Sidewalk", "Loud Music/Party") is DEFAULT_RULE
    assert (DEFAULT_RULE.priority, DEFAULT_RULE.ack_minutes, DEFAULT_RULE.arrive_minutes,
            DEFAULT_RULE.close_minutes) == (3, 10, 45, 120)


def test_no_partial_or_substring_matching() -> None:
    assert rule_for(DEFAULT_RULES, "Blocked", "No Access") is DEFAULT_RULE
    assert rule_for(DEFAULT_RULES, "Noise", "Loud Talking") is DEFAULT_RULE


def test_default_rules_are_sane() -> None:
    keys = [(r.complaint_type.casefold(), r.descriptor.casefold()) for r in DEFAULT_RULES]
    assert len(keys) == len(set(keys)), "two default rules for the same type and descriptor"
    for r in (*DEFAULT_RULES, DEFAULT_RULE):
        assert r.priority in PRIORITY_LABELS
        assert 0 < r.ack_minutes <= r.arrive_minutes <= r.close_minutes, r


# -- deadlines --------------------------------------------------------------------------------


def test_deadlines_run_from_when_the_job_was_received() -> None:
    rule = Rule("Blocked Driveway", "No Access", 1, 5, 20, 60)
    due = deadlines(rule, RECEIVED)
    assert due == Deadlines(
        acknowledge=datetime(2022, 5, 1, 0, 12, 30, tzinfo=UTC),
        arrive=datetime(2022, 5, 1, 0, 27, 30, tzinfo=UTC),
        close=datetime(2022, 5, 1, 1, 7, 30, tzinfo=UTC),
    )
    assert due.acknowledge.tzinfo is UTC


def test_deadlines_cross_midnight_and_days() -> None:
    late = datetime(2022, 4, 30, 23, 50, tzinfo=UTC)
    due = deadlines(Rule("Abandoned Vehicle", ANY, 4, 30, 240, 1440), late)
    assert due.acknowledge == datetime(2022, 5, 1, 0, 20, tzinfo=UTC)
    assert due.arrive == datetime(2022, 5, 1, 3, 50, tzinfo=UTC)
    assert due.close == datetime(2022, 5, 1, 23, 50, tzinfo=UTC)


# -- overdue ----------------------------------------------------------------------------------

DUE = deadlines(DEFAULT_RULE, RECEIVED)  # ack +10, arrive +45, close +120
ACK_STAGE = ("new", "held", "assigned")
ARRIVE_STAGE = ("acknowledged", "en_route")
CLOSE_STAGE = ("on_scene",)
OPEN = ACK_STAGE + ARRIVE_STAGE + CLOSE_STAGE


@pytest.mark.parametrize("status", OPEN)
def test_nothing_is_overdue_on_time(status: str) -> None:
    assert overdue(status, DUE, RECEIVED) is None
    assert overdue(status, DUE, RECEIVED + minutes(9)) is None


@pytest.mark.parametrize("status", ACK_STAGE)
def test_acknowledge_stage(status: str) -> None:
    # A job nobody has yet is late being dispatched; an assigned one, being acknowledged.
    late = "not acknowledged" if status == "assigned" else "not dispatched"
    assert overdue(status, DUE, DUE.acknowledge) is None
    assert overdue(status, DUE, DUE.acknowledge + timedelta(microseconds=1)) == late
    assert overdue(status, DUE, DUE.arrive + minutes(1)) == late
    assert overdue(status, DUE, DUE.close) == late


@pytest.mark.parametrize("status", ARRIVE_STAGE)
def test_arrive_stage(status: str) -> None:
    # past the acknowledge deadline does not matter once acknowledged
    assert overdue(status, DUE, DUE.acknowledge + minutes(1)) is None
    assert overdue(status, DUE, DUE.arrive) is None
    assert overdue(status, DUE, DUE.arrive + timedelta(microseconds=1)) == "not on scene"
    assert overdue(status, DUE, DUE.close) == "not on scene"


def test_close_stage() -> None:
    assert overdue("on_scene", DUE, DUE.arrive + minutes(1)) is None
    assert overdue("on_scene", DUE, DUE.close) is None
    assert overdue("on_scene", DUE, DUE.close + timedelta(microseconds=1)) == "not closed"


@pytest.mark.parametrize("status", OPEN)
def test_past_the_close_deadline_is_not_closed_in_any_open_stage(status: str) -> None:
    assert overdue(status, DUE, DUE.close + timedelta(seconds=1)) == "not closed"
    assert overdue(status, DUE, DUE.close + timedelta(days=3)) == "not closed"


def test_a_closed_job_is_never_overdue() -> None:
    for now in (RECEIVED, DUE.acknowledge + minutes(1), DUE.close + timedelta(days=30)):
        assert overdue("closed", DUE, now) is None


def test_status_enum_members_work_like_their_strings() -> None:
    late = DUE.arrive + minutes(1)
    for status in Status:
        assert overdue(status, DUE, late) == overdue(status.value, DUE, late)
    assert overdue(Status.EN_ROUTE, DUE, late) == "not on scene"

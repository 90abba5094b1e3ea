"""The job lifecycle table, checked cell by cell against a table written out independently."""

from __future__ import annotations

import pytest

from board.domain.lifecycle import (
    ALLOWED,
    LABELS,
    NEXT_STEP,
    OPEN,
    WORKING,
    Status,
    TransitionError,
    allowed_actions,
    transition,
)

NEW, HELD, ASSIGNED, ACK, EN_ROUTE, ON_SCENE, CLOSED = (
    Status.NEW, Status.HELD, Status.ASSIGNED, Status.ACKNOWLEDGED, Status.EN_ROUTE,
    Status.ON_SCENE, Status.CLOSED,
)
ALL = (NEW, HELD, ASSIGNED, ACK, EN_ROUTE, ON_SCENE, CLOSED)

# Written out by hand from DESIGN.md "Job lifecycle", not derived from ALLOWED.
# action: {start status: status after}; a start status not listed is refused.
EXPECTED: dict[str, dict[Status, Status]] = {
    "assign": {NEW: ASSIGNED, HELD: ASSIGNED},
    "reassign": {ASSIGNED: ASSIGNED, ACK: ASSIGNED, EN_ROUTE: ASSIGNED, ON_SCENE: ASSIGNED},
    "unassign": {ASSIGNED: NEW, ACK: NEW, EN_ROUTE: NEW, ON_SCENE: NEW},
    "acknowledge": {ASSIGNED: ACK},
    "en_route": {ASSIGNED: EN_ROUTE, ACK: EN_ROUTE},
    "on_scene": {ACK: ON_SCENE, EN_ROUTE: ON_SCENE},
    "close": {ASSIGNED: CLOSED, ACK: CLOSED, EN_ROUTE: CLOSED, ON_SCENE: CLOSED},
    "admin_close": {NEW: CLOSED, HELD: CLOSED},
    "hold": {NEW: HELD},
    "release": {HELD: NEW},
    "reopen": {CLOSED: NEW},
    # status-preserving actions
    "set_priority": {s: s for s in (NEW, HELD, ASSIGNED, ACK, EN_ROUTE, ON_SCENE)},
    "route": {s: s for s in (NEW, HELD, ASSIGNED, ACK, EN_ROUTE, ON_SCENE)},
    "note": {s: s for s in ALL},
    "view_photo": {s: s for s in ALL},
    "view_contact": {s: s for s in ALL},
}

# The reason each refused action gives, as the user reads it.
REASONS = {
    "assign": "it must be new or held",
    "reassign": "only a job that a unit has can be reassigned",
    "unassign": "only a job that a unit has can be returned to the queue",
    "acknowledge": "only a newly assigned job can be acknowledged",
    "en_route": "assigned or has acknowledged",
    "on_scene": "acknowledged or is en route to",
    "close": "only a job a unit is working can be closed with a disposition",
    "admin_close": "(new or held) can be closed administratively",
    "hold": "only a job in the queue can be put on hold",
    "release": "only a held job can be released",
    "reopen": "only a closed job can be reopened",
    "set_priority": "a closed job's priority no longer matters",
    "route": "a closed job stays where it was worked",
}

LABEL_TEXT = {
    NEW: "new", HELD: "on hold", ASSIGNED: "assigned", ACK: "acknowledged",
    EN_ROUTE: "en route", ON_SCENE: "on scene", CLOSED: "closed",
}

CELLS = [(action, status) for action in ALLOWED for status in Status]


def test_the_table_covers_exactly_the_documented_actions_and_statuses() -> None:
    assert set(ALLOWED) == set(EXPECTED)
    assert tuple(Status) == ALL
    assert set(LABELS) == set(Status)
    assert WORKING == (ASSIGNED, ACK, EN_ROUTE, ON_SCENE)
    assert OPEN == (NEW, HELD, ASSIGNED, ACK, EN_ROUTE, ON_SCENE)


@pytest.mark.parametrize(("action", "status"), CELLS, ids=[f"{a}-{s}" for a, s in CELLS])
def test_every_action_from_every_status(action: str, status: Status) -> None:
    allowed = EXPECTED[action]
    if status in allowed:
        assert transition(action, status) is allowed[status]
        # a plain string status is accepted too
        assert transition(action, status.value) is allowed[status]
        return
    with pytest.raises(TransitionError) as caught:
        transition(action, status)
    err = caught.value
    assert (err.action, err.status) == (action, status)
    text = str(err)
    assert text.startswith(f"cannot {action.replace('_', ' ')} a job that is ")
    assert LABEL_TEXT[status] in text
    assert LABELS[status].lower() in text
    assert REASONS[action] in text


def test_the_table_has_the_expected_shape() -> None:
    # spot checks the brief calls out, readable without the big table
    assert [s for s in ALL if s in EXPECTED["acknowledge"]] == [ASSIGNED]
    assert set(EXPECTED["on_scene"]) == {ACK, EN_ROUTE}
    assert set(EXPECTED["close"]) == {ASSIGNED, ACK, EN_ROUTE, ON_SCENE}
    assert set(EXPECTED["admin_close"]) == {NEW, HELD}
    assert set(EXPECTED["reopen"]) == {CLOSED}
    refused = sum(1 for a, s in CELLS if s not in EXPECTED[a])
    assert refused == 55  # 15 actions x 7 statuses = 105 cells, 50 allowed


def test_refusal_messages_read_naturally() -> None:
    with pytest.raises(TransitionError) as caught:
        transition("assign", CLOSED)
    assert str(caught.value) == (
        "cannot assign a job that is closed: it must be new or held "
        "(use reassign for a job a unit already has)"
    )
    with pytest.raises(TransitionError) as caught:
        transition("admin_close", "on_scene")
    assert str(caught.value) == (
        "cannot admin close a job that is on scene: only a job nobody is working "
        "(new or held) can be closed administratively"
    )
    with pytest.raises(TransitionError, match="that is on hold"):
        transition("acknowledge", "held")


def test_transition_error_is_an_exception_carrying_action_and_status() -> None:
    err = TransitionError("reopen", NEW)
    assert isinstance(err, Exception)
    assert err.action == "reopen"
    assert err.status is NEW


def test_unknown_action_is_a_value_error_not_a_transition_error() -> None:
    with pytest.raises(ValueError, match="unknown action 'teleport'") as caught:
        transition("teleport", NEW)
    assert not isinstance(caught.value, TransitionError)
    # "reorder" is an actor permission but not a lifecycle action
    for action in ("reorder", ""):
        with pytest.raises(ValueError, match="unknown action"):
            transition(action, NEW)


def test_unknown_action_is_checked_before_the_status() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        transition("teleport", "nonsense")


def test_unknown_status_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        transition("assign", "lost")
    with pytest.raises(ValueError):
        allowed_actions("lost")


def test_next_step_walks_an_officer_from_assigned_to_close() -> None:
    status = ASSIGNED
    walked = []
    while status in NEXT_STEP:
        action, label = NEXT_STEP[status]
        walked.append((status, action, label))
        status = transition(action, status)
    assert walked == [
        (ASSIGNED, "acknowledge", "Acknowledge"),
        (ACK, "en_route", "En route"),
        (EN_ROUTE, "on_scene", "On scene"),
        (ON_SCENE, "close", "Close"),
    ]
    assert status is CLOSED
    assert set(NEXT_STEP) == set(WORKING)


def test_each_next_step_is_allowed_from_its_status() -> None:
    for status, (action, _label) in NEXT_STEP.items():
        assert action in allowed_actions(status)


@pytest.mark.parametrize("status", ALL)
def test_allowed_actions_match_the_table(status: Status) -> None:
    expected = [a for a in EXPECTED if status in EXPECTED[a]]
    assert sorted(allowed_actions(status)) == sorted(expected)
    assert allowed_actions(status.value) == allowed_actions(status)


def test_allowed_actions_spelled_out() -> None:
    assert allowed_actions("new") == [
        "assign", "admin_close", "hold", "set_priority", "route", "note",
        "view_photo", "view_contact"]
    assert allowed_actions("held") == [
        "assign", "admin_close", "release", "set_priority", "route", "note",
        "view_photo", "view_contact"]
    assert allowed_actions("assigned") == [
        "reassign", "unassign", "acknowledge", "en_route", "close", "set_priority", "route",
        "note", "view_photo", "view_contact"]
    assert allowed_actions("on_scene") == [
        "reassign", "unassign", "close", "set_priority", "route", "note", "view_photo",
        "view_contact"]
    assert allowed_actions("closed") == ["reopen", "note", "view_photo", "view_contact"]

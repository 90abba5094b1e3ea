"""Who may do what, where: every role against scope, unit and action."""

from __future__ import annotations

import pytest

from board.domain.access import (
    CITYWIDE,
    OFFICER_ACTIONS,
    SUPERVISOR_ACTIONS,
    SYSTEM,
    Actor,
    Forbidden,
    Role,
    parse_precincts,
)
from board.domain.lifecycle import ALLOWED

P75 = frozenset({"75"})
ALL_ACTIONS = sorted(set(ALLOWED) | SUPERVISOR_ACTIONS | OFFICER_ACTIONS)
OFFICER_JOB_ACTIONS = sorted(OFFICER_ACTIONS - {"unit_position"})
SUPERVISOR_ONLY = sorted(SUPERVISOR_ACTIONS - OFFICER_ACTIONS)

officer = Actor(11, "P.O. Rivera", Role.OFFICER, P75, unit_id=7)
officer_no_unit = Actor(12, "P.O. Chen", Role.OFFICER, P75)
supervisor = Actor(21, "Sgt. Okafor", Role.SUPERVISOR, P75)
citywide_supervisor = Actor(22, "Sgt. Levy", Role.SUPERVISOR, frozenset({CITYWIDE}))
commander = Actor(31, "Insp. Park", Role.COMMANDER, frozenset({"75", "120"}))
citywide_commander = Actor(32, "Chief Diaz", Role.COMMANDER, frozenset({CITYWIDE}))
wall = Actor(41, "75 wall", Role.WALL, P75)
admin = Actor(51, "Admin", Role.ADMIN, frozenset({CITYWIDE}))


def refused(actor: Actor, action: str, precinct: str | None, unit_id: int | None = None) -> str:
    with pytest.raises(Forbidden) as caught:
        actor.check(action, precinct, unit_id)
    return str(caught.value)


# -- officer ----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", OFFICER_JOB_ACTIONS)
def test_officer_acts_on_own_units_jobs_in_own_precinct(action: str) -> None:
    officer.check(action, "75", 7)
    assert refused(officer, action, "75", 8) == "officers act only on their own unit's jobs"
    assert refused(officer, action, "75", None) == "officers act only on their own unit's jobs"
    assert refused(officer, action, "120", 7) == "this is outside your precincts"
    assert refused(officer, action, None, 7) == "this is outside your precincts"


@pytest.mark.parametrize("action", SUPERVISOR_ONLY)
def test_officer_cannot_do_supervisor_moves(action: str) -> None:
    msg = refused(officer, action, "75", 7)
    # the article is not pinned: "a officer" reads wrong and may be fixed to "an officer"
    assert msg.endswith(f" officer cannot {action.replace('_', ' ')}")


def test_officer_cannot_assign() -> None:
    assert refused(officer, "assign", "75", 7).endswith(" officer cannot assign")
    assert refused(officer, "assign", "75", None).endswith(" officer cannot assign")
    assert not officer.may("assign")


def test_officer_without_a_unit_acts_on_no_job() -> None:
    for action in OFFICER_JOB_ACTIONS:
        assert refused(officer_no_unit, action, "75", None) == (
            "officers act only on their own unit's jobs")
        refused(officer_no_unit, action, "75", 7)


def test_officer_reports_position_without_a_job() -> None:
    officer.check("unit_position", "75")
    officer_no_unit.check("unit_position", "75")
    refused(officer, "unit_position", "120")


def test_scope_is_checked_before_role() -> None:
    # out of scope says so, whatever the action
    assert refused(officer, "assign", "120", 7) == "this is outside your precincts"


# -- supervisor -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(SUPERVISOR_ACTIONS))
def test_supervisor_in_own_precinct_on_any_unit(action: str) -> None:
    supervisor.check(action, "75")
    supervisor.check(action, "75", 7)
    supervisor.check(action, "75", 99)


@pytest.mark.parametrize("action", sorted(SUPERVISOR_ACTIONS))
def test_supervisor_of_75_refused_on_120_and_unrouted(action: str) -> None:
    assert refused(supervisor, action, "120") == "this is outside your precincts"
    assert refused(supervisor, action, None) == "this is outside your precincts"


@pytest.mark.parametrize("action", sorted(SUPERVISOR_ACTIONS))
def test_citywide_supervisor_works_everywhere_including_unrouted(action: str) -> None:
    for precinct in ("75", "120", None):
        citywide_supervisor.check(action, precinct)


def test_supervisor_cannot_do_what_is_not_a_supervisor_action() -> None:
    assert refused(supervisor, "unit_position", "75") == "a supervisor cannot unit position"
    assert refused(supervisor, "edit_users", "75") == "a supervisor cannot edit users"


# -- read-only roles --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ALL_ACTIONS)
@pytest.mark.parametrize(
    "actor", [commander, citywide_commander, wall], ids=["commander", "citywide", "wall"])
def test_commanders_and_walls_refused_every_write(actor: Actor, action: str) -> None:
    assert not actor.may(action)
    msg = refused(actor, action, "75")
    assert msg.endswith(f" {actor.role.value} cannot {action.replace('_', ' ')}")


def test_commanders_and_walls_see_their_scope() -> None:
    assert commander.sees("75") and commander.sees("120")
    assert not commander.sees("1") and not commander.sees(None)
    assert citywide_commander.sees(None) and citywide_commander.sees("1")
    assert wall.sees("75") and not wall.sees("120")
    assert refused(wall, "note", "120") == "this is outside your precincts"


# -- admin ------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [*ALL_ACTIONS, "edit_users", "anything"])
def test_citywide_admin_allowed_everywhere(action: str) -> None:
    for precinct in ("75", "120", None):
        admin.check(action, precinct)
        admin.check(action, precinct, 7)
        SYSTEM.check(action, precinct)


def test_admin_is_still_scoped_to_its_precincts() -> None:
    local_admin = Actor(52, "Local admin", Role.ADMIN, P75)
    local_admin.check("assign", "75")
    assert refused(local_admin, "assign", "120") == "this is outside your precincts"
    assert refused(local_admin, "assign", None) == "this is outside your precincts"


def test_system_actor() -> None:
    assert SYSTEM.role is Role.ADMIN
    assert SYSTEM.citywide
    assert SYSTEM.id is None and SYSTEM.source == "system"


# -- sees / citywide --------------------------------------------------------------------------


def test_sees() -> None:
    assert officer.sees("75")
    assert not officer.sees("120")
    assert not officer.sees(None)
    assert not officer.sees("")
    assert not officer.sees(CITYWIDE)  # only a citywide scope holds "*"
    assert citywide_supervisor.citywide and not supervisor.citywide


def test_precinct_names_are_compared_exactly() -> None:
    assert not officer.sees("075")
    assert not officer.sees(" 75")


def test_actor_defaults_and_immutability() -> None:
    assert supervisor.unit_id is None and supervisor.source == "web"
    with pytest.raises(AttributeError):
        supervisor.role = Role.ADMIN  # type: ignore[misc]


# -- parse_precincts --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("75", {"75"}),
    ("75,120", {"75", "120"}),
    (" 75 , 120 ,", {"75", "120"}),
    ("75,75", {"75"}),
    ("", set()),
    (" , ,", set()),
    ("*", {CITYWIDE}),
    ("75, *", {CITYWIDE}),
    (" * ", {CITYWIDE}),
])
def test_parse_precincts(text: str, expected: set[str]) -> None:
    parsed = parse_precincts(text)
    assert isinstance(parsed, frozenset)
    assert parsed == expected


def test_parsed_empty_scope_sees_nothing() -> None:
    nobody = Actor(1, "x", Role.SUPERVISOR, parse_precincts(""))
    assert not nobody.sees("75") and not nobody.sees(None)
    assert Actor(1, "x", Role.SUPERVISOR, parse_precincts("*,75")).sees(None)

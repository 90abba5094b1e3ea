"""The groups claim → role and precincts table of single sign-on (docs/sso.md)."""

from __future__ import annotations

import pytest

from board.domain.access import Role
from board.domain.claims import Grant, GroupMapping, MappingError, groups_of, parse_group_map

CONVENTION = GroupMapping()


@pytest.mark.parametrize("groups, role, precincts, unit", [
    (["311-sgt-75"], Role.SUPERVISOR, {"75"}, None),
    (["311-sgt-75", "311-sgt-73", "staff"], Role.SUPERVISOR, {"75", "73"}, None),
    (["311-officer-75-A"], Role.OFFICER, {"75"}, "75-A"),
    (["311-citywide"], Role.SUPERVISOR, {"*"}, None),
    (["311-commander"], Role.COMMANDER, {"*"}, None),
    (["311-commander-75", "311-commander-34"], Role.COMMANDER, {"75", "34"}, None),
    (["311-admin", "311-sgt-75"], Role.ADMIN, {"*"}, None),
    (["311-sgt-75", "311-officer-75-A"], Role.SUPERVISOR, {"75"}, None),
    (["311-sgt-75", "311-citywide"], Role.SUPERVISOR, {"*"}, None),
])
def test_the_convention_maps_groups_to_the_strongest_role(groups, role, precincts, unit):
    grant = CONVENTION.grant(groups)
    assert grant == Grant(role, frozenset(precincts), unit)


@pytest.mark.parametrize("groups", [
    [], ["staff", "everyone"], ["311-sgt-"], ["311-sgt-75x"], ["311-sgt-75-A"],
    ["311-wall-75"], ["311-officer-75"], ["311-officer-75-A", "311-officer-75-B"],
    ["311-admin-75"], ["311-sgt-1234"], ["911-sgt-75"],
])
def test_anything_else_is_no_access(groups):
    assert CONVENTION.grant(groups) is None


def test_explicit_entries_map_provider_ids_and_come_before_the_convention():
    table = parse_group_map("6f1c-aa=supervisor:75,73; Dispatch Admins=admin:*\n"
                            "b2=officer:75:75-B;311-sgt-75=commander:75")
    mapping = GroupMapping("311-", table)
    assert mapping.grant(["6f1c-aa"]) == Grant(Role.SUPERVISOR, frozenset({"75", "73"}))
    assert mapping.grant(["Dispatch Admins"]) == Grant(Role.ADMIN, frozenset({"*"}))
    assert mapping.grant(["b2"]) == Grant(Role.OFFICER, frozenset({"75"}), "75-B")
    assert mapping.grant(["311-sgt-75"]).role is Role.COMMANDER
    assert GroupMapping("", table).grant(["311-sgt-34"]) is None  # no prefix: explicit only


@pytest.mark.parametrize("text", [
    "g=wall:75", "g=sergeant:75", "g=supervisor:", "g=supervisor:75:75-A", "g=officer:75",
    "g=supervisor:seventy-five", "no equals sign", "=admin:*",
])
def test_a_bad_map_setting_is_refused_with_its_entry(text):
    with pytest.raises(MappingError):
        parse_group_map(text)


def test_the_groups_claim_is_read_defensively():
    assert groups_of({"groups": ["a", "b"]}, "groups") == ["a", "b"]
    assert groups_of({"groups": "a"}, "groups") == ["a"]
    assert groups_of({"groups": ["a", 3, None, "x" * 300]}, "groups") == ["a"]
    assert groups_of({}, "groups") is None
    assert groups_of({"groups": {"a": 1}}, "groups") is None
    assert groups_of({"groups": ["g"] * 501}, "groups") is None

"""Who a single sign-on person is on the board: the provider's groups → a role and precincts.

The table (docs/sso.md). With the default prefix `311-`, a person's groups claim may hold:

| group | role | precincts |
|---|---|---|
| `311-admin` | admin | citywide |
| `311-commander` | commander | citywide |
| `311-commander-75` | commander | the 75th (several such groups add up) |
| `311-citywide` | supervisor | citywide (the unrouted queue, priority rules) |
| `311-sgt-75` | supervisor | the 75th (several add up) |
| `311-officer-75-A` | officer | the 75th, riding unit `75-A` |

A department whose provider names groups otherwise (Entra ID sends group object ids) maps them
explicitly with OIDC_GROUP_MAP: `group=role:precincts[:unit]` entries separated by `;`, e.g.
`6f1c…=supervisor:75;Dispatch Admins=admin:*`. When a person's groups give several roles, the
strongest wins (admin, commander, supervisor, officer) with the precincts of that role's groups;
an officer must come out with exactly one unit. Anything else, or no group at all, is no access:
`Mapping.grant` returns None and nothing about the person is kept.
Wall displays are devices with tokens, never people: no group maps to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from board.domain.access import CITYWIDE, Role

#: Roles a group may give, strongest first.
STRENGTH = (Role.ADMIN, Role.COMMANDER, Role.SUPERVISOR, Role.OFFICER)
_PRECINCT = re.compile(r"^[0-9]{1,3}$")
_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
MAX_GROUPS = 500  # a claim longer than this is refused rather than walked


class MappingError(ValueError):
    """The OIDC_GROUP_MAP setting cannot be read."""


@dataclass(frozen=True)
class Grant:
    """What one group gives (or what a person ends up with)."""

    role: Role
    precincts: frozenset[str]
    unit: str | None = None

    @property
    def precincts_text(self) -> str:
        return CITYWIDE if CITYWIDE in self.precincts else ",".join(sorted(self.precincts))


def _grant(role: str, precincts: str, unit: str | None = None) -> Grant:
    try:
        r = Role(role.strip().lower())
    except ValueError:
        raise MappingError(f"unknown role {role!r}") from None
    if r is Role.WALL:
        raise MappingError("wall displays are devices with tokens, not people")
    places = frozenset(p.strip() for p in precincts.split(",") if p.strip())
    if not places or not all(p == CITYWIDE or _PRECINCT.match(p) for p in places):
        raise MappingError(f"precincts must be numbers or *, not {precincts!r}")
    if CITYWIDE in places:
        places = frozenset({CITYWIDE})
    unit = (unit or "").strip() or None
    if (r is Role.OFFICER) != (unit is not None) or (unit and not _UNIT.match(unit)):
        raise MappingError("an officer's entry names one unit, and only an officer's does")
    return Grant(r, places, unit)


def parse_group_map(text: str) -> dict[str, Grant]:
    """OIDC_GROUP_MAP: `group=role:precincts[:unit]` entries separated by `;` or new lines."""
    table: dict[str, Grant] = {}
    for entry in re.split(r"[;\n]", text or ""):
        if not entry.strip():
            continue
        group, sep, rule = entry.rpartition("=")
        parts = rule.split(":")
        if not sep or not group.strip() or len(parts) not in (2, 3):
            raise MappingError(f"read {entry.strip()!r} as group=role:precincts[:unit]")
        table[group.strip()] = _grant(*parts)
    return table


def _by_prefix(group: str, prefix: str) -> Grant | None:
    """The naming convention: 311-admin, 311-commander[-75], 311-citywide, 311-sgt-75,
    311-officer-75-A."""
    if not prefix or not group.startswith(prefix):
        return None
    parts = group[len(prefix):].split("-", 2)
    kind, rest = parts[0].lower(), parts[1:]
    try:
        if kind == "admin" and not rest:
            return _grant("admin", CITYWIDE)
        if kind == "commander" and len(rest) <= 1:
            return _grant("commander", rest[0] if rest else CITYWIDE)
        if kind == "citywide" and not rest:
            return _grant("supervisor", CITYWIDE)
        if kind == "sgt" and len(rest) == 1:
            return _grant("supervisor", rest[0])
        if kind == "officer" and len(rest) == 2:
            return _grant("officer", rest[0], f"{rest[0]}-{rest[1]}")
    except MappingError:
        return None
    return None


@dataclass(frozen=True)
class GroupMapping:
    """The configured table: explicit entries first, then the prefix convention."""

    prefix: str = "311-"
    explicit: Mapping[str, Grant] = field(default_factory=dict)

    def of_group(self, group: str) -> Grant | None:
        return self.explicit.get(group) or _by_prefix(group, self.prefix)

    def grant(self, groups: Iterable[str]) -> Grant | None:
        """The person's role, precincts and unit; None means no access."""
        found = [g for g in (self.of_group(x) for x in groups) if g is not None]
        for role in STRENGTH:
            mine = [g for g in found if g.role is role]
            if not mine:
                continue
            places = frozenset().union(*(g.precincts for g in mine))
            if CITYWIDE in places:
                places = frozenset({CITYWIDE})
            units = {g.unit for g in mine if g.unit}
            if role is Role.OFFICER and len(units) != 1:
                return None  # two units at once: the department must say which
            return Grant(role, places, units.pop() if units else None)
        return None


def groups_of(claims: Mapping[str, object], claim: str) -> list[str] | None:
    """The groups claim as a list of strings (a single string counts as one group); None when
    it is absent, malformed or too long."""
    value = claims.get(claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_GROUPS:
        return None
    return [v for v in value if isinstance(v, str) and 0 < len(v) <= 200]

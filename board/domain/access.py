"""Who may do what, where: roles and precinct scope. Pure rules, checked by every use case."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    COMMANDER = "commander"
    ADMIN = "admin"
    WALL = "wall"


CITYWIDE = "*"

SUPERVISOR_ACTIONS = frozenset({
    "assign", "reassign", "unassign", "reorder", "admin_close", "hold", "release", "reopen",
    "set_priority", "route", "unit_status", "note", "view_photo", "close", "acknowledge",
    "en_route", "on_scene", "set_rule", "create_job", "add_unit", "review", "log_entry",
    "link",
    "view_contact", "view_evidence",
})
OFFICER_ACTIONS = frozenset({
    "acknowledge", "en_route", "on_scene", "close", "note", "view_photo", "unit_position",
    "view_contact", "view_evidence",
    "unit_status",  # their own unit only: out of service (meal, …) and back
})


class Forbidden(Exception):
    """The actor may not do this, or not here."""


@dataclass(frozen=True)
class Actor:
    id: int | None
    name: str
    role: Role
    precincts: frozenset[str]  # {"*"} for citywide
    unit_id: int | None = None
    source: str = "web"
    # Where a person's request came from (recorded on each event) and the server-side session
    # it rode on (so revoking the session closes that session's sockets).
    address: str | None = None
    user_agent: str | None = None
    session_id: int | None = None
    # The client's key for this request (a phone's tap): recorded on the events it writes, so
    # the same request sent again, after its answer was lost, is known as already done.
    request_key: str | None = None
    # The API client's Idempotency-Key for this request: the write's own transaction marks the
    # key's claim with the event it wrote (board.storage.idempotency), so a retry whose first
    # answer was lost is answered from that event, never written again.
    idempotency_key: str | None = None

    @property
    def citywide(self) -> bool:
        return CITYWIDE in self.precincts

    def sees(self, precinct: str | None) -> bool:
        """Unrouted jobs (no precinct) are for citywide eyes only."""
        return self.citywide or (precinct is not None and precinct in self.precincts)

    def may(self, action: str) -> bool:
        if self.role is Role.ADMIN:
            return True
        if self.role is Role.SUPERVISOR:
            return action in SUPERVISOR_ACTIONS
        if self.role is Role.OFFICER:
            return action in OFFICER_ACTIONS
        return False  # commanders and wall displays only read

    def may_set_rules(self) -> bool:
        """Priority rules apply citywide, so only citywide eyes (admins, citywide supervisors)
        change them; a precinct supervisor reads them."""
        return self.may("set_rule") and self.citywide

    def check(self, action: str, precinct: str | None, unit_id: int | None = None) -> None:
        """Refuse an action out of role or out of scope; officers act only on their unit's jobs."""
        if not self.sees(precinct):
            raise Forbidden("this is outside your precincts")
        if not self.may(action):
            article = "an" if self.role.value[0] in "aeiou" else "a"
            raise Forbidden(f"{article} {self.role.value} cannot {action.replace('_', ' ')}")
        if self.role is Role.OFFICER and action != "unit_position" and (
            self.unit_id is None or unit_id != self.unit_id
        ):
            raise Forbidden("officers act only on their own unit's jobs")


def parse_precincts(text: str) -> frozenset[str]:
    parts = {p.strip() for p in text.split(",") if p.strip()}
    return frozenset({CITYWIDE}) if CITYWIDE in parts else frozenset(parts)


SYSTEM = Actor(None, "system", Role.ADMIN, frozenset({CITYWIDE}), source="system")

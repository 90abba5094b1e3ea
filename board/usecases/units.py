"""Patrol units: their status, their place on a precinct's board and their position."""

from __future__ import annotations

import logging
import math
from typing import Any

import sqlalchemy as sa

from board.domain.access import Actor, Forbidden, Role
from board.storage import db
from board.storage.schema import (
    events,
    units,
)
from board.usecases.core import (
    ChangeCore,
    Invalid,
    UnitConflict,
    _text,
)

log = logging.getLogger(__name__)
UNIT_STATUSES = ("available", "out_of_service", "off_duty")

class UnitCases(ChangeCore):
    # -- units --------------------------------------------------------------------------------

    def unit_status(self, actor: Actor, unit_id: int, version: int, status: str,
                    reason: str = "") -> dict[str, Any]:
        if status not in UNIT_STATUSES:
            raise Invalid({"status": f"must be one of {', '.join(UNIT_STATUSES)}"})
        reason = _text(reason, "reason", limit=200)
        if status == "out_of_service" and not reason:
            raise Invalid({"reason": "say why the unit is out of service"})
        with db.write(self.engine) as conn:
            unit = self._unit(conn, unit_id)
            actor.check("unit_status", unit.precinct, unit.id)
            if actor.role is Role.OFFICER and status == "off_duty":
                raise Forbidden("the desk signs a unit off duty")
            # Lock the row, then compare: parallel writers queue up and all but one see the
            # new version (as job writes do in _lock); on SQLite the write lock is taken already.
            unit = conn.execute(sa.select(units).where(units.c.id == unit_id)
                                .with_for_update()).first()
            if unit.version != version:
                raise self._unit_conflict(conn, unit, version)
            if status == unit.status:
                raise Invalid({"status": f"{unit.callsign} is already {status.replace('_', ' ')}"})
            done = conn.execute(units.update().where(
                units.c.id == unit.id, units.c.version == version).values(
                status=status, status_reason=reason or None, version=version + 1,
                updated_at=self.clock()))
            if done.rowcount != 1:
                raise self._unit_conflict(conn, unit, version)
            ev = self._event(conn, actor, "unit_status", unit_id=unit.id, precinct=unit.precinct,
                             before=None, after=None,
                             payload={"unit": unit.callsign, "from": unit.status, "to": status,
                                      "reason": reason})
        self._committed([ev])
        return ev

    def _unit_conflict(self, conn: sa.Connection, unit: Any, expected: int) -> UnitConflict:
        """Name who changed the unit last: its version moves only with unit_status events."""
        last = conn.execute(
            sa.select(events.c.actor, events.c.kind, events.c.at)
            .where(events.c.unit_id == unit.id, events.c.kind == "unit_status")
            .order_by(events.c.seq.desc()).limit(1)).first()
        by, kind, at = (last.actor, last.kind, last.at) if last else ("someone", "change", None)
        return UnitConflict(unit.id, unit.callsign, expected, unit.version, by, kind, at)

    def add_unit(self, actor: Actor, callsign: str, precinct: str,
                 sector: str | None = None) -> dict[str, Any]:
        """Put a patrol unit on a precinct's board."""
        callsign = _text(callsign, "callsign", required=True, limit=40)
        precinct = str(precinct).strip()
        self._check_place(precinct, sector)
        if not (actor.may("add_unit") and actor.sees(precinct)):
            raise Forbidden("you cannot add units to this precinct")
        with db.write(self.engine) as conn:
            if conn.execute(sa.select(units.c.id).where(units.c.callsign == callsign)).first():
                raise Invalid({"callsign": f"unit {callsign} exists already"})
            unit_id = conn.execute(units.insert().values(
                callsign=callsign, precinct=precinct, sector=sector or None,
                status="available", version=1, updated_at=self.clock(),
            )).inserted_primary_key[0]
            ev = self._event(conn, actor, "unit_added", unit_id=unit_id, precinct=precinct,
                             payload={"unit": callsign, "sector": sector})
        self._committed([ev])
        return ev

    def unit_position(self, actor: Actor, lat: float, lon: float) -> dict[str, Any]:
        """An officer's browser reporting where the unit is (with the officer's consent)."""
        if actor.unit_id is None:
            raise Forbidden("only an officer with a unit reports a position")
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
                and -180 <= lon <= 180):
            raise Invalid({"lat": "position out of range"})
        with db.write(self.engine) as conn:
            unit = self._unit(conn, actor.unit_id)
            actor.check("unit_position", unit.precinct)
            conn.execute(units.update().where(units.c.id == unit.id).values(
                lat=lat, lon=lon, position_at=self.clock()))
            ev = self._event(conn, actor, "unit_position", unit_id=unit.id,
                             precinct=unit.precinct, payload={"lat": lat, "lon": lon})
        self._committed([ev])
        return ev


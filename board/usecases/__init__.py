"""The one write path. Every change to a job or a unit is a use case of `Dispatch`.

Each capability's use cases live in a module of their own (jobs, incidents, units, oversight,
creation), all over one change core (`core.ChangeCore`): check the actor's role and scope, lock
in a fixed order, compare the version, apply the transition, write the state and one
append-only event in the same transaction, and tell listeners only after it has committed.
`queries` is the read side: what each screen shows, within the reader's scope.
"""

from __future__ import annotations

from board.domain.access import Forbidden
from board.domain.lifecycle import TransitionError
from board.usecases.caller import CallerCases
from board.usecases.core import Conflict, Invalid, NotFound, UnitConflict, active_policies
from board.usecases.creation import CreationCases, NewJob
from board.usecases.incidents import IncidentCases
from board.usecases.jobs import JobCases
from board.usecases.oversight import FINDINGS, OversightCases
from board.usecases.units import UNIT_STATUSES, UnitCases

__all__ = ["FINDINGS", "UNIT_STATUSES", "Conflict", "Dispatch", "Forbidden", "Invalid", "NewJob",
           "NotFound", "TransitionError", "UnitConflict", "active_policies"]


class Dispatch(JobCases, IncidentCases, UnitCases, OversightCases, CreationCases, CallerCases):
    """The use cases, bound to one database and one map."""

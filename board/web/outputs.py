"""What the JSON API answers, as pydantic models: the response half of the OpenAPI document.

The API builds its answers as plain dicts (board.web.api's *_json functions, fast for a board of
hundreds of cards); these models say what those dicts hold. Every model is closed
(``additionalProperties: false``), so a key added to an answer without adding it here is a
contract mismatch that the API tests and the schemathesis run report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from board.domain.flags import FLAG_LABELS
from board.domain.lifecycle import Status
from board.domain.policies import KINDS
from board.usecases import UNIT_STATUSES

JobStatus = Literal[tuple(s.value for s in Status)]  # type: ignore[valid-type]
FlagName = Literal[tuple(FLAG_LABELS)]  # type: ignore[valid-type]
PolicyKind = Literal[tuple(KINDS)]  # type: ignore[valid-type]


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NextStep(Output):
    action: str
    label: str


class Card(Output):
    """A job as every screen shows it."""

    id: int
    version: int
    status: JobStatus
    status_label: str
    priority: int = Field(ge=1, le=4)
    complaint_type: str
    descriptor: str
    address: str
    precinct: str | None
    sector: str | None
    lat: float | None
    lon: float | None
    received_at: datetime
    created_at: datetime
    unit_id: int | None
    unit: str | None
    stack_pos: int | None
    photos: int
    overdue: str | None = Field(description="what the job is late for, e.g. not on scene")
    disposition: str | None
    closed_at: datetime | None
    external_key: str | None
    flags: list[FlagName]
    next_step: NextStep | None


class Event(Output):
    """One append-only timeline event."""

    seq: int
    job_id: int | None
    unit_id: int | None
    precinct: str | None
    at: datetime
    kind: str
    actor: str
    source: str = Field(description="web, api, intake, open311, system, …")
    before: str | None
    after: str | None
    payload: dict[str, Any]


class Unit(Output):
    id: int
    callsign: str
    precinct: str
    sector: str | None
    status: Literal[UNIT_STATUSES]  # type: ignore[valid-type]
    status_reason: str | None
    lat: float | None
    lon: float | None
    position_at: datetime | None
    version: int


class JobDetail(Card):
    """Every field of a job (photo addresses come from view_photo, which records the view),
    its flags and timeline."""

    source: str
    route_method: str
    location_type: str
    borough: str
    fields: dict[str, Any] = Field(description="the 311 request's own fields, without photo "
                                   "addresses or the caller's contact details")
    has_contact: bool = Field(description="the caller left contact details: view_contact "
                              "shows them and records who saw them")
    resolution: str | None
    summons_count: int | None
    administrative: bool
    ack_due: datetime
    arrive_due: datetime
    close_due: datetime
    external_status: str | None
    updated_at: datetime
    unit_detail: Unit | None
    allowed_actions: list[str]
    timeline: list[Event]


class Lane(Output):
    """A unit on tour with its stack of jobs, top first."""

    id: int
    version: int
    callsign: str
    sector: str | None
    status: str
    status_reason: str | None
    activity: str
    lat: float | None
    lon: float | None
    jobs: list[Card]


class Board(Output):
    precinct: str
    queue: list[Card]
    lanes: list[Lane]
    closed: list[Card]
    unrouted: list[Card]
    counters: dict[str, int]


class UnitList(Output):
    units: list[Unit]


class ActionResult(Output):
    event: Event
    job: Card | None
    url: str = Field(None, description="view_photo: the photo's address")  # type: ignore[assignment]
    contact: dict[str, str] = Field(None, description="view_contact: the caller's "  # type: ignore[assignment]
                                    "contact details")


class JobWritten(Output):
    """A job created whose read-back failed (the database went away after the commit): what
    was written, so the client does not retry it into a second job."""

    id: int
    event: Event
    job: None = Field(description="not read back; GET the job for every field")


class UnitResult(Output):
    event: Event
    unit: Unit | None


class OfficerQueue(Output):
    unit: Unit | None
    jobs: list[Card]


class Disposition(Output):
    code: str
    label: str
    resolution: str = Field(description="the text 311 publishes")
    administrative: bool
    summons: bool
    arrival_expected: bool


class DispositionList(Output):
    dispositions: list[Disposition]


class Rule(Output):
    complaint_type: str
    descriptor: str
    priority: int = Field(ge=1, le=4)
    ack_minutes: int
    arrive_minutes: int
    close_minutes: int


class RuleList(Output):
    rules: list[Rule]


class RuleResult(Output):
    event: Event
    rule: Rule


class Policy(Output):
    """A close policy setting; a precinct's own setting of a kind overrides the citywide one."""

    scope: str = Field(description='"*" for citywide, or a precinct id')
    kind: PolicyKind
    text: str = Field(description="the policy as the close form says it")
    enabled: bool
    minutes: int | None = Field(description="the N of note_quick_close")
    metres: int | None = Field(None, description="the N of position_on_scene")
    dispositions: list[str] = Field(default_factory=list,
                                    description="the dispositions evidence_photo applies to")


class PolicyList(Output):
    policies: list[Policy] = Field(description="the citywide settings and those of your "
                                   "precincts, enabled or not")
    kinds: dict[str, str] = Field(description="every policy kind and what it means")


class PolicyResult(Output):
    event: Event
    policy: Policy


class OpenAPI(BaseModel):
    """An OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")


# -- errors: one shape, {"error": code, "detail": sentence}, plus what each kind adds ---------


class Error(Output):
    """A refusal: 401, 403 and 404 carry no data about what was asked for."""

    error: str
    detail: str


class InvalidError(Output):
    error: Literal["invalid"]
    detail: str
    fields: dict[str, str] = Field(description="field name → what is wrong with it")


class _Changed(Output):
    """A stale version: who changed the thing meanwhile, how, when, and its version now."""

    error: Literal["conflict"]
    detail: str
    by: str = Field(description="who changed it")
    kind: str = Field(description="what they did")
    at: datetime | None
    your_version: int
    current_version: int


class ConflictError(_Changed):
    """A job changed since the client read it."""

    job_id: int


class UnitConflictError(_Changed):
    """A unit changed since the client read it."""

    unit_id: int


KEY_IN_USE = "a request with this Idempotency-Key is still running; retry"


class KeyInUseError(Output):
    """A write sent with an Idempotency-Key while an earlier request with that key is still
    running (header Retry-After): send it again then, with the same key."""

    error: Literal["conflict"]
    detail: Literal[KEY_IN_USE]  # type: ignore[valid-type]


class TransitionError(Output):
    error: Literal["invalid_transition"]
    detail: str
    action: str
    status: str


class ServerError(Output):
    """The server could not answer; quote the request id (also in X-Request-ID)."""

    error: Literal["server_error"]
    detail: str
    request_id: str

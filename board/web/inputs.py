"""What each write takes, as pydantic models: one model per request, for the JSON API and the
HTML forms alike (board.web.validation reads either into it). The API's OpenAPI document is
generated from these same classes, so what is documented is what is checked.

A new write adds its model here (fields from board.web.validation's types) and names it as the
``body`` of its endpoint in board.web.api, or reads it with ``read_form`` in a page.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, StrictBool

from board.domain.dispositions import ADMINISTRATIVE, FIELD
from board.domain.policies import (
    CITYWIDE,
    KINDS,
    MAX_METRES,
    MAX_MINUTES,
    MIN_METRES,
    NOTE_QUICK_CLOSE,
    POSITION_ON_SCENE,
)
from board.domain.priorities import ANY
from board.usecases import FINDINGS, UNIT_STATUSES
from board.web.validation import Code, Input, Integer, Number, Text, YesNo

MINUTES = (1, 525_600)  # a deadline further out than a year is a typo
EMAIL = r"^[^\s@<>,;\"]{1,64}@[^\s@<>,;\"]+\.[^\s@<>,;\"]+$"
PHONE = r"^\+?[0-9][0-9 ().-]{5,30}$"
Email = Text(254, "The caller's email, for notices (personal data: recorded reveals only).",
             pattern=EMAIL, says="must be an email address")
Phone = Text(32, "The caller's phone, for text notices (personal data).", pattern=PHONE,
             says="must be a phone number")
Consent = YesNo("The caller agrees to be told by email or text how the request went.")

Version = Integer(1, doc="The job version this change is made against; a stale one gets 409.")
UnitId = Integer(1, doc="The unit to put the job on.")
StackPosition = Integer(0, 10_000, doc="Place in the unit's stack, 0 = top; default the end.")
Reason = Text(300, "Why, for the timeline.", required=True)
Note = Text(2000, "Optional note on the close.", multiline=True)
Priority = Integer(1, 4, doc="1 urgent, 2 high, 3 routine, 4 low.")
Lat = Number(-90, 90, "Latitude (WGS84).")
Lon = Number(-180, 180, "Longitude (WGS84).")
FieldDisposition = Literal[tuple(d.code for d in FIELD)]  # type: ignore[valid-type]
AdminDisposition = Literal[tuple(d.code for d in ADMINISTRATIVE)]  # type: ignore[valid-type]
UnitStatusName = Literal[UNIT_STATUSES]  # type: ignore[valid-type]
PolicyKind = Literal[tuple(KINDS)]  # type: ignore[valid-type]
PolicyScope = Code('"*" for citywide, or a precinct id.', also=(CITYWIDE,))


def _together(*names: str) -> dict[str, Any]:
    """JSON Schema for "give all of these (not null) or none"."""
    def given(name: str) -> dict[str, Any]:
        return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
    return {"allOf": [{"if": given(n), "then": given(m)} for n in names for m in names
                      if m != n]}


class Together(Input):
    """A model some of whose optional fields go in pairs (lat and lon): given one, the
    other is named as missing (board.web.validation.check applies it)."""

    together: ClassVar[tuple[tuple[str, ...], ...]] = ()


# -- jobs -------------------------------------------------------------------------------------


class NewJob(Together):
    """A job created by hand; routed by its coordinates, prioritised by the rules."""

    model_config = ConfigDict(json_schema_extra=_together("lat", "lon"))
    together = (("lat", "lon"),)

    complaint_type: Text(120, "311 complaint type, e.g. Noise - Residential.", required=True)
    descriptor: Text(200, "311 descriptor, e.g. Loud Music/Party.") = ""
    address: Text(300, "Incident address.") = ""
    lat: Lat | None = None
    lon: Lon | None = None
    description: Text(2000, "What the caller said.", multiline=True) = ""
    email: Email = ""
    phone: Phone = ""
    contact_consent: Consent = False


class Versioned(Input):
    version: Version


class Assign(Versioned):
    unit_id: UnitId
    position: StackPosition | None = None


class Reorder(Versioned):
    position: StackPosition


class WithReason(Versioned):
    reason: Reason


Accuracy = Number(0, 10_000, "The position's accuracy in metres, as the device reported it.")


class Positioned(Versioned, Together):
    """A step that may carry the phone's one-shot position (proof of presence): lat and lon
    together, accuracy_m with them. The event records the distance to the job."""

    model_config = ConfigDict(json_schema_extra=_together("lat", "lon"))
    together = (("lat", "lon"),)

    lat: Lat | None = None
    lon: Lon | None = None
    accuracy_m: Accuracy | None = None


class OnScene(Positioned):
    pass


class Close(Positioned):
    disposition: FieldDisposition  # A field disposition code (GET /dispositions).
    summons_count: Integer(0, 1000, doc="Summonses issued; required for summons_issued "
                           "unless summons_numbers are given.") | None = None
    summons_numbers: Text(1000, "Summons numbers, separated by commas or spaces (each in "
                          "the department's format; one already on another job is "
                          "refused).") | list[Text(40)] = ""
    note: Note = ""


class AdminClose(Versioned):
    disposition: AdminDisposition
    note: Note = ""


class SetPriority(Versioned):
    priority: Priority


class AddNote(Input):
    text: Text(2000, "The note.", required=True, multiline=True)


class Route(Versioned):
    precinct: Code("Precinct id, e.g. 75.")
    sector: Code("Sector id within the precinct.") | None = None


class Nothing(Input):
    """No fields: the action needs only the job."""


class ViewPhoto(Input):
    index: Integer(0, 1000, doc="Which photo, from 0.")


# -- units and rules --------------------------------------------------------------------------


class UnitStatus(Input):
    version: Integer(1, doc="The unit version this change is made against.")
    status: UnitStatusName
    reason: Text(200, "Required for out_of_service.") = ""


class Position(Input):
    lat: Lat
    lon: Lon


class RuleChange(Input):
    """A priority rule; the same fields come back in GET /rules. The stages' minutes go in
    order, ack_minutes ≤ arrive_minutes ≤ close_minutes: a rule out of order is a 422 naming
    the field (JSON Schema cannot compare two fields, so the schema cannot say it itself)."""

    complaint_type: Text(120, "311 complaint type the rule applies to.", required=True)
    descriptor: Text(200, f"Descriptor, or {ANY!r} for any.") = ANY
    priority: Priority
    ack_minutes: Integer(*MINUTES, doc="Minutes to acknowledge.")
    arrive_minutes: Integer(*MINUTES, doc="Minutes to arrive on scene.")
    close_minutes: Integer(*MINUTES, doc="Minutes to close.")


def _needed_by(kind: str, name: str) -> dict[str, Any]:
    """JSON Schema for "a policy of this kind needs this field, not null" (the API refuses it
    otherwise, enabled or not: audit defect 11)."""
    return {"if": {"required": ["kind"], "properties": {"kind": {"const": kind}}},
            "then": {"required": [name], "properties": {name: {"type": "integer"}}}}


# -- review findings and the command log ------------------------------------------------------


class Finding(Versioned):
    """A supervisor's finding on a flagged close (the review queue)."""

    finding: Literal[tuple(FINDINGS)]  # type: ignore[valid-type]
    comment: Text(2000, "What was found, for the timeline.", required=True, multiline=True)


class LogEntry(Input):
    """A line in a precinct's command log; a correction names the entry it corrects."""

    text: Text(4000, "The entry; #123 links job 123.", required=True, multiline=True)
    corrects: Integer(1, doc="The entry this one corrects.") | None = None


# -- close policies ---------------------------------------------------------------------------


class PolicyChange(Input):
    """One close policy turned on or off, citywide or for a precinct (admins; a precinct's
    setting overrides the citywide one)."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        _needed_by(NOTE_QUICK_CLOSE, "minutes"), _needed_by(POSITION_ON_SCENE, "metres")]})

    scope: PolicyScope = CITYWIDE
    kind: PolicyKind
    enabled: StrictBool
    minutes: Integer(1, MAX_MINUTES, doc="The N of note_quick_close; required for it, "
                     "ignored for the others.") | None = None
    metres: Integer(MIN_METRES, MAX_METRES, doc="The N of position_on_scene; required for "
                    "it, ignored for the others.") | None = None
    dispositions: Text(400, "evidence_photo's field disposition codes, separated by commas; "
                       "required for it, ignored for the others.") = ""


# -- Open311 ----------------------------------------------------------------------------------

URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/]+\S*$"


class ServiceRequest(Together):
    """GeoReport v2's POST requests: the form fields this server keeps (api_key and
    jurisdiction_id are the transport's; attribute[…] is read against the service
    definition)."""

    together = (("lat", "long"),)

    service_code: Text(120, "A service_code from services.", required=True)
    lat: Lat | None = None
    long: Lon | None = None
    address_string: Text(300, "Where, as the caller said it.") = ""
    address_id: Text(120) = ""
    description: Text(4000, "What the caller said.", multiline=True) = ""
    media_url: Text(2000, "A photo's address.", pattern=URL,
                    says="must be an http(s) URL") = ""
    email: Text(300) = ""
    device_id: Text(300) = ""
    account_id: Text(300) = ""
    first_name: Text(300) = ""
    last_name: Text(300) = ""
    phone: Text(300) = ""
    contact_consent: Consent = False


# -- the caller's status page -------------------------------------------------------------


class SurveyAnswer(Input):
    """The city survey's question on the public status page, and "is it still there?"."""

    satisfaction: Integer(1, 5, doc="Overall, I am satisfied with the way my service request "
                          "was handled: 1 strongly disagree … 5 strongly agree.")
    still_there: YesNo("Is the problem still there?")

"""What of a caller's request is private, and how it may be seen. Pure rules, no I/O.

A caller's photos are seen only through the recorded view (`Dispatch.view_photo`) and contact
details only through the recorded reveal (`Dispatch.view_contact`): each writes an event, so
QSTAT can count closes made without looking and an audit can see who read whose phone number.
Every other read (the API, pages, live fragments, Open311) gets a job's 311 fields without
them, and the timeline never repeats what a reveal showed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Fields naming or reaching the caller (Open311 sends these; intake may keep more).
CONTACT_FIELDS = frozenset({
    "first_name", "last_name", "name", "caller_name", "phone", "phone_number", "email",
    "email_address", "account_id", "device_id", "contact_consent",
})
#: The caller's own consent to notices (Open311 `contact_consent`, the API's likewise).
CONSENT = "contact_consent"
#: Photo links, under any of the names intake and Open311 use (Socrata, Open311, other exports).
MEDIA_FIELDS = frozenset(
    {
        "media_url",
        "media_urls",
        "photo_url",
        "photo_urls",
        "image_url",
        "image_urls",
        "media",
        "photo",
        "photos",
    }
)
PHOTO_FIELDS = MEDIA_FIELDS


def public_fields(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """A job's 311 fields without photo links or caller contact details."""
    return {k: v for k, v in (fields or {}).items()
            if k not in PHOTO_FIELDS and k not in CONTACT_FIELDS}


def contact_of(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """The caller's contact details, for a recorded reveal only."""
    return {k: v for k, v in (fields or {}).items() if k in CONTACT_FIELDS and v}


def public_payload(kind: str, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """An event's payload as a timeline shows it: a photo view says which photo, never where
    it is (events recorded before photo links were kept out of payloads carry one)."""
    out = dict(payload or {})
    if kind == "view_photo":
        out.pop("url", None)
    return out


def contact_fields(email: str, phone: str, consent: bool) -> dict[str, Any]:
    """The caller's contact as a job keeps it in its fields; consent only with a contact."""
    out: dict[str, Any] = {k: v for k, v in (("email", email), ("phone", phone)) if v}
    if consent and out:
        out[CONSENT] = True
    return out

"""What people read when their input is refused: field labels, never internal field names.

A use case says which field is wrong by its name (`summons_count`), which the JSON API keeps
(clients match on it); a page says it with the label of the form's field ("Summons count").
The one table of those labels is here; a field not in it reads as its name in words.
"""

from __future__ import annotations

FIELD_LABELS = {
    "summons_count": "Summons count",
    "summons_numbers": "Summons numbers",
    "unit_id": "Unit",
    "lead_id": "Linked job",
    "job_id": "Job",
    "created_at": "Created",
    "closed_at": "Closed",
    "disposition": "Disposition",
    "note": "Note",
    "reason": "Reason",
    "precinct": "Precinct",
    "sector": "Sector",
    "satisfaction": "Satisfaction",
    "survey": "Survey",
    "incident": "Incident",
    "corrects": "Correction",
    "text": "Entry",
    "from": "From",
    "to": "To",
    "stage": "Stage",
    "version": "Version",
    "photos": "Photos",
    "position": "Position",
}


def label(field: str) -> str:
    """The label people read for a field: "summons_count" → "Summons count"."""
    known = FIELD_LABELS.get(field)
    if known:
        return known
    words = field.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def refusal(e: Exception) -> str:
    """An exception's message for a page: per-field errors under their labels."""
    errors = getattr(e, "errors", None)
    if isinstance(errors, dict) and errors:
        return "; ".join(f"{label(str(k))}: {v}" for k, v in errors.items())
    return str(e)

"""The OpenAPI 3.1 document of /api/v1, generated: paths from board.web.api's endpoint table (the
one the router is built from), schemas from the pydantic models the server validates with
(board.web.inputs) and answers with (board.web.outputs). Nothing in it is written by hand except the
prose, so the document cannot say one thing while the server does another.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from board.web import outputs
from board.web.endpoint import PREFIX, Endpoint
from board.web.validation import Code, Integer

REF = "#/components/schemas/{model}"


class _Schema(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every property (the name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


# Each error status: its name under components/responses, what it means, its body.
ERRORS: dict[int, tuple[str, str, list[type[BaseModel]]]] = {
    400: ("BadRequest", "A query string the server refuses before reading it: a control "
          "character in a name or a value.", [outputs.Error]),
    401: ("Unauthorized", "No bearer token, or not a valid one.", [outputs.Error]),
    403: ("Forbidden", "Out of role or out of precinct scope. Carries no job data.",
          [outputs.Error]),
    404: ("NotFound", "No such job, unit or precinct.", [outputs.Error]),
    409: ("Conflict", "A stale version (who changed it, and the current version) or a step "
          "the job's status does not allow; on any write sent with an Idempotency-Key, also "
          "an earlier request with that key still running (KeyInUseError, with Retry-After: "
          "send it again then, with the same key).",
          [outputs.ConflictError, outputs.UnitConflictError, outputs.TransitionError,
           outputs.KeyInUseError]),
    422: ("Invalid", "Bad input: malformed JSON, wrong types, missing or unknown fields, "
          "refused values; one message per field.", [outputs.InvalidError]),
    500: ("ServerError", "The server could not answer. No details; the request id (also in "
          "X-Request-ID) finds them in the log.", [outputs.ServerError]),
    503: ("Unavailable", "The database is not reachable just now; try again after "
          "Retry-After seconds.", [outputs.Error]),
}
PATH_PARAMS = {
    "job_id": (Integer(1), "A job id."),
    "unit_id": (Integer(1), "A unit id."),
    "precinct": (Code(), "Precinct id, e.g. 75."),
}

# The Idempotency-Key header every write takes (board.web.api serves it by this same schema):
# 1 to 100 printable ASCII characters, no space at either end (HTTP would strip it).
WRITES = frozenset({"POST", "PUT"})
IDEMPOTENCY_KEY: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": 100,
    "pattern": r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"}
IDEMPOTENCY_DOC = (
    "Makes a retry safe: the first request with a key is run and its answer kept for 24 h; "
    "the same request sent again with the key gets that answer (header Idempotent-Replayed: "
    "true) and writes nothing; a write that committed but whose answer was lost is answered "
    "from what it wrote, never run again. The same key with another method, path or body is "
    "a 422; while the first request with the key is still running, a 409 (KeyInUseError) "
    "with Retry-After. Keys belong to the token's user.")


def _models(endpoints: tuple[Endpoint, ...]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for ep in endpoints:
        found += [ep.returns, *ep.also] + ([ep.body] if ep.body is not None else [])
    for _, _, bodies in ERRORS.values():
        found += bodies
    return list(dict.fromkeys(found))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(models: list[type[BaseModel]]) -> dict[str, Any]:
    schema = _ref(models[0]) if len(models) == 1 else {"oneOf": [_ref(m) for m in models]}
    return {"application/json": {"schema": schema}}


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": ep.name, "tags": [ep.tag], "summary": ep.summary}
    params = []
    for name in re.findall(r"{(\w+)}", ep.path):
        kind, doc = PATH_PARAMS[name]
        params.append({"name": name, "in": "path", "required": True, "description": doc,
                       "schema": TypeAdapter(kind).json_schema()})
    keyed = ep.method in WRITES and not ep.public
    if keyed:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "description": IDEMPOTENCY_DOC, "schema": IDEMPOTENCY_KEY})
    if params:
        op["parameters"] = params
    if ep.body is not None:
        needed = any(f.is_required() for f in ep.body.model_fields.values())
        op["requestBody"] = {"required": needed, "content": _content([ep.body])}
    ok: dict[str, Any] = {"description": "Created." if ep.status == 201 else "OK.",
                          "content": _content([ep.returns, *ep.also])}
    if ep.location:
        ok["headers"] = {"Location": {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(ep.status): ok}
    # 400: any query string (RefuseControlCharacters); 409: a write's Idempotency-Key in use
    for code in sorted({400, *ep.errors, *((409,) if keyed else ()), 500, 503}):
        responses[str(code)] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    op["responses"] = responses
    if ep.public:
        op["security"] = []
    return op


# Paths served by their own modules (board/qstat_pages.py), documented with the rest.
EXTRA_PATHS: dict[str, dict[str, Any]] = {}


def document(endpoints: tuple[Endpoint, ...]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an endpoint table (board.web.api's, at /api/v1/openapi.json)
    and of the paths other modules registered: built again when one registers later, so the
    order modules are imported in never leaves a path out."""
    return _document(endpoints, tuple(EXTRA_PATHS))


@cache
def _document(endpoints: tuple[Endpoint, ...], extra: tuple[str, ...]) -> dict[str, Any]:
    _, defs = models_json_schema([(m, "validation") for m in _models(endpoints)], ref_template=REF,
                                 schema_generator=_Schema)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(PREFIX + ep.path, {})[ep.method.lower()] = _operation(ep)
    paths.update(EXTRA_PATHS)
    responses = {name: {"description": text, "content": _content(models)}
                 for name, text, models in ERRORS.values()}
    responses["Unauthorized"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    responses["Unavailable"]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    responses["Conflict"]["headers"] = {"Retry-After": {
        "schema": {"type": "string"}, "description": "with KeyInUseError only"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "311 Dispatch Board API", "version": "1",
            "description": "Every dispatch use case as JSON. Authenticate with "
                           "`Authorization: Bearer <token>` (`board tokens create USER`). "
                           "Writes name the job version they were made against. Every error "
                           "is JSON: `{\"error\": code, \"detail\": sentence}` plus what its "
                           "kind adds (field messages, who changed a job, a request id).",
        },
        "security": [{"bearerAuth": []}],
        "tags": [{"name": t} for t in dict.fromkeys(ep.tag for ep in endpoints)],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `board tokens create USER`; it acts as that "
                               "user, with the user's role and precincts."}},
            "schemas": defs.get("$defs", {}),
            "responses": responses,
        },
    }

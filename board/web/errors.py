"""What a client gets when a request cannot be served, on every surface of the app.

Three surfaces, three forms of the same answer:

* ``/api/`` — JSON ``{"error": code, "detail": sentence, ...}`` (the shapes are in the
  OpenAPI document: 401/403/404 ``Error``, 409 ``ConflictError``, 422 ``InvalidError``, 500
  ``ServerError`` with the request id);
* ``/open311/`` — GeoReport v2's error list, in the format the URL asked for (``.xml`` or
  JSON);
* everything else — the app's error page (extends base.html) with a way back.

A server error is never a traceback: the client gets the request id, the log gets the
traceback under the same id (``X-Request-ID``, from board.observability.logs).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Scope

from board.observability.redact import shape
from board.web.browser_policy import HEADERS

log = logging.getLogger(__name__)

#: The API's error code for each HTTP status it answers with.
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media",
         422: "invalid", 429: "too_many_requests", 500: "server_error", 503: "unavailable"}
TITLES = {400: "Bad request", 401: "Please log in", 403: "Not allowed", 404: "Not found",
          405: "Not allowed here", 409: "Changed meanwhile", 429: "Too many tries",
          500: "Something went wrong", 503: "Temporarily unavailable"}


def request_id(scope: Scope) -> str:
    """This request's id: the one board.observability.logs.RequestIds gave it (and echoes as
    X-Request-ID), or a new one where that middleware did not run."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex[:16]
    return state["request_id"]


def surface(path: str) -> str:
    """"api", "open311" or "page": who is asking decides the form of the answer."""
    if path == "/api" or path.startswith("/api/"):
        return "api"
    if path == "/open311" or path.startswith("/open311/"):
        return "open311"
    return "page"


def api_error(status: int, detail: str, headers: dict[str, str] | None = None,
              **extra: Any) -> JSONResponse:
    """The API's error body: a fixed code, a sentence, and what the code's schema adds."""
    return JSONResponse({"error": CODES.get(status, "error"), "detail": detail, **extra},
                        status, headers=headers)


def error_response(request: Request, status: int, detail: str,
                   headers: dict[str, str] | None = None) -> Response:
    """The right answer for this request's surface. Reusable by any handler (a 503 while
    the database is down, a 429 from a throttle)."""
    kind = surface(request.url.path)
    if kind == "api":
        extra = {"request_id": request_id(request.scope)} if status >= 500 else {}
        return api_error(status, detail, headers, **extra)
    if kind == "open311":
        from board.web.open311_format import error_for

        return error_for(request, status, detail, headers)
    return error_page(request, status, detail, headers)


def error_page(request: Request, status: int, detail: str,
               headers: dict[str, str] | None = None, actor: Any = None) -> Response:
    """The app's page for an error, with the way back; plain HTML if even that fails."""
    rid = request_id(request.scope)
    context = {"actor": actor, "csrf": "", "now": None, "flashes": [], "code": status,
               "title": TITLES.get(status, f"Error {status}"), "message": detail,
               "request_id": rid if status >= 500 else None,
               "retry": request.url.path if status >= 500 and request.method == "GET" else None}
    try:
        return request.app.state.templates.TemplateResponse(
            request, "error.html", context, status_code=status, headers=headers)
    except Exception:  # the templates themselves are broken: still a page, still the id
        log.exception("error page failed (request %s)", rid)
        return HTMLResponse(f"<!doctype html><title>{status}</title><h1>Error {status}</h1>"
                            f"<p>Request {rid}.</p><p><a href=\"/\">Back to my board</a></p>",
                            status, headers=headers)


_DETAILS = {404: "There is nothing at this address.", 405: "This address does not take that "
            "method."}


async def http_exception(request: Request, exc: Exception) -> Response:
    """A 404 for an unknown path, a 405, a CSRF 403: in the form of the surface asked."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status in (204, 304):
        return Response(status_code=status, headers=exc.headers)
    detail = exc.detail if exc.detail and exc.detail != _phrase(status) else \
        _DETAILS.get(status, _phrase(status).lower())
    kind = surface(request.url.path)
    if kind == "api" and status == 404:
        detail = "no such endpoint; see /api/v1/openapi.json"
    if kind == "page" and status == 404:  # a logged-in user keeps their header (who, log out)
        return error_page(request, status, detail, exc.headers, await _actor_or_none(request))
    return error_response(request, status, detail, exc.headers)


async def _actor_or_none(request: Request) -> Any:
    from starlette.concurrency import run_in_threadpool

    from board.auth import accounts as auth

    try:
        return await run_in_threadpool(auth.current_actor, request)
    except Exception:  # a 404 page never fails for want of a session
        return None


async def server_error(request: Request, exc: Exception) -> Response:
    """Any exception nothing else handled: logged with the request id; the client gets the
    id and a sentence, never the traceback."""
    rid = request_id(request.scope)
    bound = getattr(exc, "params", None) if isinstance(exc, StatementError) else None
    log.error("request %s: %s %s failed%s", rid, request.method, request.url.path,
              f" (bound: {shape(bound)})" if bound is not None else "", exc_info=exc)
    if surface(request.url.path) == "page":
        response = error_page(request, 500, "The board could not show this page. Try again in "
                              "a moment.")
    else:
        response = error_response(request, 500, f"the server could not answer this request; "
                                  f"quote request id {rid}")
    response.headers["X-Request-ID"] = rid
    # Starlette answers an unhandled error outside the middleware stack, so SecurityHeaders
    # never sees this response: it carries the same headers itself.
    for name, value in HEADERS:
        response.headers.setdefault(name.decode(), value.decode())
    return response


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


exception_handlers: dict[Any, Any] = {HTTPException: http_exception, Exception: server_error}

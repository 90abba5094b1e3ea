"""The caller's public status page, `/r/<token>`: no log-in, no cookie, nothing but the
request's own steps, its resolution and the survey (board.caller.status reads only those).

The survey form is safe on an anonymous page without a session: its hidden token is bound to
the page's token by the server's secret (and a browser's Origin, when sent, must be this
site), so only a form this page served can answer. Unknown addresses and answers are
rate-limited per client address; a second answer is refused politely; an expired address is a
clear 410.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.auth.throttle import Window
from board.caller import status
from board.usecases import Dispatch, Invalid, NotFound
from board.usecases.caller import CALLER, SATISFACTION, AlreadyAnswered
from board.web import inputs
from board.web.validation import read_form

#: Per client address: how many unknown addresses, and how many answers, a minute.
MISSES_PER_MINUTE = 30
ANSWERS_PER_MINUTE = 10
#: The page is personal to whoever holds the address: never cached, never indexed; its address
#: goes as a referrer only to this site (the board's same-origin policy: "no-referrer" would
#: make the browser send "Origin: null" with the survey, which the form refuses).
HEADERS = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"}


class Guard:
    """The page's rate limits, in this process (like the log-in throttle)."""

    def __init__(self) -> None:
        self.misses = Window(MISSES_PER_MINUTE, 60)
        self.answers = Window(ANSWERS_PER_MINUTE, 60)


def guard_of(request: Request) -> Guard:
    state = request.app.state
    if not hasattr(state, "caller_guard"):
        state.caller_guard = Guard()
    return state.caller_guard


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _page(request: Request, name: str, code: int = 200, **context: Any) -> Response:
    headers = dict(HEADERS)
    if code == 429:
        headers["Retry-After"] = "60"
    return request.app.state.templates.TemplateResponse(
        request, name, {"SATISFACTION": SATISFACTION, **context}, status_code=code,
        headers=headers)


def _problem(request: Request, code: int, title: str, message: str) -> Response:
    return _page(request, "status_problem.html", code, title=title, message=message)


def _gone(request: Request) -> Response:
    days = request.app.state.settings.status_page_days
    return _problem(request, 410, "This status page has expired",
                    f"Status pages close {days} days after the request was closed. To report "
                    "the problem again, call 311 or use the 311 app.")


def _not_found(request: Request) -> Response:
    guard_of(request).misses.failed(_client(request))
    return _problem(request, 404, "No such status page",
                    "Check the address in the message you received: it must be copied whole.")


async def _read(request: Request, token: str) -> status.StatusView | Response:
    if guard_of(request).misses.retry_after(_client(request)):
        return _problem(request, 429, "Too many tries",
                        "Too many unknown addresses from your connection. Wait a minute.")
    settings = request.app.state.settings
    dispatch: Dispatch = request.app.state.dispatch
    try:
        return await run_in_threadpool(status.view, dispatch.engine, token,
                                       dispatch.clock(), settings.status_page_days)
    except NotFound:
        return _not_found(request)
    except status.Gone:
        return _gone(request)


def _show(request: Request, token: str, view: status.StatusView, code: int = 200,
          **context: Any) -> Response:
    secret = request.app.state.settings.secret_key
    return _page(request, "status.html", code, v=view, token=token,
                 form_token=status.form_token(secret, token), **context)


async def get_status(request: Request) -> Response:
    token = request.path_params["token"]
    found = await _read(request, token)
    if isinstance(found, Response):
        return found
    return _show(request, token, found, thanks=request.query_params.get("answered") == "1")


def _same_site(request: Request) -> bool:
    """A browser that says where the form came from must say this site (PUBLIC_URL or the
    address it was served at); one that says nothing (older browsers) is let through on the
    form token alone."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ours = {str(request.base_url).rstrip("/"), request.app.state.settings.public_url or ""}
    return origin.rstrip("/") in ours


async def post_answer(request: Request) -> Response:
    token = request.path_params["token"]
    guard = guard_of(request)
    client = _client(request)
    if guard.answers.retry_after(client):
        return _problem(request, 429, "Too many answers",
                        "Too many answers from your connection. Wait a minute and try again.")
    found = await _read(request, token)
    if isinstance(found, Response):
        return found
    form = await request.form(max_files=0, max_fields=10)
    secret = request.app.state.settings.secret_key
    if not _same_site(request) or not status.form_token_ok(secret, token,
                                                          str(form.get("form_token", ""))):
        return _problem(request, 403, "This form has expired",
                        "Open the status page again and answer from there.")
    guard.answers.failed(client)  # every answer counts towards the limit
    if found.answer is not None:
        return _show(request, token, found, 409, refused="You have answered already: thank "
                     "you. Your answer is below.")
    if not found.closed:
        return _show(request, token, found, 409, refused="The survey opens when the request "
                     "is closed.")
    try:
        answer = read_form(inputs.SurveyAnswer, form)
    except Invalid as e:
        return _show(request, token, found, 422, errors=e.errors)
    dispatch: Dispatch = request.app.state.dispatch
    try:
        await run_in_threadpool(dispatch.answer_survey, CALLER, found.job_id,
                                answer.satisfaction, answer.still_there)
    except AlreadyAnswered:
        pass  # a second tab answered first: show the answer kept
    except Invalid as e:
        return _show(request, token, found, 409, refused=" ".join(e.errors.values()))
    return Response(status_code=303, headers={**HEADERS,
                                              "Location": f"/r/{token}?answered=1"})


routes: list = [
    Route("/r/{token}", get_status, methods=["GET"]),
    Route("/r/{token}", post_answer, methods=["POST"]),
]

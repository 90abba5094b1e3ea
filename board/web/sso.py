"""Single sign-on pages: "Sign in with …" starts the flow, the callback ends it in a board
session exactly like a local log-in (board/auth/oidc.py does the OpenID Connect part).

A refused sign-in (no access, wrong `state`, an ID token that fails verification or has
expired) gets a page that says why, counts against the address's log-in throttle, and leaves
nothing behind: no user, no session.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from board.auth import accounts as auth
from board.auth.oidc import CALLBACK, Refused, SingleSignOn
from board.observability.metrics import LOGIN_FAILURES
from board.web.pages import _safe_next, home_of, render

#: Session keys: where to go after the sign-in, and "this session came through the provider".
NEXT, VIA_SSO = "sso_next", "sso"


def _sso(request: Request) -> SingleSignOn | None:
    return getattr(request.app.state, "sso", None)


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def refused(request: Request, e: Refused) -> Response:
    LOGIN_FAILURES.inc()
    request.app.state.login_guard.per_address.failed(_address(request))
    title = "No access" if e.reason == "unmapped" else "Not signed in"
    return render(request, None, "error.html", e.status, title=title, message=str(e),
                  code=e.status, retry="/login")


def _throttled(request: Request) -> Response | None:
    wait = request.app.state.login_guard.per_address.retry_after(_address(request))
    if not wait:
        return None
    return render(request, None, "error.html", 429, title="Too many attempts", code=429,
                  message="Too many failed sign-ins from here: try again in a few minutes.",
                  headers={"Retry-After": str(wait)})


async def begin(request: Request) -> Response:
    sso = _sso(request)
    if sso is None:
        return RedirectResponse("/login", 303)
    if (slow := _throttled(request)) is not None:
        return slow
    request.session[NEXT] = _safe_next(request.query_params.get("next"), "")
    try:
        return await sso.begin(request)
    except Refused as e:
        return refused(request, e)


async def callback(request: Request) -> Response:
    sso = _sso(request)
    if sso is None:
        return RedirectResponse("/login", 303)
    if (slow := _throttled(request)) is not None:
        return slow
    wanted = request.session.pop(NEXT, "")
    try:
        person = await sso.finish(request)
        user_id = await run_in_threadpool(
            auth.sso_user, request.app.state.dispatch.engine, person.subject, person.name,
            person.username_hint, person.grant.role, person.grant.precincts, person.grant.unit)
    except Refused as e:
        return refused(request, e)
    except auth.AuthError as e:
        return refused(request, Refused(f"You signed in, but {e}.", 403, "account"))
    await run_in_threadpool(auth.start_session, request, user_id)
    request.session[VIA_SSO] = 1
    actor = await run_in_threadpool(auth.current_actor, request)
    if actor is None:  # disabled between the two steps
        return refused(request, Refused("This account is disabled on the board.", 403))
    return RedirectResponse(_safe_next(wanted, home_of(actor)), 303)


routes = [
    Route("/login/sso", begin),
    Route(CALLBACK, callback),
]

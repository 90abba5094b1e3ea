"""The live pages besides the board: the precinct wall display and the citywide view."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from board.auth import accounts as auth
from board.domain.access import Actor, Forbidden, Role
from board.live import hub as live_hub
from board.live.render import city_counters, totals, utcnow
from board.usecases import queries
from board.web.pages import page, render


async def wall_page(request: Request) -> Response:
    """/wall/<pct>: the wall display. Its first load carries the device token
    (`?token=brd_…`): exchanged at once for a session of that device (lasting as long as the
    token) and redirected to the clean address, so the token stays out of logs and history."""
    precinct = request.path_params["precinct"]
    token = request.query_params.get("token")
    if token:
        engine = request.app.state.dispatch.engine
        row = await run_in_threadpool(auth.token_row, engine, token[:200])
        if row is None or Role(row.role) is not Role.WALL or not auth.actor_from_row(
                row, "wall").sees(precinct):
            return render(request, None, "error.html", 403, code=403,
                          message="This display token is not valid for this precinct.")
        await run_in_threadpool(auth.start_session, request, row.id, row.token_id,
                                row.expires_at)
        return RedirectResponse(f"/wall/{quote(precinct)}", 303)

    @page
    async def show(request: Request, actor: Actor) -> Response:
        queries.check_precinct(actor, precinct)
        ws_url = f"/ws/wall/{quote(precinct)}"
        body = await run_in_threadpool(live_hub.of(request).renderer.wall, precinct)
        return render(request, actor, "wall.html", precinct=precinct, ws_url=ws_url, body=body)
    return await show(request)


async def city_page(request: Request) -> Response:
    @page
    async def show(request: Request, actor: Actor) -> Response:
        if actor.role not in (Role.COMMANDER, Role.ADMIN, Role.SUPERVISOR):
            raise Forbidden("the citywide view is for commanders")
        hub = live_hub.of(request)
        rows = await run_in_threadpool(city_counters, hub.engine, hub.renderer.geo,
                                       actor.precincts, utcnow())
        return render(request, actor, "city.html", rows=rows, total=totals(rows))
    return await show(request)


routes: list[BaseRoute] = [
    Route("/wall/{precinct}", wall_page),
    Route("/city", city_page),
]

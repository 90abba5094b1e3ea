"""The live pages besides the board: the precinct wall display and the citywide view."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from board import auth, queries
from board.access import Actor, Forbidden, Role
from board.live import hub as live_hub
from board.live.render import city_counters, totals, utcnow
from board.pages import page, render


async def wall_page(request: Request) -> Response:
    """/wall/<pct>?token=<device token>: the token logs the device in; only that precinct."""
    precinct = request.path_params["precinct"]
    token = request.query_params.get("token")
    if token:
        engine = request.app.state.dispatch.engine
        actor = await run_in_threadpool(auth.token_actor, engine, token, "wall")
        if actor is None or actor.role is not Role.WALL or not actor.sees(precinct):
            return render(request, None, "error.html", 403, code=403,
                          message="This display token is not valid for this precinct.")
        if request.session.get("user_id") != actor.id:
            request.session.clear()
            request.session["user_id"] = actor.id

    @page
    async def show(request: Request, actor: Actor) -> Response:
        queries.check_precinct(actor, precinct)
        ws_url = f"/ws/wall/{quote(precinct)}" + (f"?token={quote(token)}" if token else "")
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

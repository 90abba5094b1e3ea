"""The tour handover report on the web: /handover/<pct> to read and print, .csv to download.

Scope is checked in board.accountability.handover (the review queue's readers); the precinct in
the path and the `tour` in the query string are untrusted and validated here.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from board.accountability import handover as report
from board.accountability.qstat_tables import text, to_csv
from board.domain.access import Actor
from board.usecases import Invalid, NotFound
from board.web.pages import _dispatch, page, render


def _precinct(request: Request) -> str:
    precinct = request.path_params["precinct"]
    geo = _dispatch(request).geo
    if geo is not None and precinct not in geo.precincts():
        raise NotFound(f"no precinct {precinct}")
    return precinct


def _which(request: Request) -> str:
    which = request.query_params.get("tour") or "current"
    if which not in report.WHICH:
        raise Invalid({"tour": f"one of {', '.join(report.WHICH)}"})
    return which


async def _read(request: Request, actor: Actor) -> report.Handover:
    d = _dispatch(request)
    precinct, which = _precinct(request), _which(request)
    return await run_in_threadpool(report.handover, d.engine, actor, precinct, d.clock(), which)


@page
async def handover_page(request: Request, actor: Actor) -> Response:
    """The report, laid out for the screen and for paper (static/print.css)."""
    try:
        h = await _read(request, actor)
    except Invalid as e:
        return render(request, actor, "error.html", 400, message=f"Not shown: {e}", code=400)
    return render(request, actor, "handover.html", h=h, which=_which(request))


@page
async def handover_csv(request: Request, actor: Actor) -> Response:
    try:
        h = await _read(request, actor)
    except Invalid as e:
        return render(request, actor, "error.html", 400, message=f"Not shown: {e}", code=400)
    rows = [[text(cell) for cell in row] for row in report.csv_rows(h)]
    name = f"handover-{h.precinct}-{h.start.date().isoformat()}-{h.tour}.csv"
    return Response(to_csv(list(report.CSV_HEADER), rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


routes = [
    Route("/handover/{precinct}.csv", handover_csv),
    Route("/handover/{precinct}", handover_page),
]

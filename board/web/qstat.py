"""QSTAT on the web: the sheet page, the jobs behind a figure, CSV downloads and the JSON API.

Every read goes through board.accountability.qstat, which checks the reader's scope: a precinct
supervisor sees their precinct, commanders their precincts, citywide eyes the city; officers
and wall displays are refused. The query string is untrusted: dates, grouping, precinct and
figure are validated here before anything is read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from board.accountability import chronic, qstat
from board.accountability.qstat import ALL, BEHIND, FIGURE_KEYS, FIGURES, GROUPS, RANKED, Sheet
from board.accountability.qstat_tables import (
    GROUP_COLUMNS,
    LABELS,
    SHEET_COLUMNS,
    cell,
    change_shown,
    group_rows,
    sheet_rows,
    shown,
    text,
    to_csv,
)
from board.domain.access import Actor
from board.domain.qstat import DAY, MAX_DAYS, PERCENTILE_METHOD, TOUR_LABELS, Period, period
from board.usecases import Invalid
from board.web import api, charts
from board.web import openapi as openapi_doc
from board.web.pages import _dispatch, _now, page, render

# The group table on screen shows these; the CSV has every figure.
SCREEN_COLUMNS = ("jobs", "closed", "backlog", "median_close_min", "p90_close_min",
                  "closed_within_5_min_share", "closed_within_5_min_of_assignment_share",
                  "closed_without_arrival_share", "photos_viewed_share", "summons_share")
# Headings for the group table, where a share stands alone (not under its count, as in the sheet).
COLUMN_LABELS = {
    "jobs": "Jobs", "closed": "Closed", "backlog": "Open at period end",
    "median_close_min": "Median min receipt → close",
    "p90_close_min": "90th pct min receipt → close",
    "closed_within_5_min_share": "Closed ≤ 5 min of receipt",
    "closed_within_5_min_of_assignment_share": "Closed ≤ 5 min of assignment",
    "closed_without_arrival_share": "Closed without arriving",
    "photos_viewed_share": "Photos viewed", "summons_share": "Summons (parking, driveway)",
}
TABLES = ("sheet", "groups", "dispositions", "trend", "comparison", "verdicts", "chronic")
CHRONIC_COLUMNS = ("precinct", "address", "complaint_type", "most_in_30_days", "in_period",
                   "latest_job", "latest_at")
VERDICT_COLUMNS = ("section", "closes", "closed_jobs", "surveys_answered", "satisfied_share",
                   "dissatisfied_share", "disputed_by_caller")


class Query:
    """The validated query string of every QSTAT URL."""

    def __init__(self, request: Request, now: datetime) -> None:
        q = request.query_params
        try:
            self.period: Period = period(q.get("from") or None, q.get("to") or None, now)
        except ValueError as e:
            raise Invalid({"period": str(e)}) from None
        self.by = q.get("by") or "precinct"
        if self.by not in GROUPS:
            raise Invalid({"by": f"group by one of {', '.join(GROUPS)}"})
        precinct = (q.get("precinct") or "").strip()
        geo = _dispatch(request).geo
        if precinct and geo is not None and precinct not in geo.precincts():
            raise Invalid({"precinct": f"no precinct {precinct!r}"})
        self.precinct = precinct or None

    def params(self, p: Period | None = None, **more: str) -> dict[str, str]:
        p = p or self.period
        out = {"from": p.start.isoformat(), "to": p.end.isoformat(), "by": self.by}
        if self.precinct:
            out["precinct"] = self.precinct
        return {**out, **more}

    def url(self, path: str, p: Period | None = None, **more: str) -> str:
        return f"{path}?{urlencode(self.params(p, **more))}"


def jobs_link(q: Query, figure: str, by: str = ALL, group: str = "",
              p: Period | None = None) -> str:
    """Where a figure's jobs are listed."""
    return q.url("/qstat/jobs", p, of=by, group=group, figure=figure)


def _charts(s: Sheet, q: Query) -> dict[str, charts.Chart]:
    trend = charts.columns(
        [(d.isoformat(), row["jobs"], jobs_link(q, "jobs", "day", d.isoformat()))
         for d, row in s.trend], "Jobs received per day")
    dist = charts.columns(
        [(label, n, "") for label, n in s.distribution], "Closed jobs by minutes receipt → close",
        width=900, height=280)
    comp = charts.rows(
        [(f"{line.key} Pct", line.now["median_close_min"],
          jobs_link(q, "closed", "precinct", line.key))
         for line in s.comparison], "Median minutes receipt → close, by precinct")
    return {"trend": trend, "distribution": dist, "comparison": comp}


def _precinct_choices(request: Request, actor: Actor) -> list[str]:
    geo = _dispatch(request).geo
    if actor.citywide:
        return geo.precincts() if geo else []
    return sorted(actor.precincts, key=lambda p: (len(p), p))


async def _sheet(request: Request, actor: Actor) -> tuple[Query, Sheet]:
    now = _now()
    q = Query(request, now)
    s = await run_in_threadpool(qstat.sheet, _dispatch(request).engine, actor, q.period, q.by,
                                q.precinct, now)
    return q, s


def _refused(request: Request, actor: Actor, e: Invalid) -> Response:
    return render(request, actor, "error.html", 400, message=f"Not shown: {e}", code=400)


@page
async def qstat_page(request: Request, actor: Actor) -> Response:
    try:
        q, s = await _sheet(request, actor)
    except Invalid as e:
        return _refused(request, actor, e)
    places = _dispatch(request).places
    chronic_rows = await run_in_threadpool(chronic.chronic_locations, _dispatch(request).engine,
                                           actor, q.period, q.precinct, places)
    return render(request, actor, "qstat.html", q=q, s=s, figures=FIGURES, labels=LABELS,
                  chronic=chronic_rows, chronic_rules=places,
                  ranked=RANKED, columns=SCREEN_COLUMNS, column_labels=COLUMN_LABELS,
                  groups=GROUPS, shown=shown, change_shown=change_shown, jobs_link=jobs_link,
                  behind=BEHIND,
                  charts=_charts(s, q), precincts=_precinct_choices(request, actor),
                  tour_labels=TOUR_LABELS, tables=TABLES)


@page
async def qstat_jobs(request: Request, actor: Actor) -> Response:
    """The jobs a figure counts, each linking to its job page."""
    now = _now()
    try:
        q = Query(request, now)
        figure = request.query_params.get("figure", "jobs")
        by = request.query_params.get("of") or ALL  # the grouping the figure's row is of
        group = request.query_params.get("group", "")
        if figure not in BEHIND and not figure.startswith(("disposition:", "verdict:")) and \
                figure not in set(BEHIND.values()):
            raise Invalid({"figure": "no such figure"})
        if by not in (*GROUPS, ALL, "day"):
            raise Invalid({"by": "no such grouping"})
        page_no = _page_number(request.query_params.get("page"))
        size = qstat.JOBS_LIMIT
        rows, total = await run_in_threadpool(
            qstat.jobs_behind, _dispatch(request).engine, actor, q.period, by if group else ALL,
            group, figure, q.precinct, now, size, (page_no - 1) * size)
    except (Invalid, ValueError) as e:
        return _refused(request, actor, e if isinstance(e, Invalid) else Invalid({"query": str(e)}))
    title = LABELS.get(figure, figure.replace("_", " ").replace(":", ": "))
    pages = max(1, -(-total // size))
    here = {"figure": figure, "of": by, "group": group}

    def page_url(n: int) -> str:
        return q.url("/qstat/jobs", **here, **({"page": str(n)} if n > 1 else {}))

    return render(request, actor, "qstat_jobs.html", q=q, rows=rows, total=total, title=title,
                  group=group, by=by, page=page_no, pages=pages, first=(page_no - 1) * size + 1,
                  page_url=page_url)


MAX_PAGE = 100_000


def _page_number(raw: str | None) -> int:
    """The drill-down page asked for: a whole number from 1 (untrusted: bounded)."""
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise Invalid({"page": f"a page is a whole number from 1 to {MAX_PAGE:,}"})
    return int(raw)


def _csv_table(s: Sheet, table: str) -> tuple[list[str], list[list[str]]]:
    if table == "sheet":
        return list(SHEET_COLUMNS), sheet_rows(s)
    if table == "groups":
        return list(GROUP_COLUMNS), group_rows(s.lines)
    if table == "comparison":
        return list(GROUP_COLUMNS), group_rows(s.comparison)
    if table == "verdicts":
        return list(VERDICT_COLUMNS), [
            [v.section, text(v.label), str(v.closes),
             *(cell(k, v.figures[k]) for k in VERDICT_COLUMNS[3:])] for v in s.verdicts]
    if table == "trend":
        return ["day", "jobs", "closed", "median_close_min", "p90_close_min"], [
            [d.isoformat(), str(r["jobs"]), str(r["closed"]),
             *("" if r[k] is None else f"{r[k]:.1f}" for k in ("median_close_min",
                                                                "p90_close_min"))]
            for d, r in s.trend]
    return ["disposition", "closed_jobs"], [[code or "none", str(n)] for code, n in s.mix]


@page
async def qstat_csv(request: Request, actor: Actor) -> Response:
    table = request.query_params.get("table", "groups")
    if table not in TABLES:
        return _refused(request, actor, Invalid({"table": f"one of {', '.join(TABLES)}"}))
    if table == "chronic":
        return await _chronic_csv(request, actor)
    try:
        q, s = await _sheet(request, actor)
    except Invalid as e:
        return _refused(request, actor, e)
    header, rows = _csv_table(s, table)
    scope = q.precinct or ("city" if s.scope is None else "-".join(s.scope))
    name = f"qstat-{table}-{scope}-by-{q.by}-{q.period.start}-{q.period.end}.csv"
    return Response(to_csv(header, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _chronic_csv(request: Request, actor: Actor) -> Response:
    """The chronic locations table as CSV (addresses are the city's text: never formulas)."""
    try:
        q = Query(request, _now())
    except Invalid as e:
        return _refused(request, actor, e)
    d = _dispatch(request)
    found = await run_in_threadpool(chronic.chronic_locations, d.engine, actor, q.period,
                                    q.precinct, d.places)
    rows = [[c.precinct, text(c.address), text(c.complaint_type), str(c.most_in_window),
             str(c.in_period), str(c.latest_id), c.latest_at.isoformat()] for c in found]
    name = f"qstat-chronic-{q.precinct or 'scope'}-{q.period.start}-{q.period.end}.csv"
    return Response(to_csv(list(CHRONIC_COLUMNS), rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- the JSON API -------------------------------------------------------------------------------

def _line_json(line: qstat.Line) -> dict[str, Any]:
    return {"group": line.key, "label": line.label, "this_period": line.now,
            "previous_period": line.before,
            "change": {k: line.change(k) for k in FIGURE_KEYS}, "rank": line.rank}


def sheet_json(s: Sheet) -> dict[str, Any]:
    return {
        "period": {"from": s.period.start.isoformat(), "to": s.period.end.isoformat()},
        "previous": {"from": s.previous.start.isoformat(), "to": s.previous.end.isoformat()},
        "by": s.by, "precinct": s.precinct, "scope": list(s.scope) if s.scope else None,
        "precincts_ranked": s.precincts_ranked,
        "total": _line_json(s.total),
        "groups": [_line_json(line) for line in s.lines],
        "dispositions": [{"disposition": c, "closed_jobs": n} for c, n in s.mix],
        "verdicts": [{"section": v.section, "closes": v.label, "closed_jobs": v.closes,
                      **v.figures} for v in s.verdicts],
        "close_distribution": [{"bucket": b, "closed_jobs": n} for b, n in s.distribution],
        "trend": [{"day": d.isoformat(), "jobs": r["jobs"], "closed": r["closed"],
                   "median_close_min": r["median_close_min"]} for d, r in s.trend],
        "definitions": DEFINITIONS,
    }


DEFINITIONS = {
    "percentile": f"{PERCENTILE_METHOD}; null when there are none",
    "days": "New York local days, 'from' included, 'to' excluded; a job counts on the day of "
            "its 311 created time",
    "tours": "day 07–15, evening 15–23, midnight 23–07, New York wall clock",
    "no_data": "null: the figure needs dispatch events and the jobs are history rows",
    "survey": "the caller's answer to 'Overall, I am satisfied with the way my service "
              "request was handled' (1 strongly disagree … 5 strongly agree): satisfied 4–5, "
              "dissatisfied 1–2, shares of the answers; disputed_by_caller counts 'the "
              "problem is still there' answers",
    "median": "median_arrival_distance_m is the conventional median (the mean of the two "
              "middle values for an even count; PostgreSQL percentile_cont(0.5))",
    "arrivals_confirmed": "an arrival is confirmed when the phone's position at on scene was "
                          "within the position policy's distance of the job (200 m when none "
                          "was set), with an accuracy no coarser; one per job, its latest",
}


async def qstat_api(request: Request) -> Response:
    """GET /api/v1/qstat: the page's figures as JSON, for a bearer token's user."""
    d = _dispatch(request)
    try:
        actor = await run_in_threadpool(api.authenticate, d, api._bearer(request))
        # the page's forms send blank fields for "the default"; the API's document says a
        # date or a group, so a blank one is refused as the document promises
        blank = [k for k in ("from", "to", "by") if request.query_params.get(k, "x").strip() == ""]
        if blank:
            raise Invalid({k: "must not be blank; leave it out for the default" for k in blank})
        q = Query(request, _now())
        s = await run_in_threadpool(qstat.sheet, d.engine, actor, q.period, q.by, q.precinct,
                                    _now())
    except Exception as e:  # refusals answer as everywhere in the API (401, 403, 422)
        answer = api.error_response(e)
        if answer is None:
            raise
        return answer
    return JSONResponse(sheet_json(s))


# JSON Schema cannot compare two parameters: the period's bounds are said in words.
PERIOD_RULE = (f"'to' is after 'from' and at most {MAX_DAYS} days after it; a longer or empty "
               "period is a 422 naming period.")
OPENAPI = {
    "/api/v1/qstat": {"get": {
        "operationId": "get_qstat", "tags": ["qstat"],
        "summary": "QSTAT figures for a period by group, with the previous period, the change "
                   "and each precinct's rank citywide; scoped to the token's precincts.",
        "parameters": [
            {"name": "from", "in": "query", "required": False,
             "schema": {"type": "string", "format": "date", "pattern": DAY},
             "description": f"first New York day (included); default 28 days before 'to'. "
                            f"{PERIOD_RULE}"},
            {"name": "to", "in": "query", "required": False,
             "schema": {"type": "string", "format": "date", "pattern": DAY},
             "description": f"New York day after the last (excluded); default tomorrow. "
                            f"{PERIOD_RULE}"},
            {"name": "by", "in": "query", "required": False,
             "schema": {"type": "string", "enum": list(GROUPS), "default": "precinct"}},
            {"name": "precinct", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "one precinct of your scope; default all of it"},
        ],
        "responses": {
            "200": {"description": "the sheet", "content": {"application/json": {"schema": {
                "type": "object", "required": ["period", "by", "total", "groups"],
                "properties": {
                    "period": {"type": "object"}, "previous": {"type": "object"},
                    "by": {"type": "string"}, "precinct": {"type": ["string", "null"]},
                    "scope": {"type": ["array", "null"], "items": {"type": "string"}},
                    "precincts_ranked": {"type": "integer"},
                    "total": {"type": "object"}, "groups": {"type": "array"},
                    "dispositions": {"type": "array"}, "close_distribution": {"type": "array"},
                    "verdicts": {"type": "array"},
                    "trend": {"type": "array"}, "definitions": {"type": "object"}}}}}},
            **{str(code): {"$ref": f"#/components/responses/{openapi_doc.ERRORS[code][0]}"}
               for code in (400, 401, 403, 422, 500, 503)},
        },
    }},
}
openapi_doc.EXTRA_PATHS.update(OPENAPI)

routes = [
    Route("/qstat", qstat_page),
    Route("/qstat/jobs", qstat_jobs),
    Route("/qstat.csv", qstat_csv),
    Route("/api/v1/qstat", qstat_api),
]

"""QSTAT figures: read from job_facts (kept by the write path), within the reader's scope.

Counts and shares are SQL aggregates on both engines. Percentiles are PERCENTILE.INC, linear
interpolation (board.domain.qstat.percentile): PostgreSQL computes them with percentile_cont in
the same query; SQLite, which has no ordered-set aggregate, hands back each group's values and
the domain rule interpolates them with the same arithmetic. Everything here is
for a Period of New York days; a job belongs to the day and tour of its 311 created time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from board.domain.access import Actor, Forbidden, Role
from board.domain.priorities import STAGE_WORDS, STAGES
from board.domain.qstat import (
    DISSATISFIED,
    QUICK_MINUTES,
    SATISFIED,
    SUMMONS_TYPES,
    Period,
    percentile,
    share,
)
from board.storage import db
from board.storage.schema import job_facts as F
from board.storage.schema import jobs, units

GROUPS = ("precinct", "sector", "unit", "complaint_type", "tour")
ALL = "all"
NONE_LABEL = {"precinct": "unrouted", "sector": "no sector", "unit": "no unit"}

# The durations QSTAT reports median and 90th percentile of, by the column holding minutes.
DURATIONS = {
    "assign": "assign_min",  # receipt → first assignment
    "ack": "ack_min",  # assignment → acknowledged
    "arrive": "arrive_min",  # assignment → on scene
    "assigned_close": "close_min",  # assignment → closed
    "close": "receipt_close_min",  # receipt → closed (history included)
}
FRACTIONS = (0.5, 0.9)

# Every figure of a row, in sheet order, with its label and the jobs behind it.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("jobs", "Jobs received", "jobs"),
    ("history", "of them history (closed by the city before import)", "history"),
    ("closed", "Closed", "closed"),
    ("backlog", "Open backlog at period end", "backlog"),
    ("backlog_oldest_min", "Oldest open job, minutes", "backlog"),
    ("median_assign_min", "Median minutes to assign", "assigned"),
    ("p90_assign_min", "90th pct minutes to assign", "assigned"),
    ("median_ack_min", "Median minutes assignment → acknowledge", "acked"),
    ("p90_ack_min", "90th pct minutes assignment → acknowledge", "acked"),
    ("median_arrive_min", "Median minutes assignment → on scene", "arrived"),
    ("p90_arrive_min", "90th pct minutes assignment → on scene", "arrived"),
    ("median_assigned_close_min", "Median minutes assignment → close", "assigned_closed"),
    ("p90_assigned_close_min", "90th pct minutes assignment → close", "assigned_closed"),
    ("median_close_min", "Median minutes receipt → close", "closed"),
    ("p90_close_min", "90th pct minutes receipt → close", "closed"),
    ("closed_within_5_min", "Closed within 5 min of receipt", "within_5_min"),
    ("closed_within_5_min_share", "share of closed", "within_5_min"),
    ("closed_within_5_min_of_assignment", "Closed within 5 min of assignment",
     "within_5_min_of_assignment"),
    ("closed_within_5_min_of_assignment_share", "share of assigned closes",
     "within_5_min_of_assignment"),
    ("closed_without_arrival", "Closed without arriving on scene", "without_arrival"),
    ("closed_without_arrival_share", "share of field closes", "without_arrival"),
    ("jobs_with_photos", "Jobs with caller's photos", "with_photos"),
    ("photos_viewed_share", "share whose photos were viewed", "photos_not_viewed"),
    ("reopened", "Reopened", "reopened"),
    ("reopen_rate", "share of dispatched jobs", "reopened"),
    # the stage names of the board's alerts (board.domain.priorities): late to acknowledge
    # counts only jobs a unit had; one nobody had was late to be dispatched
    *((f"overdue_{stage}", f"Went overdue: {STAGE_WORDS[stage]}", f"overdue_{stage}")
      for stage in STAGES),
    ("summons_closed", "Illegal Parking / Blocked Driveway closed", "summons_closed"),
    ("summons_share", "share closed with a summons (of those whose outcome is known)",
     "summons"),
    # The caller's verdict (issue 16): the city survey's question and "still there?"
    ("surveys_answered", "Callers who answered the survey", "surveys_answered"),
    ("satisfied_share", "share satisfied (agree or strongly agree)", "satisfied"),
    ("dissatisfied_share", "share dissatisfied (disagree or strongly disagree)",
     "dissatisfied"),
    ("disputed_by_caller", "Caller says the problem is still there", "disputed"),
    # proof of presence and evidence (issue 16): the links go to the jobs that fall short
    ("arrivals_confirmed_share", "Arrivals confirmed by the phone's position",
     "arrivals_unconfirmed"),
    ("median_arrival_distance_m", "Median metres from the job at arrival", "arrivals_positioned"),
    ("closes_with_evidence_share", "Field closes with an officer's photo",
     "closes_without_evidence"),
    ("summons_without_number", "Summons closes without a summons number",
     "summons_without_number"),
)
FIGURE_KEYS = tuple(k for k, _, _ in FIGURES)
SHARES = frozenset(k for k in FIGURE_KEYS if k.endswith(("_share", "_rate")))
# Ranked citywide (rank 1 = the highest value among precincts).
RANKED = ("jobs", "backlog", "median_close_min", "closed_within_5_min_share",
          "closed_without_arrival_share", "photos_viewed_share", "summons_share")
# The counts the ranked figures are made of (with receipt → close's median): a precinct page
# reads the whole city for its ranks, and only these.
RANK_COUNTS = ("jobs", "dispatched", "closed", "backlog", "closed_within_5_min", "field_closes",
               "closed_without_arrival", "jobs_with_photos", "photos_viewed", "summons_known",
               "summons_issued")
# ... and what the daily trend shows beside receipt → close's median and 90th percentile.
TREND_COUNTS = ("jobs", "closed")

_DISPATCHED = F.c.history == sa.false()
_CLOSED = F.c.closed_at.is_not(None)
# A close whose outcome is known: history whose export carried no resolution text has none,
# so it cannot say whether a summons was issued ("no data", not "no summons").
_OUTCOME_KNOWN = F.c.disposition.is_not(None)


# Every count of _aggregates at nothing: an empty group, and the counts a query did not make.
_NO_COUNTS: dict[str, Any] = {
    "jobs": 0, "history": 0, "dispatched": 0, "closed": 0, "backlog": 0, "oldest_open": None,
    "closed_within_5_min": 0, "assigned_closes": 0, "closed_within_5_min_of_assignment": 0,
    "field_closes": 0, "closed_without_arrival": 0, "jobs_with_photos": 0, "photos_viewed": 0,
    "reopened": 0, "overdue_dispatch": 0, "overdue_ack": 0, "overdue_arrive": 0,
    "overdue_close": 0, "summons_closed": 0, "summons_known": 0, "summons_issued": 0,
    "surveys_answered": 0, "satisfied": 0, "dissatisfied": 0, "disputed_by_caller": 0,
    "arrivals": 0, "arrivals_confirmed": 0, "evidence_closes": 0, "closes_with_evidence": 0,
    "summons_without_number": 0}


def _count(cond: Any) -> Any:
    """How many rows of the group `cond` holds for (FILTER: a row it does not hold for costs
    the aggregate nothing, where a CASE in a SUM is worked out for every row)."""
    return sa.func.count().filter(cond)


def _open_at(at: datetime) -> Any:
    return sa.or_(F.c.closed_at.is_(None), F.c.closed_at > at)


def _summons_types() -> Any:
    return F.c.complaint_type.in_(SUMMONS_TYPES)


# -- who may read what ------------------------------------------------------------------------

def scope(actor: Actor, precinct: str | None) -> tuple[str, ...] | None:
    """The precincts a reader's figures cover (None = the whole city, unrouted included)."""
    if actor.role not in (Role.SUPERVISOR, Role.COMMANDER, Role.ADMIN):
        raise Forbidden("QSTAT is for supervisors and commanders")
    if precinct:
        if not actor.sees(precinct):
            raise Forbidden("this is outside your precincts")
        return (precinct,)
    if actor.citywide:
        return None
    return tuple(sorted(actor.precincts, key=lambda p: (len(p), p)))


def _in(scope_: tuple[str, ...] | None, p: Period) -> list[Any]:
    where = [F.c.created_at >= p.since, F.c.created_at < p.until]
    if scope_ is not None:
        where.append(F.c.precinct.in_(scope_))
    return where


def _group_col(by: str) -> Any:
    if by == ALL:
        return sa.literal(ALL)
    if by == "unit":
        return F.c.unit_id
    if by == "day":
        return F.c.day
    if by not in GROUPS:
        raise ValueError(f"group by one of {', '.join(GROUPS)}")
    return F.c[by]


# -- the figures ------------------------------------------------------------------------------

def _aggregates(at: datetime) -> list[Any]:
    dispatched_closed = sa.and_(_DISPATCHED, _CLOSED)
    return [
        sa.func.count().label("jobs"),
        _count(F.c.history == sa.true()).label("history"),
        _count(_DISPATCHED).label("dispatched"),
        _count(_CLOSED).label("closed"),
        _count(_open_at(at)).label("backlog"),
        sa.func.min(sa.case((_open_at(at), F.c.created_at))).label("oldest_open"),
        _count(F.c.receipt_close_min <= QUICK_MINUTES).label("closed_within_5_min"),
        _count(sa.and_(dispatched_closed, F.c.assigned_at.is_not(None),
                       F.c.quick_close.is_not(None))).label("assigned_closes"),
        _count(sa.and_(F.c.quick_close == sa.true(), F.c.assigned_at.is_not(None)))
        .label("closed_within_5_min_of_assignment"),
        _count(sa.and_(dispatched_closed, F.c.no_arrival.is_not(None),
                       F.c.administrative == sa.false())).label("field_closes"),
        _count(F.c.no_arrival == sa.true()).label("closed_without_arrival"),
        _count(sa.and_(_DISPATCHED, F.c.has_photos == sa.true())).label("jobs_with_photos"),
        _count(sa.and_(_DISPATCHED, F.c.has_photos == sa.true(),
                       F.c.photo_viewed == sa.true())).label("photos_viewed"),
        _count(sa.and_(_DISPATCHED, F.c.reopens > 0)).label("reopened"),
        _count(sa.and_(_DISPATCHED, F.c.overdue_dispatch == sa.true()))
        .label("overdue_dispatch"),
        _count(sa.and_(_DISPATCHED, F.c.overdue_ack == sa.true())).label("overdue_ack"),
        _count(sa.and_(_DISPATCHED, F.c.overdue_arrive == sa.true())).label("overdue_arrive"),
        _count(sa.and_(_DISPATCHED, F.c.overdue_close == sa.true())).label("overdue_close"),
        _count(sa.and_(_CLOSED, _summons_types())).label("summons_closed"),
        _count(sa.and_(_CLOSED, _summons_types(), _OUTCOME_KNOWN)).label("summons_known"),
        _count(sa.and_(_CLOSED, _summons_types(), F.c.disposition == "summons_issued"))
        .label("summons_issued"),
        *_verdict_aggregates(),
        *_evidence_aggregates(),
    ]


# The caller's answers: how many, satisfied (4–5), dissatisfied (1–2), still there.
_ANSWERS = {
    "surveys_answered": F.c.satisfaction.is_not(None),
    "satisfied": F.c.satisfaction >= SATISFIED,
    "dissatisfied": F.c.satisfaction <= DISSATISFIED,
    "disputed_by_caller": F.c.still_there == sa.true(),
}


def _verdict_aggregates() -> list[Any]:
    return [_count(cond).label(name) for name, cond in _ANSWERS.items()]


def _verdict_row(m: dict[str, Any]) -> dict[str, Any]:
    answered = m["surveys_answered"] or 0
    return {"surveys_answered": answered,
            "satisfied_share": share(m["satisfied"], answered),
            "dissatisfied_share": share(m["dissatisfied"], answered),
            "disputed_by_caller": m["disputed_by_caller"] or 0}


def _evidence_aggregates() -> list[Any]:
    """Proof of presence and evidence: arrivals and how many a position confirmed, field
    closes and how many carry an officer's photo, summons closes without a number."""
    dispatched_closed = sa.and_(_DISPATCHED, _CLOSED)
    return [
        _count(sa.and_(_DISPATCHED, F.c.arrival_confirmed.is_not(None))).label("arrivals"),
        _count(sa.and_(_DISPATCHED, F.c.arrival_confirmed == sa.true()))
        .label("arrivals_confirmed"),
        _count(sa.and_(dispatched_closed, F.c.evidence_photos.is_not(None)))
        .label("evidence_closes"),
        _count(sa.and_(dispatched_closed, F.c.evidence_photos > 0)).label("closes_with_evidence"),
        _count(_summons_without_number()).label("summons_without_number"),
    ]


def _summons_without_number() -> Any:
    """A field close claiming a summons that carries no number (the board keeps numbers only
    since issue 16: older closes count as carrying none)."""
    return sa.and_(_DISPATCHED, _CLOSED, F.c.disposition == "summons_issued",
                   sa.func.coalesce(F.c.summons_numbers, 0) == 0)


def _percentiles_sql(durations: Sequence[str], distance: bool = True) -> list[Any]:
    fractions = sa.literal(list(FRACTIONS), postgresql.ARRAY(sa.Float))
    return [sa.func.percentile_cont(fractions).within_group(F.c[DURATIONS[name]])
            .label(f"pct_{name}") for name in durations] + [
        # the conventional median (the two middle values' mean): percentile_cont at 0.5
        sa.func.percentile_cont(0.5).within_group(F.c.arrival_distance_m)
        .label("median_arrival_distance_m")][:int(distance)]


def percentiles_python(conn: sa.Connection, group: Any, where: Sequence[Any],
                       durations: Sequence[str] = tuple(DURATIONS), distance: bool = True
                       ) -> dict[Any, dict[str, float | None]]:
    """Median and 90th percentile per group from each group's minutes (any engine): of these
    durations, and the median distance at arrival."""
    values: dict[Any, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    names = (*durations, "distance")[:len(durations) + int(distance)]
    cols = [F.c[DURATIONS[n]] if n in DURATIONS else F.c.arrival_distance_m for n in names]
    for row in conn.execute(sa.select(group.label("g"), *cols).where(*where)):
        for name, value in zip(names, row[1:], strict=True):
            if value is not None:
                values[row.g][name].append(value)
    out: dict[Any, dict[str, float | None]] = {}
    for g, by_name in values.items():
        out[g] = {}
        for name in durations:
            vs = sorted(by_name.get(name, ()))
            out[g][f"median_{name}_min"] = percentile(vs, 0.5)
            out[g][f"p90_{name}_min"] = percentile(vs, 0.9)
        if distance:
            out[g]["median_arrival_distance_m"] = percentile(
                sorted(by_name.get("distance", ())), 0.5)
    return out


def _postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _minutes_between(later: datetime, earlier: datetime | None) -> float | None:
    if earlier is None:
        return None
    return round((later - earlier).total_seconds() / 60, 1)


def figures(conn: sa.Connection, by: str, scope_: tuple[str, ...] | None, p: Period,
            now: datetime, durations: Sequence[str] = tuple(DURATIONS),
            with_total: bool = False, counts: Sequence[str] | None = None
            ) -> dict[Any, dict[str, Any]]:
    """One row of figures per group (raw group values: unit ids, dates, None).

    `durations` names the percentiles wanted (the others are None: the daily trend needs only
    receipt → close); `with_total` adds the whole scope under the key ALL, on PostgreSQL from
    the same scan (GROUPING SETS); `counts`, when given, the only counts to make (the others
    are 0, and the median distance at arrival is not read): what a ranking reads.
    """
    at = min(p.until, now)  # the backlog is counted at the period's end, or now if sooner
    group = _group_col(by)
    where = _in(scope_, p)
    pg = _postgres(conn)
    if with_total and not pg:
        out = figures(conn, by, scope_, p, now, durations)
        out.update(figures(conn, ALL, scope_, p, now, durations))
        return out
    cols = [c for c in _aggregates(at) if counts is None or c.name in counts]
    distance = counts is None
    if pg:
        cols += _percentiles_sql(durations, distance)
    if with_total:
        total = sa.func.grouping(group).label("is_total")
        query = sa.select(group.label("g"), total, *cols).where(*where).group_by(
            sa.func.grouping_sets(group, sa.tuple_()))
    else:
        query = sa.select(group.label("g"), *cols).where(*where).group_by(group)
    rows = conn.execute(query).all()
    pct = {} if pg else percentiles_python(conn, group, where, durations, distance)
    out = {}
    for r in rows:
        m = {**_NO_COUNTS, **r._mapping}
        key = ALL if m.pop("is_total", 0) else r.g
        if pg:
            extra: dict[str, Any] = {"median_arrival_distance_m":
                                     m.pop("median_arrival_distance_m", None)}
            for name in durations:
                pair = m.pop(f"pct_{name}") or [None, None]
                extra[f"median_{name}_min"], extra[f"p90_{name}_min"] = pair
        else:
            found = pct.get(r.g, {})
            extra = {k: v for k, v in found.items()
                     if k.split("_", 1)[1].removesuffix("_min") in durations}
            extra["median_arrival_distance_m"] = found.get("median_arrival_distance_m")
        out[key] = _row(m, extra, at)
    return out


def _row(m: dict[str, Any], pct: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Name and derive the figures; "no data" (None) where no dispatched job could say."""
    dispatched = m["dispatched"] or 0
    row: dict[str, Any] = {
        "jobs": m["jobs"], "history": m["history"], "closed": m["closed"],
        "backlog": m["backlog"],
        "backlog_oldest_min": _minutes_between(at, _aware(m["oldest_open"])),
        **{f"{stat}_{name}_min": pct.get(f"{stat}_{name}_min")
           for name in DURATIONS for stat in ("median", "p90")},
        "closed_within_5_min": m["closed_within_5_min"],
        "closed_within_5_min_share": share(m["closed_within_5_min"], m["closed"]),
        "closed_within_5_min_of_assignment":
            m["closed_within_5_min_of_assignment"] if dispatched else None,
        "closed_within_5_min_of_assignment_share":
            share(m["closed_within_5_min_of_assignment"], m["assigned_closes"]),
        "closed_without_arrival": m["closed_without_arrival"] if dispatched else None,
        "closed_without_arrival_share": share(m["closed_without_arrival"], m["field_closes"]),
        "jobs_with_photos": m["jobs_with_photos"] if dispatched else None,
        "photos_viewed_share": share(m["photos_viewed"], m["jobs_with_photos"]),
        "reopened": m["reopened"] if dispatched else None,
        "reopen_rate": share(m["reopened"], dispatched),
        "overdue_dispatch": m["overdue_dispatch"] if dispatched else None,
        "overdue_ack": m["overdue_ack"] if dispatched else None,
        "overdue_arrive": m["overdue_arrive"] if dispatched else None,
        "overdue_close": m["overdue_close"] if dispatched else None,
        "summons_closed": m["summons_closed"],
        "summons_share": share(m["summons_issued"], m["summons_known"]),
        **_verdict_row(m),
        "arrivals_confirmed_share": share(m["arrivals_confirmed"], m["arrivals"]),
        "median_arrival_distance_m": _rounded(pct.get("median_arrival_distance_m")),
        "closes_with_evidence_share": share(m["closes_with_evidence"], m["evidence_closes"]),
        "summons_without_number": m["summons_without_number"] if dispatched else None,
    }
    return row


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _aware(value: Any) -> datetime | None:
    """min() over a CASE may come back naive, or as text on SQLite: make it aware UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


CLOSE_BUCKETS = ((5, "≤5 min"), (15, "5–15 min"), (30, "15–30 min"), (60, "30–60 min"),
                 (120, "1–2 h"), (240, "2–4 h"), (480, "4–8 h"), (1440, "8–24 h"),
                 (None, "> 24 h"))


def _buckets() -> list[Any]:
    """Closed jobs by minutes receipt → close, one count per bucket of CLOSE_BUCKETS (a close
    is in the first whose limit it is within)."""
    out, below = [], None
    for i, (limit, _) in enumerate(CLOSE_BUCKETS):
        cond = F.c.receipt_close_min <= limit if limit is not None else sa.true()
        if below is not None:  # not within an earlier limit (NULL minutes: the last bucket)
            cond = sa.and_(cond, sa.or_(F.c.receipt_close_min.is_(None),
                                        F.c.receipt_close_min > below))
        out.append(_count(cond).label(f"bucket_{i}"))
        below = limit
    return out


@dataclass(frozen=True)
class Verdict:
    """One row of the comparison of the caller's verdict: a kind of close, its closes and
    what the callers said of them (the figure keys of _verdict_row)."""

    section: str
    label: str
    closes: int
    figures: dict[str, Any]
    behind: str  # the jobs_behind figure of its answers


# The comparisons the page sets side by side: (section, label, condition on closed jobs,
# the jobs_behind key of that slice).
def _verdict_slices() -> list[tuple[str, str, Any, str]]:
    return [
        ("Speed", "Closed within 5 min of assignment", F.c.quick_close == sa.true(),
         "verdict:quick"),
        ("Speed", "Closed later", F.c.quick_close == sa.false(), "verdict:not_quick"),
        *_arrival_slices(),
    ]


def _arrival_slices() -> list[tuple[str, str, Any, str]]:
    """Arrivals the phone's position confirmed against those it did not (proof of presence:
    job_facts.arrival_confirmed, None when nobody arrived)."""
    return [("Arrival", "Arrival confirmed by position", F.c.arrival_confirmed == sa.true(),
             "verdict:confirmed"),
            ("Arrival", "Arrival not confirmed", F.c.arrival_confirmed == sa.false(),
             "verdict:unconfirmed")]


VERDICT_SLICES = {key: cond for _, _, cond, key in _verdict_slices()}


@dataclass(frozen=True)
class Closes:
    """What the sheet shows of the period's closed jobs: how they ended, how long they took,
    and what their callers said of each kind of close."""

    mix: list[tuple[str | None, int]]
    distribution: list[tuple[str, int]]
    verdicts: list[Verdict]


def closes(conn: sa.Connection, scope_: tuple[str, ...] | None, p: Period) -> Closes:
    """Two scans of the period's closes: one by disposition (the mix, and each disposition's
    answers), one whole (the time buckets and the answers beside each kind of close)."""
    where = [*_in(scope_, p), _CLOSED]
    slices = _verdict_slices()
    whole = conn.execute(sa.select(*_buckets(), *(
        col for i, (_, _, cond, _) in enumerate(slices)
        for col in _verdict_columns(sa.and_(_DISPATCHED, cond), f"s{i}_")
    )).where(*where)).first()._mapping
    distribution = [(label, whole[f"bucket_{i}"] or 0)
                    for i, (_, label) in enumerate(CLOSE_BUCKETS)]
    verdict_rows = [Verdict(section, label, whole[f"s{i}_closes"] or 0,
                            _verdict_row(_unprefixed(whole, f"s{i}_")), key)
                    for i, (section, label, _, key) in enumerate(slices)]
    rows = conn.execute(sa.select(F.c.disposition, sa.func.count().label("closed"),
                                  *_verdict_columns(_DISPATCHED, ""))
                        .where(*where).group_by(F.c.disposition)).all()
    mix = sorted(((r.disposition, r.closed) for r in rows), key=lambda x: (-x[1], x[0] or ""))
    for r in sorted(rows, key=lambda r: (-(r.closes or 0), r.disposition or "")):
        if r.closes:  # a disposition only history carries has no dispatched close to judge
            code = r.disposition or "none"
            verdict_rows.append(Verdict("Disposition", code, r.closes,
                                        _verdict_row(dict(r._mapping)),
                                        f"verdict:disposition:{code}"))
    return Closes(mix, distribution, verdict_rows)


def _verdict_columns(cond: Any, prefix: str) -> list[Any]:
    """The closes where `cond` holds and their callers' answers, as counts named with
    `prefix`."""
    return [_count(cond).label(f"{prefix}closes"),
            *(_count(sa.and_(cond, answer)).label(f"{prefix}{name}")
              for name, answer in _ANSWERS.items())]


def _unprefixed(m: Any, prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in m.items() if k.startswith(prefix)}


# -- the sheet --------------------------------------------------------------------------------

@dataclass
class Line:
    """One group of a sheet: this period, the previous one, the change, the citywide rank."""

    key: str  # the group as it appears in links and CSV (callsign, date, "unrouted", …)
    label: str
    now: dict[str, Any]
    before: dict[str, Any]
    rank: dict[str, int] = field(default_factory=dict)

    def change(self, name: str) -> float | None:
        a, b = self.now.get(name), self.before.get(name)
        if a is None or b is None:
            return None
        return a - b


@dataclass
class Sheet:
    period: Period
    previous: Period
    by: str
    precinct: str | None
    scope: tuple[str, ...] | None
    total: Line
    lines: list[Line]
    precincts_ranked: int
    mix: list[tuple[str | None, int]]
    distribution: list[tuple[str, int]]
    trend: list[tuple[Any, dict[str, Any]]]
    comparison: list[Line]
    verdicts: list[Verdict] = field(default_factory=list)


def _labels(conn: sa.Connection, by: str, keys: Iterable[Any]) -> dict[Any, str]:
    if by == "unit":
        ids = [k for k in keys if k is not None]
        names = dict(conn.execute(sa.select(units.c.id, units.c.callsign)
                                  .where(units.c.id.in_(ids))).all()) if ids else {}
        return {k: names.get(k, f"unit {k}") if k is not None else NONE_LABEL["unit"]
                for k in keys}
    return {k: str(k) if k is not None else NONE_LABEL.get(by, "none") for k in keys}


def _ranks(city: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, int]]:
    """Each precinct's place citywide per ranked figure: 1 = highest; ties share a place."""
    out: dict[Any, dict[str, int]] = defaultdict(dict)
    for name in RANKED:
        values = sorted((row[name] for g, row in city.items()
                         if g is not None and row[name] is not None), reverse=True)
        for g, row in city.items():
            if g is not None and row[name] is not None:
                out[g][name] = values.index(row[name]) + 1
    return out


def sheet(engine: sa.Engine, actor: Actor, p: Period, by: str, precinct: str | None,
          now: datetime) -> Sheet:
    """The CompStat-style sheet for the reader's scope (or one precinct of it)."""
    scope_ = scope(actor, precinct)
    _group_col(by)  # refuse an unknown grouping before reading anything
    prev = p.previous()
    with db.read(engine) as conn:
        # the scope's precincts and its total, each period in one scan (GROUPING SETS)
        scope_now = figures(conn, "precinct", scope_, p, now, with_total=True)
        scope_before = figures(conn, "precinct", scope_, prev, now, with_total=True)
        total_now = scope_now.pop(ALL, None) or _empty(p, now)
        total_before = scope_before.pop(ALL, None) or _empty(prev, now)
        # every precinct for the ranks: beyond the scope, only what the ranked figures are
        # made of
        city_now = scope_now if scope_ is None else figures(
            conn, "precinct", None, p, now, durations=("close",), counts=RANK_COUNTS)
        if by == "precinct":
            grouped_now, grouped_before = scope_now, scope_before
        else:
            grouped_now = figures(conn, by, scope_, p, now)
            grouped_before = figures(conn, by, scope_, prev, now)
        labels = _labels(conn, by, set(grouped_now) | set(grouped_before))
        closed = closes(conn, scope_, p)
        trend_rows = figures(conn, "day", scope_, p, now, durations=("close",),
                             counts=TREND_COUNTS)
    ranks = _ranks(city_now)
    ranked = sum(1 for g in city_now if g is not None)
    empty_now, empty_before = _empty(p, now), _empty(prev, now)
    lines = [Line(_key(by, g, labels), labels[g], grouped_now.get(g, empty_now),
                  grouped_before.get(g, empty_before), ranks.get(g, {}) if by == "precinct"
                  else {})
             for g in sorted(labels, key=lambda g: _order(by, g, labels))]
    total_rank = ranks.get(scope_[0], {}) if scope_ is not None and len(scope_) == 1 else {}
    total = Line(ALL, _scope_label(scope_), total_now, total_before, total_rank)
    in_scope = [g for g in scope_now if g is not None]
    comparison = [Line(g, g, scope_now[g], scope_before.get(g, empty_before), ranks.get(g, {}))
                  for g in sorted(in_scope, key=lambda g: (len(g), g))]
    trend = [(d, trend_rows.get(d, empty_now)) for d in p.each_day()]
    return Sheet(p, prev, by, precinct, scope_, total, lines, ranked, closed.mix,
                 closed.distribution, trend, comparison, closed.verdicts)


def _key(by: str, g: Any, labels: dict[Any, str]) -> str:
    return labels[g] if by == "unit" else ("" if g is None else str(g)) or labels[g]


def _order(by: str, g: Any, labels: dict[Any, str]) -> tuple[Any, ...]:
    if by == "tour":
        from board.domain.qstat import TOURS

        return (TOURS.index(g) if g in TOURS else 9, "")
    label = labels[g]
    return (g is None, len(label) if by == "precinct" else 0, label)


def _scope_label(scope_: tuple[str, ...] | None) -> str:
    if scope_ is None:
        return "Citywide"
    return ", ".join(f"{p} Pct" for p in scope_)


def _empty(p: Period, now: datetime) -> dict[str, Any]:
    return _row(_NO_COUNTS, {}, min(p.until, now))


# -- the jobs behind a figure -----------------------------------------------------------------

def _behind(kind: str, at: datetime) -> Any:
    """The condition picking the jobs a figure counts."""
    conds = {
        "jobs": sa.true(),
        "history": F.c.history == sa.true(),
        "closed": _CLOSED,
        "backlog": _open_at(at),
        "assigned": F.c.assigned_at.is_not(None),
        "acked": F.c.ack_min.is_not(None),
        "arrived": F.c.arrive_min.is_not(None),
        "assigned_closed": F.c.close_min.is_not(None),
        "within_5_min": F.c.receipt_close_min <= QUICK_MINUTES,
        "within_5_min_of_assignment": sa.and_(F.c.quick_close == sa.true(),
                                              F.c.assigned_at.is_not(None)),
        "without_arrival": F.c.no_arrival == sa.true(),
        "with_photos": sa.and_(_DISPATCHED, F.c.has_photos == sa.true()),
        "photos_not_viewed": sa.and_(_DISPATCHED, F.c.has_photos == sa.true(),
                                     F.c.photo_viewed == sa.false()),
        "reopened": sa.and_(_DISPATCHED, F.c.reopens > 0),
        "overdue_dispatch": sa.and_(_DISPATCHED, F.c.overdue_dispatch == sa.true()),
        "overdue_ack": sa.and_(_DISPATCHED, F.c.overdue_ack == sa.true()),
        "overdue_arrive": sa.and_(_DISPATCHED, F.c.overdue_arrive == sa.true()),
        "overdue_close": sa.and_(_DISPATCHED, F.c.overdue_close == sa.true()),
        "summons_closed": sa.and_(_CLOSED, _summons_types()),
        "summons": sa.and_(_CLOSED, _summons_types(), F.c.disposition == "summons_issued"),
        "surveys_answered": F.c.satisfaction.is_not(None),
        "satisfied": F.c.satisfaction >= SATISFIED,
        "dissatisfied": F.c.satisfaction <= DISSATISFIED,
        "disputed": F.c.still_there == sa.true(),
        "arrivals_unconfirmed": sa.and_(_DISPATCHED, F.c.arrival_confirmed == sa.false()),
        "arrivals_positioned": sa.and_(_DISPATCHED, F.c.arrival_distance_m.is_not(None)),
        "closes_without_evidence": sa.and_(_DISPATCHED, _CLOSED, F.c.evidence_photos == 0),
        "summons_without_number": _summons_without_number(),
    }
    if kind.startswith("verdict:disposition:"):
        code = kind.removeprefix("verdict:disposition:")
        return sa.and_(_CLOSED, _DISPATCHED, F.c.satisfaction.is_not(None),
                       F.c.disposition.is_(None) if code == "none" else F.c.disposition == code)
    if kind.startswith("verdict:"):  # the answered jobs of one comparison row
        slice_ = VERDICT_SLICES.get(kind)
        if slice_ is None:
            raise ValueError(f"no figure {kind!r}")
        return sa.and_(_CLOSED, _DISPATCHED, slice_, F.c.satisfaction.is_not(None))
    if kind.startswith("disposition:"):
        code = kind.removeprefix("disposition:")
        return sa.and_(_CLOSED, F.c.disposition.is_(None) if code == "none"
                       else F.c.disposition == code)
    if kind not in conds:
        raise ValueError(f"no figure {kind!r}")
    return conds[kind]


BEHIND = {k: b for k, _, b in FIGURES}
JOBS_LIMIT = 500  # a drill-down page; the jobs behind a figure are paged, oldest first


def _group_filter(conn: sa.Connection, by: str, group: str) -> Any:
    if by == ALL or not group or group == ALL:
        return sa.true()
    col = _group_col(by)
    if by == "unit":
        if group == NONE_LABEL["unit"]:
            return F.c.unit_id.is_(None)
        unit_id = conn.execute(sa.select(units.c.id).where(units.c.callsign == group)).scalar()
        return F.c.unit_id == unit_id if unit_id is not None else sa.false()
    if group == NONE_LABEL.get(by):
        return col.is_(None)
    if by == "day":
        from datetime import date

        return F.c.day == date.fromisoformat(group)
    return col == group


def jobs_behind(engine: sa.Engine, actor: Actor, p: Period, by: str, group: str,
                figure: str, precinct: str | None, now: datetime,
                limit: int = JOBS_LIMIT, offset: int = 0) -> tuple[list[Any], int]:
    """The jobs a figure counts (`limit` of them from `offset`, oldest first) and how many
    there are in all."""
    scope_ = scope(actor, precinct)
    cond = _behind(BEHIND.get(figure, figure), min(p.until, now))
    with db.read(engine) as conn:
        where = [*_in(scope_, p), cond, _group_filter(conn, by, group)]
        total = conn.execute(sa.select(sa.func.count()).select_from(F).where(*where)).scalar()
        rows = conn.execute(
            sa.select(F, jobs.c.address, jobs.c.descriptor, jobs.c.status, jobs.c.external_key,
                      units.c.callsign)
            .join(jobs, jobs.c.id == F.c.job_id)
            .outerjoin(units, units.c.id == F.c.unit_id)
            .where(*where).order_by(F.c.created_at, F.c.job_id)
            .limit(limit).offset(max(0, offset))).all()
    return rows, total or 0

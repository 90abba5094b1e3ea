"""QSTAT figures against hand-computed expectations: live jobs, history rows, a DST day."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from board.accountability import qstat
from board.domain.access import SYSTEM, Forbidden
from board.domain.qstat import Period
from board.storage import db, factstore
from board.storage.schema import job_facts
from tests.conftest import make_job
from tests.qstat_helpers import (
    add_history,
    minutes,
    spreadsheet_median,
    spreadsheet_p90,
    utc,
)

DAY = Period(date(2026, 11, 28), date(2026, 11, 29))  # a New York day (EST, UTC-5)
LATER = utc("2026-12-01T12:00:00")


def _fixed_set(world, clock) -> dict[str, int]:
    """Seven jobs of the 75th on 2026-11-28 (New York) and one of the 120th; see each comment."""
    d, a = world.dispatch, world.actors
    sgt, off = a["sgt75"], a["off75a"]
    unit_a, unit_b = world.unit("75-A"), world.unit("75-B")
    ids: dict[str, int] = {}

    # J1 09:00 EST, day tour: assign +2, ack +3, on scene +10, close +20 (action taken)
    clock.now = utc("2026-11-28T14:00:00")
    j = ids["j1"] = make_job(d, "75")
    clock.advance(minutes=2)
    d.assign(sgt, j, 1, unit_a)
    clock.advance(minutes=1)
    d.acknowledge(off, j, 2)
    clock.advance(minutes=7)
    d.on_scene(off, j, 3)
    clock.advance(minutes=10)
    d.close(off, j, 4, "action_taken")

    # J2 16:00 EST, evening: Illegal Parking, assign +10, close +12 with a summons, no arrival
    clock.now = utc("2026-11-28T21:00:00")
    j = ids["j2"] = make_job(d, "75", "Illegal Parking", "Blocked Hydrant")
    clock.advance(minutes=10)
    d.assign(sgt, j, 1, unit_b)
    clock.advance(minutes=2)
    d.close(sgt, j, 2, "summons_issued", summons_count=1)

    # J3 23:30 EST (04:30 UTC the next day), midnight tour: Blocked Driveway with a photo,
    # assign +1, photo viewed, on scene +30, close +41 (no evidence)
    clock.now = utc("2026-11-29T04:30:00")
    j = ids["j3"] = make_job(d, "75", "Blocked Driveway", "No Access",
                             media=("https://example.test/p.jpg",))
    clock.advance(minutes=1)
    d.assign(sgt, j, 1, unit_a)
    d.view_photo(off, j, 0)
    clock.advance(minutes=29)
    d.en_route(off, j, 2)
    d.on_scene(off, j, 3)
    clock.advance(minutes=11)
    d.close(off, j, 4, "no_evidence")

    # J4 07:00 EST, day: a photo nobody viewed; closed as a duplicate from the queue at +3
    clock.now = utc("2026-11-28T12:00:00")
    j = ids["j4"] = make_job(d, "75", media=("https://example.test/q.jpg",))
    clock.advance(minutes=3)
    d.admin_close(sgt, j, 1, "duplicate")

    # J5 10:00 EST, day: assigned at +5, still open, went overdue to acknowledge
    clock.now = utc("2026-11-28T15:00:00")
    j = ids["j5"] = make_job(d, "75")
    clock.advance(minutes=5)
    d.assign(sgt, j, 1, unit_b)
    clock.now = utc("2026-11-28T18:00:00")  # three hours on, nobody has acknowledged it
    assert d.mark_overdue(SYSTEM, j, "ack") is not None

    # History: H1 00:00 EST (midnight) closed in 3 min; H2 13:00 EST (day) Illegal Parking,
    # closed in 60 min with a summons
    summons = "The Police Department issued a summons in response to the complaint."
    taken = ("The Police Department responded to the complaint and took action to fix the "
             "condition.")
    ids["h1"] = add_history(d, "75", utc("2026-11-28T05:00:00"), utc("2026-11-28T05:03:00"),
                            resolution=taken)
    ids["h2"] = add_history(d, "75", utc("2026-11-28T18:00:00"), utc("2026-11-28T19:00:00"),
                            "Illegal Parking", summons)

    # The 120th: one job, closed in 4 minutes, outside the 75th's figures
    clock.now = utc("2026-11-28T16:00:00")
    j = ids["j6"] = make_job(d, "120")
    clock.advance(minutes=1)
    d.assign(a["sgt120"], j, 1, world.unit("120-A"))
    clock.advance(minutes=3)
    d.close(a["off120"], j, 2, "gone_on_arrival")
    clock.now = LATER
    return ids


def _as_sheet(values: list[float]) -> tuple[object, object]:
    """The median and 90th percentile a spreadsheet computes, for pytest to compare."""
    return (pytest.approx(spreadsheet_median(values)), pytest.approx(spreadsheet_p90(values)))


def test_precinct_figures_by_hand(world, clock) -> None:
    _fixed_set(world, clock)
    s = qstat.sheet(world.dispatch.engine, world.actors["sgt75"], DAY, "tour", None, LATER)
    t = s.total.now
    assert (t["jobs"], t["history"], t["closed"]) == (7, 2, 6)
    # open at the period's end (2026-11-29 05:00 UTC): J5 (received 15:00 UTC, 14 hours
    # before) and J3 (received 04:30 UTC, closed 05:11 UTC)
    assert (t["backlog"], t["backlog_oldest_min"]) == (2, 840.0)
    # receipt → close: J4 3, H1 3, J2 12, J1 20, J3 41, H2 60 — an even count: (12 + 20) / 2
    assert (t["median_close_min"], t["p90_close_min"]) == _as_sheet([3, 3, 12, 20, 41, 60])
    assert t["median_close_min"] == 16
    assert (t["closed_within_5_min"], t["closed_within_5_min_share"]) == (2, 2 / 6)
    # receipt → assign: J3 1, J1 2, J5 5, J2 10
    assert (t["median_assign_min"], t["p90_assign_min"]) == _as_sheet([1, 2, 5, 10])
    assert (t["median_ack_min"], t["p90_ack_min"]) == (1, 1)  # J1 only
    assert (t["median_arrive_min"], t["p90_arrive_min"]) == _as_sheet([8, 29])  # J1, J3
    # assignment → close, an odd count: J2 2, J1 18, J3 40
    assert (t["median_assigned_close_min"], t["p90_assigned_close_min"]) == _as_sheet(
        [2, 18, 40])
    # within 5 of assignment: J2 (2 min) of J1, J2, J3; without arrival: J2 of the same
    assert t["closed_within_5_min_of_assignment"] == 1
    assert t["closed_within_5_min_of_assignment_share"] == pytest.approx(1 / 3)
    assert (t["closed_without_arrival"], t["closed_without_arrival_share"]) == (1, 1 / 3)
    assert (t["jobs_with_photos"], t["photos_viewed_share"]) == (2, 0.5)  # J3 viewed, J4 not
    assert (t["reopened"], t["reopen_rate"]) == (0, 0.0)
    assert (t["overdue_ack"], t["overdue_arrive"], t["overdue_close"]) == (1, 0, 0)
    # Illegal Parking / Blocked Driveway closed: J2 (summons), J3, H2 (summons)
    assert (t["summons_closed"], t["summons_share"]) == (3, 2 / 3)

    by_tour = {line.key: line.now for line in s.lines}
    assert [line.key for line in s.lines] == ["day", "evening", "midnight"]
    assert {k: v["jobs"] for k, v in by_tour.items()} == {"day": 4, "evening": 1, "midnight": 2}
    # the midnight tour: J3 (41) and H1 (3), the mean of the two
    assert by_tour["midnight"]["median_close_min"] == pytest.approx(spreadsheet_median([41, 3]))
    assert dict(s.mix) == {"action_taken": 2, "summons_issued": 2, "no_evidence": 1,
                           "duplicate": 1}
    assert dict(s.distribution)["≤5 min"] == 2 and dict(s.distribution)["> 24 h"] == 0
    assert [d for d, _ in s.trend] == [date(2026, 11, 28)]


def test_history_only_figures_say_no_data(world, clock) -> None:
    d = world.dispatch
    add_history(d, "75", utc("2026-11-28T14:00:00"), utc("2026-11-28T14:04:00"))
    add_history(d, "75", utc("2026-11-28T15:00:00"), utc("2026-11-28T16:00:00"))
    t = qstat.sheet(d.engine, world.actors["sgt75"], DAY, "precinct", None, LATER).total.now
    assert (t["jobs"], t["closed"], t["closed_within_5_min"]) == (2, 2, 1)
    assert (t["median_close_min"], t["p90_close_min"]) == _as_sheet([4, 60])
    for name in ("median_assign_min", "p90_ack_min", "median_arrive_min",
                 "closed_within_5_min_of_assignment", "closed_within_5_min_of_assignment_share",
                 "closed_without_arrival", "closed_without_arrival_share", "photos_viewed_share",
                 "reopened", "reopen_rate", "overdue_ack", "overdue_close"):
        assert t[name] is None, name  # "no data", not zero


def test_previous_period_change_and_rank(world, clock) -> None:
    d = world.dispatch
    # this day: three in the 75th, one in the 120th; the day before: one in the 75th
    for hour in (14, 15, 16):
        add_history(d, "75", utc(f"2026-11-28T{hour}:00:00"), utc(f"2026-11-28T{hour}:10:00"))
    add_history(d, "120", utc("2026-11-28T14:00:00"), utc("2026-11-28T14:02:00"))
    add_history(d, "75", utc("2026-11-27T14:00:00"), utc("2026-11-27T14:30:00"))
    s = qstat.sheet(d.engine, world.actors["sgt75"], DAY, "precinct", None, LATER)
    assert s.previous == Period(date(2026, 11, 27), date(2026, 11, 28))
    assert (s.total.now["jobs"], s.total.before["jobs"], s.total.change("jobs")) == (3, 1, 2)
    assert s.total.change("median_close_min") == 10 - 30
    assert s.total.rank["jobs"] == 1 and s.precincts_ranked == 2
    assert s.total.rank["closed_within_5_min_share"] == 2  # the 120th's 1/1 beats 0/3
    city = qstat.sheet(d.engine, world.actors["city"], DAY, "precinct", None, LATER)
    assert [(line.key, line.now["jobs"]) for line in city.lines] == [("75", 3), ("120", 1)]


def test_dst_day_counts_25_hours_and_tours_by_the_wall_clock(world) -> None:
    d = world.dispatch
    fall_back = Period(date(2026, 11, 1), date(2026, 11, 2))  # EDT until 06:00 UTC, then EST
    assert (fall_back.until - fall_back.since).total_seconds() == 25 * 3600
    inside = {
        "2026-11-01T04:00:00": "midnight",  # 00:00 EDT, the day's first instant
        "2026-11-01T05:30:00": "midnight",  # 01:30 EDT
        "2026-11-01T06:30:00": "midnight",  # 01:30 EST, the repeated hour
        "2026-11-01T11:59:00": "midnight",  # 06:59 EST (would be 07:59, day, at EDT)
        "2026-11-01T12:00:00": "day",  # 07:00 EST
        "2026-11-01T20:00:00": "evening",  # 15:00 EST
        "2026-11-02T04:30:00": "midnight",  # 23:30 EST, still 1 November
    }
    outside = ("2026-11-01T03:59:00",  # 23:59 EDT on 31 October
               "2026-11-02T05:00:00")  # 00:00 EST on 2 November
    for when in (*inside, *outside):
        add_history(d, "75", utc(when), utc(when) + minutes(10))
    s = qstat.sheet(d.engine, world.actors["sgt75"], fall_back, "tour", None, LATER)
    assert s.total.now["jobs"] == len(inside)
    assert {line.key: line.now["jobs"] for line in s.lines} == {
        "day": 1, "evening": 1, "midnight": 5}
    spring = Period(date(2026, 3, 8), date(2026, 3, 9))
    assert (spring.until - spring.since).total_seconds() == 23 * 3600


def test_scope_refuses_other_precincts_and_non_readers(world) -> None:
    engine, a = world.dispatch.engine, world.actors
    for who, precinct in (("sgt75", "120"), ("sgt120", "75")):
        with pytest.raises(Forbidden):
            qstat.sheet(engine, a[who], DAY, "precinct", precinct, LATER)
        with pytest.raises(Forbidden):
            qstat.jobs_behind(engine, a[who], DAY, "precinct", precinct, "jobs", precinct, LATER)
    for who in ("off75a", "wall75"):
        with pytest.raises(Forbidden):
            qstat.sheet(engine, a[who], DAY, "precinct", None, LATER)
    assert qstat.scope(a["cmd"], None) == ("75", "120")
    assert qstat.scope(a["sgt75"], None) == ("75",)
    assert qstat.scope(a["city"], None) is None


def test_unscoped_reader_sees_only_their_precincts(world, clock) -> None:
    ids = _fixed_set(world, clock)
    s = qstat.sheet(world.dispatch.engine, world.actors["sgt120"], DAY, "unit", None, LATER)
    assert s.total.now["jobs"] == 1 and [line.key for line in s.lines] == ["120-A"]
    rows, total = qstat.jobs_behind(world.dispatch.engine, world.actors["sgt120"], DAY, "all",
                                    "", "jobs", None, LATER)
    assert total == 1 and [r.job_id for r in rows] == [ids["j6"]]


def test_jobs_behind_a_figure(world, clock) -> None:
    ids = _fixed_set(world, clock)
    engine, sgt = world.dispatch.engine, world.actors["sgt75"]

    def behind(figure: str, by: str = "all", group: str = "") -> list[int]:
        rows, total = qstat.jobs_behind(engine, sgt, DAY, by, group, figure, None, LATER)
        assert total == len(rows)
        return sorted(r.job_id for r in rows)

    assert behind("closed_within_5_min") == sorted([ids["j4"], ids["h1"]])
    assert behind("closed_without_arrival_share") == [ids["j2"]]
    assert behind("photos_viewed_share") == [ids["j4"]]  # the photo nobody looked at
    assert behind("summons_share") == sorted([ids["j2"], ids["h2"]])
    assert behind("backlog") == sorted([ids["j3"], ids["j5"]])
    assert behind("overdue_ack") == [ids["j5"]]
    assert behind("jobs", "tour", "midnight") == sorted([ids["j3"], ids["h1"]])
    assert behind("jobs", "unit", "75-B") == sorted([ids["j2"], ids["j5"]])
    assert behind("disposition:duplicate") == [ids["j4"]]
    with pytest.raises(ValueError):
        behind("nonsense")


def test_facts_rebuilt_from_events_match_the_write_path(world, clock, engine) -> None:
    _fixed_set(world, clock)
    d = world.dispatch
    sgt = world.actors["sgt75"]
    with db.read(engine) as conn:
        job = conn.execute(sa.select(job_facts.c.job_id)
                           .where(job_facts.c.disposition == "no_evidence")).scalar()
    d.reopen(sgt, job, 5, "caller says they are still there")
    with db.read(engine) as conn:
        kept = {r.job_id: dict(r._mapping) for r in conn.execute(sa.select(job_facts))}
    assert kept[job]["reopens"] == 1 and kept[job]["closed_at"] is None
    with db.write(engine) as conn:
        assert factstore.rebuild(conn) == len(kept)
    with db.read(engine) as conn:
        rebuilt = {r.job_id: dict(r._mapping) for r in conn.execute(sa.select(job_facts))}
    assert rebuilt == kept


def test_percentiles_are_the_spreadsheets_for_odd_and_even_counts(world, clock) -> None:
    """The engine's figures (percentile_cont on PostgreSQL, the domain rule on SQLite), the
    Python path and statistics.median / quantiles(inclusive) agree on the same jobs."""
    d = world.dispatch
    for i, mins in enumerate((1, 2, 2, 3, 5, 8, 13, 21, 34, 55, 89)):
        add_history(d, "75" if i % 2 else "120", utc(f"2026-11-28T{10 + i}:00:00"),
                    utc(f"2026-11-28T{10 + i}:00:00") + minutes(mins))
    with db.read(d.engine) as conn:
        engine_side = qstat.figures(conn, "precinct", None, DAY, LATER)
        where = [job_facts.c.created_at >= DAY.since, job_facts.c.created_at < DAY.until]
        python_side = qstat.percentiles_python(conn, job_facts.c.precinct, where)
    values = {"120": [1, 2, 5, 13, 34, 89], "75": [2, 3, 8, 21, 55]}  # even, odd
    for p, mins in values.items():
        expected = {"median_close_min": spreadsheet_median(mins),
                    "p90_close_min": spreadsheet_p90(mins)}
        for name, want in expected.items():
            assert engine_side[p][name] == pytest.approx(want), (p, name)
            assert python_side[p][name] == pytest.approx(want), (p, name)
    assert engine_side["120"]["median_close_min"] == pytest.approx(9.0)  # (5 + 13) / 2
    assert engine_side["75"]["median_close_min"] == pytest.approx(8.0)


def test_two_jobs_median_is_their_mean_not_the_first(world) -> None:
    """The issue's precinct: closed in 79.0 and 138.7 minutes; a spreadsheet says 108.85."""
    d = world.dispatch
    start = utc("2026-11-28T14:00:00")
    add_history(d, "75", start, start + minutes(79.0))
    add_history(d, "75", start + minutes(60), start + minutes(60 + 138.7))
    t = qstat.sheet(d.engine, world.actors["sgt75"], DAY, "precinct", None, LATER).total.now
    assert t["median_close_min"] == pytest.approx(108.85)
    assert t["median_close_min"] == pytest.approx(spreadsheet_median([79.0, 138.7]))
    assert t["p90_close_min"] == pytest.approx(spreadsheet_p90([79.0, 138.7]))


def test_cli_unknown_group_refused() -> None:
    with pytest.raises(ValueError):
        qstat._group_col("borough")
    assert SYSTEM.citywide


def test_csv_text_cells_never_run_as_formulas() -> None:
    from board.accountability.qstat_tables import text

    assert text("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert text("@SUM(A1)") == "'@SUM(A1)" and text("Noise - Residential") == "Noise - Residential"


def test_late_to_acknowledge_counts_only_jobs_a_unit_had(world, clock) -> None:
    """A job nobody dispatched that passes its acknowledge deadline is "not dispatched", not
    "not acknowledged" (the issue: 493 of 500 jobs behind that figure had no unit)."""
    d, sgt = world.dispatch, world.actors["sgt75"]
    clock.now = utc("2026-11-28T15:00:00")
    never = make_job(d, "75")
    assigned = make_job(d, "75")
    d.assign(sgt, assigned, 1, world.unit("75-A"))
    clock.now = utc("2026-11-28T18:00:00")
    assert d.mark_overdue(SYSTEM, never, "ack") is None  # nobody had it to acknowledge
    assert d.mark_overdue(SYSTEM, never, "dispatch")["payload"] == {"stage": "dispatch",
                                                                   "status": "new"}
    assert d.mark_overdue(SYSTEM, assigned, "ack") is not None
    older = make_job(d, "75")  # as the worker wrote it before "dispatch": "ack", no status
    with db.write(d.engine) as conn:
        d._event(conn, SYSTEM, "overdue", job=d._job(conn, older), payload={"stage": "ack"})
    s = qstat.sheet(d.engine, sgt, DAY, "precinct", None, LATER)
    t = s.total.now
    assert (t["overdue_dispatch"], t["overdue_ack"]) == (2, 1)
    labels = {k: label for k, label, _ in qstat.FIGURES}
    assert labels["overdue_dispatch"] == "Went overdue: not dispatched"
    assert labels["overdue_ack"] == "Went overdue: not acknowledged"
    rows, total = qstat.jobs_behind(d.engine, sgt, DAY, "all", "", "overdue_ack", None, LATER)
    assert (total, [r.job_id for r in rows]) == (1, [assigned])
    rows, _ = qstat.jobs_behind(d.engine, sgt, DAY, "all", "", "overdue_dispatch", None, LATER)
    assert sorted(r.job_id for r in rows) == sorted([never, older])
    # a rebuild from the events gives the same facts
    with db.read(d.engine) as conn:
        kept = {r.job_id: dict(r._mapping) for r in conn.execute(sa.select(job_facts))}
    with db.write(d.engine) as conn:
        factstore.rebuild(conn)
    with db.read(d.engine) as conn:
        assert {r.job_id: dict(r._mapping) for r in conn.execute(sa.select(job_facts))} == kept


def test_overdue_events_written_before_the_status_was_recorded() -> None:
    """Events are never rewritten: an old `ack` event without a status counts as not
    dispatched when the job had never been assigned by then."""
    from board.domain.jobfacts import fold

    job = {"id": 1, "precinct": "75", "sector": None, "complaint_type": "Noise",
           "created_at": utc("2026-11-28T15:00:00"), "history": False, "media": [],
           "closed_at": None, "disposition": None, "summons_count": None,
           "administrative": False}
    f = fold(None, job, "create", job["created_at"], {})
    late = fold(f, job, "overdue", utc("2026-11-28T16:00:00"), {"stage": "ack"})
    assert (late["overdue_dispatch"], late["overdue_ack"]) == (True, False)
    f = fold(f, job, "assign", utc("2026-11-28T15:05:00"), {}, unit_id=3)
    late = fold(f, job, "overdue", utc("2026-11-28T16:00:00"), {"stage": "ack"})
    assert (late["overdue_dispatch"], late["overdue_ack"]) == (False, True)
    # a job returned to the queue, late while new: the status it was late in decides
    late = fold(f, job, "overdue", utc("2026-11-28T16:00:00"), {"stage": "ack", "status": "new"})
    assert (late["overdue_dispatch"], late["overdue_ack"]) == (True, False)


def test_summons_share_is_no_data_when_history_carries_no_resolution(world) -> None:
    """History exported without resolution text cannot say whether a summons was issued."""
    d = world.dispatch
    for hour in (14, 15):
        add_history(d, "75", utc(f"2026-11-28T{hour}:00:00"), utc(f"2026-11-28T{hour}:30:00"),
                    "Illegal Parking")
    t = qstat.sheet(d.engine, world.actors["sgt75"], DAY, "precinct", None, LATER).total.now
    assert t["summons_closed"] == 2 and t["summons_share"] is None  # not 0.0
    summons = "The Police Department issued a summons in response to the complaint."
    add_history(d, "75", utc("2026-11-28T16:00:00"), utc("2026-11-28T16:30:00"),
                "Blocked Driveway", summons)
    t = qstat.sheet(d.engine, world.actors["sgt75"], DAY, "precinct", None, LATER).total.now
    assert (t["summons_closed"], t["summons_share"]) == (3, 1.0)  # 1 of the 1 known


def test_jobs_behind_a_figure_page_by_offset(world) -> None:
    d = world.dispatch
    ids = [add_history(d, "75", utc(f"2026-11-28T{h}:00:00"), utc(f"2026-11-28T{h}:10:00"))
           for h in range(10, 15)]
    seen = []
    for offset in (0, 2, 4):
        rows, total = qstat.jobs_behind(d.engine, world.actors["sgt75"], DAY, "all", "", "jobs",
                                        None, LATER, limit=2, offset=offset)
        assert total == 5
        seen += [r.job_id for r in rows]
    assert seen == ids  # oldest first, each once


def test_the_close_buckets_take_each_close_once_at_their_limits(world) -> None:
    """Receipt → close at each limit falls in the bucket it is within, just past it in the
    next; the buckets add up to the closes."""
    d = world.dispatch
    mins = (0, 5, 5.1, 15, 15.1, 30, 60, 61, 120, 240, 480, 1440, 1441, 5000)
    for i, m in enumerate(mins):
        start = utc(f"2026-11-28T{10 + i % 10}:0{i // 10}:00")
        add_history(d, "75", start, start + minutes(m))
    s = qstat.sheet(d.engine, world.actors["sgt75"], DAY, "precinct", "75", LATER)
    assert s.distribution == [("≤5 min", 2), ("5–15 min", 2), ("15–30 min", 2),
                              ("30–60 min", 1), ("1–2 h", 2), ("2–4 h", 1), ("4–8 h", 1),
                              ("8–24 h", 1), ("> 24 h", 2)]
    assert sum(n for _, n in s.distribution) == s.total.now["closed"] == len(mins)


def test_a_precinct_pages_ranks_are_the_citywide_pages(world, clock) -> None:
    """A precinct page reads only what the ranked figures are made of; its ranks and its
    count of ranked precincts are the ones the full figures give."""
    d = world.dispatch
    _fixed_set(world, clock)
    for p, close in (("120", 3), ("120", 40), ("75", 7)):
        add_history(d, p, utc("2026-11-28T15:00:00"), utc("2026-11-28T15:00:00") + minutes(close))
    with db.read(d.engine) as conn:
        full = qstat.figures(conn, "precinct", None, DAY, LATER)
        ranked = qstat.figures(conn, "precinct", None, DAY, LATER, durations=("close",),
                               counts=qstat.RANK_COUNTS)
    assert set(ranked) == set(full)
    for p in full:
        assert {k: ranked[p][k] for k in qstat.RANKED} == {k: full[p][k] for k in qstat.RANKED}
        assert ranked[p]["median_arrival_distance_m"] is None  # not read for a ranking
    s = qstat.sheet(d.engine, world.actors["sgt75"], DAY, "precinct", "75", LATER)
    city = qstat.sheet(d.engine, world.actors["city"], DAY, "precinct", None, LATER)
    assert s.total.rank == {line.key: line.rank for line in city.lines}["75"]
    assert s.precincts_ranked == city.precincts_ranked


def test_every_grouping_compares_precincts_on_every_figure(world, clock) -> None:
    """The precinct comparison and the total are the same whatever the lines are grouped by
    (the ranking's few counts never stand in for them), for the city and for one precinct."""
    _fixed_set(world, clock)
    d = world.dispatch
    for reader, precinct in (("city", None), ("sgt75", "75")):
        sheets = {by: qstat.sheet(d.engine, world.actors[reader], DAY, by, precinct, LATER)
                  for by in ("precinct", "tour", "unit")}
        base = sheets["precinct"]
        assert base.total.now["median_assign_min"] is not None
        for s in sheets.values():
            assert {x.key: x.now for x in s.comparison} == {x.key: x.now
                                                            for x in base.comparison}
            assert (s.total.now, s.total.before) == (base.total.now, base.total.before)
            assert s.total.rank == base.total.rank

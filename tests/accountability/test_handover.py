"""The tour handover report: what it holds for one tour, its CSV rows, and who may read it."""

from __future__ import annotations

import pytest

from board.accountability import handover
from board.domain.access import SYSTEM, Forbidden
from tests.conftest import make_job
from tests.qstat_helpers import minutes, utc

# The day tour of 28 November 2026: 07:00–15:00 EST = 12:00–20:00 UTC
BEFORE = utc("2026-11-28T11:00:00")  # 06:00 EST: the midnight tour before it


def tour_of_events(world, clock) -> dict[str, int]:  # type: ignore[no-untyped-def]
    d, a = world.dispatch, world.actors
    sgt, off = a["sgt75"], a["off75a"]
    clock.now = BEFORE
    d.log_entry(sgt, "75", "Midnight tour: quiet.")
    earlier_quick = make_job(d, "75")
    d.assign(sgt, earlier_quick, 1, world.unit("75-A"))
    d.close(off, earlier_quick, 2, "action_taken")  # flagged, but in the tour before
    clock.now = utc("2026-11-28T13:00:00")  # 08:00 EST
    ids = {"waiting": make_job(d, "75"), "working": make_job(d, "75")}
    d.assign(sgt, ids["working"], 1, world.unit("75-B"))
    quick = ids["quick"] = make_job(d, "75")
    d.assign(sgt, quick, 1, world.unit("75-A"))
    clock.advance(minutes=2)
    d.close(off, quick, 2, "action_taken")  # within 5 minutes, no arrival: flagged
    d.answer_survey(SYSTEM, quick, 1, True)  # the caller: still there
    d.log_entry(sgt, "75", f"Sgt. Ruiz on the desk; #{ids['working']} left with 75-B.")
    unit = world.unit("75-C")
    d.unit_status(sgt, unit, 1, "out_of_service", "vehicle repair")
    make_job(d, "120")  # another precinct: never in the 75th's report
    clock.now = utc("2026-11-28T19:00:00") + minutes(30)  # 14:30 EST: the waiting job is late
    return ids


def test_the_tours_report(world, clock) -> None:
    ids = tour_of_events(world, clock)
    h = handover.handover(world.dispatch.engine, world.actors["sgt75"], "75", clock.now)
    assert (h.tour, h.start, h.end) == ("day", utc("2026-11-28T12:00:00"),
                                        utc("2026-11-28T20:00:00"))
    assert [c.id for c in h.carried] == [ids["waiting"], ids["working"]]
    assert ids["waiting"] in [c.id for c in h.overdue]
    units = {u.callsign: u for u in h.units}
    assert (units["75-C"].status, units["75-C"].reason) == ("out_of_service", "vehicle repair")
    assert [c.id for c in units["75-B"].jobs] == [ids["working"]]
    assert [e.text for e in h.log] == [
        f"Sgt. Ruiz on the desk; #{ids['working']} left with 75-B."]
    assert [(f.job_id, "quick_close" in f.flags) for f in h.flagged] == [(ids["quick"], True)]
    assert [x.job_id for x in h.disputes] == [ids["quick"]]
    rows = handover.csv_rows(h)
    sections = [r[0] for r in rows]
    assert sections.count("carried_over") == 2 and sections.count("unit") == 3
    assert sections.count("command_log") == 1 and sections.count("flagged_close") == 1
    assert sections.count("caller_dispute") == 1
    # the tour before holds the midnight entry and the earlier flagged close
    before = handover.handover(world.dispatch.engine, world.actors["sgt75"], "75", clock.now,
                               "previous")
    assert before.tour == "midnight" and [e.text for e in before.log] == [
        "Midnight tour: quiet."]
    assert len(before.flagged) == 1 and before.disputes == []


def test_only_the_precincts_supervisors_commanders_and_admins(world, clock) -> None:
    tour_of_events(world, clock)
    engine, a = world.dispatch.engine, world.actors
    for who in ("sgt75", "cmd", "city", "admin"):
        assert handover.handover(engine, a[who], "75", clock.now).precinct == "75"
    for who in ("off75a", "sgt120", "wall75"):
        with pytest.raises(Forbidden):
            handover.handover(engine, a[who], "75", clock.now)
    with pytest.raises(ValueError):
        handover.handover(engine, a["sgt75"], "75", clock.now, "next week")

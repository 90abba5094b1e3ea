"""The command log: append-only, attributable, scoped, searchable, by tour."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from board.accountability import commandlog
from board.storage import db
from board.storage.schema import command_log, events
from board.usecases import Forbidden, Invalid
from tests.conftest import Clock, World


def test_entries_are_attributable_and_corrections_sit_under_the_entry(world: World) -> None:
    d, sgt = world.dispatch, world.actors["sgt75"]
    first = d.log_entry(sgt, "75", "Sgt on desk; 4 RMP on patrol. Job #12 handed to 75-A")
    fix = d.log_entry(sgt, "75", "Correction: 3 RMP on patrol", corrects=first["entry_id"])
    d.log_entry(sgt, "75", "Prisoner lodged 02:10")
    got = commandlog.entries(d.engine, world.actors["cmd"], "75")
    assert [e.text for e in got] == ["Prisoner lodged 02:10",
                                     "Sgt on desk; 4 RMP on patrol. Job #12 handed to 75-A"]
    assert [c.id for c in got[1].corrections] == [fix["entry_id"]]
    assert got[1].actor == "SGT75"
    # the search finds the original and brings its correction along
    found = commandlog.entries(d.engine, sgt, "75", text="rmp")
    assert [e.id for e in found] == [first["entry_id"]]
    assert [c.text for c in found[0].corrections] == ["Correction: 3 RMP on patrol"]
    with db.read(d.engine) as conn:
        ev = conn.execute(sa.select(events).where(events.c.kind == "log_entry")).first()
    assert (ev.job_id, ev.precinct, ev.payload["entry"]) == (None, "75", first["entry_id"])


def test_the_table_is_append_only_in_the_database(world: World) -> None:
    d = world.dispatch
    entry = d.log_entry(world.actors["sgt75"], "75", "Radio check")["entry_id"]
    for stmt in (command_log.update().where(command_log.c.id == entry).values(text="edited"),
                 command_log.delete().where(command_log.c.id == entry)):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.write(d.engine) as conn:
            conn.execute(stmt)
    got = commandlog.entries(d.engine, world.actors["sgt75"], "75")
    assert [e.text for e in got] == ["Radio check"]


def test_scope_supervisors_write_commanders_read_officers_nothing(world: World) -> None:
    d = world.dispatch
    entry = d.log_entry(world.actors["sgt75"], "75", "Visit from the XO")["entry_id"]
    for who in ("cmd", "off75a", "sgt120", "wall75"):
        with pytest.raises(Forbidden):
            d.log_entry(world.actors[who], "75", "let me in")
    for who in ("off75a", "sgt120", "wall75"):
        with pytest.raises(Forbidden):
            commandlog.entries(d.engine, world.actors[who], "75")
    with pytest.raises(Invalid):  # a correction of another precinct's entry
        d.log_entry(world.actors["sgt120"], "120", "fix", corrects=entry)
    with pytest.raises(Invalid):
        d.log_entry(world.actors["sgt75"], "75", "  ")


def test_job_references_are_links_and_text_is_escaped() -> None:
    html = str(commandlog.linked("See #42 & <script>alert(1)</script> not a#7 or &#39;"))
    assert '<a href="/jobs/42">#42</a>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("<a ") == 1


def test_tours_in_new_york_time_across_a_dst_change() -> None:
    start, end = commandlog.tour_window(date(2026, 11, 28), "midnight")
    assert (start, end) == (datetime(2026, 11, 28, 4, 0, tzinfo=UTC),
                            datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    assert commandlog.tour_window(date(2026, 11, 28), "evening")[0] == datetime(
        2026, 11, 28, 20, 0, tzinfo=UTC)
    # 2026-11-01: clocks go back at 02:00, so the midnight tour is 9 hours of real time
    start, end = commandlog.tour_window(date(2026, 11, 1), "midnight")
    assert (end - start).total_seconds() == 9 * 3600
    assert commandlog.tour_of(datetime(2026, 11, 29, 4, 30, tzinfo=UTC)) == (
        date(2026, 11, 29), "midnight")  # 23:30 on the 28th, New York
    assert commandlog.tour_of(datetime(2026, 11, 28, 20, 0, tzinfo=UTC)) == (
        date(2026, 11, 28), "evening")


def test_search_by_date_range(world: World, clock: Clock) -> None:
    d, sgt = world.dispatch, world.actors["sgt75"]
    d.log_entry(sgt, "75", "early")
    clock.advance(hours=9)
    d.log_entry(sgt, "75", "late")
    since, until = commandlog.tour_window(*commandlog.tour_of(clock.now))
    got = commandlog.entries(d.engine, sgt, "75", since=since, until=until)
    assert [e.text for e in got] == ["late"]

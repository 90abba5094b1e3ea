"""The desk's memory read: earlier jobs at a place on the job page and on every board card,
in one query for the whole board, within the precinct, both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from board.domain.access import SYSTEM, Forbidden
from board.domain.places import PlaceRules
from board.storage import db
from board.usecases import NewJob, queries
from tests.conftest import point_in
from tests.qstat_helpers import utc

NOW = utc("2026-11-28T15:00:00")
HERE = "123 MEMORY STREET"


def _job(d, clock, lat, lon, *, address: str = "", days_before: float = 0,
         kind: str = "Noise - Residential", closed: str | None = None) -> int:
    at = NOW - timedelta(days=days_before)
    clock.now = at
    new = NewJob(kind, "", address=address, lat=lat, lon=lon, created_at=at,
                 closed_at=at + timedelta(minutes=30) if closed is not None else None,
                 resolution=closed or "")
    return d.create_job(SYSTEM, new, source="manual")["job_id"]


def _place(world):  # type: ignore[no-untyped-def]
    lat, lon = point_in(world.dispatch.geo, "75")
    return lat, lon


def test_job_page_memory_lists_earlier_jobs_at_the_address_or_within_50_m(world, clock) -> None:
    d = world.dispatch
    lat, lon = _place(world)
    summons = "The Police Department issued a summons in response to the complaint."
    # 311 placed it 200 m off (same precinct): the address matches, not the point
    same_address = _job(d, clock, lat - 200 / 111_320, lon, address=HERE, days_before=20,
                        closed=summons, kind="Illegal Parking")
    near = _job(d, clock, lat + 30 / 111_320, lon, days_before=5)  # 30 m north, open
    _job(d, clock, lat + 80 / 111_320, lon, days_before=3)  # 80 m: another place
    _job(d, clock, lat, lon, address=HERE, days_before=100)  # before the 90 days
    job = _job(d, clock, lat, lon, address=HERE)
    with db.read(d.engine) as conn:
        row = conn.execute(sa.select(queries.jobs).where(queries.jobs.c.id == job)).first()
    memory = queries.place_memory(d.engine, world.actors["sgt75"], row, PlaceRules())
    assert [(e.id, e.disposition) for e in memory.earlier] == [
        (near, None), (same_address, "summons_issued")]
    assert memory.chronic is None
    with pytest.raises(Forbidden):
        queries.place_memory(d.engine, world.actors["sgt120"], row, PlaceRules())


def test_board_cards_carry_the_count_and_chronic_flag_in_one_query(world, clock,
                                                                   engine) -> None:
    d = world.dispatch
    lat, lon = _place(world)
    for days in (25, 20, 12, 6):
        _job(d, clock, lat, lon, address=HERE, days_before=days,
             closed="The Police Department responded to the complaint and took action to fix "
                    "the condition.")
    chronic = _job(d, clock, lat, lon, address=HERE)
    other_kind = _job(d, clock, lat, lon, address=HERE, kind="Illegal Parking",
                      days_before=-0.001)  # a minute and a half after it
    alone = _job(d, clock, lat + 0.01, lon + 0.01)
    clock.now = NOW + timedelta(minutes=5)

    def read(rules: PlaceRules) -> tuple[dict[int, queries.Card], int]:
        statements: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            statements.append(statement)
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            view = queries.board(engine, world.actors["sgt75"], "75", clock.now, rules)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return {c.id: c for c in view.queue}, len(statements)

    cards, n_queries = read(PlaceRules())
    assert (cards[chronic].here_before, cards[chronic].chronic) == (4, 5)
    # the parking job: 5 earlier at the address (4 closed + the open noise job), not chronic
    assert (cards[other_kind].here_before, cards[other_kind].chronic) == (5, None)
    assert (cards[alone].here_before, cards[alone].chronic) == (0, None)
    # the threshold is a setting
    assert read(PlaceRules(chronic_complaints=6))[0][chronic].chronic is None
    # more cards, the same number of statements: the memory is one query for the board
    for _ in range(6):
        _job(d, clock, lat + 0.02, lon, address="9 ELSEWHERE AVENUE")
    clock.now = NOW + timedelta(minutes=5)
    more, n_more = read(PlaceRules())
    assert len(more) == len(cards) + 6 and n_more == n_queries


def test_the_chronic_threshold_is_a_setting(tmp_path) -> None:
    from board import bootstrap
    from board.settings import GEO_DIR, Settings

    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
                                  "SECRET_KEY": "x", "BOARD_VAR_DIR": str(tmp_path),
                                  "BOARD_GEO_DIR": str(GEO_DIR), "CHRONIC_COMPLAINTS": "3"})
    assert settings.chronic_complaints == 3
    d = bootstrap.open_dispatch(settings)
    try:
        assert d.places == PlaceRules(chronic_complaints=3)
    finally:
        d.engine.dispose()
    assert Settings.from_env({"SECRET_KEY": "x", "BOARD_VAR_DIR": str(tmp_path)}
                             ).chronic_complaints == 5


def test_a_chronic_places_board_read_grows_with_its_jobs_not_their_pairs(world, clock) -> None:
    """Forty complaints at one address and point: each card counts the ones before it, and
    the read fetches each job once (pairwise, it fetched 2 × 40 × 39 rows)."""
    from board.observability import metrics

    d = world.dispatch
    lat, lon = _place(world)
    ids = [_job(d, clock, lat, lon, address=HERE, days_before=40 - i) for i in range(40)]
    metrics.count_rows()
    with metrics.reading("memory-test"):
        before = metrics.rows_read("memory-test")
        view = queries.board(d.engine, SYSTEM, "75", NOW, PlaceRules())
        rows = metrics.rows_read("memory-test") - before
    here = {c.id: c.here_before for lane in [view.queue] for c in lane if c.id in ids}
    # the 90-day window holds them all: the n-th counts the n - 1 before it
    assert [here.get(i, 0) for i in ids] == list(range(40))
    assert rows < 4 * 40, rows

"""Related complaints as one incident: link, assign together, close together; each 311
request keeps its own job, events and resolution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from board.domain.access import Forbidden
from board.usecases import Conflict, Dispatch, Invalid, queries
from tests.conftest import World, make_job
from tests.usecases.test_usecases import job_events, job_row, refused, version


def test_link_assign_and_close_together(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    first, second, third = (make_job(dispatch, "75") for _ in range(3))
    ev = dispatch.link(sgt, second, 1, first)
    assert (ev["kind"], ev["payload"], ev["job_id"]) == ("link", {"incident": first}, second)
    dispatch.link(sgt, third, 1, second)  # linked to a member: joins the same incident
    assert job_row(dispatch, third).incident_id == first
    assert job_row(dispatch, first).incident_id is None and version(dispatch, first) == 1

    unit = world.unit("75-A")
    evs = dispatch.assign_incident(sgt, first, unit)
    assert [e["job_id"] for e in evs] == [first, second, third]
    assert {job_row(dispatch, j).unit_id for j in (first, second, third)} == {unit}

    for j in (first, second, third):
        dispatch.acknowledge(off, j, version(dispatch, j))
    closed = dispatch.close_incident(off, first, "action_taken", note="one party, three calls")
    assert [e["job_id"] for e in closed] == [first, second, third]
    for j in (first, second, third):
        row = job_row(dispatch, j)
        assert row.status == "closed" and row.resolution and row.disposition == "action_taken"
        assert [e.kind for e in job_events(dispatch, j)][-1] == "close"


def test_link_is_checked(dispatch: Dispatch, world: World) -> None:
    sgt = world.actors["sgt75"]
    a, b = make_job(dispatch, "75"), make_job(dispatch, "75")
    other = make_job(dispatch, "120")
    refused(dispatch, Invalid, lambda: dispatch.link(sgt, a, 1, a))
    refused(dispatch, Conflict, lambda: dispatch.link(sgt, a, 7, b))
    refused(dispatch, Forbidden, lambda: dispatch.link(sgt, a, 1, other))
    refused(dispatch, Forbidden, lambda: dispatch.link(world.actors["off75a"], a, 1, b))
    refused(dispatch, Forbidden, lambda: dispatch.link(world.actors["sgt120"], other, 1, a))
    dispatch.link(sgt, b, 1, a)
    refused(dispatch, Invalid, lambda: dispatch.link(sgt, a, 1, b))  # a leads: no loops
    ev = dispatch.link(sgt, b, 2, None)
    assert ev["kind"] == "unlink" and job_row(dispatch, b).incident_id is None


@pytest.mark.parametrize("same", ["address", "near"])
def test_the_board_says_possibly_the_same(dispatch: Dispatch, world: World, same: str) -> None:
    from board.domain.access import SYSTEM
    from board.usecases import NewJob
    from tests.conftest import point_in

    lat, lon = point_in(dispatch.geo, "75")
    first = dispatch.create_job(SYSTEM, NewJob("Noise - Residential", "Loud Music/Party",
                                               address="12 SHEPHERD AVE", lat=lat, lon=lon))
    dlat = 0.01 if same == "address" else 0.0003  # 1 km off (same address) or 33 m
    address = "12 Shepherd Ave" if same == "address" else "40 SHEPHERD AVE"
    later = dispatch.create_job(SYSTEM, NewJob("Noise - Residential", "Banging/Pounding",
                                               address=address, lat=lat + dlat, lon=lon))
    view = queries.board(dispatch.engine, world.actors["sgt75"], "75", datetime.now(UTC))
    cards = {c.id: c for c in view.queue}
    assert cards[later["job_id"]].same_as == first["job_id"]
    assert cards[first["job_id"]].same_as is None
    dispatch.link(world.actors["sgt75"], later["job_id"], 1, first["job_id"])
    view = queries.board(dispatch.engine, world.actors["sgt75"], "75", datetime.now(UTC))
    cards = {c.id: c for c in view.queue}
    assert cards[later["job_id"]].same_as is None
    assert cards[later["job_id"]].incident == first["job_id"]
    assert cards[first["job_id"]].incident == first["job_id"]  # the first job leads it


def test_routing_a_job_out_of_its_precinct_unlinks_it(dispatch: Dispatch, world: World) -> None:
    """Audit defect 3: jobs 25, 37 and 44 in one incident, 44 routed to the 34th kept its link,
    so the 34th saw "incident #25" (a 75th job) and the 75th's "assign together" hit it."""
    sgt, city = world.actors["sgt75"], world.actors["city"]
    lead, member, moved = (make_job(dispatch, "75") for _ in range(3))
    dispatch.link(sgt, member, 1, lead)
    dispatch.link(sgt, moved, 1, lead)
    seen: list[list[dict]] = []
    dispatch.listeners.append(seen.append)
    ev = dispatch.route(city, moved, version(dispatch, moved), "120")
    row = job_row(dispatch, moved)
    assert (row.precinct, row.incident_id) == ("120", None)
    unlink, route = job_events(dispatch, moved)[-2:]
    assert (unlink.kind, unlink.payload, unlink.precinct) == ("unlink", {"incident": lead}, "75")
    assert route.kind == "route" and route.seq == ev["seq"] == unlink.seq + 1
    assert [e["kind"] for e in seen[-1]] == ["unlink", "route"]  # the boards hear both
    # the 120th's view of the job shows no incident of the 75th
    detail = queries.job(dispatch.engine, world.actors["sgt120"], moved, datetime.now(UTC))
    rel = queries.related(dispatch.engine, world.actors["sgt120"], detail.row, datetime.now(UTC))
    assert rel.incident is None
    # the incident's lead cannot leave its precinct while it leads jobs there
    refused(dispatch, Invalid, lambda: dispatch.route(city, lead, version(dispatch, lead), "120"))
    # within the precinct (a new sector), the link stays
    dispatch.route(city, member, version(dispatch, member), "75")
    assert job_row(dispatch, member).incident_id == lead
    evs = dispatch.assign_incident(sgt, lead, world.unit("75-A"))
    assert [e["job_id"] for e in evs] == [lead, member]


def _link_across(dispatch: Dispatch, job: int, lead: int) -> None:
    """An incident link across precincts, as one written before routing unlinked."""
    import sqlalchemy as sa

    from board.storage.schema import jobs

    with dispatch.engine.begin() as conn:
        conn.execute(sa.update(jobs).where(jobs.c.id == job).values(incident_id=lead))


def test_assign_together_is_all_or_nothing(dispatch: Dispatch, world: World) -> None:
    """Audit defect 3: sgt75's "assign together" wrote 2 assign events, then answered 403
    for the third job (in the 34th). Every job is checked before any is written."""
    sgt = world.actors["sgt75"]
    lead, member = make_job(dispatch, "75"), make_job(dispatch, "75")
    stranger = make_job(dispatch, "120")
    dispatch.link(sgt, member, 1, lead)
    _link_across(dispatch, stranger, lead)
    refused(dispatch, Forbidden, lambda: dispatch.assign_incident(sgt, lead, world.unit("75-A")))
    # a unit that cannot take them: nothing is written either
    dispatch.unit_status(sgt, world.unit("75-B"), 1, "out_of_service", "flat tyre")
    refused(dispatch, Invalid, lambda: dispatch.assign_incident(
        world.actors["city"], lead, world.unit("75-B")))


def test_close_together_is_all_or_nothing(dispatch: Dispatch, world: World) -> None:
    sgt, off = world.actors["sgt75"], world.actors["off75a"]
    lead, member, stranger = make_job(dispatch, "75"), make_job(dispatch, "75"), \
        make_job(dispatch, "120")
    dispatch.link(sgt, member, 1, lead)
    dispatch.assign_incident(sgt, lead, world.unit("75-A"))
    dispatch.assign(world.actors["sgt120"], stranger, 1, world.unit("120-A"))
    for j in (lead, member):
        dispatch.acknowledge(off, j, version(dispatch, j))
    _link_across(dispatch, stranger, lead)
    refused(dispatch, Forbidden, lambda: dispatch.close_incident(off, lead, "action_taken"))


def test_the_boards_pairs_are_kept_while_no_place_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """A board relates its cards on every update; with the last time's spots it matches again
    only the cards that came, went, moved or changed incident and those whose match they may
    be, and gives what a first reading gives (a status change, most of a tour's events, costs
    no pass over the board)."""
    from dataclasses import replace
    from datetime import timedelta

    from board.domain.related import SpotIndex
    from tests.live.test_cards import a_card
    matched: list[int] = []
    real = SpotIndex.earliest_alike
    monkeypatch.setattr(SpotIndex, "earliest_alike",
                        lambda self, s: matched.append(s.id) or real(self, s))
    first = a_card(id=1)
    later = a_card(id=2, received_at=first.received_at + timedelta(minutes=10))
    elsewhere = a_card(id=3, address="9 OTHER ST", lat=40.70, lon=-73.80)
    memo = queries.Relating()
    boards = [
        [first, later, elsewhere],
        [first, replace(later, status="assigned", unit_id=4, version=2), elsewhere],  # a status
        [first, replace(later, address="5 FAR AVE", lat=40.60, lon=-73.95), elsewhere],  # moved
        [first, later, elsewhere],                                                  # back
        [first, replace(later, incident=1), elsewhere],                             # linked
        [first, replace(later, incident=1), elsewhere],                             # the same
        [later, elsewhere],                                                         # one left
        [first, later, elsewhere, replace(elsewhere, id=4, received_at=later.received_at)],
    ]
    shown, work = [], []
    for cards in boards:
        matched.clear()
        kept = queries.relate(cards, memo)
        work.append(len(matched))
        assert kept == queries.relate(cards)  # what a first reading gives
        shown.append({i: c.same_as for i, c in kept.items()})
    assert shown[0] == {1: None, 2: 1, 3: None} == shown[1]
    assert shown[2] == {1: None, 2: None, 3: None}
    assert shown[6] == {2: None, 3: None}
    assert shown[7] == {1: None, 2: 1, 3: None, 4: 3}
    assert work[1] == 0 and work[5] == 0  # nothing moved: nothing matched
    assert work[2] == 1  # the card that moved (nothing was received after it)


def test_a_boards_kept_pairs_are_a_first_readings_through_a_busy_tour() -> None:
    """Jobs arrive (some backdated), change status, move, are linked and close, at random,
    on one block and a few streets: after each step the pairs kept from the step before are
    the pairs of a first reading."""
    import random
    from dataclasses import replace
    from datetime import timedelta

    from tests.live.test_cards import a_card
    rnd = random.Random(311)
    t0 = a_card().received_at
    places = [("1 MAIN ST", 40.67, -73.91), ("3 MAIN ST", 40.6702, -73.9101),
              ("7 ELM ST", 40.6705, -73.9104), ("90 FAR AVE", 40.70, -73.80)]
    kinds = ["Noise - Residential", "Illegal Parking"]

    def new_card(i: int) -> queries.Card:
        address, lat, lon = rnd.choice(places)
        return a_card(id=i, address=address, lat=lat, lon=lon, complaint_type=rnd.choice(kinds),
                      received_at=t0 + timedelta(minutes=10 * i - rnd.choice([0, 0, 0, 200])))

    board = {i: new_card(i) for i in range(1, 20)}
    memo, nxt = queries.Relating(), 20
    for _ in range(300):
        step = rnd.random()
        if step < 0.3:
            board[nxt], nxt = new_card(nxt), nxt + 1
        elif step < 0.5 and len(board) > 3:
            del board[rnd.choice(sorted(board))]
        elif step < 0.6:
            i = rnd.choice(sorted(board))
            address, lat, lon = rnd.choice(places)
            board[i] = replace(board[i], address=address, lat=lat, lon=lon)
        elif step < 0.7:
            i, lead = rnd.sample(sorted(board), 2)
            board[i] = replace(board[i], incident=rnd.choice([lead, None]))
        else:
            i = rnd.choice(sorted(board))
            board[i] = replace(board[i], version=board[i].version + 1, status="assigned")
        cards = sorted(board.values(), key=lambda c: c.id)
        assert queries.relate(cards, memo) == queries.relate(cards)
    assert any(c.same_as for c in queries.relate(sorted(board.values(), key=lambda c: c.id))
               .values())

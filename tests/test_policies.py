"""Close policies: which apply where, what they refuse, and the close use case enforcing them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import Clock, World, make_job

from board import db
from board.flags import Progress
from board.policies import (
    NOTE_QUICK_CLOSE,
    NOTE_WITHOUT_ARRIVAL,
    PHOTO_BEFORE_CLOSE,
    Policy,
    PolicyError,
    check,
    in_effect,
    refusals,
)
from board.schema import events, jobs
from board.usecases import Forbidden, Invalid

T = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def test_a_precinct_setting_overrides_the_citywide_one() -> None:
    rows = [Policy(PHOTO_BEFORE_CLOSE, True), Policy(NOTE_WITHOUT_ARRIVAL, True),
            Policy(PHOTO_BEFORE_CLOSE, False, scope="75"),
            Policy(NOTE_QUICK_CLOSE, True, 10, scope="75")]
    assert [p.kind for p in in_effect(rows, "75")] == [NOTE_WITHOUT_ARRIVAL, NOTE_QUICK_CLOSE]
    assert [p.kind for p in in_effect(rows, "120")] == [PHOTO_BEFORE_CLOSE,
                                                         NOTE_WITHOUT_ARRIVAL]
    assert in_effect([], "75") == []


def test_each_policy_refuses_its_case_and_only_that() -> None:
    fresh = Progress(assigned_at=T, arrived=False, viewed=False)
    worked = Progress(assigned_at=T - timedelta(hours=1), arrived=True, viewed=True)
    photo = [Policy(PHOTO_BEFORE_CLOSE, True)]
    assert refusals(photo, fresh, T, arrival_expected=True, has_photos=True, note="x")
    assert not refusals(photo, fresh, T, arrival_expected=True, has_photos=False, note="")
    assert not refusals(photo, worked, T, arrival_expected=True, has_photos=True, note="")
    arrive = [Policy(NOTE_WITHOUT_ARRIVAL, True)]
    assert refusals(arrive, fresh, T, arrival_expected=True, has_photos=False, note="")
    assert not refusals(arrive, fresh, T, arrival_expected=True, has_photos=False, note="why")
    assert not refusals(arrive, fresh, T, arrival_expected=False, has_photos=False, note="")
    quick = [Policy(NOTE_QUICK_CLOSE, True, 10)]
    assert refusals(quick, fresh, T + timedelta(minutes=9), arrival_expected=True,
                    has_photos=False, note="")
    assert not refusals(quick, fresh, T + timedelta(minutes=11), arrival_expected=True,
                        has_photos=False, note="")
    assert not refusals(quick, fresh, T, arrival_expected=True, has_photos=False, note="ok")


def test_settings_are_checked() -> None:
    assert check(NOTE_QUICK_CLOSE, True, 10, "75").text == (
        "Closing within 10 minutes of assignment needs a note")
    assert check(PHOTO_BEFORE_CLOSE, True, 99, "*").minutes is None
    with pytest.raises(PolicyError):
        check(NOTE_QUICK_CLOSE, True, None, "*")
    with pytest.raises(PolicyError):
        check(NOTE_QUICK_CLOSE, True, 0, "*")
    with pytest.raises(PolicyError):
        check("no_lunch", True, None, "*")


# -- enforced in the close use case ---------------------------------------------------------



def _assigned(world: World, media: tuple[str, ...] = ()) -> int:
    job = make_job(world.dispatch, media=media)
    world.dispatch.assign(world.actors["sgt75"], job, 1, world.unit("75-A"))
    return job


def _status(world: World, job: int) -> str:
    with db.read(world.dispatch.engine) as conn:
        return conn.execute(sa.select(jobs.c.status).where(jobs.c.id == job)).scalar()


def test_a_close_is_refused_under_each_policy(world: World, clock: Clock) -> None:
    d, admin, off = world.dispatch, world.actors["admin"], world.actors["off75a"]
    d.set_policy(admin, "*", PHOTO_BEFORE_CLOSE, True)
    d.set_policy(admin, "75", NOTE_WITHOUT_ARRIVAL, True)
    d.set_policy(admin, "75", NOTE_QUICK_CLOSE, True, 10)

    photo = _assigned(world, media=("https://example.test/a.jpg",))
    clock.advance(minutes=30)
    with pytest.raises(Invalid, match="open at least one"):
        d.close(off, photo, 2, "action_taken", note="done")
    d.view_photo(off, photo, 0)
    d.close(off, photo, 2, "action_taken", note="looked, done")

    no_arrival = _assigned(world)
    clock.advance(minutes=30)
    with pytest.raises(Invalid, match="arriving on scene"):
        d.close(off, no_arrival, 2, "action_taken")
    d.close(off, no_arrival, 2, "action_taken", note="flagged down on the way")

    quick = _assigned(world)
    for step in (d.acknowledge, d.en_route, d.on_scene):
        step(off, quick, {d.acknowledge: 2, d.en_route: 3, d.on_scene: 4}[step])
    with pytest.raises(Invalid, match="within 10 minutes"):
        d.close(off, quick, 5, "action_taken")
    assert _status(world, quick) == "on_scene"  # refused: nothing written
    d.close(off, quick, 5, "action_taken", note="music off at once")
    assert _status(world, quick) == "closed"


def test_a_precinct_can_turn_a_citywide_policy_off_and_other_precincts_keep_it(
        world: World, clock: Clock) -> None:
    d, admin = world.dispatch, world.actors["admin"]
    d.set_policy(admin, "*", NOTE_WITHOUT_ARRIVAL, True)
    d.set_policy(admin, "120", NOTE_WITHOUT_ARRIVAL, False)
    job75 = _assigned(world)
    with pytest.raises(Invalid):
        d.close(world.actors["off75a"], job75, 2, "action_taken")
    job120 = make_job(d, "120")
    d.assign(world.actors["sgt120"], job120, 1, world.unit("120-A"))
    d.close(world.actors["off120"], job120, 2, "action_taken")  # no note needed in the 120
    assert _status(world, job120) == "closed"


def test_only_admins_change_policies_and_every_change_is_an_event(world: World) -> None:
    d = world.dispatch
    for who in ("sgt75", "cmd", "off75a", "city"):
        with pytest.raises(Forbidden):
            d.set_policy(world.actors[who], "75", PHOTO_BEFORE_CLOSE, True)
    with pytest.raises(Invalid):
        d.set_policy(world.actors["admin"], "9999", PHOTO_BEFORE_CLOSE, True)
    with pytest.raises(Invalid):
        d.set_policy(world.actors["admin"], "*", NOTE_QUICK_CLOSE, True, None)
    d.set_policy(world.actors["admin"], "*", NOTE_QUICK_CLOSE, True, 5)
    d.set_policy(world.actors["admin"], "*", NOTE_QUICK_CLOSE, True, 15)
    assert [(p.scope, p.minutes) for p in d.policies()] == [("*", 15)]
    with db.read(d.engine) as conn:
        evs = conn.execute(sa.select(events.c.actor, events.c.payload)
                           .where(events.c.kind == "set_policy").order_by(events.c.seq)).all()
    assert [(e.actor, e.payload["minutes"]) for e in evs] == [("ADMIN", 5), ("ADMIN", 15)]

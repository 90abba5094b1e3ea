"""Close policies: which apply where, what they refuse, and the close use case enforcing them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from board.auth import accounts as auth
from board.domain.flags import Progress
from board.domain.policies import (
    EVIDENCE_PHOTO,
    NOTE_QUICK_CLOSE,
    NOTE_WITHOUT_ARRIVAL,
    PHOTO_BEFORE_CLOSE,
    POSITION_ON_SCENE,
    Policy,
    PolicyError,
    check,
    in_effect,
    refusals,
)
from board.storage import db
from board.storage.schema import events, jobs
from board.usecases import Forbidden, Invalid
from board.web.api import PREFIX
from tests.conftest import PASSWORD, PEOPLE, Clock, World, make_job
from tests.web.test_api import check_schema

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
    assert [(p.scope, p.minutes) for p in d.policies(world.actors["admin"])] == [("*", 15)]
    with db.read(d.engine) as conn:
        evs = conn.execute(sa.select(events.c.actor, events.c.payload)
                           .where(events.c.kind == "set_policy").order_by(events.c.seq)).all()
    assert [(e.actor, e.payload["minutes"]) for e in evs] == [("ADMIN", 5), ("ADMIN", 15)]


# -- the JSON API ---------------------------------------------------------------------------


@pytest.fixture
def api(client, world: World):  # type: ignore[no-untyped-def]
    """api(user, method, body) on /api/v1/policies, by the user's bearer token."""
    auth.add_user(world.dispatch.engine, "admin75", PASSWORD, "admin", "75", "ADMIN75")
    tokens = {name: auth.create_token(world.dispatch.engine, name, "tests")
              for name in [*PEOPLE, "admin75"]}

    def call(user: str, method: str, body: object = None):  # type: ignore[no-untyped-def]
        return client.request(method, PREFIX + "/policies", json=body,
                              headers={"Authorization": f"Bearer {tokens[user]}"})
    return call


def _settings(world: World) -> list[tuple[str, str, bool, int | None]]:
    rows = world.dispatch.policies(world.actors["admin"])
    return [(p.scope, p.kind, p.enabled, p.minutes) for p in rows]


def test_admins_set_policies_over_the_api_and_the_close_obeys(api, world: World) -> None:
    r = api("admin", "PUT", {"scope": "75", "kind": NOTE_WITHOUT_ARRIVAL, "enabled": True})
    assert r.status_code == 200, r.text
    check_schema(r, "PolicyResult")
    assert r.json()["event"]["kind"] == "set_policy"
    assert r.json()["policy"] == {"scope": "75", "kind": NOTE_WITHOUT_ARRIVAL, "enabled": True,
                                  "minutes": None, "metres": None, "dispositions": [],
                                  "text": "Closing without arriving on scene needs a note"}
    r = api("admin", "PUT", {"kind": NOTE_QUICK_CLOSE, "enabled": True, "minutes": 10})
    assert r.status_code == 200 and r.json()["policy"]["scope"] == "*"  # citywide by default
    api("admin", "PUT", {"scope": "120", "kind": PHOTO_BEFORE_CLOSE, "enabled": False})
    job = _assigned(world)
    with pytest.raises(Invalid, match="arriving on scene"):
        world.dispatch.close(world.actors["off75a"], job, 2, "action_taken")

    # readers see the citywide settings and their own precincts', never another's
    seen = {who: api(who, "GET").json() for who in ("sgt75", "sgt120", "cmd", "city")}
    for body in seen.values():
        assert set(body["kinds"]) == {PHOTO_BEFORE_CLOSE, NOTE_WITHOUT_ARRIVAL, NOTE_QUICK_CLOSE,
                                      POSITION_ON_SCENE, EVIDENCE_PHOTO}
    scopes = {who: sorted(p["scope"] for p in body["policies"]) for who, body in seen.items()}
    assert scopes == {"sgt75": ["*", "75"], "sgt120": ["*", "120"],
                      "cmd": ["*", "120", "75"], "city": ["*", "120", "75"]}
    check_schema(api("sgt75", "GET"), "PolicyList")


@pytest.mark.parametrize(("user", "body"), [
    ("sgt75", {"scope": "75", "kind": PHOTO_BEFORE_CLOSE, "enabled": True}),
    ("city", {"kind": PHOTO_BEFORE_CLOSE, "enabled": True}),  # citywide, but not an admin
    ("cmd", {"scope": "75", "kind": PHOTO_BEFORE_CLOSE, "enabled": True}),
    ("off75a", {"scope": "75", "kind": PHOTO_BEFORE_CLOSE, "enabled": True}),
    ("wall75", {"scope": "75", "kind": PHOTO_BEFORE_CLOSE, "enabled": True}),
    # an admin of the 75th: not the citywide setting, not the 120th's
    ("admin75", {"kind": PHOTO_BEFORE_CLOSE, "enabled": True}),
    ("admin75", {"scope": "120", "kind": PHOTO_BEFORE_CLOSE, "enabled": True}),
])
def test_only_admins_of_the_scope_write_policies(api, world: World, user, body) -> None:
    r = api(user, "PUT", body)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden"
    assert _settings(world) == []


def test_an_admin_of_a_precinct_sets_its_policy(api, world: World) -> None:
    r = api("admin75", "PUT", {"scope": "75", "kind": PHOTO_BEFORE_CLOSE, "enabled": True})
    assert r.status_code == 200, r.text
    assert _settings(world) == [("75", PHOTO_BEFORE_CLOSE, True, None)]


def test_officers_and_walls_do_not_read_policies_over_the_api(api) -> None:
    for who in ("off75a", "wall75"):
        r = api(who, "GET")
        assert r.status_code == 403 and r.json()["error"] == "forbidden"


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "no_such_policy", "enabled": True}, "kind"),
    ({"kind": PHOTO_BEFORE_CLOSE, "enabled": "yes"}, "enabled"),
    ({"kind": PHOTO_BEFORE_CLOSE, "enabled": 1}, "enabled"),
    ({"kind": PHOTO_BEFORE_CLOSE}, "enabled"),
    ({"kind": PHOTO_BEFORE_CLOSE, "enabled": True, "scope": "75 or 1=1"}, "scope"),
    ({"kind": PHOTO_BEFORE_CLOSE, "enabled": True, "scope": "**"}, "scope"),
    ({"kind": PHOTO_BEFORE_CLOSE, "enabled": True, "scope": "9999"}, "precinct"),
    ({"kind": NOTE_QUICK_CLOSE, "enabled": True}, "policy"),
    ({"kind": NOTE_QUICK_CLOSE, "enabled": True, "minutes": 0}, "minutes"),
    ({"kind": NOTE_QUICK_CLOSE, "enabled": True, "minutes": 1441}, "minutes"),
    ({"kind": PHOTO_BEFORE_CLOSE, "enabled": True, "precinct": "75"}, "precinct"),
])
def test_bad_policy_bodies_are_422_naming_the_field(api, world: World, body, field) -> None:
    r = api("admin", "PUT", body)
    assert r.status_code == 422, r.text
    check_schema(r, "InvalidError")
    assert field in r.json()["fields"], r.json()
    assert _settings(world) == []


def test_policy_endpoints_are_in_the_openapi_document(client) -> None:
    doc = client.get(PREFIX + "/openapi.json").json()
    ops = doc["paths"][PREFIX + "/policies"]
    assert ops["get"]["operationId"] == "get_policies"
    assert ops["put"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PolicyChange"}
    assert set(ops["put"]["responses"]) >= {"200", "401", "403", "422"}
    kinds = doc["components"]["schemas"]["PolicyChange"]["properties"]["kind"]["enum"]
    assert kinds == [PHOTO_BEFORE_CLOSE, NOTE_WITHOUT_ARRIVAL, NOTE_QUICK_CLOSE,
                     POSITION_ON_SCENE, EVIDENCE_PHOTO]

"""Rendered job cards, kept per process (board/cards.py): never stale, never another reader's.

A cached card is only right if everything it shows is in its key or put in per reader: these
tests change one thing at a time and check the card changes with it."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from starlette.testclient import TestClient

from board.live import cards
from board.usecases.queries import Card
from board.web.app import templates
from tests.conftest import make_job
from tests.live.test_live import BOARD75, FakeSocket, make_hub, run, subscribe, until
from tests.web.test_pages import login

NOW = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def a_card(**kw: object) -> Card:
    base = Card(7, 1, "new", "New", 3, "Noise - Residential", "Loud Music/Party", "1 MAIN ST",
                "75", "A", 40.67, -73.91, NOW - timedelta(minutes=12), NOW - timedelta(minutes=12),
                None, None, None, 0, None, None, None, None)
    return replace(base, **kw)


def fresh_cache(size: int = cards.SIZE) -> cards.CardCache:
    return cards.install(templates().env, size)


def test_a_changed_job_gets_a_new_card() -> None:
    cache = fresh_cache()
    before = cache.html(a_card(), "supervisor", NOW, "")
    after = cache.html(a_card(version=2, priority=1, unit_id=4, unit="75-B", status="assigned",
                              status_label="Assigned"), "supervisor", NOW, "")
    assert before != after
    assert 'data-version="2"' in after and "P1" in after and "75-B" in after
    assert 'data-version="1"' in before and "75-B" not in before
    # What is derived from other jobs and events is in the Card, so in the key too.
    late = cache.html(a_card(overdue="not dispatched"), "supervisor", NOW, "")
    assert "OVERDUE: not dispatched" in late and "OVERDUE" not in before
    same = cache.html(a_card(same_as=3), "supervisor", NOW, "")
    assert "possibly the same as" in same and "possibly the same as" not in before
    assert cache.renders == 4


def test_the_age_follows_the_clock_without_a_new_rendering() -> None:
    cache = fresh_cache()
    first = cache.html(a_card(), "view", NOW, "")
    later = cache.html(a_card(), "view", NOW + timedelta(minutes=1), "")
    days = cache.html(a_card(), "view", NOW + timedelta(days=3), "")
    assert ">12m old<" in first and ">13m old<" in later and ">3d old<" in days
    assert cache.renders == 1  # the same card: rendered once, its age put in per reader
    assert str(first).replace(">12m old<", ">13m old<") == later


def test_each_mode_has_its_own_card() -> None:
    cache = fresh_cache()
    sgt = cache.html(a_card(), "supervisor", NOW, "tok")
    view = cache.html(a_card(), "view", NOW, "tok")
    assert 'action="/jobs/7/move"' in sgt and 'action="/jobs/7/move"' not in view
    assert cache.renders == 2
    # An officer's card keeps what a refused close had typed: not something to cache.
    try:
        cache.html(a_card(), "officer", NOW, "tok")
    except ValueError:
        pass
    else:
        raise AssertionError("an officer's card must not come from the cache")


def test_the_cache_is_bounded_and_serves_what_it_holds() -> None:
    cache = fresh_cache(size=2)
    one, two, three = a_card(id=1), a_card(id=2), a_card(id=3)
    for c in (one, two, one, three):  # `one` was used last before `three`: `two` goes
        cache.html(c, "view", NOW, "")
    assert cache.renders == 3
    cache.html(one, "view", NOW, "")
    assert cache.renders == 3
    cache.html(two, "view", NOW, "")
    assert cache.renders == 4


def test_escaping_holds_and_a_slot_cannot_be_forged() -> None:
    """What a caller typed is escaped once; text that looks like a slot stays text."""
    cache = fresh_cache()
    html = cache.html(a_card(address=f'<b>1 "MAIN"</b> {cards.CSRF_SLOT}',
                             descriptor=str(cards.AGE_SLOT)), "supervisor", NOW, "s3cret&")
    assert "<b>" not in html and "&lt;b&gt;1 &#34;MAIN&#34;&lt;/b&gt;" in html
    assert "&lt;csrf-slot/&gt;" in html and "&lt;age-slot/&gt;" in html
    assert html.count("s3cret&amp;") == 1 and "s3cret&<" not in html  # only in the form
    assert "12m old" in html


def test_a_session_token_is_never_shown_to_another(world, dispatch, app) -> None:
    """Pages share cards, not tokens: each page's forms carry its own session's token, and
    what the cache keeps holds none."""
    job = make_job(dispatch, "75")
    with TestClient(app) as one, TestClient(app) as two:
        tokens = [login(one, "sgt75"), login(two, "sgt75")]
        assert tokens[0] != tokens[1]
        pages = [one.get("/board/75").text, two.get("/board/75").text]
        cache = cards.of(app.state.templates.env)
        assert cache.renders >= 1 and two.get("/board/75").text  # the second page: from cache
        for page, mine, theirs in zip(pages, tokens, reversed(tokens), strict=True):
            card = re.search(rf'<article[^>]*id="job-{job}".*?</article>', page, re.S).group(0)
            assert f'name="csrf" value="{mine}"' in card
            assert theirs not in page
        held = "".join(cache._html.values())
        assert tokens[0] not in held and tokens[1] not in held and str(cards.CSRF_SLOT) in held


def test_pages_snapshots_and_fragments_share_one_rendering(world, dispatch, app) -> None:
    """Render once, send many: the cards a page rendered are the ones the hub's snapshot sends;
    an update renders only the card that changed."""
    jobs = [make_job(dispatch, "75") for _ in range(5)]
    cache = cards.of(app.state.templates.env)
    with TestClient(app) as sgt:
        token = login(sgt, "sgt75")
        page = sgt.get("/board/75").text
    assert all(f'id="job-{j}"' in page for j in jobs)
    hub = make_hub(dispatch)
    hub.renderer.env = app.state.templates.env  # the app's hub renders with the app's templates

    async def scenario() -> list[str]:
        await hub.start()
        try:
            rendered = cache.renders
            s = FakeSocket()
            await subscribe(hub, BOARD75, s)
            await until(lambda: len(s.texts) == 1)
            assert cache.renders == rendered  # the snapshot's cards: every one from the cache
            await asyncio.to_thread(
                dispatch.assign, world.actors["sgt75"], jobs[0], 1, world.unit("75-A"))
            await until(lambda: len(s.texts) == 2)
            assert cache.renders == rendered + 1  # the assigned card, nothing else
            return s.texts
        finally:
            await hub.stop()

    texts = run(scenario())
    assert f'id="job-{jobs[0]}"' in texts[1]
    # A socket's cards carry no session's token (board.js sends its own with each post).
    assert 'name="csrf" value=""' in texts[0] and not any(token in t for t in texts)

"""The Python stand-in for a browser applying live messages (board.live.replica): it swaps as
htmx does, and applying a message costs what the message holds, not what the page holds."""

from __future__ import annotations

from board.live import replica
from board.live.replica import Replica

CARDS = 2000


def page() -> str:
    cards = "".join(f'<div id="job-{i}" class="card">job {i}</div>' for i in range(CARDS))
    return f'<div id="board-body"><div id="queue">{cards}</div></div><span id="live-beat"></span>'


def test_each_swap_style_does_what_htmx_does() -> None:
    r = Replica(page())
    r.apply('<div id="job-5" class="card">five, changed</div>'
            '<div id="job-6" hx-swap-oob="delete"></div>'
            '<div hx-swap-oob="beforebegin:#job-0"><div id="job-new" class="card">new</div></div>'
            '<div hx-swap-oob="beforeend:#queue"><div id="job-last" class="card">last</div></div>')
    ids = r.ids("job-")
    assert ids[0] == "job-new" and ids[-1] == "job-last"
    assert "job-6" not in ids and len(ids) == CARDS + 1
    assert r.html("job-5") == '<div class="card" id="job-5">five, changed</div>'
    assert r.by_id("job-6") == []
    # an element swapped in is found by its own id, and one swapped out is not
    r.apply('<div id="job-5" class="card"><span id="inner">x</span></div>')
    r.apply('<div id="job-5" class="card">plain</div>')
    assert r.by_id("inner") == [] and r.html("job-5").endswith(">plain</div>")


def test_applying_a_message_does_not_walk_the_page(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    r = Replica(page())
    walked = 0
    elements = replica.Node.elements

    def counted(self: replica.Node) -> list[replica.Node]:
        nonlocal walked
        found = elements(self)
        walked += len(found)
        return found

    monkeypatch.setattr(replica.Node, "elements", counted)
    for i in range(100):
        r.apply(f'<div id="job-{i}" class="card">job {i}, seen</div>')
    r.apply('<div id="job-1999" hx-swap-oob="delete"></div>')
    # each message's own elements, not the page's 2,000 cards a message
    assert walked < 10 * 101
    monkeypatch.undo()
    assert r.html("job-42").endswith(">job 42, seen</div>") and r.by_id("job-1999") == []

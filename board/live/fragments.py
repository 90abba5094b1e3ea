"""What changed on a board, as out-of-band fragments: the smallest partials that show it.

A live board socket gets the whole `#board-body` once (the snapshot, on every (re)connect), then
only what each event touched, worked out by comparing the view every socket of the audience
shows now with the new one:

  counters            #counters, #queue-head         when a count changed
  "Assign to…" units  #assign-units                  when the available units changed
  a unit lane         #unit-<id> (its stack inside)  when the unit or what it is doing changed
  a lane's head       #unit-head-<id>                when only its count of jobs changed
  the lanes           #lanes                         when units came on or went off tour
  a job card          #job-<id>                      in place when only the card changed;
                                                     deleted, then inserted at its new place,
                                                     when it left, joined or moved in a list
                                                     or a stack (#stack-<id>)
  queue, closed       the list, whole                when it became empty or stopped being empty
  unrouted            #unrouted-col                  when it changed (citywide eyes only)

Order matters and is fixed: every card that leaves or moves is deleted first (so an id is never
on the page twice), then lanes are swapped, then cards are inserted back to front, each before
the card that follows it in the new order (so its neighbour is always already in place). A card
moved out of order by a priority change is one delete and one insert (the cards on a longest
increasing subsequence of the old order stay put). The map markers are the cards' data-*
attributes, so they travel with the cards. Several events read in one catch-up give one message.
A wall shows the same board otherwise (`WALL`): its own counters and queue heading, no menus and
no closed list, and a unit's lane whole when its stack changed (it shows the first card and "+n
more"). The review queue's rows (#review-<id>) and the command log's entries (#log-<id>) are
followed the same way (`list_delta`). No I/O here: `piece` renders a partial.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from board.usecases.queries import BoardView, Card, Lane

Piece = Callable[..., str]


@dataclass(frozen=True)
class Layout:
    """Which partials show a board's parts on one kind of screen."""

    counters: tuple[str, ...]  # swapped when a count changed
    menus: bool                # the "Assign to…" menus
    cards_in_lanes: bool       # a lane's cards followed one by one (else the lane whole)
    closed: bool               # the recently closed list


BOARD = Layout(("partials/counters.html", "partials/queue_head.html"), menus=True,
               cards_in_lanes=True, closed=True)
WALL = Layout(("partials/wall_counters.html", "partials/wall_queue_head.html"), menus=False,
              cards_in_lanes=False, closed=False)


def stable(order: Sequence[int]) -> set[int]:
    """Indexes into `order` forming a longest increasing subsequence: the items left in place."""
    tails: list[int] = []        # smallest tail value of an increasing run of each length
    tail_at: list[int] = []      # index in `order` of that tail
    back: list[int] = [-1] * len(order)
    for i, v in enumerate(order):
        k = bisect.bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_at.append(i)
        else:
            tails[k] = v
            tail_at[k] = i
        back[i] = tail_at[k - 1] if k else -1
    keep: set[int] = set()
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        keep.add(i)
        i = back[i]
    return keep


class Delta:
    """The fragments of one update, in the order the client must apply them. Items are
    elements with the id `prefix` + their id (job cards: job-<id>)."""

    def __init__(self, prefix: str = "job-") -> None:
        self.prefix = prefix
        self.deletes: list[str] = []
        self.swaps: list[str] = []
        self.inserts: list[str] = []
        self.deleted: set[int] = set()

    def delete(self, job_id: int) -> None:
        if job_id not in self.deleted:
            self.deleted.add(job_id)
            self.deletes.append(f'<div id="{self.prefix}{job_id}" hx-swap-oob="delete"></div>')

    def text(self) -> str | None:
        parts = [*self.deletes, *self.swaps, *self.inserts]
        return "\n".join(parts) if parts else None


def _list(delta: Delta, container: str, old: Sequence[Any], new: Sequence[Any],
          card: Callable[[Any], str], whole: Callable[[], str]) -> None:
    """One ordered list of cards (the queue, recently closed; any items with an `id`): the
    fewest item operations."""
    if old == new:
        return
    if not old or not new:  # the "nothing here" line comes or goes with the list
        for c in old:
            delta.delete(c.id)
        delta.inserts.insert(0, whole())
        return
    before = {c.id: (i, c) for i, c in enumerate(old)}
    common = [c for c in new if c.id in before]
    keep_idx = stable([before[c.id][0] for c in common])
    kept = {common[i].id for i in keep_idx}
    now_ids = {c.id for c in new}
    for c in old:
        if c.id not in now_ids or c.id not in kept:
            delta.delete(c.id)
    ops: list[str] = []
    after: str | None = None  # the id of the card that follows, already in place
    for c in reversed(new):
        if c.id in kept:
            if before[c.id][1] != c:
                ops.append(card(c))  # in place, by id
        else:
            delta.delete(c.id)  # wherever it was (a lane, another list), it goes first
            where = f"beforebegin:#{after}" if after else f"beforeend:#{container}"
            ops.append(f'<div hx-swap-oob="{where}">{card(c)}</div>')
        after = f"{delta.prefix}{c.id}"
    delta.inserts.extend(ops)


def board_delta(old: BoardView, new: BoardView, mode: str, piece: Piece,
                card: Callable[[Card, str], str], layout: Layout = BOARD,
                counted: bool = False) -> str | None:
    """The out-of-band fragments that turn a page showing `old` into one showing `new`;
    `piece` renders a partial, `card` a job card in a mode. `counted`: a count shown beside
    the board's changed (the wall's closes this tour): its counters are swapped too."""
    if old == new and not counted:
        return None
    ctx: dict[str, Any] = {"view": new, "precinct": new.precinct, "mode": mode}
    delta = Delta()
    if counted or old.counters != new.counters:
        delta.swaps.extend(piece(name, **ctx) for name in layout.counters)
    if layout.menus and _available(old) != _available(new):
        delta.swaps.append(piece("partials/assign_units.html", **ctx))
    # Cards that were in a lane and are now in a list (or nowhere) are handled by the lists;
    # cards now in a lane come with the lane.
    in_lanes = {c.id for lane in new.lanes for c in lane.jobs}
    for c in [*old.queue, *(old.closed if layout.closed else ()), *old.unrouted]:
        if c.id in in_lanes:
            delta.delete(c.id)

    def card_as(card_mode: str) -> Callable[[Card], str]:
        return lambda c: card(c, card_mode)

    if [lane.id for lane in old.lanes] != [lane.id for lane in new.lanes]:
        delta.swaps.append(piece("partials/lanes.html", **ctx))
    else:
        for was, lane in zip(old.lanes, new.lanes, strict=True):
            if was != lane:
                _lane(delta, was, lane, lambda name, lane=lane: piece(name, lane=lane, **ctx),
                      card_as(mode), layout.cards_in_lanes)

    _list(delta, "queue", old.queue, new.queue, card_as(mode),
          lambda: piece("partials/queue_list.html", **ctx))
    if layout.closed:
        _list(delta, "closed", old.closed, new.closed, card_as("view"),
              lambda: piece("partials/closed_list.html", **ctx))
    if old.unrouted != new.unrouted:
        for c in old.unrouted:
            delta.delete(c.id)
        delta.inserts.insert(0, piece("partials/unrouted_list.html", **ctx))
    return delta.text()


def _lane(delta: Delta, was: Lane, lane: Lane, part: Callable[[str], str],
          card: Callable[[Card], str], by_card: bool = True) -> None:
    """One unit's lane: its head and the cards that moved in its stack, when only its jobs
    changed and the unit still shows the same activity; else the whole lane. (A job assigned to
    a unit with thirty sends one card, not thirty.)"""
    if (not by_card or replace(was, jobs=[]) != replace(lane, jobs=[])
            or was.activity != lane.activity or not was.jobs or not lane.jobs):
        delta.swaps.append(part("partials/unit_lane.html"))
        return
    if len(was.jobs) != len(lane.jobs):
        delta.swaps.append(part("partials/lane_head.html"))
    _list(delta, f"stack-{lane.id}", was.jobs, lane.jobs, card,
          lambda: part("partials/unit_lane.html"))


def list_delta(prefix: str, container: str, old: Sequence[Any], new: Sequence[Any],
               item: Piece, whole: Callable[[], str]) -> str | None:
    """One ordered list on its own (the review queue's rows, the command log's entries), as
    the board's lists: `item` renders one (its element's id is `prefix` + its id), `whole`
    the list's container with every item."""
    delta = Delta(prefix)
    _list(delta, container, old, new, item, whole)
    return delta.text()


def _available(view: BoardView) -> list[tuple[Any, ...]]:
    """What the "Assign to…" menus rank by: free or busy, sector, last reported position."""
    return [(lane.id, lane.callsign, lane.sector, lane.lat, lane.lon, len(lane.jobs))
            for lane in view.lanes if lane.status == "available"]

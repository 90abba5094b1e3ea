"""Who hears what: audiences, the bus channels they listen on, and which events touch them.

An audience is what one rendering serves; every socket in it gets the same bytes:
  ("board", precinct, mode, citywide)  partials/board_body.html    /ws/board/{precinct}
  ("my", unit_id)                      partials/my_queue.html      /ws/my
  ("wall", precinct)                   partials/wall_body.html     /ws/wall/{precinct}
  ("city", scope)                      partials/city_counters.html /ws/city
  ("reviews", precinct, can_review)    partials/review_rows.html   /ws/review/{precinct}
  ("log", precinct, can_write)         partials/log_entries.html   /ws/log/{precinct}
  ("review_count", scope)              partials/review_count.html  beside the above, for readers

A socket may hear more than one audience: the pages of supervisors and commanders add the
header's review count, ("review_count", their precincts), to what the page itself shows.

No I/O here: the hub and the publishers (web and CLI) both decide with these functions.
"""

from __future__ import annotations

import json
from typing import Any

from board.domain.access import CITYWIDE, Actor

Audience = tuple[Any, ...]


# The event kinds that change a review queue (board.accountability.reviews) and a command log.
REVIEW_KINDS = frozenset({"close", "admin_close", "reopen", "review", "caller_disputed"})
# ... and what else a queued job's timeline on the review page shows changing.
REVIEW_PAGE_KINDS = REVIEW_KINDS | {"note"}
LOG_KINDS = frozenset({"log_entry"})
# ... and what changes every officer's queue (its close policies), though it names no unit.
QUEUE_KINDS = frozenset({"set_policy"})


KINDS_HEARD = {"reviews": REVIEW_PAGE_KINDS, "log": LOG_KINDS, "review_count": REVIEW_KINDS}


def board_of(actor: Actor, precinct: str) -> Audience:
    """The board audience this reader is in (their access to the precinct checked apart):
    supervisors' boards carry the forms, others' do not; a citywide reader's adds the
    unrouted jobs."""
    return ("board", precinct, "supervisor" if actor.may("assign") else "view", actor.citywide)


def channels_of(audience: Audience) -> set[str]:
    kind = audience[0]
    if kind == "board":
        return {f"precinct:{audience[1]}", *(["precinct:-"] if audience[3] else [])}
    if kind in ("wall", "reviews", "log"):
        return {f"precinct:{audience[1]}"}
    if kind == "review_count":
        return {"city"} if CITYWIDE in audience[1] else {f"precinct:{p}" for p in audience[1]}
    if kind == "my":
        return {f"unit:{audience[1]}"}
    return {"city"}


def touched(ev: Any) -> tuple[set[str | None], set[int]]:
    payload = ev["payload"] or {}
    precincts: set[str | None] = {ev["precinct"]}
    if ev["kind"] == "route":
        precincts |= {payload.get("precinct"), payload.get("from")}
    units = {u for u in (ev["unit_id"], payload.get("from_unit_id")) if isinstance(u, int)}
    return precincts, units


def event_channels(ev: dict[str, Any]) -> set[str]:
    """Where a committed event is announced."""
    precincts, units = touched(ev)
    return ({f"precinct:{p if p else '-'}" for p in precincts}
            | {f"unit:{u}" for u in units} | {"city"})


def announcements(evs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(channel, message) pairs that wake every hub whose audiences these events touch."""
    channels: set[str] = set()
    for ev in evs:
        channels |= event_channels(ev)
    seq = max((ev["seq"] for ev in evs), default=0)
    return [(c, json.dumps({"seq": seq})) for c in sorted(channels)]


def sees(scope: frozenset[str], precinct: str | None) -> bool:
    return precinct is not None and (CITYWIDE in scope or precinct in scope)


def affected(audience: Audience, precincts: set[str | None], units: set[int],
             kinds: frozenset[str] | set[str] | None = None) -> bool:
    """Whether events touching these precincts and units (of these kinds; None: any kind)
    change what the audience shows."""
    kind = audience[0]
    if kind == "board":
        return audience[1] in precincts or (audience[3] and None in precincts)
    if kind == "wall":
        return audience[1] in precincts
    if kind in KINDS_HEARD:
        return (kinds is None or bool(KINDS_HEARD[kind] & kinds)) and (
            audience[1] in precincts if kind != "review_count"
            else any(sees(audience[1], p) for p in precincts))
    if kind == "my":
        return audience[1] in units or bool(kinds and QUEUE_KINDS & kinds)
    return any(sees(audience[1], p) for p in precincts)

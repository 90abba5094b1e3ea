"""Rendered job cards, kept per process: render once, send many.

A job card (partials/job_card.html) is the same HTML on every page, snapshot and live fragment
that shows the same `Card` in the same mode, but for two things: its age ("12m old", which
changes with the clock) and, on a supervisor's card, the session's CSRF token in its form. So a
card is rendered with a slot for each, kept in a bounded LRU keyed by (Card, mode) — the frozen
Card is everything the card shows —, and each caller gets the cached text with its own age and
token put in: a card is rendered again only when the job (or what is derived from it: unit,
overdue, flags, related jobs) changes, not each minute, and never holds a session's token.

The slots are markup that escaped text cannot contain (`<` is always `&lt;` there), and what
goes into them is escaped. Templates call it as `{{ job_card(c, mode) }}`; the hub through
`of(env).html(...)`. An officer's card (its next-step form keeps what a refused close had
typed) is not cached: my_queue.html includes the partial itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from jinja2 import Environment, pass_context
from markupsafe import Markup, escape

from board.domain.flags import FLAG_LABELS, FLAG_SHORT
from board.usecases.queries import Card

SIZE = 10_000  # cards: a whole city's open jobs in both modes, ~1.3 KB each
MODES = ("supervisor", "view")
CSRF_SLOT = Markup("<csrf-slot/>")
AGE_SLOT = Markup("<age-slot/>")


class CardCache:
    """(Card, mode) → the card's HTML with its slots; thread-safe (pages and the hub render
    in worker threads)."""

    def __init__(self, env: Environment, size: int = SIZE) -> None:
        self.env = env
        self.size = size
        self.renders = 0  # cards rendered (cache misses), for tests and figures
        self._html: OrderedDict[tuple[Card, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def html(self, card: Card, mode: str, now: datetime, csrf: str) -> Markup:
        """The card as this reader sees it now: the cached text, their age and token in."""
        text = self._cached(card, mode)
        age = escape(self.env.filters["age"](card.received_at, now))
        return Markup(text.replace(AGE_SLOT, age).replace(CSRF_SLOT, escape(csrf)))

    @pass_context
    def tag(self, context: Any, card: Card, mode: str) -> Markup:
        """`{{ job_card(c, mode) }}`: the page's own `now` and `csrf`."""
        return self.html(card, mode, context["now"], context.get("csrf") or "")

    def _cached(self, card: Card, mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"no cached card for mode {mode!r}")
        key = (card, mode)
        with self._lock:
            text = self._html.get(key)
            if text is not None:
                self._html.move_to_end(key)
                return text
        text = self.env.get_template("partials/job_card.html").render(
            c=card, mode=mode, csrf=CSRF_SLOT, age_text=AGE_SLOT,
            FLAG_LABELS=FLAG_LABELS, FLAG_SHORT=FLAG_SHORT).strip()
        with self._lock:
            self.renders += 1
            self._html[key] = text
            while len(self._html) > self.size:
                self._html.popitem(last=False)
        return text

    def clear(self) -> None:
        with self._lock:
            self._html.clear()


def install(env: Environment, size: int = SIZE) -> CardCache:
    """Give the templates `job_card(c, mode)`, backed by one cache for this environment."""
    cache = CardCache(env, size)
    env.globals["job_card"] = cache.tag
    return cache


def of(env: Environment) -> CardCache:
    """The environment's card cache (the one its templates use)."""
    return env.globals["job_card"].__self__

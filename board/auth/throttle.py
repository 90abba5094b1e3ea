"""Log-in throttling: how many failures a user name and an address may have, and how many
password hashes run at once.

Two layers. In each process, a sliding window counts failed log-ins per user name and per
client address: past the limit the next attempt is refused with 429 and Retry-After before any
password is hashed, so a flood costs a dictionary lookup, not 64 MiB of argon2. In the database,
a user's consecutive failures lock the account for a while (`board users unlock` clears it
sooner), whichever process saw them. Hashing itself is bounded by a semaphore: a burst of
log-ins waits its turn instead of driving the server out of memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Window:
    """Failures per key within the last `seconds`; at most `limit` before a key is refused."""

    limit: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again (0: now)."""
        with self._lock:
            hits = self._fresh(key)
            if len(hits) < self.limit:
                return 0
            return max(1, math.ceil(hits[0] + self.seconds - self.clock()))

    def failed(self, key: str) -> None:
        with self._lock:
            if key not in self._hits and len(self._hits) >= self.max_keys:
                self._prune()
            self._fresh(key).append(self.clock())

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def _fresh(self, key: str) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        cutoff = self.clock() - self.seconds
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def _prune(self) -> None:
        cutoff = self.clock() - self.seconds
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= cutoff]:
            del self._hits[key]
        while len(self._hits) >= self.max_keys:  # still full: forget the oldest keys
            self._hits.pop(next(iter(self._hits)))


@dataclass
class LoginGuard:
    """What the log-in page asks before and tells after checking a password."""

    per_user: Window = field(default_factory=lambda: Window(5, 300))
    per_address: Window = field(default_factory=lambda: Window(30, 300))
    hashing: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(2))
    hash_wait_s: float = 10.0

    def retry_after(self, username: str, address: str) -> int:
        return max(self.per_user.retry_after(_user_key(username)),
                   self.per_address.retry_after(address))

    def failed(self, username: str, address: str) -> None:
        self.per_user.failed(_user_key(username))
        self.per_address.failed(address)

    def succeeded(self, username: str) -> None:
        self.per_user.clear(_user_key(username))


def _user_key(username: str) -> str:
    return username.strip().casefold()[:80]


class Busy(Exception):
    """Too many password checks at once: try again in a moment."""

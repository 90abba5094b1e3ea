"""Log-in throttling: how many failures a user name and an address may have, and how many
password hashes run at once.

Two layers, both a growing delay rather than a hard lock a stranger could trigger (OWASP).
Failed log-ins are counted per user name and per client address (and per known device), in the
database for a server (`LoginGuard.shared`: every process of it counts the same failures, so a
second process gives an attacker no more attempts): past a few free failures the next attempt
waits a delay that doubles with each further failure, refused with 429 and Retry-After before
any password is hashed, so a flood costs an indexed read, not 64 MiB of argon2. On the user's
row, consecutive failures set the same kind of growing delay (`board users unlock` clears it).
Neither delay holds up the account's own known device (a signed cookie set at a successful
log-in) or, for the per-account delay, an address the account logged in from before. Hashing
is bounded by a semaphore: a burst of log-ins waits its turn instead of driving the server out
of memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa

from board.storage.login_failures import DatabaseCounts


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


class Counts(Protocol):
    """Where a Backoff keeps its counts: (failures, time of the last) per key."""

    def get(self, key: str) -> tuple[int, float]: ...

    def add(self, key: str, now: float, forget: float) -> None: ...

    def clear(self, key: str) -> None: ...


@dataclass
class MemoryCounts:
    """Counts in this process only (tests, a single process, the SSO's per-address count)."""

    max_keys: int = 100_000
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> tuple[int, float]:
        with self._lock:
            return self._seen.get(key, (0, 0.0))

    def add(self, key: str, now: float, forget: float) -> None:
        with self._lock:
            if key not in self._seen and len(self._seen) >= self.max_keys:
                self._prune(now, forget)
            count, last = self._seen.get(key, (0, 0.0))
            self._seen[key] = (count + 1 if now - last < forget else 1, now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def _prune(self, now: float, forget: float) -> None:
        for key in [k for k, (_, last) in self._seen.items() if now - last >= forget]:
            del self._seen[key]
        while len(self._seen) >= self.max_keys:
            self._seen.pop(next(iter(self._seen)))


@dataclass
class Backoff:
    """Failures per key: `free` of them cost nothing, each further one doubles the wait
    (`base` seconds first, at most `cap`); a key quiet for `forget` seconds starts afresh.
    `counts`: in this process by default; in the database to share them between processes
    (LoginGuard.shared)."""

    free: int
    base: float = 15.0
    cap: float = 900.0
    forget: float = 900.0
    clock: Callable[[], float] = time.monotonic
    counts: Counts = field(default_factory=MemoryCounts)

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again (0: now)."""
        now = self.clock()
        count, last = self.counts.get(key)
        if count < self.free or now - last >= self.forget:
            return 0
        wait = last + delay(count - self.free + 1, self.base, self.cap) - now
        return max(0, math.ceil(wait))

    def failed(self, key: str) -> None:
        self.counts.add(key, self.clock(), self.forget)

    def clear(self, key: str) -> None:
        self.counts.clear(key)


def delay(step: int, base: float, cap: float) -> float:
    """The wait after the `step`-th failure past the free ones: base, 2×base, 4×base … cap."""
    return min(cap, base * 2 ** min(max(step, 1) - 1, 30))


Throttle = Window | Backoff


@dataclass
class LoginGuard:
    """What the log-in page asks before and tells after checking a password."""

    per_user: Throttle = field(default_factory=lambda: Backoff(5))
    per_address: Throttle = field(default_factory=lambda: Backoff(30))
    #: failures of one known device (cookie) at one account: it skips the two above
    per_device: Throttle = field(default_factory=lambda: Backoff(5))
    hashing: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(2))
    hash_wait_s: float = 10.0

    @classmethod
    def shared(cls, engine: sa.Engine) -> LoginGuard:
        """The guard of a server: its counts in the database, where every process of it sees
        them, on the wall clock (every process reads the same times)."""
        def counts(kind: str) -> Counts:
            return DatabaseCounts(engine, kind)
        return cls(per_user=Backoff(5, clock=time.time, counts=counts("user")),
                   per_address=Backoff(30, clock=time.time, counts=counts("address")),
                   per_device=Backoff(5, clock=time.time, counts=counts("device")))

    def retry_after(self, username: str, address: str, device: str = "",
                    known_address: bool = False) -> int:
        """A known device answers only to its own count; a known address skips the per-account
        one (the account may be under attack from elsewhere) but not its own."""
        if device:
            return self.per_device.retry_after(_device_key(username, device))
        by_user = 0 if known_address else self.per_user.retry_after(user_key(username))
        return max(by_user, self.per_address.retry_after(address))

    def failed(self, username: str, address: str, device: str = "") -> None:
        if device:
            self.per_device.failed(_device_key(username, device))
        self.per_user.failed(user_key(username))
        self.per_address.failed(address)

    def succeeded(self, username: str, device: str = "", attacked: bool = False) -> None:
        """A success clears the account's count, unless it came past an attack in progress
        (then the attacker's delay stands)."""
        if device:
            self.per_device.clear(_device_key(username, device))
        if not attacked:
            self.per_user.clear(user_key(username))

    def attacked(self, username: str) -> bool:
        return self.per_user.retry_after(user_key(username)) > 0


def _device_key(username: str, device: str) -> str:
    return f"{user_key(username)}\x00{device[:64]}"


def user_key(username: str) -> str:
    """One account's key however its name is typed (case, spaces at the ends)."""
    return username.strip().casefold()[:80]


class Busy(Exception):
    """Too many password checks at once: try again in a moment."""

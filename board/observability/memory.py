"""Freed memory given back to the system, so a web process's RSS follows what it uses.

A `board serve` process allocates and frees all day: rendered cards and boards, JSON answers,
database rows, in the event loop and in a pool of worker threads. glibc's malloc keeps what is
freed in its arenas (one per thread that needed one) for the next allocation, and hands pages
back to the system only from the top of a heap. Freed memory caught between live allocations
stays in the process: over an hour of load the soak measured 30–35 MB of it per process, growing
while the Python objects alive stayed the same in number (RELIABILITY.md, "The hour, a third
time"). glibc's `malloc_trim` walks every arena and returns the whole free pages inside them.
`keep_giving_back` calls it once a minute, in a worker thread; where the C library has no such
call (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sys
from collections.abc import Callable

EVERY_S = 60.0


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Return the free pages of every malloc arena to the system; whether any went (False
    also where the C library cannot)."""
    return _TRIM is not None and bool(_TRIM(0))


async def keep_giving_back() -> None:
    """Until cancelled: `give_back` every EVERY_S seconds, off the event loop (it holds each
    arena's lock while it walks it, so other threads' allocations wait, not the sockets)."""
    while True:
        await asyncio.sleep(EVERY_S)
        await asyncio.to_thread(give_back)

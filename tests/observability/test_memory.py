"""Freed memory goes back to the system (board/observability/memory.py), and `board serve`
does it on its own while it runs."""

from __future__ import annotations

import subprocess
import sys
import time

from starlette.testclient import TestClient

from board.observability import memory
from board.settings import ROOT

# A fresh interpreter: 80 MB in 4 KB pieces (below malloc's mmap threshold, so from the heap),
# every eighth kept, the rest freed. The freed runs lie between live pieces, where malloc keeps
# them; give_back must return their pages.
FRAGMENTS = """
import sys
from board.observability import memory

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024

pieces = [bytes(4000) for _ in range(20_000)]
kept = pieces[7::8]
del pieces
before = rss_mb()
gave = memory.give_back()
print(before, rss_mb(), gave, len(kept))
"""


def test_freed_pieces_between_live_ones_go_back_to_the_system() -> None:
    out = subprocess.run([sys.executable, "-c", FRAGMENTS], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    before, after, gave = float(out[0]), float(out[1]), out[2]
    assert gave == "True"
    # 70 MB were freed in 28 KB runs between live pieces: most of their pages go back
    assert before - after > 40, (before, after)


def test_a_serving_process_gives_memory_back_while_it_runs(app, monkeypatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(memory, "EVERY_S", 0.01)
    monkeypatch.setattr(memory, "give_back", lambda: calls.append(time.monotonic()) or True)
    with TestClient(app):
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(calls) >= 3
    stopped = len(calls)
    time.sleep(0.1)
    assert len(calls) == stopped  # cancelled with the app

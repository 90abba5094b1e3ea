"""`make soak`'s verdict (soak/run.py): the last fifth against the first, RSS over the last
half. The soak itself runs for an hour outside the suite; the arithmetic that passes or fails
it is checked here."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _soak() -> Any:
    spec = importlib.util.spec_from_file_location("soak_run", ROOT / "soak" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # it puts tests/ first, for its own imports
    return module


def windows(n: int, writes: Any, p50: Any, rss: Any) -> list[dict[str, Any]]:
    return [{"writes_per_30s": writes(i), "p50_ms": p50(i), "p99_ms": 3 * p50(i),
             "open_jobs": 10 * i, "web0_rss_mb": rss(i), "web1_rss_mb": 150.0}
            for i in range(n)]


def test_a_steady_hour_passes() -> None:
    verdict = _soak().slowdown(windows(120, lambda i: 600, lambda i: 30, lambda i: 150.0))
    assert verdict["ok"], verdict
    assert verdict["rss_last_half"]["web0"]["flat"]


def test_a_last_fifth_more_than_one_and_a_half_times_slower_fails() -> None:
    slow = windows(120, lambda i: 600 if i < 96 else 300, lambda i: 30, lambda i: 150.0)
    verdict = _soak().slowdown(slow)
    assert not verdict["ok"] and verdict["writes_per_30s"]["slower"] == 2.0
    later = windows(120, lambda i: 600, lambda i: 30 if i < 96 else 50, lambda i: 150.0)
    assert not _soak().slowdown(later)["ok"]
    within = windows(120, lambda i: 600, lambda i: 30 if i < 96 else 44, lambda i: 150.0)
    assert _soak().slowdown(within)["ok"]


def test_memory_still_growing_over_the_last_half_fails() -> None:
    growing = windows(120, lambda i: 600, lambda i: 30, lambda i: 150.0 + i * 0.2)
    verdict = _soak().slowdown(growing)
    assert not verdict["ok"] and not verdict["rss_last_half"]["web0"]["flat"]
    assert verdict["rss_last_half"]["web1"]["flat"] and "web0" in verdict["why"]
    levelled = windows(120, lambda i: 600, lambda i: 30, lambda i: 150.0 + min(i, 50) * 0.8)
    assert _soak().slowdown(levelled)["ok"]


def test_an_hours_answers_are_checked_in_parts(tmp_path) -> None:
    """The soak's "nothing lost" looks up every answered write's event: 70,000 answers (an
    hour on a fast machine) outgrew one statement's parameters and crashed the check."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    import sqlalchemy as sa

    from board.storage.schema import events, metadata

    url = f"sqlite:///{tmp_path / 'soak.db'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    at = datetime(2026, 12, 7, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(events.insert(), [{"actor": "x", "source": "api", "at": at, "kind": "note",
                                        "payload": {}} for _ in range(40_000)])
    engine.dispose()
    soak = _soak()
    tally = soak.Tally(ok_seqs=list(range(1, 40_001)))
    found = soak.check_events(SimpleNamespace(pg=SimpleNamespace(url=url)), tally)
    assert found["found_in_events"] == 40_000 and found["nothing_lost"]
    tally.ok_seqs.append(40_001)  # answered, but not in the table
    assert not soak.check_events(SimpleNamespace(pg=SimpleNamespace(url=url)), tally)[
        "nothing_lost"]

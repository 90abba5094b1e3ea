"""bench/results.json: every benchmark's figures in one file, one entry per name.

Each benchmark calls `record` for each figure it measures; a later run of the same benchmark
replaces its entries and leaves the others alone, so the file always holds the latest figure
of every benchmark (BENCHMARKS.md says how each was measured).

    {"name": "fanout_p99_ms_1000", "value": 42.0, "unit": "ms",
     "baseline": 30.0, "ratio": 1.4}

`ratio` is value / baseline (None without a baseline): the baseline is measured in the same run,
so the ratio is what survives a busy, shared machine.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

RESULTS = Path(os.environ.get("BENCH_RESULTS", Path(__file__).with_name("results.json")))


def load(path: Path = RESULTS) -> list[dict[str, Any]]:
    """The recorded figures, in name order ([] before the first run)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return []


def record(name: str, value: float, unit: str, baseline: float | None = None,
           path: Path = RESULTS) -> dict[str, Any]:
    """Upsert one figure by name; safe when several benchmarks write at once."""
    ratio = round(value / baseline, 3) if baseline else None
    entry = {"name": name, "value": round(value, 3), "unit": unit,
             "baseline": None if baseline is None else round(baseline, 3), "ratio": ratio}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = {r["name"]: r for r in load(path)}
        rows[name] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(rows.values(), key=lambda r: r["name"]), indent=1)
                       + "\n")
        tmp.replace(path)
    shown = f" (baseline {entry['baseline']}, ratio {ratio})" if baseline else ""
    print(f"  {name} = {entry['value']} {unit}{shown}")
    return entry

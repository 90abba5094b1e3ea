"""Benchmark: 311 intake speed (rows/s into SQLite with routing and events) and its memory.

Rows are generated from the real hour's rows (data/311): each generated row copies a
real NYPD row's complaint type, descriptor, location, status, resolution and created→closed
time, with its point moved by up to ~50 m (so every row is routed through the precinct
polygons for real), a fresh unique key, and a creation time spread over a year: any day, any
hour, the real row's minute and second. Rows the city had closed become history jobs, the
others jobs to dispatch, as in a real export.

Figures (bench/results.json):

* ``intake_rows_per_s`` — ``board import-311``'s path (`import_file`: a streaming check pass,
  then batches of 500 through `Dispatch.create_jobs`; on two cores the file is checked, read,
  parsed and its new jobs routed in a second process while this one writes). Baseline, same
  run, same rows: one transaction per job (`Dispatch.create_job` row by row), which is how
  intake wrote before.
* ``intake_rows_per_cpu_s`` — the same import per CPU-second of both processes;
  ``intake_one_process_rows_per_cpu_s`` — the same rows imported in one process
  (``parse_aside=False``), per CPU-second. Same baseline.
* ``intake_peak_rss_mb_1m_rows`` — peak RSS of a process importing a 1,000,000-row file, plus
  the peak of the process parsing aside. Baseline: the same at 100,000 rows; a ratio near 1
  means memory does not grow with the file.

    .venv/bin/python bench/intake.py [--rows 50000] [--baseline-rows 5000] [--big 1000000]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402
from board.geo.routing import load_geo  # noqa: E402
from board.intake import aside, file_import
from board.intake import files as intake_files
from board.intake import pipeline as intake
from board.intake import rows as nyc311
from board.settings import DEMO_HOUR, GEO_DIR  # noqa: E402
from board.storage import db  # noqa: E402
from board.usecases import Dispatch  # noqa: E402

HOUR = DEMO_HOUR
EXPORT_TIME = "%m/%d/%Y %I:%M:%S %p"
JITTER_DEG = 0.0005  # about 50 m of latitude


def generate(path: Path, rows: int, seed: int = 311) -> Path:
    """Write `rows` export rows shaped like the real hour's NYPD rows (streamed: any size)."""
    with open(HOUR, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        real = [r for r in reader if r["Agency"] == "NYPD"]
    rng = random.Random(seed)
    start = datetime(2022, 1, 1)
    with open(path, "w", encoding="utf-8", newline="") as out:
        w = csv.DictWriter(out, fieldnames=header)
        w.writeheader()
        for n in range(rows):
            w.writerow(_row(rng.choice(real), n, rng, start))
    return path


def _row(src: dict[str, str], n: int, rng: random.Random, start: datetime) -> dict[str, str]:
    row = dict(src)
    created0 = datetime.strptime(src["Created Date"], EXPORT_TIME)
    created = (start + timedelta(days=rng.randrange(365), hours=rng.randrange(24),
                                 minutes=created0.minute, seconds=created0.second))
    row["Unique Key"] = f"B{n:08d}"
    row["Created Date"] = created.strftime(EXPORT_TIME)
    for name in ("Closed Date", "Resolution Action Updated Date"):
        if src[name]:
            took = datetime.strptime(src[name], EXPORT_TIME) - created0
            row[name] = (created + took).strftime(EXPORT_TIME)
    if src["Latitude"] and src["Longitude"]:
        lat = float(src["Latitude"]) + rng.uniform(-JITTER_DEG, JITTER_DEG)
        lon = float(src["Longitude"]) + rng.uniform(-JITTER_DEG, JITTER_DEG)
        row["Latitude"], row["Longitude"] = f"{lat:.9f}", f"{lon:.9f}"
        row["Location"] = f"({lat:.9f}, {lon:.9f})"
    return row


def fresh_dispatch(folder: Path, name: str) -> Dispatch:
    engine = db.make_engine(f"sqlite:///{folder / name}")
    db.migrate(engine)
    # the same clock for every row: a fixed "now" after the generated year
    return Dispatch(engine, load_geo(GEO_DIR), clock=lambda: datetime.now().astimezone())


def one_transaction_per_job(d: Dispatch, path: Path) -> int:
    """The write pattern intake had: parse each row, `create_job` it in its own transaction."""
    file_import.check_file(path)
    rules = d.rules()
    now = d.clock()
    done = 0
    for raw in intake_files.read_rows(path):
        req = nyc311.parse_row(raw)
        nyc311.check_dates(req, now)
        new = intake.to_new_job(req, raw)
        if nyc311.closed_by_city(req):
            new = dataclasses.replace(new, closed_at=req.closed_at, resolution=req.resolution)
        d.create_job(intake.IMPORT_ACTOR, new, source=intake.JOB_SOURCE, rules=rules)
        done += 1
    return done


def cpu_seconds() -> float:
    """CPU (user + system) of this process and of the children it has waited for (the one
    parsing aside)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of this process and its children, the result)."""
    started, cpu = time.perf_counter(), cpu_seconds()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, cpu_seconds() - cpu, result


def peak_rss_mb(path: Path, folder: Path) -> tuple[float, float, dict[str, int], float]:
    """Import `path` in a fresh process: its peak RSS and its aside process's (MB), counts and
    seconds."""
    out = subprocess.run([sys.executable, __file__, "--child", str(path), str(folder)],
                         check=True, capture_output=True, text=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["rss_mb"], data["aside_rss_mb"], data["counts"], data["seconds"]


def child(path: Path, folder: Path) -> None:
    d = fresh_dispatch(folder, f"rss-{path.stem}.db")
    seconds, _, counts = timed(file_import.import_file, d, path)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    aside_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rss_mb": rss_mb, "aside_rss_mb": aside_mb, "counts": counts.as_dict(),
                      "seconds": seconds}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=50_000, help="rows for the batched import")
    p.add_argument("--baseline-rows", type=int, default=5_000,
                   help="rows for the one-transaction-per-job baseline")
    p.add_argument("--small", type=int, default=100_000, help="rows of the RSS baseline file")
    p.add_argument("--big", type=int, default=1_000_000, help="rows of the RSS file")
    p.add_argument("--only", choices=("rate", "memory"), help="measure one of the two")
    p.add_argument("--child", nargs=2, metavar=("FILE", "FOLDER"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        folder = Path(tmp)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        if args.only != "memory":
            measure_rate(folder, args.rows, args.baseline_rows)
        if args.only != "rate":
            measure_memory(folder, args.small, args.big)


def measure_rate(folder: Path, rows: int, baseline_rows: int) -> None:
    rows_file = generate(folder / "rows.csv", rows)
    base_file = generate(folder / "base.csv", baseline_rows, seed=312)
    base_s, base_cpu, base_n = timed(one_transaction_per_job, fresh_dispatch(folder, "base.db"),
                                     base_file)
    base_rate = base_n / base_s
    print(f"one transaction per job: {base_n} rows in {base_s:.1f}s = {base_rate:,.0f}/s "
          f"({base_n / base_cpu:,.0f} per CPU-second)")
    one_s, one_cpu, _ = timed(file_import.import_file, fresh_dispatch(folder, "one.db"), rows_file,
                              parse_aside=False)
    print(f"import_file in one process: {rows} rows in {one_s:.1f}s = {rows / one_s:,.0f}/s "
          f"({rows / one_cpu:,.0f} per CPU-second)")
    batch_s, batch_cpu, counts = timed(file_import.import_file, fresh_dispatch(folder, "batch.db"),
                                       rows_file)
    rate = rows / batch_s
    how = "parsed aside" if aside.available() else "one process: no second core"
    print(f"import_file ({how}, batches of 500): {rows} rows in {batch_s:.1f}s = {rate:,.0f}/s "
          f"({rows / batch_cpu:,.0f} per CPU-second of both processes); {counts.summary()}")
    record("intake_rows_per_s", rate, "rows/s", baseline=base_rate)
    record("intake_rows_per_cpu_s", rows / batch_cpu, "rows/CPU-s",
           baseline=base_n / base_cpu)
    record("intake_one_process_rows_per_cpu_s", rows / one_cpu, "rows/CPU-s",
           baseline=base_n / base_cpu)


def measure_memory(folder: Path, small_rows: int, big_rows: int) -> None:
    small = generate(folder / "small.csv", small_rows, seed=313)
    small_mb, small_aside, _, small_s = peak_rss_mb(small, folder)
    print(f"peak RSS importing {small_rows:,} rows: {small_mb:.0f} MB + {small_aside:.0f} MB "
          f"aside ({small_s:.0f}s)")
    small.unlink()
    big = generate(folder / "big.csv", big_rows, seed=314)
    size = big.stat().st_size / 2**20
    big_mb, big_aside, big_counts, big_s = peak_rss_mb(big, folder)
    print(f"peak RSS importing {big_rows:,} rows ({size:,.0f} MB file): {big_mb:.0f} MB + "
          f"{big_aside:.0f} MB aside in {big_s:.0f}s = {big_rows / big_s:,.0f}/s; {big_counts}")
    record("intake_peak_rss_mb_1m_rows", big_mb + big_aside, "MB",
           baseline=small_mb + small_aside)


if __name__ == "__main__":
    main()

"""Collection's document checks: the C structure check (hive_assets/data/_structure.c) against the Python walk
it falls back to, in one process, on the home `bench_demo.py --keep-home` leaves (the closed loop at 20 %
answered, the days of issue 23's retrains).

    .venv/bin/python benchmarks/bench_document_checks.py /tmp/home [--repeat 3] [--days 1 6]

For each specialist and day: `collect` with the C check and with the walk alone, alternating, median CPU
seconds of `--repeat`; both must give the same rows, the same data snapshot hash and the same quarantine.
Run it with PYTHONPATH set to another checkout to time that checkout's code the same way (its "walk"
column is then its only one if it has no C check).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_loop_collect import loop_arguments  # noqa: E402

from hive_assets.config import SPECIALISTS  # noqa: E402
from hive_assets.data import _documents, collect  # noqa: E402
from hive_assets.data.store import SQLiteStore  # noqa: E402


def main() -> None:
    args, start = loop_arguments()
    module = getattr(_documents, "_structure", None)
    print(f"# collection's document checks as of day {args.days[0]} and day {args.days[1]}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, median of {args.repeat}, code from {Path(_documents.__file__).parents[2]}")
    print("| specialist | day | labelled rows | quarantined | C check: CPU s | walk alone: CPU s | walk / C |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    totals = {day: [0.0, 0.0] for day in args.days}
    with SQLiteStore(args.home / "store.sqlite") as store:
        for specialist in SPECIALISTS:
            for day in args.days:
                now = start + timedelta(days=day)
                times: dict[bool, list[float]] = {True: [], False: []}
                seen = {}
                for _ in range(args.repeat):
                    for with_c in ((True, False) if module is not None else (False,)):
                        _documents._structure = module if with_c else None
                        c0 = time.process_time()
                        result = collect(store, specialist, now=now, window_days=90)
                        times[with_c].append(time.process_time() - c0)
                        quarantine = result.quarantine[["source_id", "reason"]].astype(str).values
                        seen[with_c] = (len(result.frame), result.snapshot_hash(), sorted(map(tuple, quarantine)))
                _documents._structure = module
                assert len(set(map(repr, seen.values()))) == 1, (specialist, day)  # the same rows, hash, quarantine
                rows, _, quarantined = seen[False]
                walk = statistics.median(times[False])
                fast = statistics.median(times[True]) if times[True] else float("nan")
                totals[day][0] += fast
                totals[day][1] += walk
                print(f"| {specialist} | {day} | {rows:,} | {len(quarantined)} | {fast:.2f} | {walk:.2f} | "
                      f"{walk / fast:.2f}x |", flush=True)
    for day, (fast, walk) in totals.items():
        print(f"| **all five** | {day} | | | {fast:.2f} | {walk:.2f} | {walk / fast:.2f}x |")


if __name__ == "__main__":
    main()

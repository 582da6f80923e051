"""Issue 23, the closed loop at 20 % answered: one retrain's collection at the end of day 1 and of day 6,
in CPU time (which the neighbours of a shared machine do not inflate), label-driven (`collect`) against
the previous collector (`hive_assets_tests/data/reference_collect.py`, every opinion of the window read),
on the store `bench_demo.py --keep-home` leaves.

    .venv/bin/python benchmarks/bench_demo.py --label-rate 0.2 --history-label-rate 0.85 --retrain-days 1 6 \\
        --keep-home /tmp/home
    .venv/bin/python benchmarks/bench_loop_collect.py /tmp/home [--repeat 3]

The store then holds all six days; collecting "as of" the end of day 1 reads the window [now - 90 d, now]
(opinions by `evaluated_at`, feedback by `submitted_at`), as the day-1 retrain did.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hive_assets.cli._args import positive_int  # noqa: E402
from hive_assets.config import SPECIALISTS  # noqa: E402
from hive_assets.data import collect  # noqa: E402
from hive_assets.data.store import SQLiteStore  # noqa: E402
from hive_assets_tests.data.reference_collect import reference_collect  # noqa: E402


def timed(fn, repeat: int) -> tuple[int, float, float]:
    """(rows, median wall s, median CPU s) of `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        rows = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return rows, sorted(walls)[repeat // 2], sorted(cpus)[repeat // 2]


def loop_arguments(add_arguments=None) -> tuple[argparse.Namespace, datetime]:
    """The kept home, --repeat and --days (this script's and bench_loop_retrain's, which adds its own through
    `add_arguments(parser)`), and the loop's start."""
    parser = argparse.ArgumentParser()
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument("home", type=Path)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--days", type=int, nargs=2, default=[1, 6])
    args = parser.parse_args()
    args.home = args.home.resolve()
    loop = args.home / "loop.json"
    if not loop.exists():
        parser.error(f"{args.home} is not a home `bench_demo.py --keep-home` left (no loop.json)")
    return args, datetime.fromisoformat(json.loads(loop.read_text())["start"]).astimezone(timezone.utc)


def main() -> None:
    args, start = loop_arguments()
    print(f"# loop collection as of day {args.days[0]} and day {args.days[1]}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} "
          f"UTC, {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, median of {args.repeat}")
    print("| specialist | day | opinions in window (own) | labelled rows | label-driven CPU s (wall) | "
          "previous CPU s (wall) | previous / label-driven (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with SQLiteStore(args.home / "store.sqlite") as store:
        for specialist in SPECIALISTS:
            for day in args.days:
                now = start + timedelta(days=day)
                window = {"specialist_type": specialist, "evaluated_at": {"$gte": now - timedelta(days=90), "$lte": now}}
                opinions = store.count("specialist_opinions", window)
                rows, new_wall, new_cpu = timed(
                    lambda: len(collect(store, specialist, now=now, window_days=90).frame), args.repeat)
                labelled, old_wall, old_cpu = timed(
                    lambda: int(reference_collect(store, specialist, now=now, window_days=90).frame["label"].notna().sum()),
                    args.repeat)
                assert labelled == rows, (specialist, day, labelled, rows)  # the same labelled rows
                print(f"| {specialist} | {day} | {opinions:,} | {rows:,} | {new_cpu:.2f} ({new_wall:.2f}) | "
                      f"{old_cpu:.2f} ({old_wall:.2f}) | {old_cpu / new_cpu:.1f}x |", flush=True)


if __name__ == "__main__":
    main()

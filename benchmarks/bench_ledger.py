"""A specialist's latest ledger row, as `record_decision` and `check_clock` read it before every decision.

The same SQLite store (`--rows` decisions over the five specialists) queried through the platform's indexes,
then with the compound (specialist_type, recorded_at) index dropped (the single-field indexes alone, as
before it), in one run; the ratio is the comparison.

    .venv/bin/python benchmarks/bench_ledger.py --rows 2000 50000
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hive_assets.cli._args import positive_int
from hive_assets.config import SPECIALISTS
from hive_assets.data.store import SQLiteStore
from hive_assets.registry import latest_decision

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
COMPOUND = "model_decisions__specialist_type_recorded_at"


def per_query_ms(store, repeat: int) -> float:
    start = time.perf_counter()
    for i in range(repeat):
        latest_decision(store, SPECIALISTS[i % len(SPECIALISTS)])
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000, 50_000])
    parser.add_argument("--repeat", type=positive_int, default=500)
    args = parser.parse_args()
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, Python {platform.python_version()}")
    print(f"{'rows':>8} {'compound index ms':>18} {'single-field ms':>16} {'ratio':>7}")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "s.sqlite") as store:
            store.upsert_many("model_decisions", [
                {"decision_id": uuid.uuid4().hex, "specialist_type": SPECIALISTS[i % len(SPECIALISTS)],
                 "kind": "traffic_step", "recorded_at": T0 + timedelta(minutes=i), "details": {}}
                for i in range(rows)])
            with_index = per_query_ms(store, args.repeat)
            store._conn.execute(f'DROP INDEX "{COMPOUND}"')
            without = per_query_ms(store, args.repeat)
        print(f"{rows:>8} {with_index:>18.4f} {without:>16.4f} {without / with_index:>6.0f}x")


if __name__ == "__main__":
    main()

"""`simulate` memory: peak RSS of writing N plans a chunk at a time (the default) against the same plans
generated, served and written all at once (`chunk_size=N`, what `simulate` did before), in the same run.
Each measurement runs in its own process (its own `ru_maxrss`) into a fresh SQLite store, without serving.

    .venv/bin/python benchmarks/bench_simulate.py                     # 20,000 and 100,000 plans
    .venv/bin/python benchmarks/bench_simulate.py --plans 5000 50000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from datetime import datetime, timezone
from hive_assets.data.store import SQLiteStore
from hive_assets.simulator import simulate
plans, chunk, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
started = time.perf_counter()
summary = simulate(SQLiteStore(path), plans=plans, seed=1, now=datetime(2026, 3, 1, tzinfo=timezone.utc),
                   chunk_size=chunk)
print(json.dumps({"seconds": time.perf_counter() - started, "opinions": summary.written["specialist_opinions"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(plans: int, chunk: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, str(plans), str(chunk), str(Path(tmp) / "s.sqlite")],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--chunk", type=int, default=5000, help="simulate's default chunk size")
    args = parser.parse_args()
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")
    print("| plans | opinions | all at once: peak RSS | s | chunks of %d: peak RSS | s | RSS ratio |" % args.chunk)
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for plans in args.plans:
        whole, chunked = measure(plans, plans), measure(plans, args.chunk)
        assert whole["opinions"] == chunked["opinions"]
        print(f"| {plans:,} | {chunked['opinions']:,} | {whole['peak_mb']:,.0f} MB | {whole['seconds']:.1f} "
              f"| {chunked['peak_mb']:,.0f} MB | {chunked['seconds']:.1f} "
              f"| {whole['peak_mb'] / chunked['peak_mb']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()

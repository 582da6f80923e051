"""Wall time of `make demo` (without the install): its three steps as the Makefile runs them, one
partition against a reference in the same run, and the closed loop per simulated day.

The reference for a partition is the same work done by the domain layer alone, in one process, without
Dagster or the CLI: collect -> features -> train -> score on the test split. The ratio is what the
orchestration (dagster CLI start-up, run storage, MLflow logging and registry, checks) costs on top.
The loop's reference is the real time it simulates (a day is 86,400 s): the ratio is its speed-up.

    .venv/bin/python benchmarks/bench_demo.py [--plans 4000] [--days 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from hive_assets.cli._home import write_instance_settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPECIALISTS = ["business", "technical", "behavior", "evolution", "architecture"]


START = "2026-01-05T00:00:00Z"  # the Makefile's DEMO_START


def run(cmd: list[str], env: dict, stdout=subprocess.DEVNULL) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=stdout, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def reference_partition(home: Path, specialist: str) -> float:
    """Domain layer only, in-process (imports already paid)."""
    from hive_assets.data import collect
    from hive_assets.features import features_frame
    from hive_assets.data.store import SQLiteStore
    from hive_assets.training import temporal_group_split, train_model

    start = time.perf_counter()
    store = SQLiteStore(home / "store.sqlite")
    result = collect(store, specialist, now=datetime.fromisoformat(START.replace("Z", "+00:00")))
    labelled = result.frame[result.frame["label"].notna()].reset_index(drop=True)
    frame = features_frame(labelled["plan"].tolist())
    frame["label"], frame["plan_id"], frame["evaluated_at"] = labelled["label"], labelled["plan_id"], labelled["evaluated_at"]
    frame["split"] = temporal_group_split(frame)
    model, _ = train_model(specialist, frame[frame.split == "train"], frame[frame.split == "validation"])
    model.predict(frame[frame.split == "test"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=4000)
    parser.add_argument("--days", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hive"
        write_instance_settings(home / "dagster")  # the instance `hive` and `make demo` create
        env = {**os.environ, "HIVE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
        for name in ("MONGODB_URI", "MLFLOW_TRACKING_URI", "KAFKA_BOOTSTRAP_SERVERS"):
            env.pop(name, None)
        first = {**env, "HIVE_SIMULATED_NOW": START}
        t_sim = run([str(BIN / "hive"), "simulate", "--plans", str(args.plans), "--days", "60", "--seed", "42",
                     "--now", START], first)
        t_parts = {}
        for s in SPECIALISTS:
            t_parts[s] = run([str(BIN / "dagster"), "asset", "materialize", "-m", "hive_assets.definitions",
                              "--select", "not group:review", "--partition", s], first)
        loop_out = Path(tmp) / "loop.json"
        with loop_out.open("w") as out:
            t_loop = run([str(BIN / "hive"), "loop", "--days", str(args.days), "--seed", "42", "--json"], env, out)
        loop = json.loads(loop_out.read_text())
        os.environ.update({"HIVE_HOME": str(home)})
        reference_partition(home, "business")  # warm imports, as the CLI process pays its own
        t_ref = reference_partition(home, "business")
    total = t_sim + sum(t_parts.values()) + t_loop
    print(f"# demo benchmark, {datetime.now(timezone.utc):%Y-%m-%d}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, {args.plans} plans")
    print("| step | seconds |\n|---|---|")
    print(f"| simulate ({args.plans} plans, 5 specialists) | {t_sim:.1f} |")
    for s, t in t_parts.items():
        print(f"| dagster asset materialize --partition {s} (whole graph) | {t:.1f} |")
    print(f"| hive loop --days {args.days:g} (the closed loop) | {t_loop:.1f} |")
    print(f"| **demo total (without install)** | **{total:.1f}** |")
    print(f"| reference: domain layer only, one partition, in-process | {t_ref:.1f} |")
    print(f"| ratio one partition via dagster CLI / reference | {t_parts['business'] / t_ref:.1f}x |")
    runs = {}
    for r in loop["runs"]:
        runs[r["job"]] = runs.get(r["job"], 0) + 1
    print(f"\n| closed loop: where the time goes ({args.days:g} simulated days) | seconds | per simulated day |")
    print("|---|---|---|")
    for what, seconds in sorted(loop["seconds"].items(), key=lambda kv: -kv[1]):
        n = next((f" ({n} runs)" for job, n in runs.items() if what.endswith(job)), "")
        print(f"| {what}{n} | {seconds:.1f} | {seconds / args.days:.1f} |")
    print(f"| **loop total, in the process** | **{sum(loop['seconds'].values()):.1f}** | "
          f"**{sum(loop['seconds'].values()) / args.days:.1f}** |")
    print(f"| ratio real time / simulated time (a day is 86,400 s) | {86400 * args.days / t_loop:.0f}x | |")


if __name__ == "__main__":
    main()

"""Wall time of the demo (without the install) and of one partition, against a reference in the same run.

The reference is the same work done by the domain layer alone, in one process, without Dagster or the
CLI: collect -> features -> train -> score on the test split. The ratio is what the orchestration
(dagster CLI start-up, run storage, MLflow logging and registry, checks) costs on top.

    .venv/bin/python benchmarks/bench_demo.py [--plans 4000]
"""

from __future__ import annotations

import argparse
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


def run(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def reference_partition(home: Path, specialist: str) -> float:
    """Domain layer only, in-process (imports already paid)."""
    from hive_assets.data import collect
    from hive_assets.features import features_frame
    from hive_assets.data.store import SQLiteStore
    from hive_assets.training import temporal_group_split, train_model

    start = time.perf_counter()
    store = SQLiteStore(home / "store.sqlite")
    result = collect(store, specialist)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hive"
        write_instance_settings(home / "dagster")  # the instance `hive` and `make demo` create
        env = {**os.environ, "HIVE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
        for name in ("MONGODB_URI", "MLFLOW_TRACKING_URI", "KAFKA_BOOTSTRAP_SERVERS"):
            env.pop(name, None)
        t_sim = run([str(BIN / "hive"), "simulate", "--plans", str(args.plans), "--seed", "42", "--no-serve"], env)
        t_parts = {}
        for s in SPECIALISTS:
            t_parts[s] = run([str(BIN / "dagster"), "asset", "materialize", "-m", "hive_assets.definitions",
                              "--select", "*", "--partition", s], env)
        os.environ.update({"HIVE_HOME": str(home)})
        reference_partition(home, "business")  # warm imports, as the CLI process pays its own
        t_ref = reference_partition(home, "business")
    total = t_sim + sum(t_parts.values())
    print(f"# demo benchmark, {datetime.now(timezone.utc):%Y-%m-%d}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, {args.plans} plans")
    print("| step | seconds |\n|---|---|")
    print(f"| simulate ({args.plans} plans, 5 specialists) | {t_sim:.1f} |")
    for s, t in t_parts.items():
        print(f"| dagster asset materialize --partition {s} (whole graph) | {t:.1f} |")
    print(f"| **demo total (without install)** | **{total:.1f}** |")
    print(f"| reference: domain layer only, one partition, in-process | {t_ref:.1f} |")
    print(f"| ratio one partition via dagster CLI / reference | {t_parts['business'] / t_ref:.1f}x |")


if __name__ == "__main__":
    main()

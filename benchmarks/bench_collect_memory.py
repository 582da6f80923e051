"""A retrain's data steps on a kept home, this checkout against an earlier commit: peak memory and CPU.

The steps are those of `raw_production_data` and `enhanced_features`: `collect` (labels source), the data
snapshot hash, the rows written as Parquet and read back, `features_frame` on the labelled plans. Each
run is a fresh process (peak RSS is per process), the two checkouts alternate, medians are reported.
The reference is a detached git worktree of `--reference-rev` (default: the commit before collection
kept plans as JSON text), made in a temporary directory and removed afterwards. The window ends at the
home's clock (a simulated home's time, else now). Its documents are only read.

    .venv/bin/python benchmarks/bench_collect_memory.py HIVE_HOME [--specialists technical business] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hive_assets.cli._args import positive_int  # noqa: E402
from hive_assets.config import SPECIALISTS  # noqa: E402

REFERENCE_REV = "8a906b1"  # main before collection kept each plan as its JSON text

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from hive_assets import clock, storage
from hive_assets.data import collect
from hive_assets.data.store import SQLiteStore
from hive_assets.features import features_frame

home, specialist = Path(sys.argv[1]), sys.argv[2]
now = clock.now()  # the home's clock (HIVE_HOME is the home): its simulated time, or the wall clock
import pyarrow.parquet  # noqa: F401  (its import is not a step's cost)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


out = {"baseline_mb": rss_mb()}
cpu = time.process_time
with SQLiteStore(home / "store.sqlite") as store:
    t = cpu(); result = collect(store, specialist, now=now, window_days=90); out["collect_s"] = cpu() - t
out["collect_peak_mb"] = rss_mb()
t = cpu(); out["hash"] = result.snapshot_hash(); out["hash_s"] = cpu() - t
t = cpu(); data = storage.frame_to_parquet(result.frame); out["write_s"] = cpu() - t
out["rows"] = len(result.frame)
del result
t = cpu(); frame = storage.frame_from_parquet(data); out["read_s"] = cpu() - t
labelled = frame[frame["label"].notna()]
t = cpu(); features = features_frame(labelled["plan"].tolist()); out["features_s"] = cpu() - t
out["features_sum"] = float(features.select_dtypes("number").to_numpy().sum())
out["parquet_mb"] = len(data) / 1e6
out["peak_mb"] = rss_mb()
print(json.dumps(out))
"""

STEPS = ("collect_s", "hash_s", "write_s", "read_s", "features_s")


def run(checkout: Path, home: Path, specialist: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "HIVE_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(home), specialist], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"{specialist} on {checkout}: the run failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path, help="a kept HIVE_HOME (e.g. after `make demo` and a `hive loop`)")
    parser.add_argument("--specialists", nargs="+", default=["technical", "business"])
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--reference-rev", default=REFERENCE_REV)
    args = parser.parse_args()
    home = args.home.resolve()
    if not (home / "store.sqlite").is_file():
        parser.error(f"{home} is not a kept home: it has no store.sqlite (the embedded document store)")
    unknown = sorted(set(args.specialists) - set(SPECIALISTS))
    if unknown:
        parser.error(f"unknown specialist(s) {', '.join(unknown)}; choose from {', '.join(SPECIALISTS)}")
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", f"{args.reference_rev}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        parser.error(f"--reference-rev {args.reference_rev}: not a commit of {ROOT} (this needs a git clone)")
    reference = Path(tempfile.mkdtemp(prefix="hive-bench-reference-")) / "checkout"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(reference), args.reference_rev],
                   check=True)
    try:
        for built in (ROOT / "hive_assets" / "features").glob("_flatten*.so"):  # the same C flattener for both
            shutil.copy2(built, reference / "hive_assets" / "features" / built.name)
        print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}; home {home}; this checkout vs {args.reference_rev}; "
              f"median of {args.repeat} runs, one process each, alternating")
        print("| specialist | rows | checkout | collect s | hash s | write s | read s | features s | all steps s "
              "| peak MB after collect | peak MB |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for specialist in args.specialists:
            runs: dict[str, list[dict]] = {"this": [], "reference": []}
            for i in range(args.repeat):
                for name in (("this", "reference") if i % 2 == 0 else ("reference", "this")):
                    runs[name].append(run(ROOT if name == "this" else reference, home, specialist))
            this, ref = runs["this"][0], runs["reference"][0]
            same_features = math.isclose(this["features_sum"], ref["features_sum"], rel_tol=1e-9)
            if this["hash"] != ref["hash"] or not same_features:
                raise SystemExit(f"{specialist}: the checkouts disagree on the data "
                                 f"(hash {this['hash']} vs {ref['hash']})")
            for name in ("reference", "this"):
                keys = (*STEPS, "collect_peak_mb", "peak_mb")
                median = {k: statistics.median(r[k] for r in runs[name]) for k in keys}
                label = "this checkout" if name == "this" else args.reference_rev
                print(f"| {specialist} | {this['rows']:,} | {label} | "
                      + " | ".join(f"{median[k]:.2f}" for k in STEPS)
                      + f" | {sum(median[k] for k in STEPS):.2f} | {median['collect_peak_mb']:,.0f} "
                        f"| {median['peak_mb']:,.0f} |", flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(reference)], check=False)
        shutil.rmtree(reference.parent, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Drift-check benchmark: one check (`feature_drift` + `drift_decision`) over a 1,000,000-row window
of all features, best of 3, and Evidently's DataDriftPreset on the same data in the same run: the
ratio of times and the agreement of the per-feature drift verdicts.

    .venv/bin/python benchmarks/bench_drift.py --evidently-python .venv-bench/bin/python
    .venv/bin/python benchmarks/bench_drift.py --rows 100000 --no-evidently   # a quick look

Data: the reference is the feature frame of `--reference-plans` simulated plans (what a champion
is trained on); the window is `--rows` rows resampled (with replacement) from the feature frame of
`--window-plans` plans simulated with `drift=--drift` (some features move, others do not).
Evidently is not installed into the project's venv (it pins other versions of pandas & co.): it
runs in a subprocess with its own interpreter (`make bench-drift` creates `.venv-bench`), reading
the same data from a temporary parquet file. It is run twice: its default preset (Wasserstein
distance for numeric columns and Jensen-Shannon for categorical ones and numeric ones with <= 5
values, at reference sizes > 1,000) and with `method="psi", threshold=0.2` (PSI on its own binning,
equal-width bins over reference and current data), each timed once (`--evidently-repeat`).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# -- Evidently worker (runs in the bench venv: imports neither hive_assets nor the project's pins) ----
def evidently_worker(reference_path: str, window_path: str, out_path: str, repeat: int) -> None:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently import __version__ as evidently_version
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(reference_path)
    window = pd.read_parquet(window_path)
    categorical = [c for c in reference.columns if reference[c].dtype == object]
    numeric = [c for c in reference.columns if c not in categorical]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    results = {"version": evidently_version, "runs": {}}
    for label, preset_kwargs in (("default", {}), ("psi", {"method": "psi", "threshold": 0.2})):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            current_ds = Dataset.from_pandas(window, data_definition=definition)
            reference_ds = Dataset.from_pandas(reference, data_definition=definition)
            snapshot = Report([DataDriftPreset(**preset_kwargs)]).run(current_ds, reference_ds)
            times.append(time.perf_counter() - start)
        columns = {}
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config.get("type") != "evidently:metric_v2:ValueDrift":
                continue
            method, threshold, value = config["method"], config["threshold"], float(metric["value"])
            # p-value tests flag drift below the threshold, distances at or above it (evidently's rule)
            drift = value < threshold if "p_value" in method else value >= threshold
            columns[config["column"]] = {"method": method, "threshold": threshold, "value": value, "drift": drift}
        results["runs"][label] = {"seconds": times, "columns": columns}
    Path(out_path).write_text(json.dumps(results))


# -- main -------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-plans", type=int, default=20_000)
    parser.add_argument("--window-plans", type=int, default=20_000)
    parser.add_argument("--drift", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--evidently-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--evidently-repeat", type=int, default=1)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--evidently-worker", nargs=3, metavar=("REFERENCE", "WINDOW", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    # a median of no runs; checked here, not by hive_assets.cli._args.positive_int: the evidently worker parses
    # these arguments in its own venv, where hive_assets is not installed
    if args.repeat < 1 or args.evidently_repeat < 1:
        parser.error("--repeat, --evidently-repeat: at least 1")
    if args.evidently_worker:
        evidently_worker(*args.evidently_worker, repeat=args.evidently_repeat)
        return

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import numpy as np

    from hive_assets.features import FEATURE_NAMES, features_frame
    from hive_assets.monitoring._drift import build_reference, drift_decision, feature_drift
    from hive_assets.simulator import make_plans

    print(f"# bench_drift: python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    start = time.perf_counter()
    reference_frame = features_frame(make_plans(args.reference_plans, seed=args.seed))
    pool = features_frame(make_plans(args.window_plans, seed=args.seed + 1, drift=args.drift))
    rng = np.random.default_rng(args.seed)
    window = pool.iloc[rng.integers(0, len(pool), size=args.rows)].reset_index(drop=True)
    print(f"data: reference {len(reference_frame):,} plans, window {len(window):,} rows x {len(FEATURE_NAMES)} features "
          f"(resampled from {len(pool):,} plans, drift={args.drift}); built in {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    reference = build_reference(reference_frame, None)
    print(f"build_reference: {time.perf_counter() - start:.3f} s")

    times, times_no_ks = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        decision = drift_decision(feature_drift(reference, window))
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        drift_decision(feature_drift(reference, window, ks=False))
        times_no_ks.append(time.perf_counter() - start)
    ours = min(times)
    print(f"drift check, {len(window):,} rows: best {ours:.3f} s of {[round(t, 3) for t in times]} "
          f"(PSI only: best {min(times_no_ks):.3f} s); decision {decision['decision']}, "
          f"drift_score {decision['drift_score']:.3f} ({decision['drift_feature']}), "
          f"{len(decision['drifted_features'])} drifted feature(s)")

    # KS on the whole window agrees with scipy's ks_2samp on the same arrays
    from scipy import stats

    result = feature_drift(reference, window)
    d_err = p_err = 0.0
    for name, ref in reference["numeric"].items():
        expected = stats.ks_2samp(window[name].to_numpy(), np.asarray(ref["sample"]))
        d_err = max(d_err, abs(result["features"][name]["ks_statistic"] - expected.statistic))
        p_err = max(p_err, abs(result["features"][name]["ks_pvalue"] - expected.pvalue) / max(expected.pvalue, 1e-300))
    print(f"KS vs scipy.stats.ks_2samp on the full window, {len(reference['numeric'])} features: "
          f"max |dD| {d_err:.1e}, max relative |dp| {p_err:.1e}")

    if args.no_evidently:
        return
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        reference_path, window_path, out_path = (os.path.join(tmp, name) for name in ("reference.parquet", "window.parquet", "evidently.json"))
        reference_frame.to_parquet(reference_path)
        window.to_parquet(window_path)
        cmd = [args.evidently_python, __file__, "--evidently-repeat", str(args.evidently_repeat),
               "--evidently-worker", reference_path, window_path, out_path]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"evidently worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        evidently = json.loads(Path(out_path).read_text())

    ours_verdict = {name: v["drift"] for name, v in decision["features"].items()}
    print(f"\nevidently {evidently['version']} DataDriftPreset, same reference and window, subprocess:")
    print("| run | seconds | evidently / ours | drifted (evidently) | drifted (ours) | verdicts agree |")
    print("|---|---:|---:|---:|---:|---:|")
    disagreements = {}
    for label, run in evidently["runs"].items():
        seconds = min(run["seconds"])
        theirs = {name: c["drift"] for name, c in run["columns"].items()}
        agree = sum(theirs[name] == ours_verdict[name] for name in ours_verdict)
        disagreements[label] = sorted(name for name in ours_verdict if theirs[name] != ours_verdict[name])
        print(f"| {label} | {seconds:.2f} | {seconds / ours:.1f}x | {sum(theirs.values())} | {sum(ours_verdict.values())} "
              f"| {agree}/{len(ours_verdict)} |")
    print("\nper feature: ours PSI (verdict) | evidently default value (verdict) | evidently PSI (verdict)")
    default, psi_run = evidently["runs"]["default"]["columns"], evidently["runs"]["psi"]["columns"]
    for name in FEATURE_NAMES:
        v = decision["features"][name]
        print(f"  {name:34s} {v['psi']:8.3f} ({'D' if v['drift'] else '-'}) | {default[name]['method'][:12]:12s} "
              f"{default[name]['value']:8.3f} ({'D' if default[name]['drift'] else '-'}) | "
              f"{psi_run[name]['value']:8.3f} ({'D' if psi_run[name]['drift'] else '-'})")
    for label, names in disagreements.items():
        print(f"disagreements with evidently {label}: {', '.join(names) or 'none'}")


if __name__ == "__main__":
    main()

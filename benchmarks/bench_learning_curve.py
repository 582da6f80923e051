"""Learning curve of the specialist models against the Bayes-optimal accuracy (issues 10 and 24).

Simulator plans (`hive_assets.simulator.make_plans`), labelled by each specialist's hidden policy
(`policy_label`) with label noise (default 10%: the label becomes one of the two other classes), so the
best possible accuracy on the test rows is the accuracy of the noiseless policy against the noisy
labels (about 1 - noise), since every policy is a function of the contracted features
(`test_every_policy_is_a_function_of_the_contracted_features`); "Bayes macro-F1" likewise. For each
specialist and size (labelled rows), a window of `size` consecutive plans in time order is split
70/15/15 by time (one row per plan, so grouping is trivial) and every setup is fitted on train,
calibrated on validation and scored on test.
Below 5,000 rows one window's test split is a few dozen rows, so sizes below 5,000 are averaged over
`--windows` disjoint windows (the same windows for every setup); 5,000 and more: the first
`--large-windows` windows (default 1; one 5,000-row test split is 750 rows, about +-2.5 points of noise).

- `xgboost`: today's default before issue 24, `train_model(model_type="xgboost")`;
- `auto`: the new default, `train_model(model_type="auto")` (every family of AUTO_CANDIDATES, each with
  its VALIDATION_GRIDS setting, the best on validation macro-F1); `auto_sampled`: the same compared on a
  stratified sample of 2,500 training rows, the winner then fitted on all (`selection_max_rows`);
  `auto_tuned`: auto with `hyperparameter_tuning=True` (successive halving instead of the small grids);
  `auto_without_mlp`: auto before the MLP candidate (xgboost and sparse_logistic only);
- `logistic`, `sparse_logistic`, `mlp`: the standardized L2 / L1 logistic regressions and the one-layer MLP
  alone, default penalty;
- `seed`: the system this replaces, random forest of 100 trees, depth 10, no class weights, no calibration.

Time = fit + select + calibrate + validate (predict and metrics on test), wall clock, in this run.
Targets (issue 24): the default (`auto`) within 5 points of Bayes accuracy at 5k rows and 3 at 20k, for
every specialist; at 500 rows macro-F1 at least 3 points above `xgboost` for 3 of 5 specialists;
fit + calibrate under 60 s at 20k rows.

    .venv/bin/python benchmarks/bench_learning_curve.py            # all: 5 specialists x 4 sizes x 9 setups
    .venv/bin/python benchmarks/bench_learning_curve.py --specialists business --setups xgboost,auto --sizes 500
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

from hive_assets.config import CLASSES, SPECIALISTS  # noqa: E402
from hive_assets.evaluation import calibration_metrics, point_metrics  # noqa: E402
from hive_assets.features import features_frame  # noqa: E402
from hive_assets.simulator import make_plans, policy_label  # noqa: E402
from hive_assets.training import encode, encode_labels, train_model  # noqa: E402

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def noisy_labels(truth: list[str], noise: float, rng: np.random.Generator) -> list[str]:
    """As the simulator's feedback: with probability `noise`, one of the two other classes."""
    out = []
    for label in truth:
        if rng.random() < noise:
            others = [c for c in CLASSES if c != label]
            label = others[int(rng.integers(2))]
        out.append(label)
    return out


def seed_setup(train, validation, test):
    """The replaced system: RF 100 trees, depth 10, no class weights, no calibration."""
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=2, random_state=0)
    forest.fit(encode(train), encode_labels(train["label"]))
    return forest.predict_proba(encode(test))


SETUPS = {  # name -> train_model arguments (None: the seed's forest)
    "xgboost": {"model_type": "xgboost"},
    "auto": {"model_type": "auto"},
    "auto_sampled": {"model_type": "auto", "selection_max_rows": 2500},
    "auto_tuned": {"model_type": "auto", "hyperparameter_tuning": True},
    "auto_without_mlp": {"model_type": "auto", "candidate_model_types": ("xgboost", "sparse_logistic")},
    "logistic": {"model_type": "logistic"},
    "sparse_logistic": {"model_type": "sparse_logistic"},
    "mlp": {"model_type": "mlp"},
    "seed": None,
}
FIELDS = ("accuracy", "bayes_accuracy", "gap_points", "macro_f1", "bayes_macro_f1", "ece", "ece_debiased", "seconds")


def one_window(specialist, data, setup):
    a, b = int(0.70 * len(data)), int(0.85 * len(data))
    train, validation, test = data.iloc[:a], data.iloc[a:b], data.iloc[b:]
    y = encode_labels(test["label"])
    bayes_acc = float((test["truth"] == test["label"]).mean())
    bayes_f1 = float(f1_score(y, encode_labels(test["truth"]), average="macro"))
    start = time.perf_counter()
    if SETUPS[setup] is None:
        proba, chosen = seed_setup(train, validation, test), "rf (seed)"
    else:
        model, info = train_model(specialist, train, validation, **SETUPS[setup])
        proba, chosen = model.predict_proba(test), info["model_type"]
    pm, cal = point_metrics(y, proba), calibration_metrics(y, proba)
    seconds = time.perf_counter() - start
    return {"accuracy": pm["accuracy"], "bayes_accuracy": bayes_acc, "gap_points": 100 * (bayes_acc - pm["accuracy"]),
            "macro_f1": pm["macro_f1"], "bayes_macro_f1": bayes_f1, "ece": cal["ece"],
            "ece_debiased": cal["ece_debiased"], "seconds": seconds, "chosen": chosen}


def run(specialists, sizes, setups, noise, seed, windows, out=print, large_windows=1):
    plans = make_plans(max(max(sizes) * large_windows, min(sizes) * windows), seed=seed, now=NOW, days=120)
    features = features_frame(plans)
    rows = []
    for specialist in specialists:
        truth = [policy_label(specialist, p) for p in plans]
        labels = noisy_labels(truth, noise, np.random.default_rng(seed + SPECIALISTS.index(specialist)))
        frame = features.assign(label=labels, truth=truth)
        for size in sizes:
            n_windows = windows if size < 5000 else large_windows
            for setup in setups:
                results = [one_window(specialist, frame.iloc[w * size:(w + 1) * size], setup) for w in range(n_windows)]
                row = {"specialist": specialist, "rows": size, "setup": setup, "windows": n_windows,
                       **{k: float(np.mean([r[k] for r in results])) for k in FIELDS},
                       "seconds_max": max(r["seconds"] for r in results),
                       "chosen": " ".join(f"{c}x{sum(r['chosen'] == c for r in results)}"
                                          for c in sorted({r["chosen"] for r in results}))}
                rows.append(row)
                out(f"| {specialist} | {size} | {n_windows} | {setup} | {row['chosen']} | {row['accuracy']:.3f} | "
                    f"{row['bayes_accuracy']:.3f} | {row['gap_points']:+.1f} | {row['macro_f1']:.3f} | "
                    f"{row['bayes_macro_f1']:.3f} | {row['ece']:.3f} | {row['ece_debiased']:.3f} | "
                    f"{row['seconds']:.1f} (max {row['seconds_max']:.1f}) |")
    return rows


def verdicts(rows, default="auto", before="xgboost"):
    """The issue's targets, one line each, and the count at the smallest size."""
    lines = []
    find = {(r["specialist"], r["rows"], r["setup"]): r for r in rows}
    smallest = min(r["rows"] for r in rows)
    better_small = 0
    for r in rows:
        if r["setup"] != default:
            continue
        checks = []
        target = {5000: 5.0, 20000: 3.0}.get(r["rows"])
        if target is not None:
            checks.append(f"gap {r['gap_points']:.1f} pts <= {target:.0f} ({'met' if r['gap_points'] <= target else 'MISSED'})")
        if (old := find.get((r["specialist"], r["rows"], before))) is not None:
            delta = 100 * (r["macro_f1"] - old["macro_f1"])
            checks.append(f"macro-F1 {delta:+.1f} pts vs {before}")
            if r["rows"] == smallest and delta >= 3.0:
                better_small += 1
        if r["rows"] == 20000:
            checks.append(f"fit+cal {r['seconds']:.1f} s < 60 ({'met' if r['seconds'] < 60 else 'MISSED'})")
        lines.append(f"- {r['specialist']} {r['rows']}: " + "; ".join(checks))
    lines.append(f"- at {smallest} rows, {default} >= 3 points of macro-F1 above {before} for {better_small} specialists "
                 f"({'met' if better_small >= 3 else 'MISSED'}: target 3 of 5)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specialists", default=",".join(SPECIALISTS))
    parser.add_argument("--sizes", default="500,1000,5000,20000")
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--windows", type=int, default=10, help="disjoint windows averaged below 5,000 rows")
    parser.add_argument("--large-windows", type=int, default=1,
                        help="disjoint windows averaged at 5,000 rows and more (the plans grow to match)")
    parser.add_argument("--noise", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"# learning curve: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, noise {args.noise}")
    print("| specialist | rows | windows | setup | family chosen | accuracy | Bayes acc. | gap (pts) | macro-F1 "
          "| Bayes macro-F1 | ECE | ECE debiased | fit+cal+val s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    rows = run(args.specialists.split(","), [int(s) for s in args.sizes.split(",")], args.setups.split(","),
               args.noise, args.seed, args.windows, out=lambda line: print(line, flush=True),
               large_windows=args.large_windows)
    print("\ntargets (default model `auto` against the previous default `xgboost`):")
    print("\n".join(verdicts(rows)))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

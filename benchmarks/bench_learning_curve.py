"""Learning curve of the specialist models against the Bayes-optimal accuracy (issue 10).

Simulator plans (`hive_assets.simulator.make_plans`), labelled by each specialist's hidden policy
(`policy_label`) with label noise (default 10%: the label becomes one of the two other classes), so the
best possible accuracy on the test rows is the accuracy of the noiseless policy against the noisy
labels (about 1 - noise); "Bayes macro-F1" likewise. For each specialist and size (labelled rows), the
first `size` plans in time order are split 70/15/15 by time (one row per plan, so grouping is trivial)
and every setup is fitted on train, calibrated on validation and scored on test:

- `xgboost` (the default), `random_forest`, `gradient_boosting`: `hive_assets.training.train_model`
  (balanced class weights, calibration on validation: isotonic from 1,000 validation rows, else sigmoid);
- `seed`: the system this replaces, random forest of 100 trees, depth 10, no class weights, no calibration.

Time = fit + calibrate + validate (predict and metrics on test), wall clock, in this run. Targets: the
default model within 5 points of Bayes accuracy at 5k rows and 3 at 20k, for every specialist; better
macro-F1 than `seed` at every size; ECE <= 0.05 (debiased, as the gate computes it) after calibration.

    .venv/bin/python benchmarks/bench_learning_curve.py                      # all: 5 specialists x 3 sizes x 4 setups
    .venv/bin/python benchmarks/bench_learning_curve.py --specialists business,technical --model-types xgboost
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
from hive_assets.training import MODEL_TYPES, encode, encode_labels, train_model  # noqa: E402

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


def run(specialists, sizes, model_types, noise, seed, out=print):
    plans = make_plans(max(sizes), seed=seed, now=NOW, days=120)
    features = features_frame(plans)
    rows = []
    for specialist in specialists:
        truth = [policy_label(specialist, p) for p in plans]
        labels = noisy_labels(truth, noise, np.random.default_rng(seed + SPECIALISTS.index(specialist)))
        frame = features.assign(label=labels, truth=truth)
        for size in sizes:
            data = frame.iloc[:size]
            a, b = int(0.70 * size), int(0.85 * size)
            train, validation, test = data.iloc[:a], data.iloc[a:b], data.iloc[b:]
            y = encode_labels(test["label"])
            bayes_acc = float((test["truth"] == test["label"]).mean())
            bayes_f1 = float(f1_score(y, encode_labels(test["truth"]), average="macro"))
            for setup in [*model_types, "seed"]:
                start = time.perf_counter()
                if setup == "seed":
                    proba, method = seed_setup(train, validation, test), "none"
                else:
                    model, info = train_model(specialist, train, validation, model_type=setup)
                    proba, method = model.predict_proba(test), info["calibration_method"]
                pm, cal = point_metrics(y, proba), calibration_metrics(y, proba)
                seconds = time.perf_counter() - start
                row = {"specialist": specialist, "rows": size, "setup": setup, "calibration": method,
                       "accuracy": pm["accuracy"], "bayes_accuracy": bayes_acc, "gap_points": 100 * (bayes_acc - pm["accuracy"]),
                       "macro_f1": pm["macro_f1"], "bayes_macro_f1": bayes_f1, "ece": cal["ece"],
                       "ece_debiased": cal["ece_debiased"], "seconds": seconds}
                rows.append(row)
                out(f"| {specialist} | {size} | {setup} | {method} | {row['accuracy']:.3f} | {bayes_acc:.3f} | "
                    f"{row['gap_points']:+.1f} | {row['macro_f1']:.3f} | {bayes_f1:.3f} | {row['ece']:.3f} | "
                    f"{row['ece_debiased']:.3f} | {seconds:.1f} |")
    return rows


def verdicts(rows, default="xgboost"):
    """The issue's targets, one line each."""
    lines = []
    for r in rows:
        if r["setup"] != default:
            continue
        target = {5000: 5.0, 20000: 3.0}.get(r["rows"])
        seed = next(s for s in rows if s["setup"] == "seed" and s["specialist"] == r["specialist"] and s["rows"] == r["rows"])
        checks = [f"macro-F1 {r['macro_f1'] - seed['macro_f1']:+.3f} vs seed ({'met' if r['macro_f1'] > seed['macro_f1'] else 'MISSED'})",
                  f"ECE {r['ece_debiased']:.3f} ({'met' if r['ece_debiased'] <= 0.05 else 'MISSED'})"]
        if target is not None:
            checks.insert(0, f"gap {r['gap_points']:.1f} pts <= {target:.0f} ({'met' if r['gap_points'] <= target else 'MISSED'})")
        lines.append(f"- {r['specialist']} {r['rows']}: " + "; ".join(checks))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specialists", default=",".join(SPECIALISTS))
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--model-types", default=",".join(MODEL_TYPES))
    parser.add_argument("--noise", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"# learning curve: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, noise {args.noise}")
    print("| specialist | rows | setup | calibration | accuracy | Bayes acc. | gap (pts) | macro-F1 | Bayes macro-F1 "
          "| ECE | ECE debiased | fit+cal+val s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    rows = run(args.specialists.split(","), [int(s) for s in args.sizes.split(",")], args.model_types.split(","),
               args.noise, args.seed, out=lambda line: print(line, flush=True))
    print("\ntargets (default model):")
    print("\n".join(verdicts(rows, args.model_types.split(",")[0])))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

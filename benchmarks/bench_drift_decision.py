"""Drift-decision benchmark (issue 24): how often one check (`feature_drift` + `drift_decision`, the
defaults) decides "drift", by simulation with fixed seeds, at windows of 200, 500 and 1,000 rows.

    .venv/bin/python benchmarks/bench_drift_decision.py              # 400 windows per cell
    .venv/bin/python benchmarks/bench_drift_decision.py --windows 50 # a quick look

Data: the reference is built from the feature frame of `--reference-plans` simulated plans (seed 11)
and the predictions of a fixed scorer on them; each window is `n` rows drawn without replacement from
the feature frame of 8,000 other plans (seed 99), then changed by the cell's scenario. The shifted
windows are made independently of the code under test (`hive_assets_tests/monitoring/drift_windows.py`,
which the tests use too):

* `shift c SD`: the three features risk_score, complexity_score and avg_duration_ms move by c standard
  deviations on the normal-score scale: x -> F^-1(Phi(Phi^-1(F(x)) + c)), F the pool's own distribution
  of that feature. Every continuous feature then gets the same population PSI against its deciles
  (0.060 at c = 0.25, 0.238 at c = 0.5 for a normal feature; measured per feature below), whatever its
  shape: the hardest version of "a c-SD shift" for detection (an additive shift of a skewed feature
  gives a larger PSI).
* `new domain`: 20 % of the window's plans get the domain PAYMENTS, never seen in training.
* `class mix c`: the features are untouched and the predictions are drawn with the reference's class
  shares moved by c SD of a latent score (shares Phi(a - c), Phi(b - c) - Phi(a - c), 1 - Phi(b - c), a and
  b the reference's cut points): c = 0.25 is a harmless tilt, c = 0.5 a material one (approve 40 % -> 23 %).

Predictions: the fixed scorer 3 risk_score - 1.6 priority_score + 0.6 complexity_score (the simulator's
business policy, on the features) cut at the reference's 40 % and 72 % quantiles into approve /
review_required / reject; in the feature cells the predictions are the scorer's on the (shifted) window,
so a feature shift moves the class mix as a model would.
Population PSI: the PSI of the whole shifted pool (8,000 rows) against the reference. The column "rule
before issue 24" applies, to the same windows, the rule this one replaced (measured PSI > threshold and
beyond noise, class mix not in the decision); "s / check" is feature_drift (no KS) + drift_decision.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = (200, 500, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=400, help="windows per cell")
    parser.add_argument("--reference-plans", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from hive_assets.features import features_frame
    from hive_assets.monitoring._drift import (
        DEFAULT_ALPHA, DEFAULT_PREDICTION_THRESHOLD, DEFAULT_THRESHOLD, build_reference, drift_decision, feature_drift,
        psi_null_pvalue,
    )
    from hive_assets.simulator import make_plans
    from hive_assets_tests.monitoring.drift_windows import (
        SHIFTED, class_cuts, class_mix_scenario, classes, feature_scenario,
    )

    started = time.perf_counter()
    print(f"# bench_drift_decision: python {platform.python_version()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.windows} windows "
          f"per cell; threshold {DEFAULT_THRESHOLD}, prediction threshold {DEFAULT_PREDICTION_THRESHOLD}, "
          f"alpha {DEFAULT_ALPHA}")
    training = features_frame(make_plans(args.reference_plans, seed=11))
    pool = features_frame(make_plans(8000, seed=99))
    cuts = class_cuts(training)
    reference = build_reference(training, classes(training, cuts))

    def population(frame, predictions=None):
        result = feature_drift(reference, frame, predictions, ks=False)
        return result, {name: result["features"][name]["psi"] for name in (*SHIFTED, "domain")}

    # (label, window maker(rows, rng) -> (features, predictions))
    def feature_cell(c, domain=False):
        return feature_scenario(c, pool, cuts, domain)

    cells = [("null", feature_cell(0.0)), ("shift 0.25 SD x3", feature_cell(0.25)),
             ("shift 0.5 SD x3", feature_cell(0.5)), ("new domain 20 %", feature_cell(0.0, domain=True)),
             ("0.5 SD x3 + new domain", feature_cell(0.5, domain=True)),
             ("class mix 0.25", class_mix_scenario(0.25)), ("class mix 0.5", class_mix_scenario(0.5))]

    print("\npopulation PSI of each scenario (whole pool vs reference):")
    for label, make in cells:
        frame, predictions = make(pool, np.random.default_rng(0))
        result, by_feature = population(frame, predictions)
        shown = ", ".join(f"{k} {v:.3f}" for k, v in by_feature.items())
        print(f"  {label:24s} {shown}, class mix {result['prediction']['psi']:.3f}")

    def rule_before_issue_24(result, n) -> bool:
        """The rule this replaces, for comparison: some feature's measured PSI > threshold and beyond noise
        at alpha / F (features only); the class mix not in the decision."""
        level = DEFAULT_ALPHA / len(result["features"])
        return any(f["psi"] > DEFAULT_THRESHOLD and psi_null_pvalue(
            f["psi"], f["reference_proportions"], n, f["n_reference"], n_simulations=int(np.ceil(2 / level)),
            seed=i, stop_above=level)[0] < level for i, f in enumerate(result["features"].values()))

    print(f"\n| window rows | scenario | drift | via features | via class mix | measured PSI > {DEFAULT_THRESHOLD} | "
          f"rule before issue 24 | s / check |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in SIZES:
        for index, (label, make) in enumerate(cells):
            rng = np.random.default_rng([args.seed, n, index])
            drift = via_features = via_mix = raw = before = 0
            spent = 0.0
            for _ in range(args.windows):
                rows = pool.iloc[rng.choice(len(pool), size=n, replace=False)].reset_index(drop=True)
                frame, predictions = make(rows, rng)
                t1 = time.perf_counter()
                result = feature_drift(reference, frame, predictions, ks=False)
                decision = drift_decision(result, min_rows=n)
                spent += time.perf_counter() - t1
                before += rule_before_issue_24(result, n)
                drift += decision["decision"] == "drift"
                via_features += bool(decision["drifted_features"])
                via_mix += decision["prediction_drifted"]
                raw += decision["drift_score"] > DEFAULT_THRESHOLD
            w = args.windows
            print(f"| {n} | {label} | {drift / w:.1%} ({drift}/{w}) | {via_features / w:.1%} | {via_mix / w:.1%} | "
                  f"{raw / w:.1%} | {before / w:.1%} | {spent / w:.3f} |", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

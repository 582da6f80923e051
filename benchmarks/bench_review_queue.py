"""The review queue at a fixed labelling budget, and whether the decisions stay unbiased (issue 25).

Part 1, learning: for each specialist, simulator plans (`make_plans`) labelled by the hidden policy with
10% label noise (`policy_label`, the simulator's reviewers). Day 0: 300 labels drawn at random. Each of
`days` days, `pool` new unlabelled opinions arrive; `budget` of them get a human label, chosen
- `random`: uniformly at random from the day's pool, or
- `queue`: `hive_assets.review.choose_queue` (its 20% random share, then margin uncertainty of the current
  model with diversity), as the `review_queue` asset chooses;
then the model (the platform's default xgboost with balanced class weights, `fit_estimator`) is refitted
on every label so far and scored on a fixed test set of `test` plans with noisy labels. "Bayes" is the
noiseless policy's accuracy on the same noisy labels. Goal: the queue reaches the random strategy's day-30
accuracy in half the days or fewer, for >= 4 of 5 specialists.

Part 2, decisions: validation accuracy on the queue's random share against a fully random test set
(`validation_agreement`), and `--aa` seeded A/A tests with the queue on (`hive_assets.review.aa_false_promotions`:
unit-level tests under the platform's controller, `rollout.tally` + `rollout.decide`, the A/B tally keeping
only random and organic labels), false promotion <= 5%.

    .venv/bin/python benchmarks/bench_review_queue.py                 # all five specialists, 30 days, A/A 200
    .venv/bin/python benchmarks/bench_review_queue.py --specialists business --days 10 --aa 0
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

from hive_assets.config import CLASSES, SPECIALISTS  # noqa: E402
from hive_assets.features import features_frame  # noqa: E402
from hive_assets.review import AAScenario, aa_false_promotions, choose_queue, priority, standardised  # noqa: E402
from hive_assets.rollout._simulation import rate  # noqa: E402
from hive_assets.simulator import make_plans, policy_label  # noqa: E402
from hive_assets.training import encode, encode_labels, fit_estimator  # noqa: E402

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def noisy(truth: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """As the simulator's reviewers: with probability `noise`, one of the two other classes."""
    flip = rng.random(truth.size) < noise
    shift = rng.integers(1, len(CLASSES), size=truth.size)
    return np.where(flip, (truth + shift) % len(CLASSES), truth)


def learning(specialist: str, X: np.ndarray, truth: np.ndarray, labels: np.ndarray, n_initial: int, days: int,
             pool: int, budget: int, n_test: int, seed: int, out=print) -> dict[str, list[float]]:
    """Accuracy on the test rows after each day, per strategy (index 0: the initial 300 labels)."""
    test = slice(0, n_test)
    initial = np.arange(n_test, n_test + n_initial)
    points = standardised(X)
    curves: dict[str, list[float]] = {}
    marks: dict[int, tuple[str, int]] = {}  # the queue's labels: (active / random / initial, day requested)
    for strategy in ("random", "queue"):
        rng = np.random.default_rng([seed, SPECIALISTS.index(specialist), 11])
        labelled = list(initial)
        marks.update(dict.fromkeys((int(i) for i in initial), ("initial", -1)))
        accuracy = []
        for day in range(days + 1):
            model = fit_estimator("xgboost", {}, X[labelled], labels[labelled], random_state=0)
            accuracy.append(float((model.predict(X[test]) == labels[test]).mean()))
            if day == days:
                break
            start = n_test + n_initial + day * pool
            candidates = np.arange(start, start + pool)
            if strategy == "random":
                chosen = rng.choice(candidates, size=budget, replace=False)
            else:
                score, reasons = priority(model.predict_proba(X[candidates]))
                choice = choose_queue(score, points[candidates], budget, 0.2, rng, reasons)
                chosen = candidates[choice.index]
                marks.update({int(i): (m, day) for i, m in zip(chosen, choice.selection)})
            labelled.extend(int(i) for i in chosen)
        curves[strategy] = accuracy
        out(f"  {specialist} {strategy}: " + " ".join(f"{a:.3f}" for a in accuracy))
    curves["marks"] = marks  # type: ignore[assignment]
    return curves


def accuracy_interval(correct: np.ndarray) -> tuple[float, float, float]:
    """Accuracy with its exact (Clopper-Pearson) 95% interval (`rate`, the A/B benchmark's)."""
    r = rate(correct)
    return r.value, r.low, r.high


def validation_agreement(X: np.ndarray, labels: np.ndarray, n_test: int, marks: dict[int, tuple[str, int]],
                         days: int, held_days: int = 5) -> dict[str, tuple]:
    """After the queue's `days`: a model trained on the initial labels and the active picks of all but the
    last `held_days` days, scored on (a) the queue's whole random share (held out of training, as the
    platform's decision_split keeps it), (b) the fully random test set, and for contrast (c) the held-out
    active picks of the last days (chosen for the model's uncertainty: biased low)."""
    train = [i for i, (m, d) in marks.items() if m == "initial" or (m == "active" and d < days - held_days)]
    model = fit_estimator("xgboost", {}, X[train], labels[train], random_state=0)
    sets = {"random share (20% of the queue)": [i for i, (m, _) in marks.items() if m == "random"],
            "fully random test set": list(range(n_test)),
            f"active picks of the last {held_days} days (contrast)": [i for i, (m, d) in marks.items()
                                                                      if m == "active" and d >= days - held_days]}
    return {name: (len(rows), *accuracy_interval(model.predict(X[rows]) == labels[rows])) for name, rows in sets.items()}


def days_to_reach(curve: list[float], target: float) -> int | None:
    return next((d for d, a in enumerate(curve) if a >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specialists", default=",".join(SPECIALISTS))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--initial", type=int, default=300)
    parser.add_argument("--test", type=int, default=5000)
    parser.add_argument("--noise", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--aa", type=int, default=200)
    args = parser.parse_args()
    print(f"# review queue: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, noise {args.noise}, "
          f"seed {args.seed}")
    start = time.perf_counter()
    n = args.test + args.initial + args.days * args.pool
    plans = make_plans(n, seed=args.seed, now=NOW, days=120)
    features = features_frame(plans)
    X = encode(features)
    rows, agreement = [], {}
    for specialist in args.specialists.split(","):
        truth = encode_labels([policy_label(specialist, p) for p in plans])
        labels = noisy(truth, args.noise, np.random.default_rng([args.seed, SPECIALISTS.index(specialist)]))
        bayes = float((truth[: args.test] == labels[: args.test]).mean())
        curves = learning(specialist, X, truth, labels, args.initial, args.days, args.pool, args.budget, args.test,
                          args.seed, out=lambda line: print(line, flush=True))
        target = curves["random"][-1]
        reached = days_to_reach(curves["queue"], target)
        rows.append((specialist, bayes, curves, target, reached))
        agreement[specialist] = validation_agreement(X, labels, args.test, curves["marks"], args.days)
    print(f"\n| specialist | Bayes acc. | start (day 0) | random day {args.days} | queue day {args.days} "
          f"| queue day {args.days // 2} | queue reaches random's day-{args.days} accuracy on day | goal (<= day {args.days // 2}) |")
    print("|---|---|---|---|---|---|---|---|")
    met = 0
    for specialist, bayes, curves, target, reached in rows:
        ok = reached is not None and reached <= args.days // 2
        met += ok
        print(f"| {specialist} | {bayes:.3f} | {curves['random'][0]:.3f} | {target:.3f} | {curves['queue'][-1]:.3f} "
              f"| {curves['queue'][args.days // 2]:.3f} | {reached if reached is not None else 'never'} "
              f"| {'met' if ok else 'MISSED'} |")
    print(f"\ngoal met for {met} of {len(rows)} specialists (needs 4 of 5); learning part {time.perf_counter() - start:.0f} s")

    print(f"\nvalidation on the random share vs a fully random test set (day {args.days}; accuracy, exact 95% CI):\n")
    print("| specialist | labels scored on | n | accuracy | 95% CI | intervals overlap the test set's | "
          "difference to the test set (z) |")
    print("|---|---|---|---|---|---|---|")
    for specialist, sets in agreement.items():
        ref_n, ref, ref_low, ref_high = sets["fully random test set"]
        for name, (n_rows, acc, low, high) in sets.items():
            if name == "fully random test set":
                overlap, z = "-", "-"
            else:
                overlap = "yes" if low <= ref_high and ref_low <= high else "NO"
                se = np.sqrt(acc * (1 - acc) / n_rows + ref * (1 - ref) / ref_n)
                z = f"{acc - ref:+.3f} ({(acc - ref) / se:+.1f})"
            print(f"| {specialist} | {name} | {n_rows} | {acc:.3f} | {low:.3f}-{high:.3f} | {overlap} | {z} |")

    if args.aa:
        start = time.perf_counter()
        print(f"\nA/A tests with the queue on ({args.aa} seeded tests each; budget {args.budget}/day, 20% random):\n")
        print("| A/B tally counts | promoted | false promotion rate | 95% CI | end states |")
        print("|---|---|---|---|---|")
        for name, scenario in (("random share + organic labels (the platform)", AAScenario(budget=args.budget)),
                               ("every label, active picks too (contrast)", AAScenario(budget=args.budget,
                                                                                       filter_active=False))):
            result = aa_false_promotions(args.aa, seed=args.seed * 1000, scenario=scenario)
            promoted = rate(np.arange(result.tests) < result.promoted)
            print(f"| {name} | {result.promoted}/{result.tests} | {result.rate:.1%} | {promoted.low:.1%}-{promoted.high:.1%} "
                  f"| {result.actions} |")
        print(f"\nA/A part {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

"""The review queue at a fixed labelling budget, and whether the decisions stay unbiased (issue 25).

Part 1, learning: for each specialist, simulator plans (`make_plans`) labelled by the hidden policy with
10% label noise (`policy_label`, the simulator's reviewers). Day 0: 300 labels drawn at random. Each of
`days` days, `pool` new opinions arrive; a day's pool is, as in production (`candidate_days` 2), every
opinion of that day and the day before still unlabelled or already requested (there are no organic labels
here); `budget` labels are asked a day, chosen
- `random`: uniformly at random among the pool's unlabelled opinions, or
- `queue`: `hive_assets.review.choose_refresh` on arrays, as `refresh_queue` runs it once a day: the day's
  random quota (`random_quota`, 20% of the budget) takes the pool's opinions not random yet with the
  smallest permanent random numbers (an active request drawn becomes random, costing no budget), the rest
  of the budget goes by margin uncertainty of the current model with diversity (yesterday's requests
  counting as chosen); requests are answered at once;
then the model (the platform's default xgboost with balanced class weights, `fit_estimator`) is refitted
on every label so far and scored on a fixed test set of `test` plans with noisy labels. "Bayes" is the
noiseless policy's accuracy on the same noisy labels. Goal: the queue reaches the random strategy's day-30
accuracy in half the days or fewer, for >= 4 of 5 specialists.

Part 2, decisions: validation accuracy on the queue's random share as the product makes it (actives made
random included) against a fully random test set (`validation_agreement`); the share of hard opinions
(the day-0 model's margin uncertainty above its median) in the random share against every opinion that
arrived (`hard_share`: the bias the permanent random numbers remove); and `--aa` seeded A/A tests with the
queue on (`hive_assets.review.aa_false_promotions`: unit-level tests under the platform's controller,
`rollout.tally` + `rollout.decide`, the queue chosen by `choose_refresh` over overlapping 48 h pools, the
A/B tally keeping only random and organic labels), false promotion <= 5%.

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
from hive_assets.review import (  # noqa: E402
    RANDOM, AAScenario, DaySoFar, aa_false_promotions, choose_refresh, margin_uncertainty, permanent_random_numbers,
    priority, random_quota, standardised,
)
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
    """Accuracy on the test rows after each day, per strategy (index 0: the initial 300 labels).

    Day d's pool: the opinions that arrived on days d - 1 and d (`candidate_days` 2), unlabelled or already
    requested (no organic labels here). `random`: `budget` uniformly among the pool's unlabelled ones;
    `queue`: `choose_refresh` as `refresh_queue` runs it once a day, its result applied (new requests
    answered at once, active requests drawn made random). The queue's marks: row -> (initial / active /
    random, day requested); an active request made random later is marked random."""
    test = slice(0, n_test)
    initial = np.arange(n_test, n_test + n_initial)
    first_arrival = n_test + n_initial
    # each opinion's permanent random number, as the store's refresh hashes its id (the same every day)
    permanent_u = permanent_random_numbers(seed, specialist, (str(i) for i in range(len(X))))
    curves: dict[str, list[float]] = {}
    marks: dict[int, tuple[str, int]] = {}
    for strategy in ("random", "queue"):
        rng = np.random.default_rng([seed, SPECIALISTS.index(specialist), 11])
        is_labelled = np.zeros(len(X), dtype=bool)
        is_labelled[initial] = True
        marks.update(dict.fromkeys((int(i) for i in initial), ("initial", -1)))
        accuracy, made_random = [], 0
        for day in range(days + 1):
            model = fit_estimator("xgboost", {}, X[is_labelled], labels[is_labelled], random_state=0)
            accuracy.append(float((model.predict(X[test]) == labels[test]).mean()))
            if day == days:
                break
            candidates = np.arange(first_arrival + max(day - 1, 0) * pool, first_arrival + (day + 1) * pool)
            if strategy == "random":
                unlabelled = candidates[~is_labelled[candidates]]
                is_labelled[rng.choice(unlabelled, size=min(budget, unlabelled.size), replace=False)] = True
                continue
            # every opinion of the pool is unlabelled or requested: the product's pool is all of it
            requested = [marks[int(i)][0] if int(i) in marks else None for i in candidates]
            score, reasons = priority(model.predict_proba(X[candidates]))
            quota = random_quota(0.2, budget, np.random.default_rng([seed, sum(map(ord, specialist)), day]))
            # standardised over the pool, as `refresh_queue` does its pool's features
            choice = choose_refresh(score, standardised(X[candidates]), permanent_u[candidates], requested, budget,
                                    quota, DaySoFar(), reasons)
            asked = candidates[choice.requests.index]
            marks.update({int(i): (m, day) for i, m in zip(asked, choice.requests.selection)})
            marks.update({int(i): (RANDOM, marks[int(i)][1]) for i in candidates[choice.made_random]})
            made_random += choice.made_random.size
            is_labelled[asked] = True
        curves[strategy] = accuracy
        out(f"  {specialist} {strategy}: " + " ".join(f"{a:.3f}" for a in accuracy)
            + (f"  (random share: {sum(m == RANDOM for m, _ in marks.values())}, of which {made_random} "
               f"active requests made random)" if strategy == "queue" else ""))
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
    return {name: (len(rows), *accuracy_interval(model.predict(X[rows]) == labels[rows]))
            for name, rows in sets.items()}


def hard_share(X: np.ndarray, labels: np.ndarray, marks: dict[int, tuple[str, int]],
               arrivals: np.ndarray) -> dict[str, tuple]:
    """What the random share's fix is about: is the random share as hard as the opinions it is drawn from?
    "Hard": the margin uncertainty of the day-0 model (the initial random labels only, so the queue's
    choices do not define it) above its median over every opinion that arrived. Per set: (n, share hard,
    exact 95 % interval); the active picks for contrast (chosen for uncertainty: far above)."""
    initial = [i for i, (m, _) in marks.items() if m == "initial"]
    model = fit_estimator("xgboost", {}, X[initial], labels[initial], random_state=0)
    uncertainty = margin_uncertainty(model.predict_proba(X[arrivals]))
    hard = np.zeros(len(X), dtype=bool)
    hard[arrivals] = uncertainty > np.median(uncertainty)
    sets = {"every opinion that arrived (population)": arrivals,
            "random share (as the queue made it)": [i for i, (m, _) in marks.items() if m == RANDOM],
            "active picks (contrast)": [i for i, (m, _) in marks.items() if m == "active"]}
    shares = {name: rate(hard[rows]) for name, rows in sets.items()}
    return {name: (len(sets[name]), r.value, r.low, r.high) for name, r in shares.items()}


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
    rows, agreement, hardness = [], {}, {}
    arrivals = np.arange(args.test + args.initial, n)
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
        hardness[specialist] = hard_share(X, labels, curves["marks"], arrivals)
    print(f"\n| specialist | Bayes acc. | start (day 0) | random day {args.days} | queue day {args.days} "
          f"| queue day {args.days // 2} | queue reaches random's day-{args.days} accuracy on day "
          f"| goal (<= day {args.days // 2}) |")
    print("|---|---|---|---|---|---|---|---|")
    met = 0
    for specialist, bayes, curves, target, reached in rows:
        ok = reached is not None and reached <= args.days // 2
        met += ok
        print(f"| {specialist} | {bayes:.3f} | {curves['random'][0]:.3f} | {target:.3f} | {curves['queue'][-1]:.3f} "
              f"| {curves['queue'][args.days // 2]:.3f} | {reached if reached is not None else 'never'} "
              f"| {'met' if ok else 'MISSED'} |")
    print(f"\ngoal met for {met} of {len(rows)} specialists (needs 4 of 5); "
          f"learning part {time.perf_counter() - start:.0f} s")

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

    print("\nshare of hard opinions (day-0 model's margin uncertainty above its median over every arrival; "
          "exact 95% CI):\n")
    print("| specialist | opinions | n | share hard | 95% CI | difference to the population (z) |")
    print("|---|---|---|---|---|---|")
    for specialist, sets in hardness.items():
        pop_n, pop, _, _ = sets["every opinion that arrived (population)"]
        for name, (n_rows, share, low, high) in sets.items():
            # the random share is part of the population: a one-sample z against the population's share
            z = "-" if n_rows == pop_n else \
                f"{share - pop:+.3f} ({(share - pop) / np.sqrt(pop * (1 - pop) / max(n_rows, 1)):+.1f})"
            print(f"| {specialist} | {name} | {n_rows} | {share:.3f} | {low:.3f}-{high:.3f} | {z} |")

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
            print(f"| {name} | {result.promoted}/{result.tests} | {result.rate:.1%} "
                  f"| {promoted.low:.1%}-{promoted.high:.1%} "
                  f"| {result.actions} |")
        print(f"\nA/A part {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

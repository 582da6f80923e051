"""A/B rollout controller: error rates by simulation (issue 12), at larger counts than the tests.

    .venv/bin/python benchmarks/bench_ab.py                 # 1,000 simulated tests per scenario
    .venv/bin/python benchmarks/bench_ab.py --tests 200

Every scenario runs whole tests under the real controller (`hive_assets.rollout._controller.decide`,
hourly looks) with `hive_assets.rollout._simulation.simulate`; rates come with exact binomial 95 %
intervals. Seeds are fixed, so a re-run prints the same numbers. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from hive_assets.rollout._controller import RolloutPolicy  # noqa: E402
from hive_assets.rollout._simulation import Scenario, fast_feedback_policy, rate, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=1000)
    args = parser.parse_args()
    n = args.tests
    fast = fast_feedback_policy()
    delayed = Scenario(challenger_delay_hours=(1.0, 8.0))
    rows = []

    def run(name, scenario, policy, seed, measure, target):
        started = time.perf_counter()
        result = simulate(scenario, n, seed, policy)
        rows.append((name, measure(result), target, time.perf_counter() - started, result))
        print(f"{name}: {rows[-1][1]} ({rows[-1][3]:.0f} s)", file=sys.stderr, flush=True)
        return result

    aa = run("A/A: promoted", Scenario(), fast, 1, lambda r: rate(r.promoted()), "<= 5 %")
    rows.append(("A/A: rolled back (any rule)", rate(aa.rolled_back()), "(false rollbacks)", 0.0, aa))
    rows.append(("A/A: SRM false alarm", rate(aa.rule == "srm"), "(<= 0.1 % bound)", 0.0, aa))
    power = run("+5 points: promoted with <= 3,000 labels per arm", Scenario(challenger_agreement=0.85),
                fast, 2, lambda r: rate(r.promoted() & (r.labelled.max(axis=1) <= 3000)), ">= 80 %")
    rows.append(("+5 points: promoted (any sample size)", rate(power.promoted()), "", 0.0, power))
    run("+5 points, 48 h maturity (the default policy): promoted", Scenario(challenger_agreement=0.85),
        RolloutPolicy(), 6, lambda r: rate(r.promoted()), "(time it takes)")
    run("-5 points: rolled back before 50 %", Scenario(challenger_agreement=0.75), fast, 3,
        lambda r: rate(r.rolled_back() & (r.max_traffic < 50)), ">= 95 %")
    run("routing 20 % for 10 %: SRM rollback at 10 %", Scenario(routing_factor=2.0), fast, 4,
        lambda r: rate((r.rule == "srm") & (r.max_traffic == 10)), "caught")
    run("A/A, challenger corrections 8 h late, 48 h maturity: promoted", delayed, RolloutPolicy(), 5,
        lambda r: rate(r.promoted()), "<= 5 %")
    run("same, labels counted as they arrive (no maturity rule): promoted",
        replace(delayed, count_unmatured_labels=True), RolloutPolicy(), 5,
        lambda r: rate(r.promoted()), "contrast")

    print(f"\n{n} simulated tests per row; {platform.python_version()} on {platform.machine()}, "
          f"{date.today().isoformat()}\n")
    print("| scenario | rate (95 % CI) | target | median hours to verdict | median labels champion / challenger | s |")
    print("|---|---|---|---:|---:|---:|")
    for name, r, target, seconds, result in rows:
        med = np.median(result.labelled, axis=0)
        print(f"| {name} | {r.value:.1%} ({r.low:.1%}–{r.high:.1%}) | {target} | "
              f"{np.median(result.hours):.0f} | {med[0]:,.0f} / {med[1]:,.0f} | "
              f"{seconds:.0f} |" if seconds else
              f"| {name} | {r.value:.1%} ({r.low:.1%}–{r.high:.1%}) | {target} | | | |")


if __name__ == "__main__":
    main()

"""A/B rollout controller: error rates by simulation (issues 12 and 24), at larger counts than the tests.

    .venv/bin/python benchmarks/bench_ab.py                       # 200 simulated tests per row
    .venv/bin/python benchmarks/bench_ab.py --tests 400
    .venv/bin/python benchmarks/bench_ab.py --reference REF   # + the same rows under REF's controller
                                                              # (REF: a checkout of main before issue 24)
    .venv/bin/python benchmarks/bench_ab.py --reference REF --reference-join window --only ...
        # REF after issue 24 (labels frozen at the window, as here): every selected row, same counts and
        # seeds on both sides, and per test whose outcome differs, how (the futile stop: soak test)

Every row runs whole tests, unit by unit, with `hive_assets.rollout._simulation.simulate`: a generator of
served units and delayed (log-normal) labels, which hands each look's rows to the public `tally` and
the counts to `decide` (hourly looks, 14-day maximum). `--reference SRC` runs the reference rows in a
subprocess with SRC first on PYTHONPATH, so the SAME generator file drives that checkout's controller
(with that checkout's join: each unit's latest label as of the look). Rates with exact binomial 95 %
intervals; fixed seeds, so a re-run prints the same numbers. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "hive_assets" / "rollout" / "_simulation.py"


def load_generator():
    """The generator module by path: under --reference, `hive_assets` is the reference checkout's."""
    spec = importlib.util.spec_from_file_location("ab_generator", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ab_generator"] = module
    spec.loader.exec_module(module)
    return module


def rows(g, reference: bool, old_join: bool = True):
    """(name, scenario, policy overrides, seed, measure, target) per row; measure: result -> flags.
    `reference` with `old_join`: the reference before issue 24 (its join, its four comparable rows);
    without `old_join` a reference runs every row as this branch does."""
    from hive_assets.rollout._controller import RolloutPolicy

    policy = RolloutPolicy()
    world = g.Scenario()
    old = reference and old_join
    late = g.late_errors_scenario(labels_as_of_now=old)
    corrected = replace(world, correction_share=0.2, labels_as_of_now=old)
    within_week = lambda r: r.promoted() & (r.hours <= 7 * 24)
    before_half = lambda r: r.rolled_back() & (r.max_traffic < 50)
    out = [
        ("A/A, late challenger errors (audit case): promoted", late, policy, 11,
         lambda r: r.promoted(), "<= 5 %"),
        ("A/A, 20 % of labels corrected (Exp. 24 h after the first): counts shrank between looks", corrected,
         policy, 10, lambda r: r.counts_shrank, "0"),
        ("-5 points, 20 units/h: rolled back before 50 %", replace(world, challenger_agreement=0.75,
                                                                   units_per_hour=20, labels_as_of_now=old),
         policy, 12, before_half, ">= 95 %"),
        ("+5 points, 40 units/h: promoted within 7 days", replace(world, challenger_agreement=0.85,
                                                                 labels_as_of_now=old),
         policy, 13, within_week, ">= 80 %"),
    ]
    # the soak test's volume (about 150 opinions an hour per specialist): challengers between the champion
    # and the +2 points a promotion needs, the one exactly there, and one above it
    soak = replace(world, units_per_hour=150)
    futile = [
        ("A/A, 150 units/h: promoted", soak, policy, 20, lambda r: r.promoted(), "<= 5 %"),
        ("+1 point, 150 units/h: promoted", replace(soak, challenger_agreement=0.81), policy, 22,
         lambda r: r.promoted(), "(information)"),
        ("+1 point, 40 units/h: promoted", replace(world, challenger_agreement=0.81), policy, 23,
         lambda r: r.promoted(), "(information)"),
        ("+2 points (the gain promotion needs), 150 units/h: ended futile",
         replace(soak, challenger_agreement=0.82), policy, 24, lambda r: r.rule == "futile", "<= 10 % (alpha)"),
        ("+3 points, 150 units/h: promoted", replace(soak, challenger_agreement=0.83), policy, 25,
         lambda r: r.promoted(), "(information)"),
    ]
    if old:
        return out
    return out + [

        ("same, label-coverage guard off", late, replace(policy, balance_p_value=0.0), 11,
         lambda r: r.promoted(), "contrast"),
        # (audit, stop 51) labels lost beyond the window with the delays inside it unchanged: the guard's
        # per-look tests do not stop it (BENCHMARKS.md "A/B controller", open)
        ("A/A, 14 % of the challenger's errors labelled 72-120 h after serving, 150 units/h: promoted",
         replace(soak, challenger_late_error_share=0.14), policy, 26, lambda r: r.promoted(), "<= 5 % (not met)"),
        ("A/A, equal delays: promoted", world, policy, 14, lambda r: r.promoted(), "<= 5 %"),
        ("-5 points, 40 units/h: rolled back before 50 %", replace(world, challenger_agreement=0.75), policy, 15,
         before_half, ">= 95 %"),
        ("+5 points, 20 units/h: promoted within 14 days", replace(world, challenger_agreement=0.85,
                                                                  units_per_hour=20), policy, 16,
         lambda r: r.promoted(), "(information)"),
        ("challenger confidence 0.6, 2 % NaN: rolled back for low confidence",
         replace(world, challenger_confidence=0.6, challenger_nan_confidence_share=0.02), policy, 17,
         lambda r: r.rule == "low_confidence", "100 %"),
        ("challenger confidence 0.9, 30 % NaN: rolled back for invalid confidences",
         replace(world, challenger_confidence=0.9, challenger_nan_confidence_share=0.3), policy, 18,
         lambda r: r.rule == "invalid_confidence", "100 %"),
        ("routing 20 % for 10 %: SRM rollback at 10 %", replace(world, routing_factor=2.0), policy, 19,
         lambda r: (r.rule == "srm") & (r.max_traffic == 10), "caught"),
    ] + futile + [
        # (audit, stop 51) promotion needs 1,000 frozen labels per arm: below about 12 units/h the challenger's
        # arm does not reach them within the 14 days, whatever its gain
        (f"+5 points, {volume} units/h: promoted within 14 days", replace(world, challenger_agreement=0.85,
                                                                         units_per_hour=volume), policy, seed,
         lambda r: r.promoted(), "(information)") for volume, seed in ((10, 27), (12, 28), (15, 29))]


def measure(n: int, n_contrast: int, reference: bool, only: list[str] | None = None,
            old_join: bool = True) -> list[dict]:
    """Rows with a target run `n` tests; contrast and information rows (and an `old_join` reference)
    `n_contrast`."""
    import numpy as np

    g = load_generator()
    out = []
    for name, scenario, policy, seed, flags, target in rows(g, reference, old_join):
        if only and not any(word in name for word in only):
            continue
        started = time.perf_counter()
        few = (reference and old_join) or target in ("contrast", "(information)")
        result = g.simulate(scenario, n_contrast if few else n, seed, policy)
        r = g.rate(flags(result))
        rules = {}
        for action, rule in zip(result.action, result.rule):
            rules[f"{action}:{rule}"] = rules.get(f"{action}:{rule}", 0) + 1
        out.append({"name": name, "rate": r.value, "low": r.low, "high": r.high, "k": r.successes, "n": r.trials,
                    "target": target, "median_hours": float(np.median(result.hours)),
                    "median_labels": [float(x) for x in np.median(result.labelled, axis=0)],
                    "shrank": int(result.counts_shrank.sum()), "outcomes": rules,
                    "tests": [f"{a}:{b}@{h}" for a, b, h in zip(result.action, result.rule, result.hours)],
                    "seconds": time.perf_counter() - started})
        print(f"{'reference' if reference else 'this'}: {name}: {r} ({out[-1]['seconds']:.0f} s)",
              file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--contrast-tests", type=int, default=100, help="tests per contrast / reference row")
    parser.add_argument("--reference", help="a checkout whose controller runs the reference rows")
    parser.add_argument("--only", nargs="*", help="run only the rows whose name contains one of these")
    parser.add_argument("--reference-join", choices=("as-of-now", "window"), default="as-of-now",
                        help="the reference's join: as-of-now (main before issue 24, four rows) or window "
                             "(after it: every row, same counts)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # the reference run: JSON on stdout
        import hive_assets  # a wrong --reference path would silently run this checkout's controller

        if not Path(hive_assets.__file__).resolve().is_relative_to(Path(args.reference).resolve()):
            raise SystemExit(f"--reference {args.reference}: hive_assets was imported from {hive_assets.__file__}")
        print(json.dumps(measure(args.tests, args.contrast_tests, reference=True, only=args.only,
                                 old_join=args.reference_join == "as-of-now")))
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    child = None
    if args.reference:  # runs alongside (a second process)
        env = {**os.environ, "PYTHONPATH": str(Path(args.reference).resolve())}
        only = ["--only", *args.only] if args.only else []
        child = subprocess.Popen([sys.executable, __file__, "--tests", str(args.tests), "--contrast-tests",
                                  str(args.contrast_tests), *only, "--reference", args.reference, "--child",
                                  "--reference-join", args.reference_join],
                                 env=env, stdout=subprocess.PIPE, text=True)
    ours = measure(args.tests, args.contrast_tests, reference=False, only=args.only)
    theirs = []
    if child is not None:
        stdout, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"reference run failed ({child.returncode})")
        theirs = json.loads(stdout)

    print(f"\n{args.tests} simulated tests per row with a target, {args.contrast_tests} per contrast / "
          f"reference row; Python {platform.python_version()} on {platform.machine()}, "
          f"{date.today().isoformat()}, load average {os.getloadavg()[0]:.1f}\n")
    print("| controller | scenario | rate (95 % CI) | target | median hours at the end | median matured labels "
          "champion / challenger | counts shrank (tests) | outcomes | s |")
    print("|---|---|---|---|---:|---:|---:|---|---:|")
    for who, table in (("this branch", ours), (f"reference ({args.reference})", theirs)):
        for row in table:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items(), key=lambda kv: -kv[1]))
            a, b = row["median_labels"]
            print(f"| {who} | {row['name']} | {row['rate']:.1%} ({row['low']:.1%}–{row['high']:.1%}) | "
                  f"{row['target']} | {row['median_hours']:.0f} | {a:,.0f} / {b:,.0f} | {row['shrank']} | "
                  f"{outcomes} | {row['seconds']:.0f} |")
    if theirs and args.reference_join == "window":
        compare(ours, theirs)


def compare(ours: list[dict], theirs: list[dict]) -> None:
    """Test by test (same seeds, so the same draws up to the first look the controllers decide apart):
    which outcomes changed, and the tests' durations under each (reference -> this branch)."""
    import numpy as np

    print("\nPer test (same seeds), outcomes that differ from the reference's, and durations (reference -> "
          "this branch; hours: median / mean / 90th percentile; `changed`: the tests whose outcome differs):")
    for mine, ref in zip(ours, theirs):
        changed, hours_ref, hours_mine, moved = {}, [], [], []
        for a, b in zip(mine["tests"], ref["tests"]):
            (outcome_a, h_a), (outcome_b, h_b) = a.rsplit("@", 1), b.rsplit("@", 1)
            hours_mine.append(float(h_a))
            hours_ref.append(float(h_b))
            if a != b:
                changed[f"{outcome_b} -> {outcome_a}"] = changed.get(f"{outcome_b} -> {outcome_a}", 0) + 1
                moved.append((float(h_b), float(h_a)))
        stats = lambda h: f"{np.median(h):.0f} / {np.mean(h):.0f} / {np.percentile(h, 90):.0f}"
        line = (f"- {mine['name']}: {len(mine['tests'])} tests, hours {stats(hours_ref)} -> {stats(hours_mine)}; "
                f"{sum(changed.values())} changed")
        if moved:
            before, after = zip(*moved)
            line += f" (their median hours {np.median(before):.0f} -> {np.median(after):.0f})"
        print(line + "".join(f"; {k}: {v}" for k, v in sorted(changed.items())))


if __name__ == "__main__":
    main()

"""`hive loop`: D days of production in simulated time, with every trigger, test and rollback.

The scenario's settings (hive_assets.simulator.DEFAULT_SETTINGS) are exported before the code location
loads, unless the variable is already set (yours win). What the runs log (Dagster, MLflow, progress bars)
goes to a log file ($HIVE_HOME/loop.log); a progress line per simulated day goes to stderr; the timeline
per specialist, the champions table (with the pre-platform heuristic on the same test rows) and what to
run next to stdout (or JSON). `--specialist` narrows what is printed, not what is played. Exit 1 when the
ledger disagrees with a registry alias at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from hive_assets.cli import _dagster
from hive_assets.cli._args import (
    UsageError, add_specialist, add_verb, fraction, iso_datetime, non_empty_path, non_negative_int, period_days,
    positive_int, set_check,
)
from hive_assets.config import SPECIALISTS

ENV = ("HIVE_HOME", "DAGSTER_HOME", "MONGODB_URI", "MONGODB_DATABASE", "MLFLOW_TRACKING_URI",
       "RETRAINING_FEEDBACK_THRESHOLD", "DRIFT_CHECK_INTERVAL_MINUTES", "DRIFT_WINDOW_HOURS",
       "AB_TEST_CHECK_INTERVAL_MINUTES", "AB_TEST_LABEL_MATURITY_HOURS")


def specialist_or_none(text: str) -> str | None:
    if text.strip().lower() == "none":
        return None
    if text.strip().lower() not in SPECIALISTS:
        raise argparse.ArgumentTypeError(f"unknown specialist {text!r}; choose from {', '.join(SPECIALISTS)} or none")
    return text.strip().lower()


def add_parsers(sub) -> None:
    p = add_verb(sub, "loop", help="play D days of production in simulated time; the platform retrains, tests, "
                                   "promotes and rolls back as it would in production",
                 description="Starting from the current state (champions registered: run `make demo` or train "
                             "first), play --days of production hour by hour in simulated time: the simulator "
                             "serves each hour with the registered champion and challenger, then the code "
                             "location's sensors are evaluated against the instance and their runs executed, "
                             "as the daemon would. Prints a line per simulated day, then the timeline and who "
                             "is champion now, and why. Same seed, same timeline.",
                 env=ENV)
    p.add_argument("--days", type=period_days, default=6.0, help="simulated days to play")
    p.add_argument("--seed", type=non_negative_int, default=42, help="random seed of the traffic and feedback")
    p.add_argument("--plans-per-hour", type=positive_int, default=150, help="cognitive plans a simulated hour")
    p.add_argument("--label-rate", type=fraction,
                   help="0..1: answered share of every specialist's opinions (default: the scenario's, "
                        "85 %% for business and technical, 20 %% for the others)")
    p.add_argument("--drift-specialist", type=specialist_or_none, default="technical",
                   help="the specialist that starts seeing a new domain at hour 2 of the home's first loop "
                        "('none': no drift)")
    p.add_argument("--push-previous-champion", type=specialist_or_none, default="technical",
                   help="after this specialist's next promotion, an operator pushes its previous champion back as "
                        "challenger with the ab_test_start job ('none': no operator)")
    p.add_argument("--review-queue", type=non_negative_int, default=0, metavar="BUDGET",
                   help="requests a day per specialist: the daily review_queue runs and the simulated reviewers "
                        "answer its requests first, in place of as many organic answers (0: off)")
    p.add_argument("--retrain-days", type=positive_int, nargs="+", default=(), metavar="DAY",
                   help="an operator retrains every specialist (retrain_specialist) at the end of these simulated "
                        "days, e.g. 1 6: retrains at fixed points to compare their cost as the traffic grows")
    p.add_argument("--start", type=iso_datetime,
                   help="ISO-8601 start of the simulated period (default: the home's clock, or where the stored "
                        "history ends if later; opinions stamped more than an hour past the clock are not played to)")
    add_specialist(p, note="whose story is printed; every specialist is played (each needs a champion)")
    p.add_argument("--log-file", type=non_empty_path,
                   help="where the Dagster and MLflow logs of the runs go, in a directory that exists (default: "
                        "$HIVE_HOME/loop.log; appended)")
    p.add_argument("--json", action="store_true", help="print the timeline and champions as JSON (default: text)")
    p.set_defaults(func=cmd_loop)
    set_check(p, check_loop_args)


def check_loop_args(args: argparse.Namespace) -> None:
    """Arguments bad only together (`loop_scenario`) or a --log-file the loop cannot append to: a UsageError,
    said before the home is created."""
    loop_scenario(args)
    if args.log_file is not None:
        check_log_file(args.log_file)


def loop_scenario(args: argparse.Namespace):
    """The scenario the arguments describe; a UsageError for arguments bad only together (a retrain day beyond
    --days, under an hour to play, --start plus --days past the latest instant a clock says)."""
    from hive_assets.config import ConfigError
    from hive_assets.simulator import DriftPlan, default_scenario

    from hive_assets import clock

    try:
        scenario = default_scenario(days=args.days, seed=args.seed, plans_per_hour=args.plans_per_hour)
        scenario = replace(scenario, drift=(DriftPlan(args.drift_specialist),) if args.drift_specialist else (),
                           push_previous_champion=(args.push_previous_champion,) if args.push_previous_champion else (),
                           review_queue_budget=args.review_queue, retrain_days=tuple(args.retrain_days))
    except ValueError as exc:  # e.g. a retrain day beyond --days
        raise UsageError(str(exc)) from exc
    if args.start is not None:
        try:
            clock.check_span(args.start, timedelta(hours=scenario.hours))
        except ConfigError as exc:
            raise UsageError(f"--start: {exc}") from exc
    if args.label_rate is not None:
        scenario = replace(scenario, feedback_rates=dict.fromkeys(SPECIALISTS, args.label_rate))
    return scenario


def check_log_file(path: Path) -> None:
    """A --log-file the loop can append to, in a directory that exists: one line now, not a traceback once the loop
    has begun; a missing directory is not created (a typo made /nonexistent/dir, even under /)."""
    if path.is_dir():
        raise UsageError(f"--log-file {path}: Is a directory")
    parent = path.parent
    if not parent.is_dir():
        there = next((d for d in (parent, *parent.parents) if d.exists()), None)  # the deepest path that exists
        if there is not None and not there.is_dir():
            raise UsageError(f"--log-file {path}: {there} is not a directory")
        raise UsageError(f"--log-file {path}: no such directory {parent} (create it first)")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise UsageError(f"--log-file {path}: Permission denied")


def cmd_loop(args: argparse.Namespace) -> int:
    from hive_assets.cli._story import next_steps, output_to_log
    from hive_assets.config import Settings, hive_home
    from hive_assets.simulator import DEFAULT_SETTINGS

    from hive_assets import clock

    clock.check_not_playing()  # said before the scenario is described (the loop itself holds the lock)
    scenario = loop_scenario(args)
    log_file = args.log_file or hive_home() / "loop.log"
    try:  # checked before the home was created (check_log_file); what it cannot tell (a full disk), said now
        log_file.open("ab").close()
    except OSError as exc:
        raise UsageError(f"--log-file {log_file}: {exc.strerror or exc}") from exc
    # sensor intervals are read when the definitions load: the scenario's settings go first, yours win
    settings = {k: os.environ.get(k) or v for k, v in DEFAULT_SETTINGS.items()}
    os.environ.update(settings)
    scenario = replace(scenario, settings=settings)
    for line in scenario.describe():
        print(f"hive loop: {line}", file=sys.stderr)
    print(f"hive loop: the Dagster and MLflow logs go to {log_file}", file=sys.stderr, flush=True)
    # what the libraries print while runs execute (Dagster's run logs, MLflow's lines and progress bars)
    # goes to the log file; the terminal gets a line per simulated day, then the story
    from hive_assets.data import KafkaUnavailable

    with output_to_log(log_file) as terminal:
        try:
            result = _dagster.run_loop(scenario, start=args.start,
                                       progress=lambda line: print(f"hive loop: {line}", file=terminal))
        except ValueError as exc:  # no champion, no history: say what to do
            print(f"hive loop: error: {exc}", file=terminal)
            return 1
        except KafkaUnavailable as exc:  # the hour's audit events go to the topic collection reads (a RuntimeError)
            print(f"hive loop: error: {exc}; the hours served before it are kept: run the loop again to go on",
                  file=terminal)
            return 1
        from hive_assets import review
        from hive_assets.data import open_store
        from hive_assets.registry import client_for
        from hive_assets.simulator import build_timeline, champions, format_champions, format_timeline, why_quiet

        with open_store() as store:
            # what happened during the loop: the state it started from (the first trainings, at the start
            # instant) is the report's and the champions table's
            events = [e for e in build_timeline(store, result.start, result.end)
                      if e.specialist in args.specialist and e.at > result.start]
            answers = [a for a in champions(store, client_for(Settings.from_env().mlflow_uri))
                       if a.specialist in args.specialist]
            queue = ({s: review.queue_summary(store, s, result.start, result.end) for s in args.specialist}
                     if args.review_queue else {})
            quiet = {s: why_quiet(store, s, result.start, result.end) for s in args.specialist
                     if not any(e.specialist == s for e in events)}  # said only of a specialist without events
    wall = {k: round(v, 1) for k, v in result.seconds.items()}
    if args.json:
        print(json.dumps({"start": result.start.isoformat(), "end": result.end.isoformat(),
                          "served": dict(result.served), "runs": _runs(result.runs), "seconds": wall,
                          "log_file": str(log_file),
                          "timeline": [e.as_dict() for e in events], "champions": [a.as_dict() for a in answers],
                          **({"review_queue": queue} if queue else {})},
                         indent=2))
    else:
        print(f"\n== timeline, {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC (simulated)")
        print(format_timeline(events, result.start, args.specialist, quiet))
        if queue:
            print(f"\n== the review queue ({args.review_queue} requests a day per specialist; the simulated reviewers "
                  "answer it first)")
            print(_format_queue(queue))
        print("\n== the champions now, and the heuristic they replaced")
        print(format_champions(answers))
        print("\n== where the wall time went: " + ", ".join(f"{k} {v:g} s" for k, v in wall.items()))
        print()
        logs = sorted(hive_home().glob("demo-*.log")) + [log_file]
        print(next_steps(hive_home(), Settings.from_env().mlflow_uri, logs))
    return 0 if all(a.agrees for a in answers) else 1


def _runs(runs) -> list[dict]:
    return [{"at": r.at.isoformat(), "run_id": r.run_id, "job": r.job, "partition": r.partition,
             "success": r.success, "sensor": r.sensor, "run_key": r.run_key, "seconds": round(r.seconds, 2),
             "cpu_seconds": round(r.cpu_seconds, 2)}
            for r in runs]


def _format_queue(queue: dict[str, dict[str, int]]) -> str:
    width = max(map(len, queue))
    lines = [f"{'specialist':<{width}}  requested  answered  expired  open"]
    lines += [f"{s:<{width}}  {q['requested']:>9}  {q['answered']:>8}  {q['expired']:>7}  {q['open']:>4}"
              for s, q in queue.items()]
    return "\n".join(lines + ["  the open requests, in the order to answer them: hive review-queue --specialist S"])

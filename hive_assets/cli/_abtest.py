"""`hive ab-test start|check|expand|stop`: the seed's A/B actions, as runs of the rollout jobs.

Each verb runs a Dagster job in the configured instance (`check` materializes `ab_test_outcome`
through the job `ab_test_check`), tagged with the user as actor, so the UI and the ledger show who
did what. Prints the test's state as text (`--json`: the whole state as one JSON object); exit status 1
when the run failed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from hive_assets.cli import _dagster
from hive_assets.cli._args import (
    UsageError, add_specialist, add_verb, iso_datetime, non_empty, positive_float, set_check, version_number,
)
from hive_assets.routing import MIN_TRAFFIC_PERCENT


ENV = ("HIVE_HOME", "DAGSTER_HOME", "MONGODB_URI", "MONGODB_DATABASE", "MLFLOW_TRACKING_URI")


def traffic_percent(text: str) -> float:
    value = positive_float(text)
    if value < MIN_TRAFFIC_PERCENT:
        raise argparse.ArgumentTypeError(f"must be a share in [{MIN_TRAFFIC_PERCENT:g}, 100), got {text!r}: routing "
                                         "tells shares apart to one unit in a million")
    if value >= 100:
        raise argparse.ArgumentTypeError(f"must be a share in [{MIN_TRAFFIC_PERCENT:g}, 100), got {text!r}: at 100 % "
                                         "no champion arm is left to compare with (a promotion takes it there: "
                                         "`hive deploy promote`)")
    return value


def add_parsers(sub) -> None:
    group = sub.add_parser("ab-test", help="start, check, expand or stop a champion/challenger A/B test",
                           description="The A/B test's operator actions (SPEC section 7), each a Dagster run "
                                       "in the instance the UI reads, tagged with you as the actor.")
    verbs = group.add_subparsers(dest="ab_command", required=True, metavar="{start,check,expand,stop}")

    def verb(name: str, help: str, description: str):
        p = add_verb(verbs, name, help=help, description=description, env=ENV)
        add_specialist(p, one=True, required=True)
        p.add_argument("--now", type=iso_datetime,
                       help="ISO-8601 instant to act at, not after the home's clock (default: the home's clock: "
                            "`hive clock`)")
        p.add_argument("--json", action="store_true", help="print the test's state as one JSON object (default: text)")
        set_check(p, check_now)
        return p

    p = verb("start", "open a test of --new-version against the champion",
             "Run the job ab_test_start: the version becomes `challenger` and a test opens at --traffic.")
    p.add_argument("--new-version", type=version_number, required=True, help="registry version to test")
    p.add_argument("--baseline-version", type=version_number, default=None,
                   help="must be the current champion (default: it)")
    p.add_argument("--traffic", type=traffic_percent,
                   help="challenger share in %% (default: $AB_TEST_DEFAULT_TRAFFIC, else 10)")
    p.add_argument("--force", action="store_true",
                   help="test a version whose validation gate did not pass (default: refused, as for promote)")
    p.add_argument("--reason", type=non_empty, help="why, for the ledger; required with --force (default: none)")
    p.set_defaults(func=cmd_start)

    p = verb("check", "re-evaluate the running test",
             "Run the job ab_test_check (materializes ab_test_outcome for the specialist).")
    p.add_argument("--test-id", type=non_empty, help="fail unless this is the running test (default: no check)")
    p.set_defaults(func=cmd_check)

    p = verb("expand", "raise the challenger's traffic share", "Run the job ab_test_expand.")
    p.add_argument("--traffic", type=traffic_percent, required=True, help="new challenger share in %%")
    p.add_argument("--test-id", type=non_empty, help="fail unless this is the running test (default: no check)")
    p.set_defaults(func=cmd_expand)

    p = verb("stop", "stop the running test; the champion stays", "Run the job ab_test_stop.")
    p.add_argument("--test-id", type=non_empty, help="fail unless this is the running test (default: no check)")
    p.add_argument("--reason", type=non_empty, default="stopped by an operator", help="why, for the ledger")
    p.set_defaults(func=cmd_stop)


def _tags() -> dict[str, str]:
    return {"hive/actor": f"user:{getpass.getuser()}"}


def _finish(args: argparse.Namespace, result, node: str) -> int:
    if not result.success:
        print(_dagster.refusal_line(_dagster.failure_message(result), result.run_id), file=sys.stderr)
        return 1
    state = result.output_for_node(node)
    if args.json:
        print(json.dumps({"run_id": result.run_id, **state}, default=str))
    else:
        print(state_text(args.specialist, state))
        print(f"run {result.run_id}")
    return 0


def state_text(specialist: str, state: dict) -> str:
    """The test's state for a person: which versions, traffic, verdict, the agreement difference."""
    if not state.get("test_id"):
        return f"{specialist}: no A/B test ({state.get('status')})"
    lines = [f"{specialist}: A/B test {state['test_id']} {state['status']}: challenger v{state['challenger_version']} "
             f"at {state['traffic_percent']:g} % vs champion v{state['champion_version']}; verdict {state['verdict']}"]
    if state.get("interval"):
        low, high = state["interval"]
        lines.append(f"  agreement difference (challenger - champion) {state['difference']:+.3f}, "
                     f"always-valid interval [{low:+.3f}, {high:+.3f}]")
    for arm in ("champion", "challenger"):
        counts = state.get(arm) or {}
        if counts:
            agreement = counts.get("agreement")
            # matured labels (the verdicts') and every label known now (the expansion gates'): the reason names either
            matured = counts.get("labelled", 0)
            lines.append(f"  {arm:<10} served {counts.get('served', 0)}, labelled {matured} matured, "
                         f"{matured + counts.get('interim_labelled', 0)} known"
                         + (f", agreement {agreement:.3f}" if agreement is not None else ""))
    if state.get("reason"):
        lines.append(f"  {state['reason']}")
    elif state.get("end_reason"):
        lines.append(f"  ended {str(state.get('ended_at') or '')[:16].replace('T', ' ')}: {state['end_reason']}")
    return "\n".join(lines)


def _run(job: str, config: dict, partition_key: str | None = None):
    """The A/B job as a run of the operator; the console shows a failure as `_finish`'s one line."""
    return _dagster.run_job(job, config, partition_key=partition_key, tags=_tags(), log_level=_dagster.QUIET)


def check_now(args: argparse.Namespace) -> None:
    """--now after the home's clock is refused before the home is created, as the run would refuse it, so a typo
    (`--now 2100-01-01`) leaves no failed run in the operators' list."""
    if not args.now:
        return
    from hive_assets import clock, registry

    current = clock.now()
    if args.now > current + registry.CLOCK_SKEW:
        raise UsageError(f"--now {args.now.isoformat()} is after the home's clock ({current.isoformat()}): a "
                         "decision cannot be taken at a time that has not come; move the clock (`hive clock "
                         "advance`) instead")


def _now(args: argparse.Namespace) -> str:
    """--now for the run's config (checked by `check_now`)."""
    return args.now.isoformat() if args.now else ""


def _op_config(op: str, **config) -> dict:
    return {"ops": {op: {"config": {k: v for k, v in config.items() if v not in (None, "")}}}}


def cmd_start(args: argparse.Namespace) -> int:
    config = _op_config("start_ab_test", specialist=args.specialist, new_version=args.new_version,
                        baseline_version=args.baseline_version or "", traffic=args.traffic, now=_now(args),
                        force=args.force, reason=args.reason)
    return _finish(args, _run("ab_test_start", config), "start_ab_test")


def cmd_check(args: argparse.Namespace) -> int:
    config = _op_config("ab_test_outcome", now=_now(args), test_id=args.test_id)
    return _finish(args, _run("ab_test_check", config, partition_key=args.specialist), "ab_test_outcome")


def cmd_expand(args: argparse.Namespace) -> int:
    config = _op_config("expand_ab_test", specialist=args.specialist, traffic=args.traffic, test_id=args.test_id,
                        now=_now(args))
    return _finish(args, _run("ab_test_expand", config), "expand_ab_test")


def cmd_stop(args: argparse.Namespace) -> int:
    config = _op_config("stop_ab_test", specialist=args.specialist, test_id=args.test_id, reason=args.reason,
                        now=_now(args))
    return _finish(args, _run("ab_test_stop", config), "stop_ab_test")

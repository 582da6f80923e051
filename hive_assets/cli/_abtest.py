"""`hive ab-test start|check|expand|stop`: the seed's A/B actions, as runs of the rollout jobs.

Each verb runs a Dagster job in the configured instance (`check` materializes `ab_test_outcome`
through the job `ab_test_check`), tagged with the user as actor, so the UI and the ledger show who
did what. Prints the test's state as JSON; exit status 1 when the run failed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from hive_assets.cli import _dagster
from hive_assets.cli._args import specialists


def add_parser(sub) -> None:
    group = sub.add_parser("ab-test", help="start, check, expand or stop a champion/challenger A/B test")
    verbs = group.add_subparsers(dest="ab_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--specialist", required=True)
    common.add_argument("--now", default="", help="ISO-8601 instant to act at (default: now)")

    p = verbs.add_parser("start", parents=[common], help="open a test of --new-version against the champion")
    p.add_argument("--new-version", required=True)
    p.add_argument("--baseline-version", default="", help="must be the current champion (default: it)")
    p.add_argument("--traffic", type=float, help="challenger share in %% (default AB_TEST_DEFAULT_TRAFFIC)")
    p.set_defaults(func=cmd_start)

    p = verbs.add_parser("check", parents=[common], help="re-evaluate the running test now")
    p.add_argument("--test-id", default="")
    p.set_defaults(func=cmd_check)

    p = verbs.add_parser("expand", parents=[common], help="raise the challenger's traffic share")
    p.add_argument("--traffic", type=float, required=True)
    p.add_argument("--test-id", default="")
    p.set_defaults(func=cmd_expand)

    p = verbs.add_parser("stop", parents=[common], help="stop the running test; the champion stays")
    p.add_argument("--test-id", default="")
    p.add_argument("--reason", default="stopped by an operator")
    p.set_defaults(func=cmd_stop)


def _specialist(args: argparse.Namespace) -> str:
    names = specialists(args.specialist)
    if len(names) != 1:
        raise SystemExit("--specialist takes one specialist")
    return names[0]


def _tags() -> dict[str, str]:
    return {"hive/actor": f"user:{getpass.getuser()}"}


def _finish(result, node: str) -> int:
    if not result.success:
        print(f"the run {result.run_id} failed; see its log in the Dagster instance", file=sys.stderr)
        for event in result.all_events:
            if event.is_failure and event.step_failure_data:
                print(event.step_failure_data.error.message.strip(), file=sys.stderr)
        return 1
    print(json.dumps({"run_id": result.run_id, **result.output_for_node(node)}, default=str))
    return 0


def _op_config(op: str, **config) -> dict:
    return {"ops": {op: {"config": {k: v for k, v in config.items() if v not in (None, "")}}}}


def cmd_start(args: argparse.Namespace) -> int:
    config = _op_config("start_ab_test", specialist=_specialist(args), new_version=args.new_version,
                        baseline_version=args.baseline_version, traffic=args.traffic, now=args.now)
    return _finish(_dagster.run_job("ab_test_start", config, tags=_tags()), "start_ab_test")


def cmd_check(args: argparse.Namespace) -> int:
    config = _op_config("ab_test_outcome", now=args.now, test_id=args.test_id)
    return _finish(_dagster.run_job("ab_test_check", config, partition_key=_specialist(args), tags=_tags()),
                   "ab_test_outcome")


def cmd_expand(args: argparse.Namespace) -> int:
    config = _op_config("expand_ab_test", specialist=_specialist(args), traffic=args.traffic, test_id=args.test_id,
                        now=args.now)
    return _finish(_dagster.run_job("ab_test_expand", config, tags=_tags()), "expand_ab_test")


def cmd_stop(args: argparse.Namespace) -> int:
    config = _op_config("stop_ab_test", specialist=_specialist(args), test_id=args.test_id, reason=args.reason,
                        now=args.now)
    return _finish(_dagster.run_job("ab_test_stop", config, tags=_tags()), "stop_ab_test")

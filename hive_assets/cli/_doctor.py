"""`hive doctor [--fix] [--json] [--specialist NAME]`: what a crash left behind, and (with --fix) its repair.

Finds Dagster runs STARTED (or STARTING, CANCELING) whose process is gone (their run leases went stale:
expired, or on this host a dead pid; a run with no lease by the host and pid it tagged itself with, on this
host, else by HIVE_RETRAIN_MAX_RUNTIME_SECONDS), MLflow runs RUNNING without a live Dagster run, leases still
held for runs that ended, and registry decisions a crash left unfinished (a promote, rollback or A/B outcome
intent still `intended`), and A/B tests out of step with the registry that no intent names (a running test's
alias, tags or ledger rows missing, a test still running although its arms moved, a new challenger's test
never opened). Read-only without --fix; with it each orphaned run is marked FAILURE with the reason, its
MLflow runs ended FAILED, its leases released, so the retraining triggers' in-flight guard lets the next
trigger fire, and each unfinished decision is completed as the next registry command would, each A/B test
brought in line as the next A/B look would (under the specialist's operator lease). Also finds a home moved or
copied elsewhere (MLflow's database naming the old place's artifacts); --fix rewrites those locations to this
home's mlartifacts, then looks again and says what remains. Exit 0 when nothing is wrong (with --fix: nothing
is left after the fixes), 1 when problems remain (with --fix: any found again after the fixes, a decision it
could not complete included) or the MLflow server (or its database) could not be reached: its runs were not
checked, so nothing can be said of them.
"""

from __future__ import annotations

import argparse
import json

from hive_assets.cli import _dagster
from hive_assets.cli._args import add_specialist, add_verb
from hive_assets.config import SPECIALISTS, ConfigError, Settings
from hive_assets.reachability import Refusal


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    names = [None] if sorted(args.specialist) == sorted(SPECIALISTS) else args.specialist
    moved, fixed = _moved_home(settings, args.fix)
    report, outcomes = _look(settings, names, fix=args.fix, moved=moved)
    fixed += [line for o in outcomes for line in o["fixed"]]
    not_fixed = [line for o in outcomes for line in o["not_fixed"]]
    remaining = report
    if args.fix:  # what the fixes left (a fix that failed or was refused, a holder that came back): looked for again
        remaining, outcomes = _look(settings, names, fix=False, moved=_moved_home(settings, False)[0])
    mlflow = outcomes[0]["mlflow"]
    # not checked: the embedded database is not created yet (no runs), or a server or database did not answer
    # (it may hold orphans)
    unchecked = mlflow != "checked" and not settings.mlflow_uri.startswith("sqlite:")
    if args.json:
        print(json.dumps({**report, "fixed": fixed, "not_fixed": not_fixed, "remaining": remaining, "mlflow": mlflow,
                          "mlflow_unreachable": unchecked, "read_only": not args.fix}, default=str))
    else:
        _print(report, fixed, mlflow, args.fix, unchecked, not_fixed, remaining)
    return 1 if unchecked or not_fixed or _count(remaining) else 0


def _look(settings: Settings, names: list[str | None], *, fix: bool, moved: dict | None) -> tuple[dict, list[dict]]:
    """(what is wrong, by kind; each specialist's `_dagster.doctor` outcome), fixed first when `fix`."""
    outcomes = [_dagster.doctor(fix=fix, specialist=name, mlflow_uri=settings.mlflow_uri) for name in names]
    report = {key: [item for o in outcomes for item in o["report"][key]]
              for key in ("dagster_runs", "mlflow_runs", "stale_leases", "unfinished_intents", "ab_out_of_step",
                          "unrecorded_registrations")}
    report["moved_home"] = [moved] if moved else []
    return report, outcomes


def _count(report: dict) -> int:
    return sum(len(v) for v in report.values())


def _moved_home(settings: Settings, fix: bool) -> tuple[dict | None, list[str]]:
    """A home moved or copied (MLflow's database names the old place's artifacts) and, with fix, its repair:
    every recorded artifact location rewritten to this home's `mlartifacts`."""
    from hive_assets.registry import moved_home, moved_home_message, relocate_artifact_root

    recorded = moved_home(settings)
    if recorded is None:
        return None, []
    found = {"recorded_artifact_root": recorded, "artifact_root": settings.mlflow_artifact_root,
             "reason": moved_home_message(settings, recorded)}
    if not fix:
        return found, []
    try:
        changed = relocate_artifact_root(settings.home / "mlflow.db", recorded, settings.mlflow_artifact_root)
    except ValueError as exc:
        raise ConfigError(f"{exc}; nothing was changed") from None
    return found, [f"MLflow's artifact locations now under {settings.home / 'mlartifacts'} "
                   f"({', '.join(f'{n} {table}' for table, n in changed.items())})"]


def _problems(report: dict, fix: bool) -> list[str]:
    """One line per problem of `report`; read-only (`fix` False), each says how `--fix` repairs it."""
    lines = [moved["reason"] + ("" if fix else " (`hive doctor --fix` rewrites its artifact locations)")
             for moved in report["moved_home"]]
    lines += [f"dagster run {run['run_id']} ({run['job']}, {run['specialist'] or '-'}) {run['status']} since "
              f"{run['started_at']}: {run['reason']}" for run in report["dagster_runs"]]
    lines += [f"mlflow run {run['run_id']} ({run['specialist'] or '-'}) RUNNING: {run['reason']}"
              for run in report["mlflow_runs"]]
    lines += [f"lease {lease['lease_id']} held for run {lease['owner_run_id']}: {lease['reason']}"
              for lease in report["stale_leases"]]
    for intent in report["unfinished_intents"]:
        run = f" (run {intent['dagster_run_id']})" if intent["dagster_run_id"] else ""
        lines.append(f"unfinished {intent['operation']} {intent['target']} of {intent['specialist']} since "
                     f"{intent['since']}, decided by {intent['actor']}{run} (intent {intent['intent_id']}): completed "
                     f"by {intent['completes_it']}" + ("" if fix else "; `hive doctor --fix` completes it now"))
    lines += [f"{item['specialist']}: {item['problem']}: completed by the next A/B look or registry command"
              + ("" if fix else "; `hive doctor --fix` completes it now") for item in report["ab_out_of_step"]]
    for item in report["unrecorded_registrations"]:
        run = f"Dagster run {item['dagster_run_id']}" if item["dagster_run_id"] else "the run that registered it"
        lines.append(f"{item['specialist']}: v{item['version']} (MLflow run {item['mlflow_run_id']}) was created "
                     f"without its registration row in the ledger: {run} stopped right after; re-executing it from "
                     "its failure records it and sets the alias it would have set"
                     + ("" if fix else "; `hive doctor --fix` records the registration now"))
    return lines


def _print(report: dict, fixed: list[str], mlflow: str, fix: bool, unchecked: bool, not_fixed: list[str],
           remaining: dict) -> None:
    problems = _count(report)
    if problems == 0:
        print(("no orphaned Dagster runs or stale leases" if unchecked else "no orphaned runs or stale leases")
              + "; no unfinished decisions" + ("" if unchecked else "; A/B tests in step with the registry"))
    for line in _problems(report, fix):
        print(line)
    if unchecked:
        then = f"{mlflow.remedy}, then run `hive doctor` again" if isinstance(mlflow, Refusal) else \
            "run `hive doctor` again once it answers"
        print(f"MLflow runs not checked: {mlflow}; {then} (exit 1 until then)")
    elif mlflow != "checked":
        print(f"MLflow runs not checked: {mlflow}")
    if fix:
        for line in fixed:
            print(f"fixed: {line}")
        for line in not_fixed:
            print(f"not fixed: {line}")
        for line in _problems(remaining, fix):
            print(f"remains: {line}")
        if left := _count(remaining):
            print(f"{left} problem(s) remain after the fixes")
    elif problems:
        print(f"{problems} problem(s); read-only: run `hive doctor --fix` to repair them (orphaned runs marked "
              "failed, leases released, unfinished decisions completed, registrations recorded, a moved home's artifact "
              "paths rewritten)")


def add_parsers(sub) -> None:
    p = add_verb(sub, "doctor", help="find (and with --fix repair) runs a crash left STARTED/RUNNING, stale leases, "
                                     "unfinished decisions and a moved home",
                 description=__doc__.split("\n\n", 1)[1].strip(),
                 env=("HIVE_HOME", "DAGSTER_HOME", "MONGODB_URI", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME",
                      "HIVE_RETRAIN_MAX_RUNTIME_SECONDS", "HIVE_LEASE_TTL_SECONDS"))
    p.add_argument("--fix", action="store_true", help="act: mark orphans failed, end their MLflow runs, release "
                                                      "leases, complete unfinished decisions")
    p.add_argument("--json", action="store_true", help="print the findings (and fixes) as JSON")
    add_specialist(p)
    p.set_defaults(func=cmd_doctor)

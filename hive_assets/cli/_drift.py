"""`hive drift check --once [--dry-run] [--specialist NAME]`: the drift sensor's check from the shell.

The same function as the sensor (`hive_assets.monitoring.check_drift`). Without --dry-run each check
is saved to `drift_monitoring`, and a "drift" decision records its trigger (same id as the sensor's run
key for that champion version and interval, or its next attempt's, `<key>:retry-<n>`, once the run of
that key failed, as the sensor picks it: its `trigger_attempt`; so a trigger the sensor already launched is
not launched again; the operator's command is not held by the cooldown or a run in flight) and runs
`retrain_specialist` for that partition through `_dagster` (in this process, tagged with that run key), the
trigger document following the run. While the specialist's A/B test runs, the drift is held as the sensor
holds it (a new version would supersede the test, days of it thrown away): `--supersede-test` retrains
anyway and says which test its new version superseded. --dry-run reads only: nothing written, nothing
launched.
"""

from __future__ import annotations

import argparse
import json

from hive_assets import clock
from hive_assets.cli import _dagster
from hive_assets.cli._args import add_specialist, add_verb
from hive_assets.config import Settings


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def cmd_drift_check(args: argparse.Namespace) -> int:
    # imported here: parsing any `hive` verb must not pay for the data, monitoring and registry packages
    from hive_assets.data import open_store
    from hive_assets.monitoring import (
        MODEL_UNAVAILABLE, TRIGGERS, MonitoringSettings, check_drift, record_trigger, save_drift_check,
        waits_for_test, with_retraining,
    )
    from hive_assets.registry import client_for
    from hive_assets.rollout import running_test

    settings = MonitoringSettings.from_env()
    now = clock.now()
    client = client_for(Settings.from_env().mlflow_uri)
    store = open_store()  # StoreUnavailable: `hive` prints it (host, never a password) and exits 1
    checks = [check_drift(store, client, s, now, settings) for s in args.specialist]
    # as wide as the longest feature and decision, plus two spaces (duration_coefficient_of_variation ran on)
    feature_width = max([26] + [len((c.document or {}).get("drift_feature") or "-") for c in checks]) + 2
    decision_width = max([16] + [len(c.decision or c.status) for c in checks]) + 2
    header = (f"{'specialist':<13}{'champion':>9}{'window':>8}{'drift_score':>12}  {'top feature':<{feature_width}}"
              f"{'decision':<{decision_width}}action")
    records = []
    if not args.json:
        print(header)
        print("-" * len(header))
    for check in checks:
        doc = check.document or {}
        action, trigger = "-", None
        # the trigger's attempt the drift sensor would request: a retry once the run of the key failed
        key = _dagster.trigger_attempt(check.run_key) if check.run_key else None
        # a running A/B test holds the drift as it holds the sensor's (it launched here and superseded a test of
        # four days at 50 %, saying only "retrained"); the operator may say to supersede it
        test, held = running_test(store, check.specialist) if key else None, None
        if test is not None and not args.supersede_test:
            key, held = None, waits_for_test(test["test_id"])
            if not args.dry_run:
                doc = with_retraining(doc, "held", held)
        if key and not args.dry_run:
            # the trigger document first (the check's run key names one), then the check, then the run
            trigger = record_trigger(store, key, check.specialist, "drift", now, drift_score=check.drift_score,
                                     details={"check_id": doc["check_id"], "model_version": check.model_version,
                                              "launched_by": "hive drift check"})
            doc = with_retraining(doc, "requested", "hive drift check", key)
        if check.document is not None and not args.dry_run:
            save_drift_check(store, doc)
        if held:
            action = (f"{'would be ' if args.dry_run else ''}held: {held} (v{test['challenger_version']} at "
                      f"{float(test['traffic_percent']):g} %; --supersede-test retrains anyway)")
        elif key and args.dry_run:
            # what the command would do: a trigger this interval already launched is not launched again
            launched = _already_triggered(store.find_one(TRIGGERS, {"trigger_id": key}))
            action = launched or f"would retrain ({key})" + (
                f", superseding A/B test {test['test_id']} if it registers a version" if test else "")
        elif key:
            action = _launch(store, check.specialist, key, trigger, test)
        elif check.document is None:
            action = check.message.split(": ", 1)[-1]
        elif check.status == MODEL_UNAVAILABLE:
            action = check.message  # `<specialist>-evaluator v<N>: artifact checksum mismatch` / `... cannot be loaded: ...`
        if args.json:
            records.append({"specialist": check.specialist, "status": check.status, "decision": check.decision,
                            "action": action, "dry_run": args.dry_run, "document": doc})
            continue
        print(f"{check.specialist:<13}{check.model_version or '-':>9}{doc.get('window_size', '-'):>8}"
              f"{_fmt(doc.get('drift_score')):>12}  {doc.get('drift_feature') or '-':<{feature_width}}"
              f"{check.decision or check.status:<{decision_width}}{action}")
    if args.json:
        print(json.dumps(records, default=str))
    elif args.dry_run:
        print("dry run: nothing written, nothing launched")
    # every other specialist was checked (and saved); a champion that cannot be served is the operator's
    # to fix, so the command fails for it (README, Sensors)
    return 1 if any(c.status == MODEL_UNAVAILABLE for c in checks) else 0


def _already_triggered(trigger: dict | None) -> str | None:
    """What the action column says of a trigger document that has left `pending` or has a run, else None."""
    if trigger is None or (trigger.get("status") == "pending" and not trigger.get("dagster_run_id")):
        return None
    if trigger.get("error") == "run canceled":  # its document says failed; not retried: the operator meant it
        return f"already triggered (canceled, run {trigger.get('dagster_run_id')}; a canceled run is not retried)"
    return f"already triggered ({trigger.get('status')}, run {trigger.get('dagster_run_id')})"


def _launch(store, specialist: str, key: str, trigger, test: dict | None = None) -> str:
    """Run the retraining of `key` (unless its trigger already ran); what the action column says, with the A/B
    test `test` it superseded when its new version opened a test of its own."""
    from hive_assets.monitoring import update_trigger_status

    if (launched := _already_triggered(trigger)) is not None:
        return launched
    update_trigger_status(store, key, "running")
    # quiet: the run's log lines (a failed step's stack trace) landed in the middle of the table
    result = _dagster.run_job("retrain_specialist", partition_key=specialist,
                              tags={"hive/trigger_id": key, "hive/trigger_reason": "drift"},
                              log_level=_dagster.QUIET, run_key=key)
    status = "completed" if result.success else "failed"
    error = None if result.success else _dagster.failure_message(result)
    update_trigger_status(store, key, status, run_id=result.run_id, metrics=_dagster.result_metrics(result),
                          error=error)
    superseded = test is not None and (store.find_one("ab_tests", {"test_id": test["test_id"]}) or {}).get(
        "status") == "superseded"
    return (f"retrained: run {result.run_id} {status}" + (f": {error}" if error else "")
            + (f"; A/B test {test['test_id']} superseded by the new version's" if superseded else ""))


def add_parsers(sub) -> None:
    group = sub.add_parser("drift", help="drift checks of the champions (the drift sensor's, from the shell)",
                           description="Drift checks (SPEC section 8): each specialist's recent plans against its "
                                       "champion's training reference.")
    verbs = group.add_subparsers(dest="drift_command", required=True, metavar="{check}")
    p = add_verb(verbs, "check", help="one drift check per specialist against its champion",
                 description="One drift check per specialist (DRIFT_THRESHOLD, DRIFT_WINDOW_HOURS, DRIFT_MIN_ROWS, "
                             "DRIFT_ALPHA, DRIFT_CHECK_INTERVAL_MINUTES as the sensor reads them): prints a table; "
                             "without --dry-run saves the checks to drift_monitoring and runs retrain_specialist for "
                             "each drift.",
                 env=("HIVE_HOME", "DAGSTER_HOME", "MONGODB_URI", "MLFLOW_TRACKING_URI"))
    # required: the periodic check is the drift sensor's; a missing --once is a usage error (exit 2)
    p.add_argument("--once", action="store_true", required=True, help="check once and exit (the sensor repeats)")
    p.add_argument("--dry-run", action="store_true", help="write nothing, launch nothing")
    p.add_argument("--supersede-test", action="store_true",
                   help="retrain on drift even while the specialist's A/B test runs (its new version supersedes "
                        "the test; default: held, as the drift sensor holds it)")
    add_specialist(p)
    p.add_argument("--json", action="store_true", help="print the checks as one JSON array (default: a table)")
    p.set_defaults(func=cmd_drift_check)

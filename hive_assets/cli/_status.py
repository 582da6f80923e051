"""`hive status`: what each specialist is doing, in one view (hive_assets.monitoring.platform_status); the
same table is the `platform_status` observation in the UI."""

from __future__ import annotations

import argparse
import json
import sys

from hive_assets.cli import _dagster
from hive_assets.cli._args import add_specialist, add_verb


def cmd_status(args: argparse.Namespace) -> int:
    from hive_assets.monitoring import format_status

    from hive_assets.config import ConfigError, review_queue_daily_budgets

    now, statuses = _dagster.platform_status()
    try:  # read by the review sensor alone: said here, where an operator looks, before its tick fails
        review_queue_daily_budgets()
    except ConfigError as exc:
        print(f"hive status: warning: {exc}; the review queue sensor requests nothing until it is fixed",
              file=sys.stderr)
    statuses = [s for s in statuses if s.specialist in args.specialist]
    if args.json:
        print(json.dumps({"now": now.isoformat(), "specialists": [s.as_dict() for s in statuses]}, indent=2))
    else:
        print(format_status(statuses, now))
    return 0


def add_parsers(sub) -> None:
    p = add_verb(sub, "status", help="what each specialist is doing: champion, challenger, A/B, drift, feedback, "
                                     "last retrain, next look, review queue",
                 description="Per specialist: the champion (version, since when, why: the ledger), the challenger "
                             "and its traffic, the A/B estimate with its always-valid interval, the last drift "
                             "verdict, trusted feedback since the last training against the threshold, the last "
                             "retrain (trigger, result), the next scheduled look and the review queue today, on the "
                             "home's clock. Reads "
                             "only: no run is launched. The UI shows the same table (asset platform_status).",
                 env=("HIVE_HOME", "DAGSTER_HOME", "MONGODB_URI", "MLFLOW_TRACKING_URI",
                      "RETRAINING_FEEDBACK_THRESHOLD", "DRIFT_CHECK_INTERVAL_MINUTES", "AB_TEST_CHECK_INTERVAL_MINUTES",
                      "REVIEW_QUEUE_DAILY_BUDGET"))
    add_specialist(p)
    p.add_argument("--json", action="store_true", help="print the view as JSON")
    p.set_defaults(func=cmd_status)

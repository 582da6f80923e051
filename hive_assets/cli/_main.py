"""`hive`: the platform from the shell (SPEC section 10). One module per verb group; `_dagster` is the
only one that talks to Dagster, so commands that change models or data leave the same run record as the
UI and the sensors."""

from __future__ import annotations

import argparse
import sys

from hive_assets.cli import _data, _drift, _report, _simulate
from hive_assets.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hive", description="hive-assets: the specialist retraining platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write simulated production data into the configured store")
    p.add_argument("--plans", type=int, default=4000)
    p.add_argument("--days", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--drift", type=float, default=0.0, help="0..1: shift plan risk and size distributions")
    p.add_argument("--label-noise", type=float, default=0.10)
    p.add_argument("--now", help="ISO-8601 end of the simulated period (default: now)")
    p.add_argument("--no-serve", action="store_true", help="do not serve opinions with the registered champions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_simulate.cmd_simulate)

    p = sub.add_parser("collect", help="materialize raw_production_data (the seed's collector)")
    p.add_argument("--specialist", default="all")
    p.add_argument("--min-samples", type=int, default=10_000)
    p.add_argument("--days", type=int)
    p.add_argument("--min-confidence", type=float)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_data.cmd_collect)

    p = sub.add_parser("report", help="what the latest run of each specialist produced")
    p.add_argument("--strict", action="store_true", help="exit 1 unless every specialist has a registered version")
    p.set_defaults(func=_report.cmd_report)

    store = sub.add_parser("store", help="document store utilities").add_subparsers(dest="store_command", required=True)
    p = store.add_parser("import", help="load mongoexport JSON lines into the configured store")
    p.add_argument("--collection", required=True)
    p.add_argument("file")
    p.set_defaults(func=_data.cmd_store_import)

    drift = sub.add_parser("drift", help="drift checks").add_subparsers(dest="drift_command", required=True)
    p = drift.add_parser("check", help="one drift check per specialist against its champion (the drift sensor's)")
    p.add_argument("--once", action="store_true", help="check once and exit")
    p.add_argument("--dry-run", action="store_true", help="write nothing, launch nothing")
    p.add_argument("--specialist", default="all")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_drift.cmd_drift_check)

    args = parser.parse_args(argv)
    Settings.from_env().home.mkdir(parents=True, exist_ok=True)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

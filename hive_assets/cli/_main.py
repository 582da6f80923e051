"""`hive`: the platform from the shell (SPEC section 10). One module per verb group, each adding its own
subcommands (`add_parsers`); `_dagster` is the only one that talks to Dagster, so commands that change
models or data leave the same run record as the UI and the sensors.

Before a verb runs, every SPEC section 9 setting is read (a malformed one is a one-line error, exit 2) and
HIVE_HOME and the Dagster instance are resolved, exported and created (`_home.prepare`)."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version

from hive_assets.cli import (
    _abtest, _clock, _data, _deploy, _doctor, _drift, _home, _loop, _report, _review, _simulate, _status, _train,
)
from hive_assets.cli._args import USAGE_ERROR, HelpFormatter, Parser, UsageError
from hive_assets.config import ConfigError, Settings


def _version() -> str:
    try:
        return version("hive-assets")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> Parser:
    parser = Parser(prog="hive", formatter_class=HelpFormatter,
                    description="hive-assets: the specialist retraining platform from the shell.",
                    epilog="Run 'hive COMMAND --help' for a command's options and the environment it reads.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _simulate.add_parsers(sub)
    _data.add_parsers(sub)
    _report.add_parsers(sub)
    _home.add_parsers(sub)
    _abtest.add_parsers(sub)
    _train.add_parsers(sub)
    _deploy.add_parsers(sub)
    _drift.add_parsers(sub)
    _loop.add_parsers(sub)
    _doctor.add_parsers(sub)
    _clock.add_parsers(sub)
    _status.add_parsers(sub)
    _review.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = " ".join(filter(None, ("hive", args.command, *(getattr(args, f"{group}_command", None)
                                                           for group in ("store", "deploy", "ab", "drift")))))
    # MLflow's INFO lines (database migrations, run links) are not the verbs' output; MLFLOW_LOGGING_LEVEL wins
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        Settings.from_env()  # validate the whole environment before any side effect
        _home.prepare(announce=getattr(args, "announce", True))
        return args.func(args)
    except (ConfigError, UsageError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except RuntimeError as exc:
        from hive_assets.data.store.base import StoreUnavailable  # the data package loads only on this path

        if not isinstance(exc, StoreUnavailable):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)  # names the host, never a password
        return 1


if __name__ == "__main__":
    sys.exit(main())

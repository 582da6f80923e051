"""`hive`: the platform from the shell (SPEC section 10). One module per verb group, each adding its own
subcommands (`add_parsers`); `_dagster` is the only one that talks to Dagster, so commands that change
models or data leave the same run record as the UI and the sensors.

Before a verb runs, every SPEC section 9 setting is read (a malformed one is a one-line error, exit 2), the
arguments that are bad only together or against the filesystem are checked (`_args.set_check`, the same
error), and only then HIVE_HOME and the Dagster instance are resolved, exported and created (`_home.prepare`)."""

from __future__ import annotations

import os
import re
import sys
from importlib.metadata import PackageNotFoundError, version

from hive_assets.cli import (
    _abtest, _clock, _dagster, _data, _deploy, _doctor, _drift, _home, _loop, _report, _review, _simulate, _status,
    _train,
)
from hive_assets.cli._args import USAGE_ERROR, HelpFormatter, Parser, UsageError
from hive_assets.config import PRODUCTION, ConfigError, Settings, hive_env
from hive_assets.interrupts import stop_if_signalled, watch
from hive_assets.reachability import Refusal


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


# verbs that read or change the model registry: an MLflow server that does not answer is said at once (MLflow's
# own retries would hold a `hive status` for minutes before a traceback)
REGISTRY_VERBS = frozenset({"status", "report", "deploy", "ab-test", "train", "validate", "drift", "loop"})


# verbs whose runs collect: with KAFKA_BOOTSTRAP_SERVERS set, a broker that does not answer (or has no
# intentions.audit topic) is said at once; the collection step's retries took 2 minutes and ended in a stack trace
AUDIT_VERBS = frozenset({"collect", "train"})


# verbs that write simulated documents into the configured store: under HIVE_ENV=production that store is
# production's, and collection would train on them as if people had written them
SIMULATING_VERBS = {
    "simulate": "writes simulated plans, opinions and feedback, which collection would train on as production's",
    "loop": "plays simulated traffic in simulated time; a production home runs on real traffic and the wall clock",
}


def refuse_simulation_in_production(command: str) -> None:
    if command in SIMULATING_VERBS and hive_env() == PRODUCTION:
        raise ConfigError(f"HIVE_ENV=production: hive {command} {SIMULATING_VERBS[command]}; nothing was written "
                          "(to fill a staging store on purpose, run it with HIVE_ENV=local and that store's "
                          "MONGODB_URI)")


def _audit_topic_down(settings: Settings) -> Exception | None:
    if not settings.kafka_bootstrap_servers:
        return None
    from hive_assets.data.kafka import audit_topic_problem

    return audit_topic_problem(settings.kafka_bootstrap_servers, security=settings.kafka_security)


def _moved_home_problem(settings: Settings) -> str | None:
    from hive_assets.registry import moved_home_problem  # the registry package loads only for these verbs

    return moved_home_problem(settings)


def _registry_outage(exc: BaseException) -> bool:
    """Whether `exc` is MLflow's client giving up on a server that did not answer (an MLflow exception with a
    refused, reset or timed-out connection under it), rather than an answer it did not like."""
    import requests
    from mlflow.exceptions import MlflowException

    chain, seen = [], exc
    while seen is not None and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return any(isinstance(e, MlflowException) for e in chain) and any(
        isinstance(e, (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout)) for e in chain)


def main(argv: list[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if argv is None:  # the console script (not a test calling main in its own process): Ctrl-C stops the verb
        watch()
    prog = " ".join(filter(None, ("hive", args.command, *(getattr(args, f"{group}_command", None)
                                                           for group in ("store", "deploy", "ab", "drift", "clock")))))
    if extra:  # argparse's own error named the top parser ("hive: error:") whatever verb they followed
        print(f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see '{prog} --help')", file=sys.stderr)
        return USAGE_ERROR
    if getattr(args, "force", False) and not str(getattr(args, "reason", "") or "").strip():
        # checked here, not in the run: a forced action without a why launched a run that failed (promote of a
        # gated version) or was taken with no reason in the ledger (the other forced actions)
        print(f"{prog}: error: --force needs --reason \"...\" (why, for the ledger) (see '{prog} --help')",
              file=sys.stderr)
        return USAGE_ERROR
    # MLflow's INFO lines (database migrations, run links) are not the verbs' output; MLFLOW_LOGGING_LEVEL wins
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        settings = Settings.from_env()  # validate the whole environment before any side effect
        refuse_simulation_in_production(args.command)
        if (check := getattr(args, "check_args", None)) is not None:  # a bad argument creates no home (_args)
            check(args)
        _home.prepare(announce=getattr(args, "announce", True), replaces_clock=getattr(args, "replaces_clock", False))
        if args.command in REGISTRY_VERBS and (down := _dagster.registry_down(settings.mlflow_uri)):
            then = down.remedy if isinstance(down, Refusal) else "run it again when MLflow answers"
            print(f"{prog}: error: {down}; nothing was read or changed: {then}", file=sys.stderr)
            return 1
        # a moved or copied home would read its artifacts from the old place and write new ones there
        if args.command in REGISTRY_VERBS | {"simulate"} and (moved := _moved_home_problem(settings)):
            print(f"{prog}: error: {moved}; nothing was read or changed: run `hive doctor --fix` to point it at this "
                  "home's artifacts", file=sys.stderr)
            return 1
        if args.command in AUDIT_VERBS and (down := _audit_topic_down(settings)):
            from hive_assets.data.kafka import KafkaRefused  # loaded by _audit_topic_down already

            then = ("correct the Kafka settings and run it again" if isinstance(down, KafkaRefused)
                    else "run it again when it answers")
            print(f"{prog}: error: {down}; nothing was collected: {then}", file=sys.stderr)
            return 1
        status = args.func(args)
        stop_if_signalled()  # a Ctrl-C that Python dropped (it can land in a finalizer) still ends in 130
        return status
    except (ConfigError, UsageError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM, which an in-process Dagster run maps to it)
        print(f"{prog}: interrupted; what finished is kept, a run cut short is marked failed, and every step is "
              "safe to run again", file=sys.stderr)
        return 130
    except MemoryError as exc:  # e.g. numpy's, for --plans 100000000000
        from hive_assets.cli._dagster import one_line

        print(f"{prog}: error: out of memory ({one_line(str(exc), 200) or 'MemoryError'}): ask for less",
              file=sys.stderr)
        return 1
    except Exception as exc:
        from hive_assets.data.store.base import StoreUnavailable  # the data package loads only on this path

        if isinstance(exc, (StoreUnavailable, _dagster.InstanceUnavailable)):
            print(f"{prog}: error: {exc}", file=sys.stderr)  # names the host, never a password
            return 1
        from hive_assets.cli._dagster import one_line

        if (sqlite_error := _sqlite_error(exc)) is not None:  # a read-only home, a file that is no database
            from hive_assets.config import hive_home

            what = f"{type(sqlite_error).__name__}: {one_line(str(sqlite_error), 200)}"
            if _SQLITE_BUSY.search(str(sqlite_error)):  # another process writes it (a loop, the daemon): transient
                print(f"{prog}: error: a SQLite database is held by another process ({what}); run the command "
                      "again when it is done (every step is safe to run again)", file=sys.stderr)
            else:
                print(f"{prog}: error: a SQLite database cannot be used ({what}): HIVE_HOME={hive_home()} must be "
                      "writable, and its store.sqlite, mlflow.db and dagster/ (or MLFLOW_TRACKING_URI's database) "
                      "the platform's own files (every step is safe to run again once they are)", file=sys.stderr)
            return 1
        from hive_assets.config import redact_uri
        from hive_assets.registry import http_refusal

        if (refused := http_refusal(exc)) is not None:  # it answers (its /health needs no login), but not us
            print(f"{prog}: error: MLflow at {redact_uri(settings.mlflow_uri)} refused the request ({refused}); "
                  "fix that and run the command again (every step is safe to repeat)", file=sys.stderr)
            return 1
        if args.command not in REGISTRY_VERBS or not _registry_outage(exc):
            raise

        # it answered the check above, then stopped: what a run changed is idempotent, so running the
        # command again completes it (the deploy verbs' intents, the runs' steps)
        print(f"{prog}: error: MLflow at {redact_uri(settings.mlflow_uri)} stopped answering: "
              f"{one_line(str(exc), 300)}; run the command again when it answers", file=sys.stderr)
        return 1


# what SQLite says of a file it cannot use (a read-only disk, a file that is no database, a damaged one) or of
# one another process holds; any other sqlite3 error is a bug, shown with its traceback
_SQLITE_BUSY = re.compile(r"locked|busy", re.I)
_SQLITE_UNUSABLE = re.compile(
    rf"unable to open|readonly|read-only|not a database|disk i/o|malformed|{_SQLITE_BUSY.pattern}", re.I)


def _sqlite_error(exc: BaseException):
    """The sqlite3 error behind `exc` (raised as is, or wrapped by SQLAlchemy, MLflow or Dagster) that says its
    file cannot be used now (`_SQLITE_UNUSABLE`), else None."""
    import sqlite3

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError)) and \
                not isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)) and \
                _SQLITE_UNUSABLE.search(str(exc)):
            return exc
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())

"""What every verb shares: the parser (errors in one line, exit 2), the help format (each option with its
default, the environment variables it reads in the epilog) and the argument types, which reject a bad
value while parsing, before any heavy import or side effect."""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

from hive_assets.config import SPECIALISTS

USAGE_ERROR = 2

# Every variable a verb may read, with what it means for the CLI; each verb's epilog lists its own.
ENVIRONMENT: dict[str, str] = {
    "HIVE_HOME": "home of the embedded stores, default .hive (relative paths resolve against the working directory)",
    "DAGSTER_HOME": "the Dagster instance, default $HIVE_HOME/dagster (created with the project's dagster.yaml)",
    "MONGODB_URI": "MongoDB/FerretDB document store; unset: SQLite $HIVE_HOME/store.sqlite",
    "MONGODB_DATABASE": "database of MONGODB_URI, default neural_hive",
    "FERRETDB_POSTGRESQL_URL": "FerretDB 1.x on PostgreSQL: the PostgreSQL database it runs on (for `hive store index`)",
    "MLFLOW_TRACKING_URI": "MLflow tracking + registry, default sqlite:///$HIVE_HOME/mlflow.db",
    "HIVE_MIRROR_PRODUCTION_STAGE": "true: mirror champion into the legacy Production stage, default false",
    "HIVE_ASSET_STORAGE": "where asset outputs are stored (Parquet/JSON), default $HIVE_HOME/assets; s3:// or gs:// URL",
    "HIVE_ENV": "production: refuse the embedded defaults (MONGODB_URI, http(s) MLFLOW_TRACKING_URI and s3:// or "
                "gs:// HIVE_ASSET_STORAGE required), default local",
    "MLFLOW_DISABLE_TELEMETRY": "true by default: MLflow sends no usage telemetry (nor does Dagster); false sends it",
    "MLFLOW_EXPERIMENT_NAME": "experiment of the training runs, default specialist_training",
    "KAFKA_BOOTSTRAP_SERVERS": "Kafka with the intentions.audit topic; unset: the intentions_audit collection",
    "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT (default), SSL, SASL_SSL or SASL_PLAINTEXT; with KAFKA_SASL_MECHANISM, "
                               "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SSL_CA_LOCATION, "
                               "KAFKA_SSL_CERTIFICATE_LOCATION, KAFKA_SSL_KEY_LOCATION (README, Secured Kafka)",
    "DATA_COLLECTION_DAYS": "default collection window in days, 90",
    "MIN_CONFIDENCE": "default NLU confidence filter, 0.7",
    "RETRAINING_FEEDBACK_THRESHOLD": "trusted feedback since the last training that triggers retraining, default 100 (hive loop: 8000)",
    "DRIFT_CHECK_INTERVAL_MINUTES": "drift sensor interval, default 60 (hive loop: 360)",
    "DRIFT_WINDOW_HOURS": "recent window a drift check compares, default 24 (hive loop: 6)",
    "AB_TEST_CHECK_INTERVAL_MINUTES": "A/B re-evaluation interval, default 60 (hive loop: 360)",
    "REVIEW_QUEUE_DAILY_BUDGET": "the review queue sensor's requests a day: 100 (default), or business=100,technical=40",
    "AB_TEST_LABEL_MATURITY_HOURS": "feedback window per A/B unit, default 48 (hive loop: 24)",
    "HIVE_RETRAIN_MAX_RUNTIME_SECONDS": "a run older than this counts as dead without a lease, default 14400",
    "HIVE_LEASE_TTL_SECONDS": "a run lease not renewed within this is stale, default 120",
    "HIVE_LEASE_WAIT_SECONDS": "how long a run waits for another run's lease of its specialist, default 60",
}
SETTINGS_NOTE = ("Every SPEC section 9 variable is validated first: a malformed value (e.g. "
                 "AB_TEST_DEFAULT_TRAFFIC=10%) is a one-line error, exit 2.")


class UsageError(Exception):
    """A bad argument found after parsing: one line on stderr, exit 2."""


def set_check(parser: argparse.ArgumentParser, check) -> None:
    """`check(args)` runs once the command line is parsed, before HIVE_HOME is created or anything else is
    done: arguments that are bad only together (`hive loop --days 1 --retrain-days 5`), or against the
    filesystem or the home's clock, which no single argument's type can tell. It raises `UsageError`."""
    parser.set_defaults(check_args=check)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `hive collect: error: ... (see hive collect --help)`, exit 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # '-3h' is a value, not an unknown option: argparse only takes '-3' or '-0.5' as one, so
        # `hive clock advance -3h` said "required: DURATION" instead of why -3h is refused
        self._negative_number_matcher = re.compile(r"^-\d")

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends `(default: X)` to every option that has a default (`on`/`off` for a flag); an option whose
    default is None (taken from the environment) says its default in its own help text."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("(default" in text or not action.option_strings or action.default in (None, argparse.SUPPRESS)
                or action.required):
            return text
        if isinstance(action.default, bool):
            return f"{text} (default: {'on' if action.default else 'off'})"
        return f"{text} (default: %(default)s)"


def _fill(text: str) -> str:
    """Wrap each paragraph (the help format is raw, for the epilog's table); indented ones are examples."""
    width = shutil.get_terminal_size().columns - 2  # argparse's own width
    return "\n\n".join(par if par.startswith(" ") else textwrap.fill(par, width) for par in text.split("\n\n"))


def add_verb(sub, name: str, *, help: str, env: tuple[str, ...], description: str | None = None) -> Parser:
    """A subcommand whose --help names the environment variables it reads."""
    width = max(len(v) for v in env)
    epilog = ("environment:\n" + "\n".join(f"  {v:<{width}}  {ENVIRONMENT[v]}" for v in env) + "\n\n"
              + _fill(SETTINGS_NOTE))
    return sub.add_parser(name, help=help, description=_fill(description or help[:1].upper() + help[1:] + "."),
                          epilog=epilog, formatter_class=HelpFormatter)


def specialists(value: str, *, all_allowed: bool = True) -> list[str]:
    """'all', one name, or a comma-separated list of specialists."""
    if value == "all":
        return list(SPECIALISTS)
    names = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))  # a name twice is one run
    unknown = [n for n in names if n not in SPECIALISTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown specialist(s) {', '.join(map(repr, unknown)) or repr(value)}; "
            f"choose from {', '.join(SPECIALISTS)}" + (" or 'all'" if all_allowed else ""))
    return names


def one_specialist(text: str) -> str:
    """Exactly one specialist name (the verbs that act on one model)."""
    names = specialists(text, all_allowed=False)
    if len(names) != 1:
        raise argparse.ArgumentTypeError(f"one specialist, got {text!r}; choose from {', '.join(SPECIALISTS)}")
    return names[0]


class GivenOnce(argparse.Action):
    """An option that may be given once: a second `--specialist` silently replaced the first (argparse's way),
    so `--specialist business --specialist technical` acted on technical alone."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = f"_{self.dest}_given"
        if (before := getattr(namespace, seen, None)) is not None:
            def shown(value) -> str:
                return ",".join(value) if isinstance(value, list) else str(value)

            parser.error(f"argument {option_string}: given twice ({shown(before)}, then {shown(values)}); several "
                         f"go in one comma-separated list, e.g. {option_string} business,technical")
        setattr(namespace, seen, values)
        setattr(namespace, self.dest, values)


class DeprecatedAlias(GivenOnce):
    """An old spelling of an option: parsed as the new one, with a one-line note on stderr."""

    def __init__(self, option_strings, dest, replacement: str, **kwargs):
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: note: {option_string} is deprecated here, use {self.replacement}", file=sys.stderr)
        super().__call__(parser, namespace, values, option_string)


def add_specialist(parser: argparse.ArgumentParser, *, one: bool = False, required: bool = False,
                   default: str | None = "all", deprecated: tuple[str, ...] = (), note: str = "") -> None:
    """`--specialist`, the same on every verb: one name (`one`), or 'all' / a name / a comma-separated
    list. `deprecated`: old spellings still accepted (a one-line note on stderr); with `required`, one of
    them satisfies it. `note`: what the selection means on this verb, when it is not the obvious."""
    kind = one_specialist if one else specialists
    help_text = ("the specialist" if one else "'all', a specialist, or a comma-separated list") + (
        f": {note}" if note else "")
    target = parser.add_mutually_exclusive_group(required=True) if required and deprecated else parser
    if deprecated:
        default = None if required else default
    target.add_argument("--specialist", type=kind, required=required and not deprecated, action=GivenOnce,
                        default=None if required else (kind(default) if default is not None else None),
                        help=help_text + ("" if required or default is None else f" (default: {default})"))
    for old in deprecated:
        target.add_argument(old, dest="specialist", type=kind, action=DeprecatedAlias, replacement="--specialist",
                            help=argparse.SUPPRESS)


def _number(kind, text: str, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


# a century: the longest window or simulated period a verb takes (far beyond any real one); past it dates
# leave the datetime range (year 9999) and a run would fail with OverflowError instead of a usage line
MAX_DAYS = 36_500


def _at_most_max_days(value, text: str):
    if value > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DAYS:,} days, got {text!r}")
    return value


def window_days(text: str) -> int:
    """Whole days of a window: 1..MAX_DAYS."""
    return _at_most_max_days(positive_int(text), text)


def period_days(text: str) -> float:
    """A period in days (fractions allowed): above 0, at most MAX_DAYS."""
    return _at_most_max_days(positive_float(text), text)


def non_negative_int(text: str) -> int:
    value = _number(int, text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(float, text, "a positive number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(float, text, "a number between 0 and 1")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


# instants a verb takes: far from datetime's ends (years 1 and 9999), where converting to UTC, a window
# before it or a clock advanced after it would overflow into a traceback
EARLIEST_YEAR, LATEST_YEAR = 1900, 9000


def iso_datetime(text: str) -> datetime:
    """ISO-8601 with any offset, as aware UTC; a naive time is UTC (never the machine's local time)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an ISO-8601 date-time such as 2026-01-31T12:00:00Z, "
                                         f"got {text!r}") from None
    try:
        value = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        value = None
    if value is None or not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise argparse.ArgumentTypeError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}, got {text!r}")
    return value


def clock_instant(text: str) -> datetime:
    """An ISO-8601 instant a simulated clock can say (`hive clock pin`'s range): `hive simulate --now`, `hive
    clock pin`. Documents stamped after 2250 count for no clock, yet the note on a later --now said they would
    "once the clock gets there"; a pin there was refused after the home had been created. (`hive loop --start`
    is checked with its --days: `check_loop_args`.)"""
    from hive_assets import clock

    value = iso_datetime(text)
    if not clock.EARLIEST_INSTANT <= value <= clock.LATEST_INSTANT:
        raise argparse.ArgumentTypeError(f"must be between {clock.EARLIEST_INSTANT:%Y-%m-%d} and "
                                         f"{clock.LATEST_INSTANT:%Y-%m-%d} UTC, where the home's clock can be "
                                         f"(`hive clock pin`), got {text!r}")
    return value


def _registry_rule(rule: str, text: str):
    """`hive_assets.registry.<rule>(text)`, its RegistryError a usage error: refused before any run."""
    from hive_assets import registry

    try:
        return getattr(registry, rule)(text)
    except registry.RegistryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def model_version_ref(text: str) -> str:
    """N (or vN), <model>/N or models:/<model>/N: the registry's rule."""
    _registry_rule("parse_version_ref", text)
    return text


def version_number(text: str) -> str:
    """A bare registry version number ("3", or "v3" as `hive deploy history` prints it), as "3"."""
    try:
        name, number = _registry_rule("parse_version_ref", text)
    except argparse.ArgumentTypeError:
        name = number = None
    if name is not None or number is None or int(number) < 1:
        raise argparse.ArgumentTypeError(f"must be a version number such as 3, got {text!r}")
    return str(int(number))


def alias_name(text: str) -> str:
    """An alias MLflow accepts (letters, digits, '_' and '-'; not 'latest' or 'v<N>')."""
    return _registry_rule("check_alias", text)


def mlflow_run_id(text: str) -> str:
    """An MLflow run id as the UI shows it (32 hex digits in practice; letters, digits, '_' and '-')."""
    value = text.strip()
    if not re.fullmatch(r"[0-9A-Za-z_-]+", value):
        raise argparse.ArgumentTypeError(f"must be an MLflow run id such as 0f3c9a1e2b7d4c58a6e1d2f3b4c5a6d7, "
                                         f"got {text!r}")
    return value


def non_empty(text: str) -> str:
    """A name or words the user gives (an idempotency key, a test id, a reason, a feedback source): an empty one
    was taken, silently, as none at all (a key or test id that guards nothing, a reason the ledger does not
    have, a quality-exempt source no feedback has, which replaced the default one). Its default is None, not
    "": argparse passes a string default through the type."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must not be empty, got {text!r} (leave the option out instead)")
    return text


def non_empty_path(text: str) -> Path:
    """A path the user gives: an empty one was the working directory (Path("") is "."), and its error named "."."""
    return Path(non_empty(text))


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}" if not path.exists() else f"not a file: {text!r}")
    return path

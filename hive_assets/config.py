"""Platform settings (SPEC section 9), read from the environment with the seed's names.

Unset means the embedded default: everything lives under HIVE_HOME (default `.hive/` in the
working directory): the SQLite document store, MLflow's SQLite backend and artifacts, and the
Dagster instance (`dagster/`, unless DAGSTER_HOME is set).

Asset outputs (frames as Parquet, results as JSON) live under HIVE_ASSET_STORAGE: `$HIVE_HOME/assets` on
local disk by default, `s3://bucket/prefix` or `gs://bucket/prefix` in production.

`HIVE_ENV=production` turns every embedded default into an error: `Settings.from_env()` (which the
resources, the CLI and the sensors all read) raises one ConfigError naming each missing or unfit
MONGODB_URI, MLFLOW_TRACKING_URI (http(s)) and HIVE_ASSET_STORAGE (s3:// or gs://), so a mistyped secret
key never trains on an empty SQLite store inside a pod that vanishes.

A malformed value raises `ConfigError` (a ValueError) naming the variable and quoting the value, e.g.
"AB_TEST_DEFAULT_TRAFFIC must be a number, got '10%'": the CLI prints it as one line, and Dagster shows
the same message when the definitions load (the resources are built from `Settings.from_env()`).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hive_assets.routing import MIN_TRAFFIC_PERCENT

SPECIALISTS: tuple[str, ...] = ("business", "technical", "behavior", "evolution", "architecture")
CLASSES: tuple[str, ...] = ("approve", "reject", "review_required")
# SPEC section 4; the estimators live in hive_assets.training (kept here so the CLI need not import sklearn)
MODEL_TYPES: tuple[str, ...] = ("xgboost", "random_forest", "gradient_boosting", "logistic", "sparse_logistic", "mlp")
# `model_type="auto"`: fit each of AUTO_CANDIDATES (parameters chosen on validation) and keep the best on
# validation macro-F1 (hive_assets.training; why these three: BENCHMARKS.md, learning curve, issue 24)
AUTO_MODEL_TYPE = "auto"
AUTO_CANDIDATES: tuple[str, ...] = ("xgboost", "sparse_logistic", "mlp")
DEFAULT_MONGODB_DATABASE = "neural_hive"
DEFAULT_EXPERIMENT_NAME = "specialist_training"
#: a difference exactly at a decision's bound lands a few ulps either side of it (0.82 - 0.80 is
#: 0.019999999999999907, 0.8 - 0.78 is 0.020000000000000018): the gates and the A/B controller compare it at
#: the bound, as the SPEC's "up >= 0.02" and "down > 0.02" read
TIE_TOLERANCE = 1e-9


class ConfigError(ValueError):
    """A malformed environment value; the message names the variable and quotes what it got."""


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


#: variables the home's clock file set in this process (`clock.apply_home_settings`): (value, that file). An
#: error in one names the file, since nobody exported it
_SET_BY_HOME: dict[str, tuple[str, str]] = {}


def note_home_settings(applied: dict[str, str], path) -> None:
    _SET_BY_HOME.update({name: (value, str(path)) for name, value in applied.items()})


def _source(name: str) -> str:
    value, path = _SET_BY_HOME.get(name, (None, ""))
    return f" (set by the 'settings' of {path}, not exported)" if value is not None and \
        os.environ.get(name) == value else ""


def _raw(name: str) -> str | None:
    raw = os.environ.get(name)
    return None if raw is None or raw.strip() == "" else raw.strip()


def _env_number(name: str, default, parse, what: str, low, high, low_open: bool, high_open: bool = False):
    """`parse(value)` of the variable, finite and within [low, high] (each end excluded when open)."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}{_source(name)}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}{_source(name)}")
    if (low is not None and (value <= low if low_open else value < low)) or \
            (high is not None and (value >= high if high_open else value > high)):
        bounds = ([f"{'>' if low_open else '>='} {low:g}"] if low is not None else []) + \
                 ([f"{'<' if high_open else '<='} {high:g}"] if high is not None else [])
        raise ConfigError(f"{name} must be {' and '.join(bounds)}, got {raw!r}{_source(name)}")
    return value


def env_float(name: str, default: float, *, low: float | None = None, high: float | None = None,
              low_open: bool = False, high_open: bool = False) -> float:
    """The variable as a finite float (unset or blank: `default`); ConfigError when malformed or out of range."""
    return _env_number(name, default, float, "a number", low, high, low_open, high_open)


def env_int(name: str, default: int, *, low: int | None = None, high: int | None = None) -> int:
    """The variable as an integer (unset or blank: `default`); ConfigError when malformed or out of [low, high]."""
    return _env_number(name, default, int, "an integer", low, high, False)


def env_bool(name: str, default: bool) -> bool:
    """true/false, 1/0, yes/no in any case (unset or blank: `default`); anything else is a ConfigError,
    so a typo never silently flips a switch."""
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of true/false, 1/0, yes/no, got {raw!r}{_source(name)}")


def optional_extension(module: str, pure_python_switch: str):
    """The optional C extension `module` (setup.py builds it when a compiler is available), or None when it was
    not built or the environment variable `pure_python_switch` asks for the pure-Python path: any value but
    empty, 0, false or no (a typo errs towards the path every machine has; the results are the same)."""
    if os.environ.get(pure_python_switch, "").strip().lower() not in ("", "0", "false", "no"):
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


REVIEW_QUEUE_BUDGET_ENV = "REVIEW_QUEUE_DAILY_BUDGET"
DEFAULT_REVIEW_QUEUE_DAILY_BUDGET = 100
_WHOLE = re.compile(r"[0-9]+")  # ASCII digits: str.isdigit() takes '²', which int() then refuses


def review_queue_daily_budgets() -> dict[str, int]:
    """REVIEW_QUEUE_DAILY_BUDGET per specialist: one number for all (`100`), or `name=number` pairs
    (`business=100,technical=40`; a specialist not named gets the plain number if one is given, else 100).
    ConfigError for anything else, a name twice or a name no specialist has. Read by the review sensor (a bad
    value skips its tick, saying so in one line) and checked by `hive status`, not with the other settings: a
    typo in the review queue's budget must not stop the code location, or every training run, from starting."""
    text = _raw(REVIEW_QUEUE_BUDGET_ENV) or ""
    budgets: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.rpartition("=")
        name = name.strip() or "*"
        if name in budgets or (name != "*" and name not in SPECIALISTS) or not _WHOLE.fullmatch(value.strip()):
            raise ConfigError(f"{REVIEW_QUEUE_BUDGET_ENV} must be a number of requests per day (>= 0), or "
                              f"specialist=number pairs such as business=100,technical=40 (each name once), got "
                              f"{text!r}")
        budgets[name] = int(value.strip())
    default = budgets.pop("*", DEFAULT_REVIEW_QUEUE_DAILY_BUDGET)
    return {s: budgets.get(s, default) for s in SPECIALISTS}


def retrain_max_runtime_seconds() -> int:
    """HIVE_RETRAIN_MAX_RUNTIME_SECONDS (default 4 h): run monitoring terminates a `retrain_specialist` run
    still running after this long (the `dagster/max_runtime` tag), so a hung training frees its slot."""
    return env_int("HIVE_RETRAIN_MAX_RUNTIME_SECONDS", 14400, low=60)


# MLflow's database tracking stores by URI scheme (before any `+driver`), with their default ports (the
# embedded default is sqlite, a file)
MLFLOW_DATABASE_SCHEMES = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
#: the tracking URI schemes MLflow opens (before any `+driver`; "" is a path)
MLFLOW_STORE_SCHEMES = ("", "file", "sqlite", "http", "https", *MLFLOW_DATABASE_SCHEMES, "databricks",
                        "databricks-uc", "uc")


UNESCAPED_USERINFO = ("a '/', '@', ':', '?' or '#' in the user name or password must be percent-encoded "
                      "(urllib.parse.quote)")


def http_url_problem(uri: str) -> str | None:
    """Why an http(s) URL cannot be used as written (None when it can): no host or a port that is not a
    number, or an '@' after the host. Each is a password with an unescaped '/', '?' or '#' (urlsplit,
    requests and MLflow end the host there): its start became the "port" and a traceback showed it, or the
    host was the user name and MLflow's errors quoted the rest as the URL ("API request to
    http://user:2024/pa@ss@host/api/... failed", and urllib3's "url: /pa@ss@host/api/...")."""
    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 (raises for a port that is no number)
        hosted = bool(parts.hostname)
    except ValueError:
        hosted = False
    if not hosted:
        return "no host, or a port that is not a number"
    if "@" in uri.partition("://")[2][len(parts.netloc):]:
        return "an '@' after its host"
    return None


def _url_scheme(name: str, value: str) -> str:
    """The lowercased scheme of the URL in variable `name`; a URL urlsplit cannot read (an unclosed '[' of an
    IPv6 host: "Invalid IPv6 URL", raised at the first use and shown as a traceback) is a ConfigError."""
    try:
        return urlsplit(value).scheme.lower()
    except ValueError as exc:
        raise ConfigError(f"{name} is not a usable URL ({exc}: an IPv6 host goes in '[' and ']'); the value is not "
                          "shown, it may hold a password") from None


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI ("" when unset: the embedded `$HIVE_HOME/mlflow.db`), refused here when MLflow
    would refuse it later with a traceback: a file store (MLflow 3 keeps it only with
    MLFLOW_ALLOW_FILE_STORE=true), or a database whose driver is not installed (SQLAlchemy 2.1's default
    driver for `postgresql://` is psycopg 3)."""
    raw = _raw("MLFLOW_TRACKING_URI")
    if raw is None:
        return ""
    scheme = _url_scheme("MLFLOW_TRACKING_URI", raw)
    if scheme in ("http", "https") and (problem := http_url_problem(raw)):
        raise ConfigError(f"MLFLOW_TRACKING_URI is not a usable URL ({problem}): {UNESCAPED_USERINFO}; the value "
                          "is not shown, it may hold a password")
    if scheme.partition("+")[0] not in MLFLOW_STORE_SCHEMES:  # MLflow's refusal quoted the whole URI
        hint = ": use postgresql+psycopg2://" if scheme in ("postgres", "postgres+psycopg2") else ""
        raise ConfigError(f"MLFLOW_TRACKING_URI={redact_uri(raw)!r} has a scheme MLflow does not know "
                          f"({scheme!r}){hint} (one of {', '.join(s + '://' for s in MLFLOW_STORE_SCHEMES if s)})")
    if scheme in ("", "file") and not env_bool("MLFLOW_ALLOW_FILE_STORE", False):
        raise ConfigError(f"MLFLOW_TRACKING_URI={redact_uri(raw)!r} is a file store, which MLflow 3 refuses: use "
                          "sqlite:///PATH/mlflow.db, an http(s):// server, or unset it for $HIVE_HOME/mlflow.db "
                          "(MLFLOW_ALLOW_FILE_STORE=true keeps the file store)")
    if scheme.partition("+")[0] in MLFLOW_DATABASE_SCHEMES:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            make_url(raw).get_dialect().import_dbapi()
        except (NoSuchModuleError, ImportError) as exc:
            hint = ", or postgresql+psycopg2:// (installed)" if scheme == "postgresql" else ""
            raise ConfigError(f"MLFLOW_TRACKING_URI={redact_uri(raw)!r} cannot be opened here ({exc}): install the "
                              f"database driver{hint}") from None
        except (ArgumentError, ValueError):  # its text quoted a piece: "invalid literal for int(): '9Q@db'"
            raise ConfigError(f"MLFLOW_TRACKING_URI={redact_uri(raw)!r} is not a URL SQLAlchemy reads (a port that is "
                              f"not a number?): {UNESCAPED_USERINFO}") from None
    return raw


PRODUCTION = "production"
# Dagster's instance storages that keep their data on the local disk (their class or `storage` key, lower case):
# production refuses them, in the CLI's instance settings and in a run's live instance alike
LOCAL_STORAGE_MARKERS = ("sqlite", "inmemory", "in_memory")
_ENVIRONMENTS = ("local", PRODUCTION)
OBJECT_STORAGE_SCHEMES = ("s3", "gs")
#: an object-storage URL the io_manager writes to: the scheme in lowercase, `://`, a bucket name as S3 and GCS
#: accept one (lowercase letters, digits, '.', '-', '_'), then an optional prefix
OBJECT_STORAGE_URL = re.compile(r"(s3|gs)://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?")
_LOOKS_LIKE_A_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")  # not a drive letter, not a name with a colon
ASSET_STORAGE_FORMS = "s3://BUCKET[/PREFIX] or gs://BUCKET[/PREFIX], the bucket in lowercase letters, digits, '.', '-'"


def asset_storage_uri() -> str:
    """HIVE_ASSET_STORAGE: an object-storage URL or a local directory; "" when unset. A value that looks like a
    URL and is not one of those (`s3:/bucket`, `S3://bucket`, `s3://` with no bucket) is an error: resolved as
    a directory, it used to write the outputs to a local path named after it."""
    raw = _raw("HIVE_ASSET_STORAGE")
    if raw is None:
        return ""
    if _LOOKS_LIKE_A_URL.match(raw) and not OBJECT_STORAGE_URL.fullmatch(raw):
        raise ConfigError(f"HIVE_ASSET_STORAGE must be {ASSET_STORAGE_FORMS}, or a local directory; got "
                          f"{redact_uri(raw)!r}")
    return raw


def hive_env() -> str:
    """HIVE_ENV: `local` (the default: embedded stores under HIVE_HOME) or `production`; anything else is
    a ConfigError, so a typo like `prod` never silently means local."""
    raw = (_raw("HIVE_ENV") or "local").lower()
    if raw not in _ENVIRONMENTS:
        raise ConfigError(f"HIVE_ENV must be one of {', '.join(_ENVIRONMENTS)}, got {os.environ['HIVE_ENV']!r}")
    return raw


def _scheme_or_problem(name: str, value: str, problems: list[str]) -> str | None:
    """`_url_scheme`, or None with its refusal added to `problems`."""
    try:
        return _url_scheme(name, value)
    except ConfigError as exc:
        problems.append(str(exc))
        return None


def production_problems() -> list[str]:
    """What keeps HIVE_ENV=production from running, one phrase per variable (values redacted); empty when
    every production service is set or in local mode."""
    if hive_env() != PRODUCTION:
        return []
    problems = mongodb_uri_problems("MONGODB_URI", _raw("MONGODB_URI"))
    problems += _registry_production_problems()
    storage = _raw("HIVE_ASSET_STORAGE")
    if storage is None:
        problems.append("HIVE_ASSET_STORAGE is not set")
    else:
        problems += object_storage_problems("HIVE_ASSET_STORAGE", storage)
    return problems


def mongodb_uri_problems(name: str, mongodb: str | None) -> list[str]:
    """Why `mongodb` (the setting `name`) is no production document store, one phrase; [] for a readable
    mongodb:// or mongodb+srv:// URI. None or empty: not set (the embedded store on the pod's disk)."""
    if not mongodb:
        return [f"{name} is not set"]
    if not mongodb.startswith(("mongodb://", "mongodb+srv://")):  # pymongo's schemes, in lower case only
        # pymongo takes "foo" for a host name: the code location loaded, and every run failed later
        return [f"{name} must be a mongodb:// or mongodb+srv:// URI, got {redact_uri(mongodb)!r}"]
    if not _mongodb_hosts_readable(mongodb):
        return [f"{name} has no host, or a port that is not a number (the value is not shown, it may hold a "
                f"password): {UNESCAPED_USERINFO}"]
    if not _mongodb_userinfo_readable(mongodb):
        return [f"{name}'s user name or password is not escaped (the value is not shown): {UNESCAPED_USERINFO}"]
    return []


def object_storage_problems(name: str, value: str) -> list[str]:
    """Why `value` (the setting `name`) is no production location for asset outputs, one phrase; [] for an
    s3:// or gs:// URL of a bucket (a local path would put outputs on the pod's disk)."""
    problems: list[str] = []
    if (scheme := _scheme_or_problem(name, value, problems)) is None:
        pass  # its problem is listed
    elif scheme not in OBJECT_STORAGE_SCHEMES:
        problems.append(f"{name} must be an s3:// or gs:// URL, got {redact_uri(value)!r}")
    elif not OBJECT_STORAGE_URL.fullmatch(value):
        problems.append(f"{name} must be {ASSET_STORAGE_FORMS}, got {redact_uri(value)!r}")
    elif scheme == "gs" and importlib.util.find_spec("gcsfs") is None:
        problems.append(f"{name} is a gs:// URL but the gcsfs package is not installed (pip install gcsfs)")
    return problems


# What an S3 store's error answer to the io_manager's request at step start (listing its prefix) says that no
# retry changes. The codes: the credentials themselves are wrong (an unknown key id, a wrong secret, a bad or
# expired session token), whatever was asked. Not AccessDenied: credentials that may not list the prefix may
# still write under it (a policy allowing only PutObject/GetObject there), so the write's own answer decides.
ABSENT_BUCKET, REFUSED_CREDENTIALS = "absent bucket", "refused credentials"
S3_TOKEN_REFUSALS = frozenset({"InvalidToken", "ExpiredToken", "TokenRefreshRequired"})
S3_CREDENTIAL_REFUSALS = S3_TOKEN_REFUSALS | {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurity"}
S3_CREDENTIAL_SETTINGS = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the pod's workload identity)"


def s3_credential_settings(code: str | None) -> str:
    """What to check when an S3 store refused the credentials with `code`."""
    if code in S3_TOKEN_REFUSALS:  # temporary credentials: the session token is the part that expires
        return "AWS_SESSION_TOKEN (or the pod's workload identity)"
    return S3_CREDENTIAL_SETTINGS


def s3_refusal(code: str | None, status: int | None) -> str | None:
    """ABSENT_BUCKET or REFUSED_CREDENTIALS for an S3 store's error answer (its error code, its HTTP status) to
    listing the asset storage's prefix, else None (AccessDenied, a 5xx, throttling: the write's own error and
    the step's retries stand)."""
    if code == "NoSuchBucket":
        return ABSENT_BUCKET
    if code in S3_CREDENTIAL_REFUSALS or status == 401:  # S3 says 403 with a code; a proxy in front of it, 401
        return REFUSED_CREDENTIALS
    return None


# What the platform's own processes (the code location, its run workers, the `hive` CLI) set for MLflow unless
# the environment already does (set_mlflow_process_defaults), before mlflow is imported: it reads them then.
MLFLOW_PROCESS_DEFAULTS = {
    # MLflow 3 sends usage data to mlflow-telemetry.io from every process that imports it: off, as Dagster's is
    # (`telemetry: enabled: false`, dagster.yaml); MLFLOW_DISABLE_TELEMETRY=false opts back in
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # the progress bars of artifact downloads: carriage-return noise in a run's step log and the CLI's stderr
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def set_mlflow_process_defaults() -> None:
    """MLFLOW_PROCESS_DEFAULTS for the variables the environment leaves unset. Called by the code location
    and the CLI, not on import of the package: a specialist service that imports the serving client keeps
    its own."""
    for name, value in MLFLOW_PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)


def _mongodb_authority(uri: str) -> str:
    """`[user[:password]@]host[:port][,...]`: what lies between the scheme and the path or options."""
    return uri.partition("://")[2].partition("/")[0].partition("?")[0]


def _mongodb_hosts_readable(uri: str) -> bool:
    """Whether `mongodb[+srv]://[user[:password]@]host[:port][,host[:port]...][/...]` names its hosts (each
    with a port that is a number, when given), as pymongo will parse them (it refused the rest in every run)."""
    hosts = _mongodb_authority(uri).rpartition("@")[2]
    for host in hosts.split(","):
        name, port = host.rsplit(":", 1) if ":" in host and not host.endswith("]") else (host, None)
        if not name or (port is not None and not port.isdigit()):
            return False
    return True


def _mongodb_userinfo_readable(uri: str) -> bool:
    """Whether the URI's `user:password` is escaped as pymongo requires: `mongodb://u:s3:cret@h/` passed the
    host check, and every run and sensor tick then failed on pymongo's own refusal. pymongo's rule itself."""
    from pymongo.errors import InvalidURI
    from pymongo.uri_parser_shared import parse_userinfo

    userinfo, at, _ = _mongodb_authority(uri).rpartition("@")
    if not at:
        return True
    try:
        parse_userinfo(userinfo)
    except InvalidURI:
        return False
    return True


def _registry_production_problems() -> list[str]:
    """production_problems' part for the model registry (MLFLOW_TRACKING_URI)."""
    return registry_uri_problems("MLFLOW_TRACKING_URI", _raw("MLFLOW_TRACKING_URI"))


def registry_uri_problems(name: str, mlflow: str | None) -> list[str]:
    """Why `mlflow` (the setting `name`) is no production model registry, one phrase; [] for a usable
    http(s):// URL. None or empty: not set (the embedded registry on the pod's disk)."""
    problems: list[str] = []
    if not mlflow:
        problems.append(f"{name} is not set")
    elif (scheme := _scheme_or_problem(name, mlflow, problems)) not in ("http", "https", None):
        problems.append(f"{name} must be an http(s):// URL, got {redact_uri(mlflow)!r}")
    elif scheme is not None and (problem := http_url_problem(mlflow)):  # listed with the others, not after them
        problems.append(f"{name} is not a usable URL ({problem}): {UNESCAPED_USERINFO}; the value is "
                        "not shown, it may hold a password")
    return problems


def registry_uri() -> str:
    """The model registry the settings name, for a process that only reads it (a specialist service's
    `SpecialistRouter`): MLFLOW_TRACKING_URI, else the embedded `$HIVE_HOME/mlflow.db`. Under
    HIVE_ENV=production only an http(s) MLFLOW_TRACKING_URI, and nothing else is required of it (the
    store and the asset storage are the platform's, not a service's): ConfigError otherwise."""
    if hive_env() == PRODUCTION:
        _refuse_production(_registry_production_problems())
    return mlflow_tracking_uri() or f"sqlite:///{hive_home() / 'mlflow.db'}"


def absent_sqlite_database(uri: str) -> str | None:
    """The path of a `sqlite:` MLflow database whose file does not exist (opening it creates it, an empty
    registry, directories included), else None."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    try:
        database = make_url(uri).database
    except Exception:  # not a URL SQLAlchemy reads: MLflow's client says why
        return None
    if not database or database == ":memory:" or database.startswith("file:") or Path(database).exists():
        return None
    return database


def _refuse_production(problems: list[str]) -> None:
    if problems:
        raise ConfigError(f"HIVE_ENV=production refuses the embedded defaults: {'; '.join(problems)}")


def check_production() -> None:
    """ConfigError, one line naming every missing production setting, when HIVE_ENV=production lacks any; a
    warning when HIVE_SIMULATED_NOW is set there (a test's setting left in a ConfigMap freezes every "now":
    A/B tests, cooldowns and drift windows stop moving; tests of production mode set it on purpose)."""
    _refuse_production(production_problems())
    if hive_env() == PRODUCTION and (frozen := _raw("HIVE_SIMULATED_NOW")):
        import logging

        logging.getLogger("hive_assets").warning(
            "HIVE_ENV=production with HIVE_SIMULATED_NOW=%s: every 'now' of the platform is that instant, not the "
            "wall clock; unset it unless this is a test", frozen)


HOME_MARKERS = ("store.sqlite", "mlflow.db", "clock.json")  # what only a home holds beside its `dagster`


def hive_home() -> Path:
    """HIVE_HOME (default `.hive`), resolved against the working directory. Unset while DAGSTER_HOME is the
    `dagster` directory of another home is a ConfigError: Dagster's habit (DAGSTER_HOME alone) ran the assets
    on an empty `./.hive` beside the intended instance, with its clock, and recorded that as the partition's
    latest materialization."""
    explicit = _raw("HIVE_HOME")
    if explicit:
        return Path(explicit).resolve()
    default = Path(".hive").resolve()
    instance = _raw("DAGSTER_HOME")
    if instance:
        instance_dir = Path(instance).resolve()
        owner = instance_dir.parent
        if (instance_dir.name == "dagster" and owner != default
                and any((owner / marker).exists() for marker in HOME_MARKERS)):
            raise ConfigError(f"DAGSTER_HOME={instance_dir} is the instance of the home {owner}, but "
                              f"HIVE_HOME is not set, so the stores would be {default}: set HIVE_HOME={owner} (or "
                              "`eval \"$(hive env)\"` with it)")
    return default


def dagster_home(home: Path | None = None) -> Path:
    """DAGSTER_HOME when set (resolved against the working directory), else `<HIVE_HOME>/dagster`."""
    explicit = _raw("DAGSTER_HOME")
    return Path(explicit).resolve() if explicit else (home or hive_home()) / "dagster"


#: schemes whose userinfo without a password names a user or role (a MongoDB X.509 or Kerberos user, a
#: PostgreSQL role with its password in .pgpass or a parameter), or a path: that bare userinfo stays readable
_IDENTITY_SCHEMES = frozenset({"mongodb", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle", "sqlite",
                               "file"})


def uri_userinfo(uri: str) -> tuple[str, str | None, str] | None:
    """(user, password or None, what follows the '@') of `scheme://user[:password]@...`, else None.

    The userinfo runs to the LAST '@' of the URI, so a password with unescaped '/', '?', '#' or '@' is all
    of it, whatever a client makes of it (pymongo cuts it at the first '?' then '/', SQLAlchemy at the first
    '@', libpq at the first '/'). The price: an '@' in the path or query of a URI with no userinfo makes what
    precedes it a userinfo too (`mongodb://db:27017/?appName=a@b` reads as user `db`, password
    `27017/?appName=a`, as SQLAlchemy reads it), so it is masked: too much rather than a password."""
    _scheme, sep, rest = uri.partition("://")
    return _split_userinfo(rest) if sep else None


def _split_userinfo(rest: str) -> tuple[str, str | None, str] | None:
    at = rest.rfind("@")
    if at < 0:
        return None
    user, colon, password = rest[:at].partition(":")
    return user, (password if colon else None), rest[at + 1:]


#: passwords that say the user name is the credential: GitHub's `https://TOKEN:x-oauth-basic@github.com/...`
_TOKEN_IS_USER_PASSWORDS = frozenset({"x-oauth-basic"})
#: user names that are tokens by their issuer's prefix (GitHub, GitLab, Slack, OpenAI and Stripe keys, AWS
#: access key ids; case-sensitive, as issued: `asia-team` is a user), or by their form (GitHub's classic 40
#: hex digits), whatever the password says
_TOKEN_USER = re.compile(r"^(?:gh[pousr]_|github_pat_|glpat-|xox[abposr]-|sk-|sk_(?:live|test)_|AKIA|ASIA"
                         r"|[0-9a-fA-F]{40}$)")


def _redact_userinfo(scheme: str, rest: str) -> str:
    """`rest` (what follows `scheme://`) with its password masked, or its whole userinfo when it has no
    password or an empty one, unless the scheme is one of _IDENTITY_SCHEMES (`https://TOKEN@host` and
    `https://TOKEN:@host` carry a token). Outside those schemes the user is masked too when it is the token:
    a password such as `x-oauth-basic`, or a user name with a token's prefix (`ghp_...`)."""
    userinfo = _split_userinfo(rest)
    if userinfo is None:
        return rest
    user, password, host = userinfo
    identity = scheme.lower().partition("+")[0] in _IDENTITY_SCHEMES
    if password:
        # the password runs to the last '@': `TOKEN:x-oauth-basic@github.com/o/r.git@v1.0` (pip) has
        # `x-oauth-basic@github.com/o/r.git` as its password, the placeholder before its first '@'
        placeholder = password.partition("@")[0].lower() in _TOKEN_IS_USER_PASSWORDS
        if not identity and (placeholder or _TOKEN_USER.match(user)):
            return f"***@{host}"
        return f"{user}:***@{host}"
    return rest if identity else f"***@{host}"


#: a query parameter or libpq keyword whose value is a credential: `?password=`, `&token=`, MongoDB's
#: `tlsCertificateKeyFilePassword=` and `authMechanismProperties=AWS_SESSION_TOKEN:...`, `password=` of a DSN,
#: its value quoted too (libpq's `password='a b'`, a repr's `token='...'`, to the closing quote or the end)
_SECRET_PARAMETER = re.compile(r"(?i)((?:^|(?<=[?&;\s]))[\w.-]*(?:pass|pwd|secret|token|authmechanismproperties"
                               r"|api_?key|access_?key|signature)[\w.-]*\s*=\s*)"
                               r"(?:'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^&;\s'\"#]+)")


def redact_uri(uri: str | None) -> str:
    """The URI, safe for logs and UI metadata: its password (from the first ':' of the userinfo to the
    URI's last '@', see uri_userinfo) and any credential parameter's value replaced by ***.

    A userinfo with no password, or an empty one, is masked whole (`https://***@host/...`): in http(s), git
    or redis URLs a bare userinfo, or `TOKEN:`, is conventionally a token. Except in a database URI (the
    _IDENTITY_SCHEMES: mongodb, postgresql, mysql, ...), where a user without a password is a name (an
    X.509 subject, a Kerberos principal, a role whose password is in .pgpass), not a secret. Outside those
    schemes a user that is itself the token (`TOKEN:x-oauth-basic@`, `ghp_...:x@`) is masked with the password."""
    if not uri:
        return ""
    scheme, sep, rest = uri.partition("://")
    if sep:
        uri = f"{scheme}://{_redact_userinfo(scheme, rest)}"
    return _SECRET_PARAMETER.sub(r"\1***", uri)


#: a URI inside free text: its scheme, then everything up to the next whitespace (a password may hold any
#: other character, quotes included; text with no '@' after the `://`, such as `http://host:5000/api/2.0`,
#: has no userinfo and is left as it is)
_URI_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(\S*)")


def redact_secrets(text: str) -> str:
    """Free text (an error message) with every `scheme://...` in it redacted as redact_uri does, the URI
    running to the next whitespace (so to its last '@' before one), and the value of any credential
    parameter (`password=...`, `token=...`) as ***."""
    text = _URI_IN_TEXT.sub(lambda m: f"{m[1]}://{_redact_userinfo(m[1], m[2])}", text)
    return _SECRET_PARAMETER.sub(r"\1***", text)


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: each KafkaSecurity field's variable (librdkafka's property name, in upper case with '_' for '.')
KAFKA_SECURITY_ENV = {
    "security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_username": "KAFKA_SASL_USERNAME",
    "sasl_password": "KAFKA_SASL_PASSWORD",
    "ssl_ca_location": "KAFKA_SSL_CA_LOCATION",
    "ssl_certificate_location": "KAFKA_SSL_CERTIFICATE_LOCATION",
    "ssl_key_location": "KAFKA_SSL_KEY_LOCATION",
    "ssl_key_password": "KAFKA_SSL_KEY_PASSWORD",
}
KAFKA_CREDENTIALS = ("sasl_username", "sasl_password", "ssl_key_password")  # bound with dg.EnvVar, never shown


@dataclass(frozen=True)
class KafkaSecurity:
    """How a Kafka client proves who it is and checks the brokers: TLS (`SSL`), SASL user and password
    (`SASL_PLAINTEXT`), or both (`SASL_SSL`); `PLAINTEXT` is neither. The CA file verifies the brokers'
    certificates (unset: the system's CAs); a client certificate and key are for brokers that require one."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_location: str = ""
    ssl_certificate_location: str = ""
    ssl_key_location: str = ""
    ssl_key_password: str = field(default="", repr=False)

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def problems(self, given: Mapping[str, str] | None = None) -> list[str]:
        """Why these settings cannot connect, one phrase each naming the variable (never a credential's value);
        [] when they can. A setting the protocol would not use is a problem too: credentials set beside
        PLAINTEXT were sent nowhere, and the broker's refusal said only "all brokers are down". `given`: the
        protocol and mechanism as the user wrote them, quoted when refused ('tls', not 'TLS')."""
        env = KAFKA_SECURITY_ENV
        given = {"security_protocol": self.security_protocol, "sasl_mechanism": self.sasl_mechanism, **(given or {})}
        if self.security_protocol not in KAFKA_SECURITY_PROTOCOLS:
            return [f"{env['security_protocol']} must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}, got "
                    f"{given['security_protocol']!r}"]
        problems = []
        sasl_fields = ("sasl_mechanism", "sasl_username", "sasl_password")
        if self.sasl:
            if self.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
                problems.append(f"{env['sasl_mechanism']} must be one of {', '.join(KAFKA_SASL_MECHANISMS)} with "
                                f"{env['security_protocol']}={self.security_protocol}, got {given['sasl_mechanism']!r}")
            problems += [f"{env[name]} is not set (needed with {env['security_protocol']}={self.security_protocol})"
                         for name in sasl_fields[1:] if not getattr(self, name)]
            if self.security_protocol == "SASL_PLAINTEXT" and self.sasl_mechanism == "PLAIN" \
                    and hive_env() == PRODUCTION:  # a laptop's test broker may; a production network must not
                problems.append(f"{env['sasl_mechanism']}=PLAIN over {env['security_protocol']}=SASL_PLAINTEXT "
                                "sends the password unencrypted: HIVE_ENV=production refuses it; use SASL_SSL, or "
                                "SCRAM-SHA-256/512 (which never sends the password)")
        else:
            problems += [f"{env[name]} is set but {env['security_protocol']}={self.security_protocol} sends no SASL "
                         f"credentials: set {env['security_protocol']}=SASL_SSL (or SASL_PLAINTEXT), or unset it"
                         for name in sasl_fields if getattr(self, name)]
        tls_fields = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location", "ssl_key_password")
        if not self.tls:
            problems += [f"{env[name]} is set but {env['security_protocol']}={self.security_protocol} does not use "
                         f"TLS: set {env['security_protocol']}=SSL (or SASL_SSL), or unset it"
                         for name in tls_fields if getattr(self, name)]
        elif bool(self.ssl_certificate_location) != bool(self.ssl_key_location):
            given, missing = (("ssl_certificate_location", "ssl_key_location") if self.ssl_certificate_location
                              else ("ssl_key_location", "ssl_certificate_location"))
            problems.append(f"{env[given]} is set but {env[missing]} is not: a client certificate needs its key")
        elif self.ssl_key_password and not self.ssl_key_location:
            problems.append(f"{env['ssl_key_password']} is set but {env['ssl_key_location']} is not")
        return problems

    def describe(self) -> str:
        """The protocol, mechanism and user, for a message (no password)."""
        if self.sasl:
            return f"{self.security_protocol}, {self.sasl_mechanism} as {self.sasl_username!r}"
        return self.security_protocol

    def client_config(self) -> dict[str, str]:
        """librdkafka's properties for these settings (the CA and key files are checked when a client opens)."""
        config = {"security.protocol": self.security_protocol}
        if self.sasl:
            config.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                           "sasl.password": self.sasl_password})
        for name in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location", "ssl_key_password"):
            if self.tls and getattr(self, name):
                config[name.replace("_", ".")] = getattr(self, name)
        return config

    @classmethod
    def from_values(cls, **values: str) -> "KafkaSecurity":
        """From raw texts (the environment's or a resource's): stripped, the protocol and mechanism in upper case;
        ConfigError naming every variable that is wrong."""
        values = {name: (value or "").strip() for name, value in values.items()}
        given = {name: values.get(name, "") for name in ("security_protocol", "sasl_mechanism")}
        values["security_protocol"] = given["security_protocol"].upper() or "PLAINTEXT"
        values["sasl_mechanism"] = given["sasl_mechanism"].upper()
        security = cls(**values)
        if problems := security.problems(given):
            raise ConfigError("; ".join(problems))
        return security


def kafka_security() -> KafkaSecurity:
    """KafkaSecurity from the KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* variables; ConfigError
    naming each one that is wrong, or each one set without KAFKA_BOOTSTRAP_SERVERS (there is no Kafka to use
    them with: collection reads the intentions_audit collection)."""
    values = {name: os.environ.get(variable, "") for name, variable in KAFKA_SECURITY_ENV.items()}
    if not _raw("KAFKA_BOOTSTRAP_SERVERS"):
        if stray := [KAFKA_SECURITY_ENV[name] for name, value in values.items() if value.strip()]:
            raise ConfigError(f"{', '.join(stray)} set but KAFKA_BOOTSTRAP_SERVERS is not: set it to the brokers "
                              "(unset, collection reads the intentions_audit collection)")
        return KafkaSecurity()
    return KafkaSecurity.from_values(**values)


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=hive_home)
    mlflow_tracking_uri: str = ""
    mlflow_experiment_name: str = DEFAULT_EXPERIMENT_NAME
    mongodb_uri: str = ""
    mongodb_database: str = DEFAULT_MONGODB_DATABASE
    ab_testing_enabled: bool = True
    ab_test_default_traffic: float = 10.0
    drift_threshold: float = 0.2
    drift_check_interval_minutes: int = 60
    kafka_bootstrap_servers: str = ""
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    data_collection_days: int = 90
    min_confidence: float = 0.7
    retraining_feedback_threshold: int = 100
    ab_test_label_maturity_hours: float = 48.0
    ab_test_max_duration_days: float = 14.0
    ab_test_check_interval_minutes: float = 60.0
    mirror_production_stage: bool = False
    asset_storage_uri: str = ""
    # a retraining run older than this is not "in flight" for the triggers (and is the k8s run's max runtime)
    retrain_max_runtime_seconds: int = 14400
    # run leases (hive_assets.runs): a holder that has not renewed within the TTL is gone; a second run of
    # the same partition waits up to the wait for the holder to finish, then fails naming it
    lease_ttl_seconds: int = 120
    lease_wait_seconds: int = 60

    @property
    def asset_storage(self) -> str:
        """Where asset outputs live: HIVE_ASSET_STORAGE (a URL such as s3://bucket/prefix, or a local
        directory resolved against the working directory), else `$HIVE_HOME/assets`."""
        if not self.asset_storage_uri:
            return str(self.home / "assets")
        if "://" in self.asset_storage_uri:
            return self.asset_storage_uri
        return str(Path(self.asset_storage_uri).expanduser().resolve())

    @property
    def store_path(self) -> Path:
        return self.home / "store.sqlite"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        return (self.home / "mlartifacts").as_uri()

    @classmethod
    def from_env(cls) -> "Settings":
        """The settings from the environment; ConfigError (a ValueError) names the first malformed variable,
        or, under HIVE_ENV=production, every missing production service."""
        check_production()
        return cls(
            home=hive_home(),
            mlflow_tracking_uri=mlflow_tracking_uri(),
            mlflow_experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT_NAME,
            mongodb_uri=_raw("MONGODB_URI") or "",  # stripped, as every other setting: " " was a database name
            mongodb_database=os.environ.get("MONGODB_DATABASE") or DEFAULT_MONGODB_DATABASE,
            ab_testing_enabled=env_bool("AB_TESTING_ENABLED", True),
            # a test at 100 % has no champion arm to compare with: only a promotion takes traffic there
            ab_test_default_traffic=env_float("AB_TEST_DEFAULT_TRAFFIC", 10.0, low=MIN_TRAFFIC_PERCENT, high=100,
                                              high_open=True),
            drift_threshold=env_float("DRIFT_THRESHOLD", 0.2, low=0, low_open=True),
            drift_check_interval_minutes=env_int("DRIFT_CHECK_INTERVAL_MINUTES", 60, low=1),
            kafka_bootstrap_servers=_raw("KAFKA_BOOTSTRAP_SERVERS") or "",
            kafka_security=kafka_security(),
            data_collection_days=env_int("DATA_COLLECTION_DAYS", 90, low=1, high=36_500),
            min_confidence=env_float("MIN_CONFIDENCE", 0.7, low=0, high=1),
            retraining_feedback_threshold=env_int("RETRAINING_FEEDBACK_THRESHOLD", 100, low=1),
            # 0 would freeze every label at its unit's serving instant: no test could ever count one
            ab_test_label_maturity_hours=env_float("AB_TEST_LABEL_MATURITY_HOURS", 48.0, low=0, low_open=True),
            ab_test_max_duration_days=env_float("AB_TEST_MAX_DURATION_DAYS", 14.0, low=0, low_open=True),
            ab_test_check_interval_minutes=env_float("AB_TEST_CHECK_INTERVAL_MINUTES", 60.0, low=0, low_open=True),
            mirror_production_stage=env_bool("HIVE_MIRROR_PRODUCTION_STAGE", False),
            asset_storage_uri=asset_storage_uri(),
            retrain_max_runtime_seconds=retrain_max_runtime_seconds(),
            # a week at most: a lease's expiry is a time the documents' range holds (hive_assets.data.to_utc)
            lease_ttl_seconds=env_int("HIVE_LEASE_TTL_SECONDS", 120, low=5, high=7 * 86400),
            lease_wait_seconds=env_int("HIVE_LEASE_WAIT_SECONDS", 60, low=0),
        )

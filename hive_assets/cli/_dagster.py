"""The only CLI module that talks to Dagster: runs go to the configured instance, so the UI shows them."""

from __future__ import annotations

import contextlib
import re

from hive_assets.config import UNESCAPED_USERINFO, ConfigError
from hive_assets.reachability import one_line, reachable, registry_down  # noqa: F401  (re-exported)


class InstanceUnavailable(Exception):
    """The Dagster instance's database did not answer or refused the connection: one line naming its host and
    port, never a credential (the CLI's exit 1, a service down)."""


# seconds for the one connection the CLI tries before opening a PostgreSQL instance: Dagster's own opening
# retries each of its three storages with backoff (15 s of warnings on a refused port, then a traceback)
POSTGRES_CONNECT_TIMEOUT_S = 3

# the instance directories whose PostgreSQL answered in this process: checked once, not before every open
_answering_homes: set[str] = set()


def instance():
    """The configured Dagster instance (DAGSTER_HOME), opened; a setting its dagster.yaml reads that is unset or
    malformed is a `ConfigError`, a database that does not answer or refuses the connection an
    `InstanceUnavailable`, each one line without credentials (Dagster raised a 50-190 line traceback)."""
    import dagster as dg

    try:
        _require_postgres_answers()
        with _one_opener_at_a_time():
            return dg.DagsterInstance.get()
    except dg.DagsterInvalidConfigError as exc:
        raise ConfigError(_setting_problem(exc)) from None
    except InstanceUnavailable:
        raise
    except Exception as exc:
        if (refused := _postgres_error(exc)) is None:
            raise
        raise InstanceUnavailable(_postgres_problem(refused, None)) from None


@contextlib.contextmanager
def _one_opener_at_a_time():
    """An exclusive lock on `$DAGSTER_HOME/.hive-open.lock` while the instance is opened: five `hive collect`
    started together on a new home each made the SQLite instance's tables, and one failed on "table
    backfill_tags already exists" (a traceback). Uncontended it costs a file lock; where the directory cannot be
    written (a mounted ConfigMap in a pod, whose instance is PostgreSQL) the instance is opened without it."""
    import fcntl
    import os

    home = os.environ.get("DAGSTER_HOME", "")
    try:
        lock = open(os.path.join(home, ".hive-open.lock"), "a") if home else None  # noqa: SIM115
    except OSError:
        lock = None
    if lock is None:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # released with the file


def _instance_settings_file() -> str:
    import os

    return os.path.join(os.environ.get("DAGSTER_HOME", ""), "dagster.yaml")


_UNSET_VARIABLE = re.compile(r'environment variable "([^"]+)" which is not set')
_UNCOERCIBLE_VARIABLE = re.compile(r'env variable "([^"]+)" cannot be coerced into an? (\w+)')
_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false"}


def _setting_problem(exc) -> str:
    """Dagster's refusal of the instance settings in one line: the environment variables it reads that are unset
    or malformed, by name (never their values: a password among them), else Dagster's first reason."""
    messages = [str(getattr(error, "message", error)) for error in getattr(exc, "errors", None) or [exc]]
    unset = sorted({name for m in messages for name in _UNSET_VARIABLE.findall(m)})
    malformed = sorted({f"{name} is not {_KINDS.get(kind, 'a valid ' + kind)}"
                        for m in messages for name, kind in _UNCOERCIBLE_VARIABLE.findall(m)})
    where = f"{_instance_settings_file()} (DAGSTER_HOME's instance settings)"
    if unset or malformed:
        what = "; ".join(([f"{', '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set"] if unset else [])
                         + malformed)
        return f"{what}: {where} reads {'it' if len(unset) + len(malformed) == 1 else 'them'}"
    first = messages[0].splitlines()[0] if messages and messages[0] else type(exc).__name__
    return f"{where} cannot be used: {one_line(first, 300)}"


def _require_postgres_answers() -> None:
    """One connection to each PostgreSQL database the instance settings name, with a short timeout, before
    Dagster opens them (its retries took 15 s to say the same as a traceback). The settings are resolved by
    Dagster's own config processing, so an unset variable is its `DagsterInvalidConfigError`. Dagster's private
    modules: if they change, nothing is checked here and the opening's own error is still said in one line."""
    import importlib
    import os

    home = os.environ.get("DAGSTER_HOME", "")
    if not home or home in _answering_homes:
        return
    try:
        from dagster._config import process_config
        from dagster._core.errors import DagsterInvalidConfigError
        from dagster._core.instance.ref import InstanceRef
    except ImportError:  # Dagster moved them: its own opening says what is wrong
        return
    ref = InstanceRef.from_dir(home)
    postgres = [data for data in (ref.storage_data, ref.run_storage_data, ref.event_storage_data,
                                  ref.schedule_storage_data)
                if data is not None and data.module_name.startswith("dagster_postgres")]
    if not postgres:  # SQLite on this disk (a local home): nothing to wait for
        _answering_homes.add(home)
        return
    try:
        import sqlalchemy
        from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
    except ImportError:
        return
    urls: dict[str, dict] = {}
    for data in postgres:
        storage_class = getattr(importlib.import_module(data.module_name), data.class_name)
        processed = process_config(storage_class.config_type(), data.config_dict)
        if not processed.success:
            raise DagsterInvalidConfigError("Errors whilst loading Dagster's instance settings", processed.errors,
                                            data.config_dict)
        urls.setdefault(pg_url_from_config(processed.value), processed.value)
    for url, config in urls.items():
        # a timeout the URL sets itself (params: connect_timeout) is the deployment's and wins
        connect_args = {} if "connect_timeout" in url else {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        try:
            engine = create_pg_engine(url, get_token_provider_from_config(config), connect_args=connect_args)
        except ImportError as exc:  # `postgresql://` means a driver that is not installed (a 32-line traceback)
            raise ConfigError(f"{_instance_settings_file()} names a PostgreSQL URL whose driver is not installed "
                              f"({exc}): write it postgresql+psycopg2:// (psycopg2 is installed)") from None
        if "@" in (engine.url.host or ""):  # an '@' of the password taken for the host: errors quoted its tail
            engine.dispose()
            raise ConfigError(f"{_instance_settings_file()} names a PostgreSQL URL whose user name or password is not "
                              f"escaped (the value is not shown, it may hold a password): {UNESCAPED_USERINFO}")
        address = f"{engine.url.host or 'localhost'}:{engine.url.port or 5432}"
        try:
            with engine.connect():
                pass
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise InstanceUnavailable(_postgres_problem(_postgres_error(exc) or exc, address)) from None
        finally:
            engine.dispose()
    _answering_homes.add(home)


def _postgres_error(exc: BaseException) -> BaseException | None:
    """The database driver's error under `exc` (psycopg2's, raised as is or wrapped by SQLAlchemy and
    dagster-postgres), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__module__.split(".")[0] in ("psycopg2", "psycopg"):
            return exc
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None


_FATAL = re.compile(r"^FATAL:\s*")
_LIBPQ_ADDRESS = re.compile(r'server at "([^"]+)"(?: \([^)]*\))?, port (\d+) failed: ')


def _postgres_problem(error: BaseException, address: str | None) -> str:
    """A connection that failed, in one line: "does not answer" when nothing accepted it, "refused the
    connection" when PostgreSQL answered no (a wrong user, password or database); libpq names the user and the
    database, never the password."""
    text = str(error).strip()
    if (found := _LIBPQ_ADDRESS.search(text)) is not None:
        address = address or f"{found.group(1)}:{found.group(2)}"
        text = text[found.end():]
    reason = one_line(text.splitlines()[0] if text else type(error).__name__, 200)
    where = f"Dagster's PostgreSQL at {address or 'the address ' + _instance_settings_file() + ' names'}"
    if "FATAL" in text:  # PostgreSQL's own answer: waiting changes nothing
        reason = _FATAL.sub("", reason)
        return (f"{where} refused the connection ({reason}): fix the user, password or database that "
                f"{_instance_settings_file()} names (deploy/dagster.yaml reads DAGSTER_PG_USERNAME, "
                "DAGSTER_PG_PASSWORD, DAGSTER_PG_DB)")
    return f"{where} does not answer ({reason}); run the command again when it answers (every step is safe to repeat)"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _OwnSessionSubprocess:
    """The `subprocess` module as Dagster's compute-log mirror sees it: its processes start in a session of
    their own."""

    def __getattr__(self, name: str):
        import subprocess

        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args, **kwargs):  # noqa: N802 (subprocess's name)
        import subprocess

        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(*args, **kwargs)


def log_mirrors_in_their_own_session() -> None:
    """An in-process run mirrors each step's captured output to the terminal with a `tail -F` and a Python
    watcher (dagster's compute_logs), started in the CLI's process group: the terminal's Ctrl-C reached the
    watchers too, and each printed a KeyboardInterrupt traceback above the verb's one line. In a session of
    their own they never see it; Dagster still terminates both when the step ends (SIGTERM, the watcher
    also when the CLI dies). Dagster's private module: if it changes, the mirror is left as it is."""
    try:
        from dagster._core.execution import compute_logs
    except ImportError:
        return
    if hasattr(compute_logs, "execute_posix_tail") and hasattr(compute_logs, "subprocess"):
        compute_logs.subprocess = _OwnSessionSubprocess()


def materialize(selection: list[str], specialist: str, run_config: dict | None = None, log_level: str = "DEBUG"):
    """Materialize `selection` for one partition in the configured Dagster instance (a real run).
    `log_level` filters only what the console shows; the instance keeps every event for the UI."""
    import dagster as dg

    from hive_assets.definitions import defs
    from hive_assets.interrupts import stop_if_interrupted

    log_mirrors_in_their_own_session()
    config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    return stop_if_interrupted(dg.materialize(
        list(defs.assets), selection=selection, partition_key=specialist, resources=defs.resources,
        instance=instance(), run_config=config, raise_on_error=False,
    ))


# the console shows no Dagster event: a failed run is one line (`failure_message`, its cause); the instance
# keeps every event, stack traces included, for the UI
QUIET = "CRITICAL"


def run_job(job_name: str, run_config: dict | None = None, *, partition_key: str | None = None,
            tags: dict[str, str] | None = None, log_level: str = "WARNING", run_key: str | None = None):
    """Run one of the code location's jobs in the configured instance (a real run, with its config).
    `log_level` filters only what the console shows; the instance keeps every event for the UI. `run_key`:
    tagged as the daemon tags a sensor's run, so the sensors see this run among the attempts of that key."""
    from hive_assets.definitions import defs
    from hive_assets.interrupts import stop_if_interrupted

    if run_key is not None:
        from dagster._core.storage.tags import RUN_KEY_TAG

        tags = {**(tags or {}), RUN_KEY_TAG: run_key}
    log_mirrors_in_their_own_session()
    config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    return stop_if_interrupted(defs.resolve_job_def(job_name).execute_in_process(
        run_config=config, instance=instance(), partition_key=partition_key, tags=tags, raise_on_error=False))


def trigger_attempt(run_key: str) -> str:
    """The attempt of `run_key` the retraining sensors would request now (their `trigger_attempt`: the first
    whose run did not fail), read from the configured instance opened once."""
    from hive_assets.defs.monitoring.sensors import trigger_attempt as sensors_trigger_attempt

    with instance() as dagster_instance:
        return sensors_trigger_attempt(dagster_instance, run_key)


def failed_checks(result) -> list[str]:
    """`asset.check: description` of every blocking check that failed in the run (why it stopped)."""
    out = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            if not check.passed and check.blocking:
                out.append(f"{check.asset_key.to_user_string()}.{check.check_name}: {check.description or 'failed'}")
    return out


def _innermost(error) -> str | None:
    while error is not None and error.cause is not None:
        error = error.cause
    return one_line(error.message) if error is not None else None


def failure_message(result) -> str:
    """The error of a failed run in one line: the failed blocking checks (what the user can act on), else
    the step failure's cause (a `dg.Failure`'s description, else the innermost exception: the user's
    error, not Dagster's `DagsterExecutionStepExecutionError` wrapper), else a resource's setup error
    (e.g. the run lease held by another run), else the run failure event's message."""
    if checks := failed_checks(result):
        return "blocked by " + "; ".join(checks)
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data is None:
            continue
        if data.user_failure_data is not None and data.user_failure_data.description:
            return one_line(data.user_failure_data.description)
        if (message := _innermost(data.error)) is not None:
            return message
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            error = getattr(event.event_specific_data, "error", None)
            if (message := _innermost(error)) is not None:
                return message
    for event in result.all_events:
        if event.event_type_value == "PIPELINE_FAILURE":
            return one_line(event.message or "run failed")
    return "run failed (see the Dagster run log)"


def latest_partition_metadata(instance, asset: str, specialist: str) -> tuple[str | None, dict]:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[specialist]), limit=1).records
    if not records:
        return None, {}
    event = records[0].event_log_entry
    mat = event.asset_materialization
    return event.run_id, {k: v.value for k, v in (mat.metadata or {}).items()}


def output_if_any(result, node: str):
    """The output of `node` in an in-process result, or None when the step produced none (it failed or
    was skipped)."""
    import dagster as dg

    try:
        return result.output_for_node(node)
    except dg.DagsterInvariantViolationError:
        return None


def refusal_line(error: str, run_id: str) -> str:
    """A refused action (a failed run of an operator job), as every verb prints it: `error: ... (run <id>)`."""
    return f"error: {error} (run {run_id})"


def run_job_outcome(job_name: str, run_config: dict | None = None, tags: dict[str, str] | None = None,
                    output_node: str | None = None) -> dict:
    """`run_job`, summarised: {"run_id", "success", "output" (of `output_node`, when it succeeded), "error"
    (the failure's description, when it failed)}."""
    result = run_job(job_name, run_config, tags=tags, log_level=QUIET)
    output = result.output_for_node(output_node) if result.success and output_node else None
    return {"run_id": result.run_id, "success": result.success, "output": output,
            "error": None if result.success else failure_message(result)}


def doctor(*, fix: bool, specialist: str | None, mlflow_uri: str) -> dict:
    """`hive doctor`: the orphans of the configured instance, store and MLflow, and the registry decisions a
    crash left unfinished; fixed (completed) when asked. MLflow is checked only when it answers (an outage is
    reported, never waited for)."""
    from hive_assets.data import open_store
    from hive_assets.defs.runs.doctor import (
        complete_intents, find_orphans, find_out_of_step, find_unfinished_intents, find_unrecorded_registrations,
        fix_orphans, record_registrations,
    )
    from hive_assets.registry import client_for

    client, mlflow_problem = None, reachable(mlflow_uri)
    if mlflow_problem is None:
        client = client_for(mlflow_uri)
    left: list[str] = []
    with instance() as dagster_instance, open_store() as store:
        report = find_orphans(dagster_instance, store, client, specialist=specialist)
        intents = find_unfinished_intents(dagster_instance, store, specialist=specialist,
                                          orphan_ids={r["run_id"] for r in report.dagster_runs})
        ab = find_out_of_step(store, client, specialist=specialist)
        unrecorded = find_unrecorded_registrations(dagster_instance, store, client, specialist=specialist,
                                                   orphan_ids={r["run_id"] for r in report.dagster_runs})
        # what a fix could not do is "not fixed" (exit 1), never dropped
        done = fix_orphans(dagster_instance, store, report, client, by="hive doctor", warn=left.append) if fix else []
        if fix and (intents or ab):
            completed, not_completed = complete_intents(dagster_instance, store, intents, client, by="hive doctor",
                                                        out_of_step=ab)
            done += completed
            left += not_completed
        if fix:
            done += record_registrations(store, unrecorded)
    return {"report": {**report.as_dict(), "unfinished_intents": intents, "ab_out_of_step": ab,
                       "unrecorded_registrations": unrecorded}, "fixed": done,
            "not_fixed": left, "mlflow": mlflow_problem or "checked"}


def result_metrics(result) -> dict:
    """Numeric metadata of an in-process run's materializations, as {"<asset>.<name>": value}."""
    metrics = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        for name, value in (mat.metadata or {}).items():
            if isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
                metrics[f"{mat.asset_key.to_user_string()}.{name}"] = value.value
    return metrics


def run_loop(scenario, *, start=None, progress=None):
    """`hive loop`: the scenario played against the configured instance, store and registry."""
    from hive_assets.config import Settings
    from hive_assets.data import open_store
    from hive_assets.definitions import defs
    from hive_assets.defs.simulator.loop import run_loop as play

    from hive_assets import clock

    log_mirrors_in_their_own_session()  # the loop's runs execute in this process too
    # one loop per home: a second one rewrote the first's hours and moved the clock back and forth
    with clock.playing(), instance() as dagster_instance, open_store() as store:
        return play(dagster_instance, defs, store, Settings.from_env().mlflow_uri, scenario, start=start,
                    progress=progress)


def platform_status():
    """(platform clock, the `hive status` view of every specialist), the last trainings read from the instance."""
    from hive_assets import clock
    from hive_assets.config import Settings
    from hive_assets.data import open_store
    from hive_assets.defs.monitoring.status import current_status
    from hive_assets.registry import client_for

    with instance() as dagster_instance, open_store() as store:
        return clock.now(), current_status(dagster_instance, store, client_for(Settings.from_env().mlflow_uri))

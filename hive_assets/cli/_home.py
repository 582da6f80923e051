"""Where the CLI's state lives: HIVE_HOME and the Dagster instance inside it (SPEC section 9).

`prepare()` resolves HIVE_HOME once against the working directory (default `.hive`), takes DAGSTER_HOME
when it is set and `$HIVE_HOME/dagster` otherwise, exports both as absolute paths (so the in-process run,
MLflow and any child process see the same directories whatever their working directory), and writes the
project's instance settings (`dagster.yaml` beside this module: a link to the repository root's
`dagster.yaml`, the only copy; a wheel carries its content) into an instance directory
that has none, so the run concurrency limits hold for runs the CLI, `dagster dev` and `make demo` launch.
An existing `dagster.yaml` is never overwritten: a deployment's own instance settings win. Under
HIVE_ENV=production nothing is written: DAGSTER_HOME must be set and hold the deployment's `dagster.yaml`
with database storage (`production_instance_problem`), or the CLI would launch runs into a SQLite instance
on its own disk that the deployment's UI, daemon and sensors never see; HIVE_HOME is not created either.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from hive_assets import clock
from hive_assets.cli._args import add_verb
from hive_assets.config import LOCAL_STORAGE_MARKERS, PRODUCTION, ConfigError, dagster_home, hive_env, hive_home

INSTANCE_SETTINGS = files("hive_assets.cli").joinpath("dagster.yaml")


@dataclass(frozen=True)
class Home:
    hive_home: Path
    dagster_home: Path

    def describe(self) -> str:
        return f"HIVE_HOME={self.hive_home} (Dagster instance {self.dagster_home})"


def write_instance_settings(directory: Path) -> bool:
    """Create `directory` and its `dagster.yaml` from the project's settings when missing; True if written."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "dagster.yaml"
    if target.exists():
        return False
    target.write_text(INSTANCE_SETTINGS.read_text())
    return True


def _why(directory: Path, exc: OSError) -> str:
    """What stopped `directory` from being created, in words ("File exists" names the wrong thing)."""
    blocker = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return f"{blocker} is a file" if blocker == directory else f"{blocker} in its path is a file"
    return exc.strerror or str(exc)


def production_instance_problem(explicit_home: str | None, directory: Path) -> str | None:
    """Why the instance at `directory` is not a production one, or None: DAGSTER_HOME unset, no dagster.yaml,
    or storage that lives on this disk (SQLite, Dagster's default when `storage` / `run_storage` is absent)."""
    import yaml

    where = ("the deployment's instance directory: deploy/helm/values.yaml mounts it in every pod; outside Helm, "
             "deploy/dagster.yaml in it")
    if not explicit_home:
        return f"DAGSTER_HOME is not set: point it at {where}"
    settings_file = directory / "dagster.yaml"
    if not settings_file.is_file():
        return f"DAGSTER_HOME={directory} has no dagster.yaml: point it at {where}"
    try:
        settings = yaml.safe_load(settings_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        return f"{settings_file} cannot be read as YAML ({type(exc).__name__})"
    if not isinstance(settings, dict):
        return f"{settings_file} is not a mapping of instance settings"
    kinds = _storage_kinds(settings)
    unset = [key for key, kind in kinds.items() if not kind]
    why = ("" if not unset else ", as no storage is set" if len(unset) == len(kinds) else
           f", as {' and '.join(unset)} {'is' if len(unset) == 1 else 'are'} not set")
    if unset or any(marker in kind.lower() for kind in kinds.values() for marker in LOCAL_STORAGE_MARKERS):
        return (f"{settings_file} keeps runs on this disk (SQLite{why}): "
                "use the deployment's instance settings (PostgreSQL: deploy/dagster.yaml)")
    return None


PER_STORAGE_KEYS = ("run_storage", "event_log_storage", "schedule_storage")


def _storage_kinds(settings: dict) -> dict[str, str]:
    """What each of the instance's storages is: `storage`'s one key (postgres, mysql, sqlite), or the class of
    each of the three per-storage settings (the Helm chart's form); "" for one left to Dagster's default
    (SQLite on this disk: a `run_storage` alone keeps the event log here)."""
    def kind(value) -> str:
        if not isinstance(value, dict) or not value:
            return ""
        return str(value["class"]) if "class" in value else str(next(iter(value)))

    if "storage" in settings or not any(key in settings for key in PER_STORAGE_KEYS):
        return {"storage": kind(settings.get("storage"))}
    return {key: kind(settings.get(key)) for key in PER_STORAGE_KEYS}


def prepare(announce: bool = True, replaces_clock: bool = False) -> Home:
    """Resolve, export and create HIVE_HOME and the Dagster instance; one line on stderr says which.
    `replaces_clock`: the verb rewrites the clock file, so a malformed one is no reason to stop it."""
    home, production = Home(hive_home(), dagster_home()), hive_env() == PRODUCTION
    explicit_instance = home.dagster_home != home.hive_home / "dagster"  # DAGSTER_HOME set, elsewhere
    if production and (problem := production_instance_problem(os.environ.get("DAGSTER_HOME"), home.dagster_home)):
        raise ConfigError(f"HIVE_ENV=production refuses a local Dagster instance: {problem}")
    os.environ["HIVE_HOME"] = str(home.hive_home)
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    # HIVE_HOME holds the embedded services' files: production keeps nothing there
    new_home = not production and not home.hive_home.exists()
    # an existing home with a DAGSTER_HOME that is not there yet (a typo, `dagstr`): an empty instance, no runs
    # and no trainings, so every count starts from "never trained"
    new_instance = explicit_instance and not new_home and not (home.dagster_home / "dagster.yaml").exists()
    creates = ([] if production else [("HIVE_HOME", home.hive_home, lambda d: d.mkdir(parents=True, exist_ok=True))]) \
        + [("DAGSTER_HOME", home.dagster_home, write_instance_settings)]
    for name, directory, create in creates:
        try:
            create(directory)
        except OSError as exc:  # a file in the way, no permission, a read-only disk: the setting, not a bug
            raise ConfigError(f"{name}={directory}: cannot be used as a directory ({_why(directory, exc)}): "
                              "point it at a writable directory") from None
    clock.apply_home_settings(replacing=replaces_clock)  # a simulated home's scenario settings; an export wins
    if announce:
        print(f"hive: {home.describe()}", file=sys.stderr)
        if new_home:  # a mistyped path would otherwise answer "nothing yet" as if it were the real home
            print(f"hive: HIVE_HOME={home.hive_home} did not exist: created, empty (a new home; if you meant "
                  "another, point HIVE_HOME at it)", file=sys.stderr)
        elif new_instance:
            print(f"hive: DAGSTER_HOME={home.dagster_home} did not exist: created, an empty Dagster instance (no "
                  "runs, no trainings: every count starts from none; if you meant another, point DAGSTER_HOME at it)",
                  file=sys.stderr)
    return home


#: the sensors whose daemon tick defaults to a platform interval (drift checks, A/B looks), and the tick
#: `hive env` exports for them on a simulated home unless they are set
SIMULATED_HOME_TICKS = ("HIVE_DRIFT_SENSOR_INTERVAL_SECONDS", "HIVE_AB_SENSOR_INTERVAL_SECONDS")
SIMULATED_HOME_TICK_SECONDS = 60


def cmd_env(args: argparse.Namespace) -> int:
    """Print the exports that point `dagster` and `mlflow` at the CLI's home (eval "$(hive env)")."""
    home = prepare(announce=False)
    exports = {"HIVE_HOME": str(home.hive_home), "DAGSTER_HOME": str(home.dagster_home),
               # for the processes that do not import hive_assets (`mlflow ui`): the package's default
               "MLFLOW_DISABLE_TELEMETRY": os.environ["MLFLOW_DISABLE_TELEMETRY"]}
    if os.environ.get("MLFLOW_UI_URL"):  # the Dagster UI's links into the MLflow UI (make demo sets it)
        exports["MLFLOW_UI_URL"] = os.environ["MLFLOW_UI_URL"]
    home_clock = clock.read_home_clock()
    if home_clock is not None and home_clock.simulated:
        # the daemon's tick defaults to the check interval in wall time (6 h with the demo's settings): after
        # `hive clock advance 6h` nothing looked for hours. On simulated time the sensors space their looks by
        # the platform clock themselves, so a short tick only lets them act once the clock moved.
        for name in SIMULATED_HOME_TICKS:
            if not os.environ.get(name):
                exports[name] = str(SIMULATED_HOME_TICK_SECONDS)
    if args.json:
        print(json.dumps(exports))
        return 0
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def add_parsers(sub) -> None:
    p = add_verb(
        sub, "env", help="print the exports that point the dagster CLI and UI at this home",
        description="Create HIVE_HOME and its Dagster instance when missing and print shell exports of the "
                    "absolute HIVE_HOME and DAGSTER_HOME, so that `dagster dev` and `dagster asset "
                    "materialize` use the instance `hive report` reads, and MLFLOW_DISABLE_TELEMETRY (true "
                    "unless set: MLflow's usage telemetry off, as Dagster's is in dagster.yaml); on a simulated "
                    "home also a 60 s tick for the drift and A/B sensors (HIVE_DRIFT_SENSOR_INTERVAL_SECONDS, "
                    "HIVE_AB_SENSOR_INTERVAL_SECONDS, unless set), which look when the home's clock moved:\n\n"
                    '  eval "$(hive env)" && dagster dev -w workspace.yaml',
        env=("HIVE_HOME", "DAGSTER_HOME", "MLFLOW_DISABLE_TELEMETRY"))
    p.add_argument("--json", action="store_true", help="print the exports as JSON (default: shell exports)")
    p.set_defaults(func=cmd_env, announce=False)

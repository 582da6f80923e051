"""A home that was moved or copied: MLflow's database names its artifacts by absolute path.

On the embedded defaults MLflow keeps its runs, models and registry in `$HIVE_HOME/mlflow.db` and their
files under `$HIVE_HOME/mlartifacts`, but the database records those files by absolute `file://` URI. After
`mv` the home reads artifacts from a place that is gone (a validation run failed with "Could not find an
MLmodel configuration file at /tmp/..."); after `cp -r` the copy reads the original's files and writes
its new models into the original's directory. `moved_artifact_root` notices it with one SQLite query
(no MLflow import), and `relocate_artifact_root` rewrites the recorded prefix in one transaction.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlsplit

# every column of MLflow 3's schema that holds an artifact location (checked against a demo home's database:
# nothing else names the home's path)
ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
)


def _connect(db_path: Path) -> sqlite3.Connection:
    # uri mode=rw: a missing database is an error here, never an empty one created by the check
    return sqlite3.connect(f"{Path(db_path).resolve().as_uri()}?mode=rw", uri=True, timeout=30)


def recorded_artifact_root(db_path: Path, experiment_name: str) -> str | None:
    """Where MLflow's database says `experiment_name`'s artifacts live; None when there is no such database
    or experiment yet (the first training creates it in the right place)."""
    if not Path(db_path).is_file():
        return None
    try:
        with _connect(db_path) as db:
            row = db.execute("SELECT artifact_location FROM experiments WHERE name = ?", (experiment_name,)).fetchone()
    except sqlite3.OperationalError:  # no experiments table: a database MLflow has not initialised yet
        return None
    return row[0] if row else None


def moved_artifact_root(db_path: Path, experiment_name: str, expected_root: str) -> str | None:
    """The artifact root recorded in the database when it is a local one other than `expected_root` (the
    home was moved or copied), else None. A remote root (s3://, mlflow-artifacts:) is never a move."""
    recorded = recorded_artifact_root(db_path, experiment_name)
    if recorded is None or not recorded.startswith("file:") or recorded.rstrip("/") == expected_root.rstrip("/"):
        return None
    return recorded


def relocate_artifact_root(db_path: Path, old_root: str, new_root: str) -> dict[str, int]:
    """Rewrite every artifact location under `old_root` to the same place under `new_root`, in one transaction;
    the rows changed per table. Idempotent: a second call changes nothing. Refused (ValueError) when
    `new_root` is not a directory, so the database never points at files that are not there."""
    old_root, new_root = old_root.rstrip("/"), new_root.rstrip("/")
    local = Path(unquote(urlsplit(new_root).path))
    if not new_root.startswith("file:") or not local.is_dir():
        raise ValueError(f"no artifacts at {local}: move or copy the old home's mlartifacts directory there too")
    changed = {}
    with _connect(db_path) as db:  # commits on success, rolls back on any error
        for table, column in ARTIFACT_COLUMNS:
            cursor = db.execute(
                f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 (names are constants)
                f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                (new_root, len(old_root) + 1, old_root, len(old_root) + 1, old_root + "/"))
            changed[table] = cursor.rowcount
    return changed


def moved_home(settings) -> str | None:
    """On the home's own MLflow database (MLFLOW_TRACKING_URI unset, or set to it, as `mlflow.set_tracking_uri`
    does in-process), the artifact root it records when that is not this home's `mlartifacts` (the home was
    moved or copied), else None."""
    database = settings.home / "mlflow.db"
    if settings.mlflow_uri != f"sqlite:///{database}":
        return None
    return moved_artifact_root(database, settings.mlflow_experiment_name, settings.mlflow_artifact_root)


def moved_home_message(settings, recorded: str) -> str:
    return (f"this home was moved or copied: its MLflow database keeps the artifacts under "
            f"{unquote(urlsplit(recorded).path)}, not under {settings.home / 'mlartifacts'}")


def moved_home_problem(settings) -> str | None:
    """`moved_home_message` when the home was moved or copied, else None (what a verb or a run refuses on)."""
    recorded = moved_home(settings)
    return moved_home_message(settings, recorded) if recorded else None

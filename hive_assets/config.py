"""Platform settings (SPEC section 9), read from the environment with the seed's names.

Unset means the embedded default: everything lives under HIVE_HOME (default `.hive/` in the
working directory): the SQLite document store, MLflow's SQLite backend and artifacts, and the
Dagster instance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SPECIALISTS: tuple[str, ...] = ("business", "technical", "behavior", "evolution", "architecture")
CLASSES: tuple[str, ...] = ("approve", "reject", "review_required")
DEFAULT_MONGODB_DATABASE = "neural_hive"
DEFAULT_EXPERIMENT_NAME = "specialist_training"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def hive_home() -> Path:
    return Path(os.environ.get("HIVE_HOME") or ".hive").resolve()


def redact_uri(uri: str | None) -> str:
    """The URI with any password replaced by ***, safe for logs and UI metadata."""
    if not uri:
        return ""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


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
    data_collection_days: int = 90
    min_confidence: float = 0.7
    retraining_feedback_threshold: int = 100

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
        return cls(
            home=hive_home(),
            mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", ""),
            mlflow_experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT_NAME,
            mongodb_uri=os.environ.get("MONGODB_URI", ""),
            mongodb_database=os.environ.get("MONGODB_DATABASE") or DEFAULT_MONGODB_DATABASE,
            ab_testing_enabled=_env_bool("AB_TESTING_ENABLED", True),
            ab_test_default_traffic=_env_float("AB_TEST_DEFAULT_TRAFFIC", 10.0),
            drift_threshold=_env_float("DRIFT_THRESHOLD", 0.2),
            drift_check_interval_minutes=_env_int("DRIFT_CHECK_INTERVAL_MINUTES", 60),
            kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""),
            data_collection_days=_env_int("DATA_COLLECTION_DAYS", 90),
            min_confidence=_env_float("MIN_CONFIDENCE", 0.7),
            retraining_feedback_threshold=_env_int("RETRAINING_FEEDBACK_THRESHOLD", 100),
        )

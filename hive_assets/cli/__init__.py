"""The `hive` console script (SPEC section 10)."""

from hive_assets.config import disable_mlflow_telemetry

disable_mlflow_telemetry()  # before any verb imports mlflow
from hive_assets.cli._main import main  # noqa: E402

__all__ = ["main"]

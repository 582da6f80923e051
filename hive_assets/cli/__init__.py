"""The `hive` console script (SPEC section 10)."""

from hive_assets.config import set_mlflow_process_defaults

set_mlflow_process_defaults()  # before any verb imports mlflow
from hive_assets.cli._main import main  # noqa: E402

__all__ = ["main"]

"""The `hive` console script (SPEC section 10)."""

from hive_assets.cli._main import main

__all__ = ["main"]

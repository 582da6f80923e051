"""Registration in the MLflow registry, with aliases and the decision ledger."""

import dagster as dg

from hive_assets.defs.registry.assets import registered_model_version

defs = dg.Definitions(assets=[registered_model_version])

"""Registration in the MLflow registry, with aliases and the decision ledger; the operator jobs."""

import dagster as dg

from hive_assets.defs.registry.assets import registered_model_version
from hive_assets.defs.registry.jobs import REGISTRY_JOBS

defs = dg.Definitions(assets=[registered_model_version], jobs=REGISTRY_JOBS)

"""The Dagster wiring: assets, checks, jobs and resources that call the domain layer."""

import dagster as dg

from hive_assets.defs import data, models, rollout
from hive_assets.defs.jobs import retrain_specialist
from hive_assets.defs.resources import default_resources


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([data, models, rollout]),
        jobs=[retrain_specialist],
        resources=default_resources(),
        # Steps of one partition run in sequence anyway; in-process saves a Python start-up
        # (dagster + mlflow + xgboost imports) per step.
        executor=dg.in_process_executor,
    )

"""The Dagster wiring, one package per stage of the loop (mirroring the domain packages): assets, checks,
jobs and sensors that call the domain layer and hold no decisions of their own."""

import dagster as dg

from hive_assets.config import check_production
from hive_assets.defs import data, evaluation, features, monitoring, registry, rollout, training
from hive_assets.defs.resources import default_resources

STAGES = (data, features, training, evaluation, registry, rollout, monitoring)


def build_defs() -> dg.Definitions:
    check_production()  # HIVE_ENV=production: one line naming each missing service, before anything is built
    return dg.Definitions.merge(
        *(stage.defs for stage in STAGES),
        dg.Definitions(
            resources=default_resources(),
            # Steps of one partition run in sequence anyway; in-process saves a Python start-up
            # (dagster + mlflow + xgboost imports) per step.
            executor=dg.in_process_executor,
        ),
    )

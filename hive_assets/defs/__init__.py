"""The Dagster wiring, one package per stage of the loop (mirroring the domain packages): assets, checks,
jobs and sensors that call the domain layer and hold no decisions of their own."""

import dagster as dg

from hive_assets import clock
from hive_assets.config import check_production

# a simulated home's scenario settings (clock.json) go into the environment before the stages read
# theirs: sensor intervals and thresholds are fixed when the code location loads
clock.apply_home_settings()

from hive_assets.defs import data, evaluation, features, monitoring, registry, review, rollout, training  # noqa: E402
from hive_assets.defs.resources import default_resources  # noqa: E402

STAGES = (data, features, training, evaluation, registry, rollout, monitoring, review)


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

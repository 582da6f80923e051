"""Training: the calibrated model per specialist, and the retraining job."""

import dagster as dg

from hive_assets.defs.training.assets import trained_model
from hive_assets.defs.training.jobs import retrain_specialist

defs = dg.Definitions(assets=[trained_model], jobs=[retrain_specialist])

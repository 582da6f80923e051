"""Monitoring: the feedback and drift retraining sensors, the run-status sensors that keep the
`retraining_triggers` documents in step with their runs, and the `feedback` and `drift` assets they observe."""

import dagster as dg

from hive_assets.defs.monitoring.sensors import SENSORS, drift, feedback

defs = dg.Definitions(assets=[feedback, drift], sensors=SENSORS)

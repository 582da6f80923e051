"""Monitoring: the feedback and drift retraining sensors, the run-status sensors that keep the
`retraining_triggers` documents in step with their runs, the `feedback` and `drift` assets they observe,
and the `platform_status` view (`hive status` in the UI)."""

import dagster as dg

from hive_assets.defs.monitoring.sensors import SENSORS, drift, feedback
from hive_assets.defs.monitoring.status import platform_status_asset, platform_status_sensor

defs = dg.Definitions(assets=[feedback, drift, platform_status_asset], sensors=[*SENSORS, platform_status_sensor])

"""The champion/challenger A/B test: the asset, the hourly check (job + sensor), the operator's jobs."""

import dagster as dg

from hive_assets.defs.rollout.assets import ab_test_outcome
from hive_assets.defs.rollout.jobs import ab_test_check, ab_test_expand, ab_test_start, ab_test_stop
from hive_assets.defs.rollout.sensors import ab_test_check_sensor

defs = dg.Definitions(assets=[ab_test_outcome], jobs=[ab_test_check, ab_test_start, ab_test_expand, ab_test_stop],
                      sensors=[ab_test_check_sensor])

"""The champion/challenger A/B test."""

import dagster as dg

from hive_assets.defs.rollout.assets import ab_test_outcome

defs = dg.Definitions(assets=[ab_test_outcome])

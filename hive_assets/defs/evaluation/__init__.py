"""Validation: held-out metrics, intervals and the gates."""

import dagster as dg

from hive_assets.defs.evaluation.assets import validation_report

defs = dg.Definitions(assets=[validation_report])

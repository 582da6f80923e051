"""The feature contract per labelled row, with the grouped temporal split."""

import dagster as dg

from hive_assets.defs.features.assets import enhanced_features

defs = dg.Definitions(assets=[enhanced_features])

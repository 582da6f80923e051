"""Collection: raw production data and its quarantine."""

import dagster as dg

from hive_assets.defs.data.assets import raw_production_data

defs = dg.Definitions(assets=[raw_production_data])

from hive_assets.defs import build_defs

defs = build_defs()

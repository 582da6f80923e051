from hive_assets.config import check_production, set_mlflow_process_defaults

set_mlflow_process_defaults()  # before anything imports mlflow
check_production()  # HIVE_ENV=production: refuse to load, one line naming each missing setting
from hive_assets.defs import build_defs  # noqa: E402

defs = build_defs()

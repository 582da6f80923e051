import dagster as dg

from hive_assets.defs.catalog import PIPELINE_GROUPS
from hive_assets.defs.partitions import specialist_partitions

# The main job: the whole graph (every stage but monitoring) for one specialist partition.
retrain_specialist = dg.define_asset_job(
    "retrain_specialist",
    selection=dg.AssetSelection.groups(*PIPELINE_GROUPS),
    partitions_def=specialist_partitions,
    description="Collect, featurize, train, validate, register and open the A/B test for one specialist.",
)

import dagster as dg

from hive_assets.defs.catalog import PIPELINE_GROUPS
from hive_assets.defs.k8s import retrain_tags_for_partition, training_run_tags
from hive_assets.defs.partitions import specialist_partitions

# The main job: the whole graph (every stage but monitoring) for one specialist partition.
# Its runs are sized for training and time out (job tags); each run also carries `hive/retrain=<specialist>`
# (added for its partition wherever the run is created: sensors, Launchpad, backfills), the key of the
# run queue's one-training-per-specialist limit.
retrain_specialist = dg.define_asset_job(
    "retrain_specialist",
    selection=dg.AssetSelection.groups(*PIPELINE_GROUPS),
    config=dg.PartitionedConfig(
        partitions_def=specialist_partitions,
        run_config_for_partition_key_fn=lambda _specialist: {},
        tags_for_partition_key_fn=retrain_tags_for_partition,
    ),
    tags=training_run_tags(),
    description="Collect, featurize, train, validate, register and open the A/B test for one specialist.",
)

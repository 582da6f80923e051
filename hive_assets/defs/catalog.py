"""How the assets present themselves in the Dagster UI: one group per stage of the loop, and the owner.

The retraining job selects the stages' groups (PIPELINE_GROUPS), so an asset is in the job because of the
stage it belongs to, not by a list kept beside the job.
"""

from typing import Literal

from hive_assets.config import SPECIALISTS

DATA, FEATURES, TRAINING, EVALUATION, REGISTRY, ROLLOUT, MONITORING = (
    "data", "features", "training", "evaluation", "registry", "rollout", "monitoring")
REVIEW = "review"  # the labels asked of reviewers (hive_assets.review): beside the loop, not in the retraining job
# the groups `retrain_specialist` materializes, in the order of the loop (monitoring is observed, not built)
PIPELINE_GROUPS = (DATA, FEATURES, TRAINING, EVALUATION, REGISTRY, ROLLOUT)
OWNERS = ["team:ml-platform"]

# the specialist as a typed config field: the Launchpad offers the five names and rejects any other
Specialist = Literal[SPECIALISTS]  # type: ignore[valid-type]

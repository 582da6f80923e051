"""enhanced_features, with the blocking `trainable` data gate."""

import dagster as dg
import pandas as pd
from pydantic import Field

from hive_assets.data import COLLECTION_SETTINGS, CollectResult, to_utc
from hive_assets.defs import _ui
from hive_assets.defs.catalog import OWNERS, FEATURES
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.defs.runs.run_config import step_config
from hive_assets.evaluation import DEFAULT_MIN_TRAINING_SAMPLES, training_data_problems
from hive_assets.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION, features_frame
from hive_assets.review import decision_split
from hive_assets.training import temporal_group_split


TRAINABLE_PROBLEMS = "trainable_problems"  # the materialization's metadata: why its rows cannot train, if so


@step_config("enhanced_features")
class FeatureConfig(dg.Config):
    """The `trainable` gate's threshold."""

    min_training_samples: int = Field(
        DEFAULT_MIN_TRAINING_SAMPLES, ge=1,
        description="Labelled rows under which the blocking `trainable` check fails the run (each class must also "
                    "hold >= 5% of them).")


def data_until(features: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """`data_until`: the end of the collection window the model was trained on (a backfill's `as_of`), when
    known. The feedback count starts there, not at `trained_at`: a backfill of last month, or feedback that
    came while the run trained, was not seen by the model (a backfill used to reset the count and the
    cooldown as if it had)."""
    end = to_utc((features.attrs.get(COLLECTION_SETTINGS) or {}).get("window_end"))
    return {"data_until": dg.MetadataValue.timestamp(end)} if end is not None else {}


@dg.asset(
    partitions_def=specialist_partitions,
    group_name=FEATURES,
    kinds={"python", "pandas"},
    owners=OWNERS,
    check_specs=[dg.AssetCheckSpec("trainable", asset="enhanced_features", blocking=True,
                                   description="Enough labelled rows, every class >= 5% and in the train, "
                                               "validation and test splits.")],
    resource_defs={"run_lease": RUN_LEASE},  # the partition's one-writer lease, held for the whole run
)
def enhanced_features(context: dg.AssetExecutionContext, config: FeatureConfig, raw_production_data: CollectResult,
                      run_lease: RunLeaseResource):
    """The feature contract (hive_assets.features) per labelled row, with the grouped temporal split."""
    labelled = raw_production_data.frame[raw_production_data.frame["label"].notna()].reset_index(drop=True)
    features = features_frame(labelled["plan"].tolist())
    frame = pd.concat(
        [labelled[["opinion_id", "plan_id", "evaluated_at", "feedback_submitted_at", "label"]], features], axis=1)
    frame["split"] = temporal_group_split(frame)
    moved = 0
    if "label_selection" in labelled:  # labels the review queue chose actively train; they never validate or test
        before = frame["split"]
        frame["split"] = decision_split(before, labelled["label_selection"])
        moved = int((frame["split"] != before).sum())
    frame.attrs["data_snapshot_hash"] = raw_production_data.snapshot_hash()
    # how the rows were collected (window, filters, trust deny-list): trained_model logs it as run params
    frame.attrs[COLLECTION_SETTINGS] = raw_production_data.settings
    problems = training_data_problems(frame, config.min_training_samples)
    # kept with the frame: a later run that trains from this file alone refuses it too (the blocking check
    # stops only the run it belongs to)
    frame.attrs["trainable_problems"] = problems
    split_counts = frame["split"].value_counts().to_dict()
    yield dg.Output(
        frame,
        metadata={
            "rows": len(frame),
            "feature_schema_version": FEATURE_SCHEMA_VERSION,
            "features": len(FEATURE_NAMES),
            "splits": dg.MetadataValue.json(split_counts),
            "active_labels_moved_to_train": moved,
            "cyclic_plans": int(frame["has_cyclic_dependencies"].sum()) if len(frame) else 0,
            "data_snapshot_hash": frame.attrs["data_snapshot_hash"],
            # the feedback sensor holds a retraining on data found untrainable until more feedback came after it
            TRAINABLE_PROBLEMS: dg.MetadataValue.json(problems), **data_until(frame),
            "preview": dg.MetadataValue.md(frame[list(FEATURE_NAMES)[:8]].head(5).to_markdown()),
        },
    )
    yield _ui.check_result(
        context.partition_key,
        check_name="trainable",
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or (f"{len(frame)} labelled rows >= min_training_samples "
                                            f"{config.min_training_samples}, every class >= 5% of them and in the "
                                            "train, validation and test splits"),
        metadata={"rows": len(frame), "problems": dg.MetadataValue.json(problems)},
    )

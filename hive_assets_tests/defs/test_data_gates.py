"""Data gates (SPEC section 5) as asset checks: too few rows warns, untrainable data blocks training."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from hive_assets.defs import build_defs
from hive_assets.evaluation import training_data_problems
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.simulator import simulate
from hive_assets.data.store import SQLiteStore

NOW = datetime(2026, 4, 1, tzinfo=timezone.utc)


def _run(run_config: dict) -> dg.ExecuteInProcessResult:
    defs = build_defs()
    return dg.materialize(
        list(defs.assets), selection=["raw_production_data", "enhanced_features", "trained_model"],
        partition_key="behavior", instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        resources={"document_store": DocumentStoreResource(), "mlflow": MlflowResource(), "platform": PlatformSettings()},
        run_config={"ops": {"raw_production_data": {"config": {"as_of": NOW.isoformat()}}, **run_config}},
    )


def _checks(result) -> dict:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_too_few_labelled_rows_block_training_and_too_few_rows_warn(hive_home):
    simulate(SQLiteStore(hive_home / "store.sqlite"), plans=300, days=20, seed=2, now=NOW)
    result = _run({"enhanced_features": {"config": {"min_training_samples": 5000}}})
    checks = _checks(result)
    assert not checks["enough_samples"].passed
    assert checks["enough_samples"].severity == dg.AssetCheckSeverity.WARN
    assert not checks["trainable"].passed
    assert checks["trainable"].description.startswith("behavior: ")  # checks are not partitioned: whose it is
    assert "< min_training_samples 5000" in checks["trainable"].description
    # passing, it says by how much (it said "trainable")
    passed = _checks(_run({"enhanced_features": {"config": {"min_training_samples": 10}},
                           "trained_model": {"config": {"model_type": "logistic"}}}))["trainable"]
    rows = passed.metadata["rows"].value
    assert passed.passed and passed.description == (
        f"behavior: {rows} labelled rows >= min_training_samples 10, every class >= 5% of them and in the train, "
        "validation and test splits")
    materialized = {e.asset_key.path[-1] for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert materialized == {"raw_production_data", "enhanced_features"}  # trained_model was blocked


def test_a_rare_class_is_named():
    import pandas as pd

    frame = pd.DataFrame({"label": ["approve"] * 500 + ["reject"] * 480 + ["review_required"] * 20})
    problems = training_data_problems(frame, 300)
    assert problems == ["class review_required is 2.0% of labels (< 5%)"]
    assert training_data_problems(frame.iloc[:900].assign(label=["approve", "reject", "review_required"] * 300), 300) == []


def test_a_class_absent_from_the_train_or_validation_split_is_named():
    """A class can be 6 % of the labels and absent from the validation split (the split is by time: a class
    reviewers stopped using): calibration then failed with sklearn's IndexError inside training."""
    import pandas as pd

    train = ["approve", "reject"] * 329 + ["review_required"] * 42
    validation = ["approve", "reject"] * 75
    test = ["approve", "reject"] * 66 + ["review_required"] * 18
    frame = pd.DataFrame({"label": train + validation + test,
                          "split": ["train"] * 700 + ["validation"] * 150 + ["test"] * 150})
    assert frame["label"].value_counts(normalize=True)["review_required"] >= 0.05
    assert training_data_problems(frame, 300) == [
        "class review_required has no rows in the validation split (150 rows, split by time): calibration and the "
        "model choice cannot score it"]
    swapped = frame.assign(split=frame["split"].replace({"train": "validation", "validation": "train"}))
    assert training_data_problems(swapped, 300)[0].startswith("class review_required has no rows in the train split")
    frame.loc[frame.index[700], "label"] = "review_required"  # one row of it in validation is enough to fit
    assert training_data_problems(frame, 300) == []

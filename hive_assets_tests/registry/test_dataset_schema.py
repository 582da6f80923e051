"""The training data's MLflow schema, computed by column instead of by cell, is the one MLflow infers."""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pandas as pd

from hive_assets.features import features_frame
from hive_assets.registry._mlflow import dataset_schema
from hive_assets.simulator import make_plans, policy_label


def test_dataset_schema_is_what_mlflow_infers_cell_by_cell():
    plans = make_plans(400, seed=21)
    frame = features_frame(plans).assign(label=[policy_label("business", p) for p in plans], split="train")
    frame["rows_seen"] = np.arange(len(frame))  # the contract's columns are floats: integers and booleans too
    frame["flag"] = frame.index % 3 == 0
    assert {frame[c].dtype.kind for c in frame.columns} == {"f", "i", "b", "O"}
    frame.loc[7, "risk_score"] = np.nan  # a numeric column with a missing value: not required
    frame["note"] = frame["label"].where(frame.index % 50 != 3, None)  # text with a missing value
    frame["boxed"] = pd.Series(range(len(frame)), dtype=object)  # numbers in an object column: MLflow's inference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow's hint about integer columns
        expected = mlflow.data.from_pandas(frame, targets="label").schema
        for columns in (list(frame.columns), ["label", "split"], list(frame.columns[:5])):
            part = frame[columns]
            assert dataset_schema(part) == mlflow.data.from_pandas(part).schema
        assert dataset_schema(frame.iloc[:0]) == mlflow.data.from_pandas(frame.iloc[:0]).schema
        schema = dataset_schema(frame)
    assert schema == expected
    required = {spec.name: spec.required for spec in schema.inputs}
    assert not required["risk_score"] and not required["note"] and required["label"] and required["complexity_score"]

"""Importing the review package (as rollout's A/B look, `hive review-queue` and `hive status` do) pulls in no
model library: scikit-learn is the refresh's, imported when a queue is refreshed."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["hive_assets.review", "hive_assets.rollout"])
def test_importing_pulls_in_no_model_library(module):
    code = (f"import sys; import {module}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'mlflow', 'sklearn', 'xgboost'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

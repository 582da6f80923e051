"""The model types (SPEC section 4; regularized linear models and a small neural network, issue 24), their default parameters and their tuning search space.

Class weights are balanced exactly once, as sample weights (`fit_estimator`), which every model type
accepts: no estimator is built with its own class weighting on top (that would square the correction).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy.stats import loguniform, randint, uniform
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from hive_assets.config import MODEL_TYPES  # one definition, re-exported by hive_assets.training

# One OpenMP thread per xgboost fit: partitions train in parallel (one run per specialist), and on a busy
# host xgboost's spinning OpenMP threads made a 1,000-row fit take minutes instead of seconds (BENCHMARKS.md).
XGBOOST_THREADS = 1
# the standardized logistic regressions (L2, L1): a scaler + classifier pipeline, calibrated differently
LINEAR_MODEL_TYPES: tuple[str, ...] = ("logistic", "sparse_logistic")
# model types that are a StandardScaler + classifier Pipeline: the classifier step's name (its fit's weights go there)
PIPELINE_STEP: dict[str, str] = {**dict.fromkeys(LINEAR_MODEL_TYPES, "logistic"), "mlp": "mlp"}
# The MLP's solver follows the training rows (sklearn's advice): L-BFGS on small sets, where adam's early
# stopping would watch a hold-out of a few dozen rows; adam with early stopping on its 10% hold-out from
# MLP_ADAM_MIN_ROWS (200 hold-out rows), where full-batch L-BFGS gets slow (BENCHMARKS.md, issue 24).
MLP_ADAM_MIN_ROWS = 2000
# ... and so does its depth: one hidden layer of 64 below MLP_ADAM_MIN_ROWS (a second one lost 2.4 points of
# macro-F1 for architecture at 500 rows), two from there (with alpha 3 in the grid, 0.7-2.6 points closer to
# Bayes at 5,000 rows for all five specialists, at no more CPU time; BENCHMARKS.md, issue 24, fourth pass).
MLP_HIDDEN_LAYERS_SMALL: list[int] = [64]
MLP_HIDDEN_LAYERS_LARGE: list[int] = [64, 64]

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.9,
                "colsample_bytree": 0.9, "min_child_weight": 2.0},
    "random_forest": {"n_estimators": 300, "min_samples_leaf": 3, "max_features": "sqrt"},
    "gradient_boosting": {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.08, "subsample": 0.9},
    # multinomial logistic regression on standardized features, L2 penalty of strength 1 / C
    "logistic": {"C": 1.0},
    # the same with an L1 penalty: weights of features that do not help are exactly 0, so a few hundred
    # labels are not spent on the 30 columns most policies ignore
    "sparse_logistic": {"C": 0.3},
    # ReLU units on standardized features (one hidden layer of 64; two from MLP_ADAM_MIN_ROWS rows:
    # `mlp_hidden_layers`), L2 penalty `alpha` (solver: `mlp_solver`);
    # alpha 10: what validation chose in 46 of 50 windows of 500 rows (BENCHMARKS.md, issue 24, MLP)
    "mlp": {"hidden_layer_sizes": [64], "alpha": 10.0},
}
# Where tuning samples candidates (scipy distributions or lists, as sklearn's ParameterSampler takes them):
# ranges around the defaults that trade capacity against the label noise of human feedback.
SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": randint(100, 600), "max_depth": randint(2, 8),
                "learning_rate": loguniform(0.02, 0.3), "subsample": uniform(0.6, 0.4),
                "colsample_bytree": uniform(0.5, 0.5), "min_child_weight": loguniform(0.5, 20.0)},
    "random_forest": {"n_estimators": randint(100, 500), "max_depth": [None, 8, 12, 20],
                      "min_samples_leaf": randint(1, 20), "max_features": ["sqrt", 0.5, 0.8]},
    "gradient_boosting": {"n_estimators": randint(50, 400), "max_depth": randint(2, 6),
                          "learning_rate": loguniform(0.02, 0.3), "subsample": uniform(0.6, 0.4)},
    "logistic": {"C": loguniform(0.01, 100.0)},
    "sparse_logistic": {"C": loguniform(0.01, 10.0)},
    "mlp": {"alpha": loguniform(0.01, 10.0), "hidden_layer_sizes": [[32], [64], [64, 64]]},
}


def mlp_solver(n_rows: int) -> dict[str, Any]:
    """The MLP's solver settings for `n_rows` training rows (see MLP_ADAM_MIN_ROWS)."""
    if n_rows < MLP_ADAM_MIN_ROWS:
        return {"solver": "lbfgs", "max_iter": 300}
    return {"solver": "adam", "early_stopping": True, "validation_fraction": 0.1, "n_iter_no_change": 10,
            "max_iter": 500}


def mlp_hidden_layers(n_rows: int) -> list[int]:
    """The MLP's hidden layer widths for `n_rows` training rows (see MLP_HIDDEN_LAYERS_LARGE)."""
    return list(MLP_HIDDEN_LAYERS_SMALL if n_rows < MLP_ADAM_MIN_ROWS else MLP_HIDDEN_LAYERS_LARGE)


def row_dependent_params(model_type: str, n_rows: int) -> dict[str, Any]:
    """Settings that follow the number of training rows (the MLP's solver and depth), under any explicit
    parameters."""
    if model_type != "mlp":
        return {}
    return {**mlp_solver(n_rows), "hidden_layer_sizes": mlp_hidden_layers(n_rows)}


def build_estimator(model_type: str, params: dict[str, Any] | None = None, random_state: int = 0):
    """An unfitted estimator of `model_type` with DEFAULT_PARAMS overridden by `params` (no class weights:
    `fit_estimator` applies them)."""
    params = {**DEFAULT_PARAMS[model_type], **(params or {})}
    if model_type == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(objective="multi:softprob", tree_method="hist", n_jobs=XGBOOST_THREADS,
                             random_state=random_state, eval_metric="mlogloss", **params)
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_jobs=2, random_state=random_state, **params)
    if model_type == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=random_state, **params)
    if model_type in LINEAR_MODEL_TYPES:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        # the scaler makes one penalty strength fit every feature's units; saga is sklearn's solver for a
        # multinomial L1 penalty (a loose tolerance: the C grid moves the score more than the last digits do)
        solver = {"max_iter": 1000} if model_type == "logistic" else {"l1_ratio": 1.0, "solver": "saga",
                                                                      "max_iter": 300, "tol": 1e-3,
                                                                      "random_state": random_state}
        return Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression(**solver, **params))])
    if model_type == "mlp":
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        params = {**params, "hidden_layer_sizes": tuple(params["hidden_layer_sizes"])}  # a list in JSON params
        return Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(random_state=random_state, **params))])
    raise ValueError(f"unknown model_type {model_type!r}; choose one of {MODEL_TYPES}")


@contextmanager
def recorded_convergence() -> Iterator[list[str]]:
    """The ConvergenceWarnings of the fits inside, as lines in the yielded list (filled on exit) instead of on
    stderr: a fit that stopped at its iteration limit (the small-data MLP's L-BFGS, saga) is a fact about that
    trial, recorded with it (`converged`, in MLflow and the UI), not several lines of advice to "scale the
    data" in the operator's terminal and the run's step log. Any other warning is shown as before."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield notes
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            notes.append(str(w.message).splitlines()[0])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def fit_estimator(model_type: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, random_state: int = 0,
                  validation: tuple[np.ndarray, np.ndarray] | None = None, warm_start_from: Any = None):
    """Fit with balanced class weights (SPEC section 4), given once as sample weights n / (K * n_class).
    `validation` (xgboost only): the rows its early stopping watches, weighted the same way.
    `warm_start_from` (the linear models only): a fitted estimator of the same type on the same rows, whose
    coefficients the solver starts from (one step of a regularization path: the same optimum, to the
    solver's tolerance, in fewer iterations); the returned estimator does not warm-start again.
    Settings not given default to `row_dependent_params` (the MLP's solver)."""
    params = {**row_dependent_params(model_type, len(y)), **params}
    estimator = build_estimator(model_type, params, random_state)
    weights = compute_sample_weight("balanced", y)
    step = PIPELINE_STEP.get(model_type)  # a pipeline's classifier step, else None
    if warm_start_from is not None:
        if model_type not in LINEAR_MODEL_TYPES:
            raise ValueError(f"warm starts are for the linear models {LINEAR_MODEL_TYPES}, not {model_type!r}")
        previous, classifier = warm_start_from.named_steps[step], estimator.named_steps[step]
        classifier.coef_, classifier.intercept_ = previous.coef_.copy(), previous.intercept_.copy()
        classifier.warm_start = True
    if step is not None:  # a pipeline: the weights go to its classifier step
        # one BLAS thread: on the busy 2-vCPU host OpenBLAS's spinning threads made a 14k-row fit take 8 s
        # instead of 0.2 s (as xgboost's OpenMP threads did, XGBOOST_THREADS)
        with threadpool_limits(limits=1, user_api="blas"):
            estimator.fit(X, y, **{f"{step}__sample_weight": weights})
        estimator.named_steps[step].set_params(warm_start=False)  # a later fit of the stored model starts cold
    elif validation is not None:
        X_val, y_val = validation
        estimator.fit(X, y, sample_weight=weights, eval_set=[(X_val, y_val)],
                      sample_weight_eval_set=[compute_sample_weight("balanced", y_val)], verbose=False)
    else:
        estimator.fit(X, y, sample_weight=weights)
    return estimator

"""Fit, tune (optionally) and calibrate one specialist's model; attach its drift reference.

`model_type="auto"` (the default) fits every family of `candidate_model_types`, each with the setting of
its VALIDATION_GRIDS that scores best, and keeps the family with the best macro-F1 on the validation split
(the same held-out, later-in-time rows that calibrate it), so the family follows the data, not a constant
chosen for one data set: a sparse linear model where the classes are separated by a linear score (and when
few labels leave trees little to split), boosted trees where interactions and curvature matter. A candidate is started only while the time budget lasts (the first always),
and every candidate's score is returned, so the choice can be read back.

With `selection_max_rows` set, above that many training rows the families and their settings are compared
on a stratified random sample of that many rows, and only the winner is fitted again on every training row
(xgboost early stopped again, on the same validation split): one halving rung, so choosing a model costs
about the same at 5,000 or 50,000 labels and only the final fit grows with them. Off by default: on the
learning curve a sample of 2,500 cost 0.4-0.9 points of macro-F1 at 20,000 rows and up to 1.8 at 5,000,
mostly by choosing a simpler family than the full comparison does (BENCHMARKS.md, issue 23).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from hive_assets.config import AUTO_CANDIDATES, AUTO_MODEL_TYPE
from hive_assets.features import FEATURE_NAMES
from hive_assets.monitoring._drift import build_reference
from hive_assets.training._calibration import calibrate
from hive_assets.training._defaults import (
    DEFAULT_SELECTION_MAX_ROWS, DEFAULT_TIME_BUDGET_SECONDS, DEFAULT_TUNING_CANDIDATES,
)
from hive_assets.training._encoding import encode, encode_labels
from hive_assets.training._estimators import (
    DEFAULT_PARAMS, MODEL_TYPES, fit_estimator, recorded_convergence, row_dependent_params,
)
from hive_assets.training._model import SpecialistModel
from hive_assets.training._tuning import choose_on_validation, sample_candidates, successive_halving


def selection_sample(y: np.ndarray, max_rows: int, random_state: int) -> np.ndarray | None:
    """Sorted indices of a stratified random sample of `max_rows` of the rows labelled `y`, or None when
    there are no more rows than that (or `max_rows` is 0: no sampling)."""
    if not max_rows or len(y) <= max_rows:
        return None
    # a class of one training row cannot be stratified (sklearn refused the whole sample): it is kept whole
    classes, counts = np.unique(y, return_counts=True)
    rare = np.flatnonzero(np.isin(y, classes[counts < 2]))
    rest = np.setdiff1d(np.arange(len(y)), rare)
    try:
        sample, _ = train_test_split(rest, train_size=max_rows - len(rare), stratify=y[rest],
                                     random_state=random_state)
    except ValueError:  # too few rows left out to hold every class: a plain random sample of the rest
        sample = np.random.default_rng(random_state).choice(rest, size=max_rows - len(rare), replace=False)
    return np.sort(np.concatenate([rare, sample]))


def _grid_setting(model_type: str, params: dict[str, Any], n_rows: int) -> dict[str, Any]:
    """The part of a chosen `params` that is the family's own setting: without what follows the rows (the
    MLP's solver, the sample's) and xgboost's round count (early stopping finds it again on all rows)."""
    drop = set(row_dependent_params(model_type, n_rows)) | ({"n_estimators"} if model_type == "xgboost" else set())
    return {k: v for k, v in params.items() if k not in drop}


def _fit_family(model_type, X_tr, y_tr, X_va, y_va, hyperparameter_tuning, random_state, tuning_candidates,
                search_space, candidates, progress, auto):
    """(params, estimator fitted on all training rows, validation macro-F1, tuning trials, whether that
    estimator's fit converged) of one family: tuned by successive halving, or (auto) its VALIDATION_GRIDS
    setting, or its default parameters."""
    if hyperparameter_tuning:
        if candidates is None:
            candidates = sample_candidates(model_type, tuning_candidates, random_state, search_space)
        params, estimator, score, trials = successive_halving(
            model_type, candidates, X_tr, y_tr, X_va, y_va, random_state=random_state, progress=progress)
    elif auto:
        if progress is not None:
            progress(f"fitting {model_type} on {len(y_tr)} rows, its parameters chosen on validation")
        params, estimator, score, trials = choose_on_validation(model_type, X_tr, y_tr, X_va, y_va, random_state)
    else:
        if progress is not None:
            progress(f"fitting {model_type} with its default parameters on {len(y_tr)} rows")
        params = row_dependent_params(model_type, len(y_tr))  # recorded with the model (the MLP's solver)
        with recorded_convergence() as unconverged:
            estimator = fit_estimator(model_type, params, X_tr, y_tr, random_state)
        if unconverged and progress is not None:
            progress(f"{model_type}: the fit stopped at its iteration limit ({unconverged[0]})")
        score = float(f1_score(y_va, estimator.predict(X_va), average="macro", zero_division=0))
        return params, estimator, score, [], not unconverged
    stopped = [t for t in trials if not t["converged"]]
    if stopped and progress is not None:
        progress(f"{model_type}: {len(stopped)} of {len(trials)} fits stopped at their iteration limit "
                 "(sklearn's ConvergenceWarning; `converged` false in the trials)")
    # the returned estimator is the last trial with its parameters (the final rung's, in halving)
    return params, estimator, score, trials, [t for t in trials if t["params"] == params][-1]["converged"]


def train_model(
    specialist: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    model_type: str = AUTO_MODEL_TYPE,
    hyperparameter_tuning: bool = False,
    random_state: int = 0,
    tuning_candidates: int = DEFAULT_TUNING_CANDIDATES,
    search_space: dict[str, Any] | None = None,
    candidates: list[dict[str, Any]] | None = None,
    calibration_method: str | None = None,
    progress: Callable[[str], None] | None = None,
    candidate_model_types: Sequence[str] = AUTO_CANDIDATES,
    time_budget_seconds: float = DEFAULT_TIME_BUDGET_SECONDS,
    selection_max_rows: int = DEFAULT_SELECTION_MAX_ROWS,
) -> tuple[SpecialistModel, dict[str, Any]]:
    """Fit on `train`; tune (optionally, successive halving on validation macro-F1) and calibrate on
    `validation`. Frames hold FEATURE_NAMES + `label`. Tuning draws `tuning_candidates` parameter sets
    from `search_space` (default SEARCH_SPACE[model_type]), or tries the given `candidates`.

    `model_type="auto"`: each of `candidate_model_types` in turn (tuned when `hyperparameter_tuning`, else
    the best validation macro-F1 of its VALIDATION_GRIDS settings; an explicit model type without tuning
    fits DEFAULT_PARAMS),
    until `time_budget_seconds` have passed; the best validation macro-F1 wins, ties going to the earlier
    candidate. `info["selection"]` lists every candidate's score, seconds, status, rows and
    whether its chosen setting's fit converged (ConvergenceWarnings are recorded, not printed).
    With more than `selection_max_rows` training rows (model_type auto without tuning; 0: never), the
    candidates are compared on a stratified random sample of that many, then the winner's setting is fitted
    on all rows: `info["refit"]` holds its rows, validation macro-F1 and seconds (None without a sample).

    Class weights are balanced. Calibration: isotonic with >= ISOTONIC_MIN_ROWS validation rows (linear
    models: LINEAR_ISOTONIC_MIN_ROWS), else sigmoid, unless `calibration_method` says otherwise ("none": uncalibrated). The model carries its drift reference (the
    training features' quantile bins and the class distribution of its predictions on them).
    `progress` receives the tuning's progress lines (one per successive-halving rung).
    """
    families = list(candidate_model_types) if model_type == AUTO_MODEL_TYPE else [model_type]
    unknown = [f for f in families if f not in MODEL_TYPES]
    if unknown or not families:
        raise ValueError(f"unknown model_type {(unknown or [model_type])[0]!r}; choose one of "
                         f"{(*MODEL_TYPES, AUTO_MODEL_TYPE)}")
    if model_type == AUTO_MODEL_TYPE and candidates is not None:
        raise ValueError("explicit tuning `candidates` are parameters of one model type, not of model_type='auto'")
    if not len(train) or not len(validation):
        raise ValueError(f"cannot train on {len(train)} training and {len(validation)} validation rows")
    X_tr, y_tr = encode(train), encode_labels(train["label"])
    X_va, y_va = encode(validation), encode_labels(validation["label"])
    auto = model_type == AUTO_MODEL_TYPE
    sample = selection_sample(y_tr, selection_max_rows, random_state) if auto and not hyperparameter_tuning else None
    X_sel, y_sel = (X_tr, y_tr) if sample is None else (X_tr[sample], y_tr[sample])
    start = time.perf_counter()
    selection: list[dict[str, Any]] = []
    best: tuple[float, str, dict[str, Any], Any, list[dict[str, Any]]] | None = None
    for family in families:
        if best is not None and time.perf_counter() - start >= time_budget_seconds:
            selection.append({"model_type": family, "status": "skipped: time budget spent", "val_macro_f1": None, "params": None,
                              "seconds": 0.0, "converged": None})
            continue
        began = time.perf_counter()
        params, estimator, val_f1, trials, converged = _fit_family(
            family, X_sel, y_sel, X_va, y_va, hyperparameter_tuning, random_state, tuning_candidates,
            search_space if not auto else None, candidates, progress, auto=auto)
        selection.append({"model_type": family, "status": "fitted", "val_macro_f1": val_f1, "rows": int(len(y_sel)),
                          "seconds": round(time.perf_counter() - began, 3), "params": params, "converged": converged})
        if best is None or val_f1 > best[0]:
            best = (val_f1, family, params, estimator, trials)
    assert best is not None
    val_f1, chosen, params, estimator, trials = best
    for row in selection:
        row["chosen"] = row["model_type"] == chosen
    if progress is not None and len(families) > 1:
        scores = ", ".join(f"{r['model_type']} {r['val_macro_f1']:.4f}" for r in selection if r["val_macro_f1"] is not None)
        on = "" if sample is None else f" on a sample of {len(y_sel)} of the {len(y_tr)} training rows"
        progress(f"model selection: {chosen} has the best validation macro-F1{on} ({scores})")
    refit = None
    if sample is not None:
        if progress is not None:
            progress(f"fitting {chosen} with its chosen setting on all {len(y_tr)} training rows")
        began = time.perf_counter()
        params, estimator, val_f1, refit_trials = choose_on_validation(
            chosen, X_tr, y_tr, X_va, y_va, random_state, grid=[_grid_setting(chosen, params, len(y_sel))])
        trials = [*trials, *refit_trials]
        refit = {"rows": int(len(y_tr)), "val_macro_f1": val_f1, "seconds": round(time.perf_counter() - began, 3),
                 "converged": refit_trials[-1]["converged"]}
    if progress is not None:
        progress(f"calibrating on {len(y_va)} validation rows (validation macro-F1 {val_f1:.4f} before calibration)")
    if calibration_method == "none":
        calibrator, method = None, "none"
    else:
        calibrator, method = calibrate(estimator.predict_proba(X_va), y_va, calibration_method, model_type=chosen)
    model = SpecialistModel(specialist, chosen, estimator, calibrator, method,
                            params={**DEFAULT_PARAMS[chosen], **params})
    model.drift_reference = build_reference(train[list(FEATURE_NAMES)], list(model.predict(train)),
                                            seed=random_state)
    info = {
        "n_train": int(len(y_tr)),
        "n_validation": int(len(y_va)),
        "model_type": chosen,
        "val_macro_f1_uncalibrated": float(val_f1),
        "calibration_method": method,
        "tuning_trials": trials,
        "params": model.params,
        "selection": selection,
        "refit": refit,
    }
    return model, info

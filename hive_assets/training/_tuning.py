"""Budgeted hyperparameter search scored on the validation split (SPEC section 4): successive halving.

sklearn's HalvingRandomSearchCV cross-validates; here the score must be macro-F1 on the fixed
(temporal, grouped) validation split, so the loop is written out: sample `n_candidates` parameter sets
(sklearn's ParameterSampler), fit each on a random `1 / factor^k` share of the training rows, score
macro-F1 on the whole validation split, keep the best `1 / factor`, multiply the rows by `factor`, and
repeat until the survivors are fitted on every training row. The winner is the best survivor of the
last rung, so the returned estimator is fitted on the full training split. The budget is about
(number of rungs) full fits instead of `n_candidates`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import ParameterSampler

from hive_assets.training._estimators import (
    LINEAR_MODEL_TYPES, SEARCH_SPACE, fit_estimator, recorded_convergence, row_dependent_params,
)

MIN_RUNG_ROWS = 300  # below this a fit says little about the full-data fit


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so parameters serialise to JSON / MLflow params."""
    return value.item() if isinstance(value, np.generic) else value


def sample_candidates(model_type: str, n_candidates: int, random_state: int = 0,
                      search_space: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    space = search_space if search_space is not None else SEARCH_SPACE[model_type]
    return [{k: _plain(v) for k, v in p.items()}
            for p in ParameterSampler(space, n_iter=n_candidates, random_state=random_state)]


def successive_halving(
    model_type: str, candidates: list[dict[str, Any]], X_train: np.ndarray, y_train: np.ndarray,
    X_val: np.ndarray, y_val: np.ndarray, factor: int = 3, random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Any, float, list[dict[str, Any]]]:
    """(best params, its estimator fitted on all training rows, its validation macro-F1, every trial).

    Every trial records its rung, training rows, parameters, validation macro-F1 and whether its fit
    converged (`recorded_convergence`). `progress`, when given, receives one line per finished rung
    ("tuning rung r / R: c candidates on n rows, best macro-F1").
    """
    if not candidates:
        raise ValueError("no candidates to tune")
    n = len(y_train)
    rungs = 1 + int(math.floor(math.log(len(candidates), factor) + 1e-9)) if len(candidates) > 1 else 1
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)  # nested subsamples: rung k's rows contain rung k-1's
    alive = list(range(len(candidates)))
    trials: list[dict[str, Any]] = []
    best: tuple[float, int, Any] | None = None
    for rung in range(rungs):
        rows = n if rung == rungs - 1 else min(n, max(MIN_RUNG_ROWS, n // factor ** (rungs - 1 - rung)))
        idx = np.sort(order[:rows])
        if len(np.unique(y_train[idx])) < len(np.unique(y_train)):
            idx = np.arange(n)  # a subsample missing a class cannot be fitted with every class
        scored = []
        for c in alive:
            # what this fit used, recorded: the candidate over the settings that follow its rows (the MLP's solver)
            params = {**row_dependent_params(model_type, len(idx)), **candidates[c]}
            with recorded_convergence() as unconverged:
                estimator = fit_estimator(model_type, params, X_train[idx], y_train[idx], random_state)
            score = float(f1_score(y_val, estimator.predict(X_val), average="macro", zero_division=0))
            trials.append({"rung": rung, "rows": int(len(idx)), "params": params, "val_macro_f1": score,
                           "converged": not unconverged})
            scored.append((score, c, estimator, params))
        scored.sort(key=lambda t: (-t[0], t[1]))  # ties: the earlier candidate, deterministic
        if rung == rungs - 1:
            best = scored[0]
        if progress is not None:
            progress(f"tuning rung {rung + 1} / {rungs}: {len(scored)} candidates on {len(idx)} rows, "
                     f"best validation macro-F1 {scored[0][0]:.4f}")
        alive = [c for _, c, _, _ in scored[: max(1, math.ceil(len(scored) / factor))]]
    assert best is not None
    score, _, estimator, params = best
    return params, estimator, score, trials


# `model_type="auto"`'s cheap tuning: a few settings per family, each scored by macro-F1 on the validation
# split (BENCHMARKS.md, learning curve, issue 24: what they were chosen from). xgboost: tree depths 2 to 8,
# each boosted with early stopping on the validation log-loss (at most XGBOOST_MAX_ROUNDS rounds), so the
# number of trees follows the amount of data instead of a constant 300 (learning rate 0.1: as good as
# 0.05 at 20k rows, in a third of the rounds). The linear models: their penalty strength, from the strongest
# penalty to the weakest, each fit starting where the previous one ended (a path). The MLP: its L2
# penalty, 1 / 3 / 10 (its depth follows the rows, `mlp_hidden_layers`): validation chose 0.01 or 0.1 in 1
# of 50 windows of 500 rows and 0 of 20 of 5,000, and 3 (between the old grid's 1 and 10) in 9 of those 20
# (BENCHMARKS.md, issue 24, fourth pass).
_PENALTY_STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
VALIDATION_GRIDS: dict[str, list[dict[str, Any]]] = {
    "xgboost": [{"max_depth": d, "learning_rate": 0.1, "min_child_weight": w} for d, w in ((2, 1.0), (4, 2.0), (6, 5.0), (8, 5.0))],
    **{linear: [{"C": c} for c in _PENALTY_STRENGTHS] for linear in LINEAR_MODEL_TYPES},
    "mlp": [{"alpha": a} for a in (1.0, 3.0, 10.0)],
}
XGBOOST_MAX_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 50


def _early_stopped_xgboost(params: dict[str, Any], X_train, y_train, X_val, y_val, random_state: int):
    """xgboost boosted until the balanced validation log-loss stops improving, then cut to its best round
    by xgboost's own EarlyStopping(save_best=True): the trees a refit with that many rounds grows (the same
    seed draws the same rows round by round), without the rounds after it and without growing them again."""
    from xgboost.callback import EarlyStopping

    stop = EarlyStopping(rounds=EARLY_STOPPING_ROUNDS, save_best=True)  # a new one per fit: it keeps state
    estimator = fit_estimator("xgboost", {**params, "n_estimators": XGBOOST_MAX_ROUNDS, "callbacks": [stop]},
                              X_train, y_train, random_state, validation=(X_val, y_val))
    # the parameters of the model it now is: that many rounds, no early stopping
    return estimator.set_params(n_estimators=estimator.get_booster().num_boosted_rounds(), callbacks=None)


def choose_on_validation(
    model_type: str, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
    random_state: int = 0, grid: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], Any, float, list[dict[str, Any]]]:
    """(best params, its estimator fitted on all training rows, its validation macro-F1, every trial, with
    whether its fit converged) over VALIDATION_GRIDS[model_type] (or `grid`); ties go to the earlier
    setting. A family without a grid is fitted with its defaults. xgboost's `n_estimators` is its best round under early stopping, and its
    estimator holds exactly that many rounds (`_early_stopped_xgboost`)."""
    grid = grid if grid is not None else VALIDATION_GRIDS.get(model_type, [{}])
    best: tuple[float, dict[str, Any], Any] | None = None
    trials: list[dict[str, Any]] = []
    previous = None  # the linear models walk their grid as a regularization path (BENCHMARKS.md, issue 23)
    for params in grid:
        params = {**row_dependent_params(model_type, len(y_train)), **params}  # recorded with the model
        with recorded_convergence() as unconverged:
            if model_type == "xgboost":
                estimator = _early_stopped_xgboost(params, X_train, y_train, X_val, y_val, random_state)
                params = {**params, "n_estimators": estimator.n_estimators}
            else:
                estimator = fit_estimator(model_type, params, X_train, y_train, random_state, warm_start_from=previous)
                previous = estimator if model_type in LINEAR_MODEL_TYPES else None
        score = float(f1_score(y_val, estimator.predict(X_val), average="macro", zero_division=0))
        trials.append({"rung": 0, "rows": int(len(y_train)), "params": params, "val_macro_f1": score,
                       "converged": not unconverged})
        if best is None or score > best[0]:
            best = (score, params, estimator)
    assert best is not None
    score, params, estimator = best
    return params, estimator, score, trials

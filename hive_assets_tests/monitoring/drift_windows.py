"""Windows with a known amount of drift, made independently of the drift code under test (shared by
test_drift.py and benchmarks/bench_drift_decision.py).

* `shift_features(frame, c, pool)`: the three features SHIFTED move by `c` standard deviations on the
  normal-score scale, x -> F^-1(Phi(Phi^-1(F(x)) + c)), F the pool's own distribution of the feature.
  Every continuous feature then gets the same population PSI against its deciles whatever its shape
  (0.060 at c = 0.25 and 0.238 at c = 0.5 for a normal feature; the PSI is invariant under monotone
  maps): the hardest version of "a c-SD shift" to detect (an additive shift of a skewed feature gives
  a larger PSI).
* `with_new_domain(frame, share, rng)`: `share` of the rows get the domain PAYMENTS, unseen in training.
* `score` / `classes`: a fixed scorer on the features (the simulator's business policy, 3 risk - 1.6
  priority + 0.6 complexity) cut into approve / review_required / reject: a feature shift moves the
  class mix as a model would.
* `tilted_shares(c)`: class shares 40/32/28 % moved by `c` SD of a latent score (a class-mix change
  with the features untouched).
* `feature_scenario` / `class_mix_scenario`: the window makers (rows, rng) -> (features, predictions)
  of the benchmark's cells and the tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

SHIFTED = ("risk_score", "complexity_score", "avg_duration_ms")
CLASSES = np.array(["approve", "review_required", "reject"])
NEW_DOMAIN = "PAYMENTS"


def shift_features(frame: pd.DataFrame, c: float, pool: pd.DataFrame, names=SHIFTED) -> pd.DataFrame:
    """`frame` with `names` moved by `c` SD on the normal-score scale of `pool`'s distribution."""
    out = frame.copy()
    for name in names:
        base = np.sort(pool[name].to_numpy())
        x = frame[name].to_numpy()
        # mid-rank of each value among the pool's (ties share one position), kept inside (0, 1)
        u = (np.searchsorted(base, x, "left") + np.searchsorted(base, x, "right")) / (2.0 * base.size)
        u = np.clip(u, 0.5 / base.size, 1 - 0.5 / base.size)
        out[name] = np.quantile(base, stats.norm.cdf(stats.norm.ppf(u) + c))
    return out


def with_new_domain(frame: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    rows = rng.choice(len(out), size=int(round(share * len(out))), replace=False)
    out.iloc[rows, out.columns.get_loc("domain")] = NEW_DOMAIN
    return out


def score(frame: pd.DataFrame) -> np.ndarray:
    return 3.0 * frame["risk_score"].to_numpy() - 1.6 * frame["priority_score"].to_numpy() \
        + 0.6 * frame["complexity_score"].to_numpy()


def class_cuts(training: pd.DataFrame) -> np.ndarray:
    """Cut points giving the reference 40 % approve, 32 % review_required, 28 % reject."""
    return np.quantile(score(training), [0.40, 0.72])


def classes(frame: pd.DataFrame, cuts: np.ndarray) -> list[str]:
    return list(CLASSES[np.searchsorted(cuts, score(frame), side="right")])


def tilted_shares(c: float) -> np.ndarray:
    a, b = stats.norm.ppf(0.40), stats.norm.ppf(0.72)
    lo, hi = stats.norm.cdf(a - c), stats.norm.cdf(b - c)
    return np.array([lo, hi - lo, 1 - hi])


def feature_scenario(c: float, pool: pd.DataFrame, cuts: np.ndarray, domain: bool = False):
    """Window maker: the rows shifted by `c` SD (`shift_features`; c = 0 leaves them as they are), with the
    new domain in 20 % of them if `domain`, and the scorer's classes on the result as predictions."""
    def make(rows: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
        window = shift_features(rows, c, pool) if c else rows
        window = with_new_domain(window, 0.2, rng) if domain else window
        return window, classes(window, cuts)
    return make


def class_mix_scenario(c: float):
    """Window maker: the features untouched, the predictions drawn with the class shares `tilted_shares(c)`."""
    def make(rows: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
        return rows, list(rng.choice(CLASSES, size=len(rows), p=tilted_shares(c)))
    return make

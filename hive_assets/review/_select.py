"""Which unlabelled opinions to ask reviewers about: priority, diversity and the uniformly random share.

Priority of one candidate (all terms in [0, 1], summed with `PriorityWeights`):
- uncertainty: 1 - (p_top - p_second) of the champion's calibrated probabilities (margin sampling: a label
  near the decision boundary moves it; one far from it confirms what the model knows);
- disagreement: total-variation distance between the champion's and the challenger's probabilities while
  a test runs (the label that says which of the two is right where they differ);
- drift: how over-represented the candidate's region is in the recent window compared with the training
  data, for the features the last drift check flagged (log ratio of the bin's shares, clipped to [0, 1]).

Diversity: the queue is filled greedily by `priority x min(1, distance to the nearest chosen / scale)`
on standardised features, so a cluster of near-duplicates yields one request, not hundreds.

The random share: `random_share x budget` candidates (rounded at random to a whole number, so the share holds
on average at any budget) are drawn uniformly from the whole pool *before* the active choice, and marked
`random`: they are a simple random sample of the recent unlabelled opinions (inclusion probability known and
equal), the only requested labels the decisions may use. A budget that covers the whole pool asks every
candidate: a census, all `random` with inclusion probability 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ACTIVE, RANDOM = "active", "random"
REASONS = ("uncertainty", "disagreement", "drift")


@dataclass(frozen=True)
class PriorityWeights:
    uncertainty: float = 1.0
    disagreement: float = 1.0
    drift: float = 0.5


@dataclass(frozen=True)
class QueueChoice:
    """The chosen candidates, in queue order (active picks by priority as chosen, the random share spread
    evenly among them).

    `index`: positions in the candidate pool; `selection`: ACTIVE or RANDOM per request; `score`: the
    priority; `reason`: the largest priority term ("random" for the random share); `inclusion_probability`:
    of the random share, k / pool size (None for active picks: not a designed probability)."""

    index: np.ndarray
    selection: list[str]
    score: np.ndarray
    reason: list[str]
    inclusion_probability: list[float | None]

    def __len__(self) -> int:
        return int(self.index.size)


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - (top class probability - second), per row: 1 on the boundary, 0 when certain."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"probabilities must be (n, classes >= 2), got shape {proba.shape}")
    top2 = np.sort(proba, axis=1)[:, -2:]
    return np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0)


def disagreement(champion: np.ndarray, challenger: np.ndarray) -> np.ndarray:
    """Total-variation distance between two models' class probabilities, per row (0: same, 1: disjoint)."""
    champion, challenger = np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)
    if champion.shape != challenger.shape:
        raise ValueError(f"champion {champion.shape} and challenger {challenger.shape} probabilities differ in shape")
    return np.clip(0.5 * np.abs(champion - challenger).sum(axis=1), 0.0, 1.0)


def drift_region_weight(features: pd.DataFrame, reference: Mapping[str, Any] | None,
                        drifted_features: Sequence[str]) -> np.ndarray:
    """Per row, in [0, 1]: max over the drifted features of log(window share / training share) of the row's
    bin (numeric: the reference's stored edges; categorical: the category), clipped. 0 without drift."""
    weight = np.zeros(len(features))
    if not reference or not drifted_features or not len(features):
        return weight
    for name in drifted_features:
        if name in (reference.get("numeric") or {}) and name in features:
            ref = reference["numeric"][name]
            values = features[name].to_numpy(dtype=float)
            bins = np.searchsorted(np.asarray(ref["edges"], dtype=float), values, side="left")
            p = np.asarray(ref["proportions"], dtype=float)
            q = np.bincount(bins, minlength=p.size) / max(len(values), 1)
            ratio = np.log(np.maximum(q[bins], 1e-6) / np.maximum(p[bins], 1e-3))
        elif name in (reference.get("categorical") or {}) and name in features:
            ref = reference["categorical"][name]
            shares = dict(zip(ref["categories"], ref["proportions"]))
            values = features[name].astype(str)
            q = values.map(values.value_counts(normalize=True)).to_numpy(dtype=float)
            p = values.map(lambda c: shares.get(c, 0.0)).to_numpy(dtype=float)
            ratio = np.log(np.maximum(q, 1e-6) / np.maximum(p, 1e-3))
        else:
            continue
        weight = np.maximum(weight, np.clip(ratio, 0.0, 1.0))
    return weight


def priority(champion_proba: np.ndarray, challenger_proba: np.ndarray | None = None,
             drift_weight: np.ndarray | None = None,
             weights: PriorityWeights = PriorityWeights()) -> tuple[np.ndarray, list[str]]:
    """(priority per candidate, the term that contributes most to it)."""
    terms = np.zeros((len(champion_proba), 3))
    terms[:, 0] = weights.uncertainty * margin_uncertainty(champion_proba)
    if challenger_proba is not None:
        terms[:, 1] = weights.disagreement * disagreement(champion_proba, challenger_proba)
    if drift_weight is not None:
        terms[:, 2] = weights.drift * np.asarray(drift_weight, dtype=float)
    return terms.sum(axis=1), [REASONS[i] for i in terms.argmax(axis=1)]


def standardised(points: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit variance (constant columns left at 0)."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points must be (n, d), got shape {points.shape}")
    spread = points.std(axis=0)
    return (points - points.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def diverse_top(score: np.ndarray, points: np.ndarray, k: int, eligible: np.ndarray | None = None,
                scale: float | None = None, chosen_before: np.ndarray | None = None) -> np.ndarray:
    """`k` positions chosen greedily by score x min(1, distance to the nearest already chosen / scale).

    `points`: standardised coordinates; `scale` defaults to the median nearest-neighbour distance between
    `k` evenly spread points (roughly the spacing `k` requests would have if they covered the pool), so
    picks closer than that to an earlier pick are discounted. `chosen_before`: positions already in the
    queue (the random share), which count as chosen for that distance. Ties: the lower position first."""
    score = np.asarray(score, dtype=float)
    n = score.size
    eligible = np.ones(n, dtype=bool) if eligible is None else eligible.copy()
    k = int(min(k, eligible.sum()))
    if k <= 0:
        return np.empty(0, dtype=int)
    if scale is None:
        # spacing of k points filling the eligible cloud: its RMS radius x k^(-1/d)
        d = points.shape[1]
        radius = float(np.sqrt(((points[eligible] - points[eligible].mean(axis=0)) ** 2).sum(axis=1).mean()))
        scale = max(radius * k ** (-1.0 / max(d, 1)), 1e-9)
    nearest = np.full(n, np.inf)
    for before in (chosen_before if chosen_before is not None else ()):
        nearest = np.minimum(nearest, np.sqrt(((points - points[int(before)]) ** 2).sum(axis=1)))
    chosen = []
    for _ in range(k):
        value = np.where(eligible, score * np.minimum(1.0, nearest / scale), -np.inf)
        pick = int(np.argmax(value))
        chosen.append(pick)
        eligible[pick] = False
        nearest = np.minimum(nearest, np.sqrt(((points - points[pick]) ** 2).sum(axis=1)))
    return np.asarray(chosen, dtype=int)


def choose_queue(score: np.ndarray, points: np.ndarray, budget: int, random_share: float,
                 rng: np.random.Generator, reasons: Sequence[str] | None = None) -> QueueChoice:
    """Fill a queue of `budget` requests from the pool: random_share x budget uniformly at random (rounded
    at random to a whole number; marked RANDOM), drawn first, then the rest by diverse priority among the
    remaining candidates (ACTIVE). A budget that covers the pool asks every candidate, all RANDOM (p = 1)."""
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be in [0, 1], got {random_share}")
    score = np.asarray(score, dtype=float)
    n = score.size
    budget = min(int(budget), n)
    if budget == n:
        # the budget covers the pool: every candidate is asked, a census, so every label is as unbiased as a
        # random one (inclusion probability 1), not an active pick the decisions would have to drop
        k_random = n
    else:
        # randomized rounding: the random share is random_share x budget on average at any budget (rounding
        # left none at a budget of 2); a whole number draws nothing, so such queues are as before
        k_random = int(random_share * budget)
        if (fraction := random_share * budget - k_random) > 0 and rng.random() < fraction:
            k_random += 1
    random_idx = np.sort(rng.choice(n, size=k_random, replace=False)) if k_random else np.empty(0, dtype=int)
    eligible = np.ones(n, dtype=bool)
    eligible[random_idx] = False
    # a near-duplicate of a random pick is asked once already: the active picks keep their distance from it
    active_idx = diverse_top(score, points, budget - k_random, eligible, chosen_before=random_idx)
    reasons = list(reasons) if reasons is not None else ["uncertainty"] * n
    # queue order: the random share spread evenly among the active picks, so that reviewers who stop
    # part-way through a day's queue still answer a uniformly random subset of the random share
    is_random = np.diff(np.arange(budget + 1) * k_random // max(budget, 1)) > 0  # integer: exactly k_random slots
    randoms, actives = iter(random_idx), iter(active_idx)
    index, selection, reason, probability = [], [], [], []
    for slot_is_random in is_random:
        i = int(next(randoms) if slot_is_random else next(actives))
        index.append(i)
        selection.append(RANDOM if slot_is_random else ACTIVE)
        reason.append("random" if slot_is_random else reasons[i])
        probability.append(k_random / n if slot_is_random else None)
    index_array = np.asarray(index, dtype=int)
    return QueueChoice(index=index_array, selection=selection, score=score[index_array] if n else np.empty(0),
                       reason=reason, inclusion_probability=probability)

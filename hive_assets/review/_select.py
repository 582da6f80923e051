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

The random share of a day (`choose_refresh`, what a refresh of the store's queue uses): every opinion has a
permanent random number u (a uniform from a hash of seed, specialist and opinion id, the same on every day
and in every process); the day's random quota (`random_share x daily_budget`, rounded at random to a whole
number, so the share holds on average at any budget) takes the opinions of the pool with the smallest u that
are not random yet. The pool is every recent opinion still unlabelled *or* already requested (actively
too, answered or not): an opinion asked actively yesterday can still be drawn today, and its request then
becomes `random`. Whether an opinion is drawn so depends on u and on which pools it sat in, never on its
priority: the random requests are a sample whose inclusion does not depend on how hard the opinion is, the
only requested labels the decisions may use. A budget that covers every unrequested candidate asks all of
them: a census, in which every opinion of the pool becomes `random`.

The product (`refresh_queue`), the benchmark (`benchmarks/bench_review_queue.py`) and the A/A simulation
(`_simulation`) all choose with `choose_refresh` over daily pools that overlap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
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
    of the random share, the rate of the draw that took it (the day's quota / the day's pool not random
    yet); None for active picks (not a designed probability)."""

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


def spacing(points: np.ndarray, k: int) -> float:
    """The spacing of `k` points filling the cloud `points`: its RMS radius x k^(-1/d)."""
    if not len(points):
        return 1e-9
    radius = float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))
    return max(radius * max(int(k), 1) ** (-1.0 / max(points.shape[1], 1)), 1e-9)


def diverse_top(score: np.ndarray, points: np.ndarray, k: int, eligible: np.ndarray | None = None,
                scale: float | None = None, chosen_before: np.ndarray | None = None) -> np.ndarray:
    """`k` positions chosen greedily by score x min(1, distance to the nearest already chosen / scale).

    `points`: standardised coordinates; `scale` defaults to the median nearest-neighbour distance between
    `k` evenly spread points (roughly the spacing `k` requests would have if they covered the pool), so
    picks closer than that to an earlier pick are discounted. `chosen_before`: positions already in the
    queue (the random share, earlier requests), which count as chosen for that distance. Ties: the lower
    position first. Fewer than `k` when every position left is worth nothing: an exact duplicate of a chosen one
    (distance 0), or of no priority. Those were picked in position order (opinion-id order): once each group of
    identical plans had its request, a budget of 20 went to 15 copies of the lowest-priority plan."""
    score = np.asarray(score, dtype=float)
    n = score.size
    eligible = np.ones(n, dtype=bool) if eligible is None else eligible.copy()
    k = int(min(k, eligible.sum()))
    if k <= 0:
        return np.empty(0, dtype=int)
    if scale is None:
        scale = spacing(points[eligible], k)
    nearest = np.full(n, np.inf)
    for before in (chosen_before if chosen_before is not None else ()):
        nearest = np.minimum(nearest, np.sqrt(((points - points[int(before)]) ** 2).sum(axis=1)))
    chosen = []
    for _ in range(k):
        value = np.where(eligible, score * np.minimum(1.0, nearest / scale), -np.inf)
        pick = int(np.argmax(value))
        if not value[pick] > 0.0:  # nothing left that teaches anything: the budget is a ceiling, not a quota
            break
        chosen.append(pick)
        eligible[pick] = False
        nearest = np.minimum(nearest, np.sqrt(((points - points[pick]) ** 2).sum(axis=1)))
    return np.asarray(chosen, dtype=int)


def random_quota(random_share: float, budget: int, rng: np.random.Generator) -> int:
    """random_share x budget rounded at random to a whole number (randomized rounding: the share holds on
    average at any budget, where rounding left none at a budget of 2). One draw of `rng`, whatever the
    fraction, so what `rng` draws next does not depend on it."""
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be in [0, 1], got {random_share}")
    k = int(random_share * budget)
    return k + int(rng.random() < random_share * budget - k)


def permanent_random_numbers(seed: int, specialist: str, opinion_ids: Iterable[str]) -> np.ndarray:
    """u in [0, 1) per opinion, uniform: blake2b of (seed, specialist, opinion id), the same on every day
    and in every process (Python's `hash` of a string is salted per process)."""
    return np.asarray([int.from_bytes(hashlib.blake2b(f"{seed}\x1f{specialist}\x1f{o}".encode(),
                                                      digest_size=8).digest(), "big") / 2.0 ** 64
                       for o in opinion_ids], dtype=float)


@dataclass(frozen=True)
class DaySoFar:
    """What earlier refreshes of the day wrote: requests made today (`requested`, of which
    `random_requested` made as random), random selections made today (those, plus active requests of
    any day made random today), and the day's highest rank."""

    requested: int = 0
    random_requested: int = 0
    made_random: int = 0
    max_rank: int = 0


@dataclass(frozen=True)
class RefreshChoice:
    """`requests`: the new requests in queue order (positions in the pool), ranked from `first_rank` on;
    `made_random`: positions whose active request becomes random, with draw rate `made_random_rate`."""

    requests: QueueChoice
    first_rank: int
    made_random: np.ndarray
    made_random_rate: float


def choose_refresh(score: np.ndarray, points: np.ndarray, u: np.ndarray, requested: Sequence[str | None],
                   budget_left: int, quota: int, today: DaySoFar = DaySoFar(),
                   reasons: Sequence[str] | None = None) -> RefreshChoice:
    """A refresh's choice over the day's pool: recent opinions unlabelled or already requested.

    `requested[i]`: the selection of candidate i's request (ACTIVE / RANDOM; another value: a request of no
    known kind, left as it is), None when it has none; `u`: permanent random numbers; `quota`: the day's
    random quota (`random_quota`), of which `today.made_random` are made already.

    Random: in increasing u, the candidates not random yet, up to what the quota leaves (new requests only
    within `budget_left`); a requested one is made random, an unrequested one asked as random. A budget
    that covers every unrequested candidate is a census: all of the pool becomes random. Active: the rest
    of `budget_left` by diverse priority among the unrequested, every requested candidate (any day) and
    every random pick counting as chosen; the spacing is of the day's active requests in the whole pool.
    Queue order and ranks continue the day's: its new random requests spread evenly among its active ones.

    Everything here is a function of the pool and of what the store holds: a rerun on the same pool after a
    refresh stopped part-way (random picks made first, then requests written in rank order) completes the
    same choice; one after a complete refresh chooses nothing."""
    score, u = np.asarray(score, dtype=float), np.asarray(u, dtype=float)
    n = score.size
    if not len(requested) == len(u) == n:
        raise ValueError(f"score ({n}), u ({len(u)}) and requested ({len(requested)}) must be row-aligned")
    if budget_left < 0 or quota < 0:
        raise ValueError(f"budget_left ({budget_left}) and quota ({quota}) must be >= 0")
    fresh = np.array([s is None for s in requested], dtype=bool)
    drawable = np.array([s is None or s == ACTIVE for s in requested], dtype=bool)
    by_u = np.lexsort((np.arange(n), u))
    census = budget_left >= fresh.sum()
    if census:
        picks, rate = [int(i) for i in by_u if drawable[i]], 1.0
    else:
        # the day's pool, as its first draw saw it: those not random yet, and those made random today
        rate = min(1.0, quota / max(int(drawable.sum()) + today.made_random, 1))
        left, new, picks = max(0, quota - today.made_random), 0, []
        for i in by_u:
            if len(picks) >= left or (fresh[i] and new >= budget_left):
                break  # a prefix in u: what a rerun continues
            if drawable[i]:
                picks.append(int(i))
                new += bool(fresh[i])
    pick_array = np.asarray(picks, dtype=int)
    new_random = pick_array[fresh[pick_array]] if pick_array.size else pick_array
    made_random = pick_array[~fresh[pick_array]] if pick_array.size else pick_array
    eligible = fresh.copy()
    eligible[pick_array] = False
    n_active = 0 if census else int(min(budget_left - new_random.size, eligible.sum()))
    day_actives = today.requested - today.random_requested + n_active
    # the spacing of the day's active requests in the whole pool: the same for a rerun that continues them
    before = np.concatenate([np.flatnonzero(~fresh), pick_array])
    active = diverse_top(score, points, n_active, eligible, scale=spacing(points, day_actives),
                         chosen_before=before)
    slots = _queue_slots(today.random_requested, today.requested - today.random_requested, new_random.size,
                         active.size)
    chosen = _queue_choice(slots, new_random, active, score, reasons, rate)
    return RefreshChoice(chosen, today.max_rank + 1, made_random, rate)


def _queue_choice(slots: Sequence[bool], random_idx: np.ndarray, active_idx: np.ndarray, score: np.ndarray,
                  reasons: Sequence[str] | None, rate: float) -> QueueChoice:
    """The queue: per slot (True: random) the next random pick, else the next active one."""
    reasons = list(reasons) if reasons is not None else ["uncertainty"] * score.size
    randoms, actives = iter(random_idx), iter(active_idx)
    index, selection, reason, probability = [], [], [], []
    for slot_is_random in slots:
        i = int(next(randoms) if slot_is_random else next(actives))
        index.append(i)
        selection.append(RANDOM if slot_is_random else ACTIVE)
        reason.append("random" if slot_is_random else reasons[i])
        probability.append(rate if slot_is_random else None)
    index_array = np.asarray(index, dtype=int)
    return QueueChoice(index=index_array, selection=selection, score=score[index_array] if score.size else np.empty(0),
                       reason=reason, inclusion_probability=probability)


def _queue_slots(randoms_before: int, actives_before: int, new_randoms: int, new_actives: int) -> list[bool]:
    """Per new slot of the day, whether it holds a random request: the day's random requests spread evenly
    over its slots (slot s random when fewer than (s + 1) x randoms // slots came before), continuing from
    the slots already filled (a day's first refresh: exactly `randoms` of its slots, evenly spaced)."""
    total = randoms_before + actives_before + new_randoms + new_actives
    k = randoms_before + new_randoms
    placed, randoms_left, actives_left, slots = randoms_before, new_randoms, new_actives, []
    for s in range(randoms_before + actives_before, total):
        is_random = randoms_left > 0 and (actives_left == 0 or placed < (s + 1) * k // total)
        slots.append(is_random)
        placed += is_random
        randoms_left -= is_random
        actives_left -= not is_random
    return slots

"""One refresh of a specialist's review queue: link answers, expire, then request within today's budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from hive_assets.config import DEFAULT_REVIEW_QUEUE_DAILY_BUDGET
from hive_assets.data import TrustPolicy, collect
from hive_assets.data.store.base import DocumentStore
from hive_assets.review import _requests as requests
from hive_assets.review._select import (
    DaySoFar, PriorityWeights, choose_refresh, drift_region_weight, permanent_random_numbers, priority, random_quota,
    standardised,
)
from hive_assets.features import features_frame

DEFAULT_DAILY_BUDGET = DEFAULT_REVIEW_QUEUE_DAILY_BUDGET  # the setting's default (REVIEW_QUEUE_DAILY_BUDGET)
DEFAULT_RANDOM_SHARE = 0.2
DEFAULT_EXPIRY = timedelta(hours=72)


@dataclass
class QueueRefresh:
    """What one refresh did: `candidates`: unrequested opinions of the pool; `requested`: new requests;
    `made_random`: active requests of the pool made random (the day's random draw took them)."""

    specialist: str
    now: datetime
    linked: int = 0
    expired: int = 0
    candidates: int = 0
    budget_left: int = 0
    requested: int = 0
    made_random: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "now": self.now.isoformat()}


def refresh_queue(store: DocumentStore, specialist: str, now: datetime, candidates: pd.DataFrame,
                  features: pd.DataFrame, champion_proba: np.ndarray, *, challenger_proba: np.ndarray | None = None,
                  drift_weight: np.ndarray | None = None, daily_budget: int = DEFAULT_DAILY_BUDGET,
                  random_share: float = DEFAULT_RANDOM_SHARE, expiry: timedelta = DEFAULT_EXPIRY, seed: int = 0,
                  weights: PriorityWeights = PriorityWeights(), model_version: str | None = None,
                  trust: TrustPolicy = TrustPolicy(), before_write: Callable[[], None] | None = None) -> QueueRefresh:
    """Link answered requests, expire old ones, then request up to what today's `daily_budget` leaves.

    `candidates`: the pool, recent opinions (`opinion_id`, `plan_id`) still unlabelled or already
    requested (labelled or not: the day's random draw may take them too), row-aligned with `features`
    (the feature contract) and the models' probabilities on them. What is chosen (`choose_refresh`) is a
    function of the pool and of the store: the random quota's rounding is seeded by (seed, specialist,
    day), each opinion's permanent random number by (seed, specialist, opinion id). Writes, each
    idempotent on its own: first the active requests made random (a conditional update), then the new
    requests in rank order (`insert_new`): a rerun after a failure part-way completes the same choice on
    the same pool, and one after a complete refresh writes nothing; a budget of 0 writes nothing.
    `before_write` is called just before the first write (the run's lease check: a run that lost its lease
    raises there and spends nothing).
    """
    # here, not at import: hive_assets.training pulls in scikit-learn, which the importers of this package
    # (rollout's A/B look, `hive review-queue`, `hive status`) never need
    from hive_assets.training import encode

    if expiry <= timedelta(0):
        raise ValueError(f"expiry must be positive, got {expiry}")
    if not len(candidates) == len(features) == len(champion_proba):
        raise ValueError(f"candidates ({len(candidates)}), features ({len(features)}) and probabilities "
                         f"({len(champion_proba)}) must be row-aligned")
    result = QueueRefresh(specialist, now)
    result.linked = requests.link_answers(store, specialist, now, trust)
    result.expired = requests.expire(store, specialist, now)
    # the day's requests, read once: what the budget leaves, and where the day's queue stands for the choice
    today = requests.day_so_far(store, specialist, now) if daily_budget else DaySoFar()
    result.budget_left = requests.remaining_budget(store, specialist, now, daily_budget, today.requested)
    if not result.budget_left or not len(candidates):
        return result
    # one order whatever order the window was read in: ties of the greedy choice fall the same way in a rerun
    ids = candidates["opinion_id"].astype(str).to_numpy()
    order = np.argsort(ids, kind="stable")
    ids, candidates = ids[order], candidates.iloc[order].reset_index(drop=True)
    features = features.iloc[order].reset_index(drop=True)
    selections = requests.request_selections(store, specialist, ids)
    requested = [selections.get(o) for o in ids]
    result.candidates = sum(s is None for s in requested)
    score, reasons = priority(np.asarray(champion_proba)[order],
                              None if challenger_proba is None else np.asarray(challenger_proba)[order],
                              None if drift_weight is None else np.asarray(drift_weight)[order], weights)
    day = int(requests.day_start(now).timestamp() // 86400)
    quota = random_quota(random_share, daily_budget, np.random.default_rng([seed, sum(map(ord, specialist)), day]))
    choice = choose_refresh(score, standardised(encode(features)), permanent_random_numbers(seed, specialist, ids),
                            requested, result.budget_left, quota, today, reasons)
    docs = requests.request_documents(specialist, candidates.to_dict("records"), choice.requests, now, expiry,
                                      model_version, first_rank=choice.first_rank)
    if not len(docs) and not choice.made_random.size:
        return result
    if before_write is not None:
        before_write()
    result.made_random = sum(requests.make_random(store, specialist, ids[i], now, choice.made_random_rate)
                             for i in choice.made_random)
    result.requested = requests.write_requests(store, docs)
    result.by_reason = {r: choice.requests.reason.count(r) for r in sorted(set(choice.requests.reason))}
    return result


def latest_drifted_features(store: DocumentStore, specialist: str, now: datetime, within: timedelta) -> list[str]:
    """The features the specialist's latest drift check (no older than `within`) flagged, else none."""
    last = store.find_one("drift_monitoring", {"specialist_type": specialist, "checked_at": {"$gte": now - within}},
                          sort=[("checked_at", -1)])
    return [str(f) for f in (last or {}).get("drifted_features") or []]


def refresh_from_store(store: DocumentStore, specialist: str, now: datetime, champion, *, challenger=None,
                       model_version: str | None = None, candidate_days: int = 2, min_confidence: float = 0.7,
                       trust: TrustPolicy = TrustPolicy(), audit_reader=None,
                       drift_within: timedelta = timedelta(days=2), **options) -> QueueRefresh:
    """`refresh_queue` over the specialist's opinions of the last `candidate_days` (the window collection,
    `collect(source="window")`, as the drift check reads it but intent-filtered: validated, with their
    plans) that are unlabelled or already requested (an answered request keeps its opinion in the day's
    random draw: leaving it out would take the hard opinions the active picks asked for out of it), scored
    by `champion` (and `challenger` while a test runs: objects with `predict_proba(features)`, the
    SpecialistModel), the drifted regions taken from the latest drift check against the champion's drift
    reference. With today's budget spent (or 0) the window is not read: the refresh then only links
    answers and expires requests."""
    daily_budget = options.get("daily_budget", DEFAULT_DAILY_BUDGET)
    spent = daily_budget >= 0 and not requests.remaining_budget(store, specialist, now, daily_budget)
    window = pd.DataFrame() if spent else collect(
        store, specialist, now=now, window_days=candidate_days, min_confidence=min_confidence, trust=trust,
        audit_reader=audit_reader, source="window").frame
    if len(window):
        labelled = window["label"].notna()
        requested = requests.requested_opinions(store, specialist, window.loc[labelled, "opinion_id"].astype(str))
        window = window[~labelled | window["opinion_id"].astype(str).isin(requested)].reset_index(drop=True)
    if not len(window):
        return refresh_queue(store, specialist, now, pd.DataFrame({"opinion_id": [], "plan_id": []}),
                             pd.DataFrame(), np.empty((0, 3)), model_version=model_version, trust=trust, **options)
    features = features_frame(window["plan"].tolist())
    drifted = latest_drifted_features(store, specialist, now, drift_within)
    return refresh_queue(
        store, specialist, now, window[["opinion_id", "plan_id"]], features, champion.predict_proba(features),
        challenger_proba=None if challenger is None else challenger.predict_proba(features),
        drift_weight=drift_region_weight(features, getattr(champion, "drift_reference", None), drifted),
        model_version=model_version, trust=trust, **options)

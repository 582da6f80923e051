"""Which labels the decisions may use: the random share and organic labels, never the active picks.

Active picks are chosen *because* the champion is unsure or the two arms disagree on them: metrics on
them are biased low, and an A/B tally over them over-weights exactly the units where the arms differ.
We exclude them rather than re-weight them: the greedy choice is deterministic (an opinion's inclusion
probability is 0 or 1, so inverse-probability weights do not exist), while the random share is a simple
random sample of the pool and organic labels arrive whatever the queue does; both estimate the
population's metrics without weights. Training may use every label (`decision_split`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from hive_assets.data.store.base import DocumentStore
from hive_assets.review._requests import COLLECTION, EXPIRED
from hive_assets.review._select import ACTIVE

ORGANIC = "organic"  # no request, or an expired one: the label arrived as reviewers label anyway
TRAIN_SPLIT = "train"


def label_selections(store: DocumentStore, specialist: str, opinion_ids: Iterable[str]) -> dict[str, str]:
    """opinion_id -> how its label was asked for: `active` / `random` (a review request, open or answered)
    or `organic` (no request, or one that expired unanswered: a label after the expiry came as reviewers
    label anyway, and leaving it out of the organic pool would take hard cases out of it)."""
    ids = [str(o) for o in opinion_ids]
    selections = dict.fromkeys(ids, ORGANIC)
    for request in store.find_by_keys_where(COLLECTION, "opinion_id", ids, {"specialist_type": specialist},
                                            projection=["opinion_id", "selection", "status"]):
        if request.get("status") != EXPIRED:
            selections[str(request["opinion_id"])] = str(request.get("selection") or ORGANIC)
    return selections


def usable_for_decisions(selection: str | None) -> bool:
    """True for labels that may enter metrics, gates and A/B statistics: random share and organic ones."""
    return selection != ACTIVE


def decision_split(split: pd.Series, selection: pd.Series) -> pd.Series:
    """The temporal split with every actively chosen label moved to train: the validation split
    (calibration) and the test split (the report, the gates) then hold only unbiased labels, while the
    queue's labels, mostly of recent opinions and so mostly in the later splits, still train the model."""
    if len(split) != len(selection):
        raise ValueError(f"split ({len(split)}) and selection ({len(selection)}) differ in length")
    active = selection.fillna(ORGANIC).to_numpy() == ACTIVE
    return split.where(~active, TRAIN_SPLIT)


def without_active_labels(store: DocumentStore, specialist: str, labels: dict[str, dict]) -> dict[str, dict]:
    """`labels` (opinion_id -> its latest trusted feedback, as `latest_trusted_feedback` returns them) minus
    those of actively chosen opinions: the A/B tally's labels."""
    selections = label_selections(store, specialist, labels)
    return {o: fb for o, fb in labels.items() if usable_for_decisions(selections[o])}

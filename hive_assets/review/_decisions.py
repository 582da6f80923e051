"""Which labels the decisions may use: the random share and organic labels, never the active picks.

Active picks are chosen *because* the champion is unsure or the two arms disagree on them: metrics on
them are biased low, and an A/B tally over them over-weights exactly the units where the arms differ.
We exclude them rather than re-weight them: the greedy choice is deterministic (an opinion's inclusion
probability is 0 or 1, so inverse-probability weights do not exist), while the random share is drawn by
permanent random numbers from a pool that keeps the opinions already requested (`_select.choose_refresh`:
whether an opinion is drawn does not depend on its difficulty) and organic labels arrive whatever the
queue does; both estimate the population's metrics without weights. `selection` is read when the decision
is made: an active request the random draw took later counts as random from then on, as it should.
Training may use every label (`decision_split`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import pandas as pd

from hive_assets.data.store.base import DocumentStore
from hive_assets.review._requests import COLLECTION, is_answer
from hive_assets.review._select import ACTIVE

ORGANIC = "organic"  # no request, or a label that came after its request expired: reviewers label anyway
TRAIN_SPLIT = "train"


def label_selections(store: DocumentStore, specialist: str, opinion_ids: Iterable[str],
                     label_times: Mapping[str, datetime | None] | None = None) -> dict[str, str]:
    """opinion_id -> how its label was asked for: `active` / `random` (a review request) or `organic`.

    `label_times` (opinion_id -> when the label it carries was submitted): a label submitted after its
    request's `expires_at` came as reviewers label anyway, so it is organic (keeping it out of the organic
    pool would take the hard cases the queue asked for out of it); so is one submitted before the request
    was made (`is_answer`). Judged from the label's own time, not the
    request's status, which only a refresh writes: the split and the A/B tally do not change between two
    runs on the same data."""
    ids = [str(o) for o in opinion_ids]
    selections = dict.fromkeys(ids, ORGANIC)
    times = label_times or {}
    for request in store.find_by_keys_where(COLLECTION, "opinion_id", ids, {"specialist_type": specialist},
                                            projection=["opinion_id", "selection", "requested_at", "expires_at"]):
        opinion_id = str(request["opinion_id"])
        if is_answer(request, times.get(opinion_id)):
            selections[opinion_id] = str(request.get("selection") or ORGANIC)
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
    selections = label_selections(store, specialist, labels, {o: fb.get("_submitted") for o, fb in labels.items()})
    return {o: fb for o, fb in labels.items() if usable_for_decisions(selections[o])}

"""Trusted feedback counted in the store, for the feedback sensor (SPEC section 8).

Method. The verdict on every document is the one of the `TrustPolicy` object passed in (the one
collection uses), but most documents are counted without being read:

    trusted = count(window AND NOT certain_drop) - #{d in uncertain : policy.reason_to_drop(d)}

* `window`: `specialist_type == s` and `since < submitted_at <= until` (`since` None: the Unix epoch;
  `until` None: now + 5 minutes, the clock skew collection tolerates). Both bounds are timestamps, so
  a `submitted_at` that is not one (a malformed text such as "yesterday-ish", a number) is outside the
  window on both stores instead of sorting after every date as text;
* `certain_drop`: conditions under which `reason_to_drop` drops a document whatever its other fields:
  `metadata.auto_generated == true`, `metadata.balanced_dataset == true`, `feedback_source` in the
  policy's `denied_sources`;
* `uncertain`: the rest of the window that the policy might still drop: a non-null
  `metadata.auto_generated` / `metadata.balanced_dataset` other than `true` (e.g. `1`, `"yes"`,
  `false`), and, when the policy filters on quality, a missing or low `human_rating`. These
  documents are read and judged by `policy.reason_to_drop` itself.

Both counts run on the indexed fields of `specialist_feedback` (the compound index on specialist,
submitted_at and the trust fields), so a tick reads an index range, not the documents.
Guarantee: equal to `sum(policy.reason_to_drop(d) is None for d in window)` for every document whose
drop reasons are the ones above; the tests check the equality on a corpus with every edge value,
so a new rule in TrustPolicy that this split does not cover fails them. Malformed documents are
counted like any other (collection quarantines them later): the count is a trigger, not a label set.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hive_assets.data import DocumentStore, TrustPolicy

FEEDBACK = "specialist_feedback"
_FLAGS = ("metadata.auto_generated", "metadata.balanced_dataset")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FUTURE_TOLERANCE = timedelta(minutes=5)  # as collection's validation: a later timestamp is malformed

__all__ = ["trusted_feedback_count", "window_filter"]


def window_filter(specialist: str, since: datetime | None, until: datetime | None = None) -> dict[str, Any]:
    """Feedback of `specialist` submitted in (since, until] (defaults: module docstring)."""
    until = until or datetime.now(timezone.utc) + FUTURE_TOLERANCE
    return {"specialist_type": specialist, "submitted_at": {"$gt": since or _EPOCH, "$lte": until}}


def _not_certain_drop(policy: TrustPolicy) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [{flag: {"$ne": True}} for flag in _FLAGS]
    if policy.denied_sources:
        clauses.append({"feedback_source": {"$nin": sorted(policy.denied_sources)}})
    return clauses


def _uncertain(policy: TrustPolicy) -> list[dict[str, Any]]:
    maybe: list[dict[str, Any]] = [{flag: {"$exists": True}} for flag in _FLAGS]
    if policy.min_feedback_quality > 0:
        maybe += [{"human_rating": {"$exists": False}}, {"human_rating": {"$lt": policy.min_feedback_quality}}]
    return maybe


def trusted_feedback_count(store: DocumentStore, specialist: str, since: datetime | None,
                           policy: TrustPolicy | None = None, until: datetime | None = None) -> int:
    """How many feedback documents of `specialist` submitted in (since, until] `policy` trusts (method above)."""
    policy = policy or TrustPolicy()
    window = window_filter(specialist, since, until)
    kept = [window, *_not_certain_drop(policy)]
    candidates = store.count(FEEDBACK, {"$and": kept})
    dropped = sum(1 for fb in store.find(FEEDBACK, {"$and": [*kept, {"$or": _uncertain(policy)}]})
                  if policy.reason_to_drop(fb) is not None)
    return candidates - dropped

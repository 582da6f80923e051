"""Trusted feedback counted in the store, for the feedback sensor (SPEC section 8).

Method. The verdict on every document is the one of the `TrustPolicy` object passed in (the one
collection uses), but most documents are counted without being read:

    trusted = count(window AND NOT certain_drop) - #{d in uncertain : policy.reason_to_drop(d)}

* `window`: `specialist_type == s` and `since < submitted_at <= until` (`since` None: the Unix epoch;
  `until` None: now + 5 minutes, the clock skew collection tolerates). Both bounds are timestamps, so
  a `submitted_at` that is not one (a malformed text such as "yesterday-ish", a number) is outside the
  window on both stores instead of sorting after every date as text;
* `certain_drop`: conditions under which `reason_to_drop` drops a document whatever its other fields:
  `metadata.auto_generated == true`, `metadata.balanced_dataset == true`, a `feedback_source` or a
  `metadata.source` from one of the policy's `denied_sources` (`TrustPolicy.is_denied`: compared
  case-insensitively). The filter language has no such comparison, so the spellings stored in each field
  are listed from its index (`distinct_strings`: one seek per distinct value on SQLite and MongoDB) and
  those the policy denies are excluded by equality (`$nin`): the same verdict, still answered by the index;
* `uncertain`: documents the policy might still drop: a `metadata.auto_generated` /
  `metadata.balanced_dataset` holding a value other than `true` (e.g. `1`, `"yes"`, `false`: found
  collection-wide on the flags' own indexes, judged by `policy.reason_to_drop` itself, and those it
  drops counted in the window by their `feedback_id`); and, when the policy filters on quality, the
  window's documents with a missing or low `human_rating`, read and judged the same way.

Both counts run on the indexed fields of `specialist_feedback` (the compound index on specialist,
submitted_at and the trust fields), so a tick reads an index range per specialist, not the documents.
Guarantee: equal to `sum(policy.reason_to_drop(d) is None for d in window)` for every document whose
drop reasons are the ones above; the tests check the equality on a corpus with every edge value,
so a new rule in TrustPolicy that this split does not cover fails them. Malformed documents are
counted like any other (collection quarantines them later): the count is a trigger, not a label set;
a flagged document without a string `feedback_id` (malformed) cannot be referenced and counts as kept.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hive_assets import clock
from hive_assets.data import FUTURE_TOLERANCE, DocumentStore, TrustPolicy  # a later timestamp is malformed
from hive_assets.data._trust import normalised_source

FEEDBACK = "specialist_feedback"
_FLAGS = ("metadata.auto_generated", "metadata.balanced_dataset")
_SOURCE_FIELDS = ("feedback_source", "metadata.source")  # the origins `TrustPolicy.is_denied` reads
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

__all__ = ["trusted_feedback_count", "window_filter"]


def window_filter(specialist: str, since: datetime | None, until: datetime | None = None) -> dict[str, Any]:
    """Feedback of `specialist` submitted in (since, until] (defaults: module docstring)."""
    until = until or clock.now() + FUTURE_TOLERANCE
    return {"specialist_type": specialist, "submitted_at": {"$gt": since or _EPOCH, "$lte": until}}


def _not_certain_drop(store: DocumentStore, policy: TrustPolicy) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [{flag: {"$ne": True}} for flag in _FLAGS]
    if policy.denied_sources:
        for field in _SOURCE_FIELDS:
            denied = [name for name in store.distinct_strings(FEEDBACK, field)
                      if normalised_source(name) in policy.denied_sources]
            if denied:
                clauses.append({field: {"$nin": denied}})
    return clauses


def _uncertain(policy: TrustPolicy) -> list[dict[str, Any]]:
    maybe: list[dict[str, Any]] = [{flag: {"$exists": True}} for flag in _FLAGS]
    if policy.min_feedback_quality > 0:
        maybe += [{"human_rating": {"$exists": False}}, {"human_rating": {"$lt": policy.min_feedback_quality}}]
    return maybe


def _flag_set_not_true(store: DocumentStore) -> list[dict[str, Any]]:
    """Filters (to union) for documents whose trust flags hold a value other than `true` (few in practice)."""
    if store.kind == "sqlite":
        # SQLite uses an index for a range condition, not for IS NOT NULL nor for an OR across columns: one
        # range query each; in its value order (NULL < numbers < text) "< true" and "> true" together are
        # exactly "present and not true" (JSON true reads as 1)
        return [{flag: {op: True}} for flag in _FLAGS for op in ("$lt", "$gt")]
    return [{flag: {"$exists": True, "$ne": True}} for flag in _FLAGS]


def trusted_feedback_count(store: DocumentStore, specialist: str, since: datetime | None,
                           policy: TrustPolicy | None = None, until: datetime | None = None) -> int:
    """How many feedback documents of `specialist` submitted in (since, until] `policy` trusts (method above)."""
    policy = policy or TrustPolicy()
    window = window_filter(specialist, since, until)
    kept = [window, *_not_certain_drop(store, policy)]
    candidates = store.count(FEEDBACK, {"$and": kept})
    if policy.min_feedback_quality > 0:
        # the quality rule reads human_rating (not indexed): judge the window's uncertain documents directly
        return candidates - sum(1 for fb in store.find(FEEDBACK, {"$and": [*kept, {"$or": _uncertain(policy)}]})
                                if policy.reason_to_drop(fb) is not None)
    # the policy's verdict on the odd flag values, then how many of those it drops fall in this window
    # counted first: a find sorts by insertion order, which SQLite answers by a scan instead of the index
    odd = [flt for flt in _flag_set_not_true(store) if store.count(FEEDBACK, flt)]
    dropped_ids = sorted({fb["feedback_id"] for flt in odd for fb in store.find(FEEDBACK, flt)
                          if isinstance(fb.get("feedback_id"), str) and policy.reason_to_drop(fb) is not None})
    if not dropped_ids:
        return candidates
    return candidates - store.count(FEEDBACK, {"$and": [*kept, {"feedback_id": {"$in": dropped_ids}}]})

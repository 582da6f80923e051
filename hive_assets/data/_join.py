"""The opinion-to-feedback join: each opinion's latest trusted feedback (SPEC section 4).

Used by collection (training labels) and by the A/B per-arm metrics, so both read labels the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from datetime import datetime
from typing import Any

from hive_assets.data import _documents as docs
from hive_assets.data._trust import SUBMITTED_AFTER_WINDOW, TrustPolicy
from hive_assets.data.store.base import DocumentStore, Filter

AFTER_LABEL_WINDOW = "after_label_window"


def latest_trusted_feedback(
    store: DocumentStore,
    opinion_ids: Iterable[str],
    now: datetime,
    trust: TrustPolicy,
    on_malformed: Callable[[Any, list[docs.Problem]], None] | None = None,
    on_dropped: Callable[[dict, str], None] | None = None,
    as_of: Mapping[str, datetime] | None = None,
    known: Mapping[str, Sequence[dict]] | None = None,
    known_filter: Filter | None = None,
) -> tuple[dict[str, dict], Counter, int]:
    """(opinion_id -> latest trusted feedback, dropped feedback by reason, feedback documents read).

    "Latest" is by `submitted_at`, ties broken by `feedback_id`; each kept document gains `_submitted`
    (aware UTC). Feedback submitted after `now` (the end of the window, e.g. a backfill's `as_of`) was
    not known then: it is dropped as `submitted_after_window`, neither a label nor quarantined.
    Malformed feedback goes to `on_malformed` with its problems and is never a label; dropped valid
    feedback goes to `on_dropped` with its reason.

    `known`, `known_filter`: the caller already read the feedback matching `known_filter` (collection: the
    specialist's window) and validated it against the same `now`; `known` holds the valid documents by
    opinion_id. Then only the other feedback of these opinions is read (`$nor` of that filter: its exact
    complement on every store), so each document is read and validated once, with the same result.
    """
    latest: dict[str, dict] = {}
    dropped: Counter = Counter()
    read = 0
    ids = list(opinion_ids)
    if known is None:  # (document, already validated)
        documents = ((fb, False) for fb in store.find_by_keys_where("specialist_feedback", "opinion_id", ids, {}))
    else:
        if known_filter is None:
            raise ValueError("`known` needs the `known_filter` it was read with")
        already = chain.from_iterable(known.get(str(o), ()) for o in ids)
        others = store.find_by_keys_where("specialist_feedback", "opinion_id", ids, {"$nor": [known_filter]})
        documents = chain(((fb, True) for fb in already), ((fb, False) for fb in others))
    for fb, validated in documents:
        read += 1
        submitted = docs.to_utc(fb.get("submitted_at")) if isinstance(fb, Mapping) else None
        if submitted is not None and submitted > now:
            dropped[SUBMITTED_AFTER_WINDOW] += 1
            continue
        cutoff = as_of.get(str(fb.get("opinion_id"))) if as_of is not None and submitted is not None else None
        if cutoff is not None and submitted > cutoff:
            dropped[AFTER_LABEL_WINDOW] += 1
            continue
        if not validated and (problems := docs.validate_feedback(fb, now)):
            if on_malformed is not None:
                on_malformed(fb, problems)
            continue
        reason = trust.reason_to_drop(fb)
        if reason:
            dropped[reason] += 1
            if on_dropped is not None:
                on_dropped(fb, reason)
            continue
        fb["_submitted"] = submitted
        oid = str(fb["opinion_id"])
        prev = latest.get(oid)
        if prev is None or (fb["_submitted"], str(fb["feedback_id"])) > (prev["_submitted"], str(prev["feedback_id"])):
            latest[oid] = fb
    return latest, dropped, read

"""Today's collector before issue 23, kept ONLY as the reference the label-driven one is compared with.

It reads every opinion of the window, validates it, joins plans, feedback and audit events, and keeps
unlabelled opinions as rows with no label. Not part of the package: `hive_assets.data.collect` replaces it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pandas as pd

from hive_assets import clock
from hive_assets.config import CLASSES
from hive_assets.cyclic_gc import cyclic_gc_paused
from hive_assets.data import _documents as docs
from hive_assets.data._audit import AuditReader, audit_confidences_from_store
from hive_assets.data._collect import (
    INTENT_COUNTS, PROGRESS_EVERY, RAW_COLUMNS, CollectResult, Progress, _plan_intent,
    _refuse_emptied_class, clear_id,
)
from hive_assets.data._join import latest_trusted_feedback
from hive_assets.data._quarantine import _Quarantine
from hive_assets.data._trust import BELOW_MIN_QUALITY, TrustPolicy
from hive_assets.data.store.base import DocumentStore


@cyclic_gc_paused()
def reference_collect(
    store: DocumentStore,
    specialist: str,
    now: datetime | None = None,
    window_days: int = 90,
    min_confidence: float = 0.7,
    trust: TrustPolicy | None = None,
    audit_reader: AuditReader | None = None,
    max_tasks: int = docs.MAX_TASKS,
    plan_cache: dict[str, tuple] | None = None,
    progress: Progress | None = None,
    progress_every: int = PROGRESS_EVERY,
) -> CollectResult:
    """Labelled examples of `specialist` in the window ending at `now` (aware, or naive meaning UTC).

    `plan_cache`: a dict shared by calls that read the same unchanged store (the five specialists of
    one drift check share their plans): each plan is then read and validated once.
    `progress`, when given, receives one line every `progress_every` opinions read ("opinions read
    n / total", the total counted first with the same query) and one after each later step, so a long
    collection is never silent. Raises `FeedbackFilterEmptiedClass` when `trust.min_feedback_quality`
    removed every label of a class.
    """
    now = docs.to_utc(now) if now is not None else clock.now()
    start = now - timedelta(days=window_days)
    trust = trust or TrustPolicy()
    audit_reader = audit_reader or audit_confidences_from_store(store)
    quarantine = _Quarantine(specialist)
    counts: Counter = Counter()

    # 1. opinions in the window, validated
    opinion_filter = {"specialist_type": specialist, "evaluated_at": {"$gte": start, "$lte": now}}
    report = progress or (lambda line: None)
    total = store.count("specialist_opinions", opinion_filter) if progress else 0
    opinions: dict[str, dict] = {}
    for op in store.find("specialist_opinions", opinion_filter, sort=[("evaluated_at", 1)]):
        counts["opinions_read"] += 1
        if progress and counts["opinions_read"] % progress_every == 0:
            report(f"{specialist}: opinions read {counts['opinions_read']} / {total}")
        problems = docs.validate_opinion(op, now, specialist)
        if problems:
            quarantine.add("specialist_opinions", op, "opinion_id", problems)
            continue
        opinions[str(op["opinion_id"])] = op

    report(f"{specialist}: opinions read {counts['opinions_read']} / {max(total, counts['opinions_read'])}, "
           f"{len(opinions)} valid")

    # 2. feedback of every valid opinion (before any filter, so malformed feedback is always seen)
    below_quality: list[tuple[str, str]] = []  # (opinion_id, class) of feedback the quality filter removed

    def on_dropped(fb: dict, reason: str) -> None:
        if reason == BELOW_MIN_QUALITY:
            below_quality.append((str(fb["opinion_id"]), str(fb["human_recommendation"]).lower()))

    latest, dropped, counts["feedback_read"] = latest_trusted_feedback(
        store, opinions, now, trust,
        on_malformed=lambda fb, problems: quarantine.add("specialist_feedback", fb, "feedback_id", problems),
        on_dropped=on_dropped)

    report(f"{specialist}: feedback read {counts['feedback_read']}, {len(latest)} opinions labelled")

    # 3. their plans, from the ledger (plan_data) and plain plan documents
    plan_ids = sorted({str(op["plan_id"]) for op in opinions.values()})
    plans: dict[str, dict] = {}
    plan_intents: dict[str, str | None] = {}
    bad_plans: dict[str, str] = {}
    cache = plan_cache if plan_cache is not None else {}

    def take(pid: str, collection: str, doc: dict, plan: dict | None, problems: list) -> None:
        if problems:
            quarantine.add(collection, doc, "plan_id", problems)
            bad_plans[pid] = problems[0].reason
        else:
            plans[pid] = dict(plan)
            plans[pid].setdefault("plan_id", pid)
            plan_intents[pid] = _plan_intent(doc, plan)

    for pid in plan_ids:
        if pid in cache:
            take(pid, *cache[pid])
    for collection in ("cognitive_ledger", "cognitive_plans"):
        missing = [p for p in plan_ids if p not in plans and p not in bad_plans]
        for doc in store.find_by_keys(collection, "plan_id", missing):
            pid = str(doc.get("plan_id"))
            plan = docs.plan_of(doc)
            problems = docs.validate_plan(plan, now, max_tasks) if plan is not None else [
                docs.Problem(docs.MISSING_TASKS, f"{collection} document has no plan_data")]
            if plan_cache is not None:
                plan_cache[pid] = (collection, doc, plan, problems)
            take(pid, collection, doc, plan, problems)
    for oid, op in list(opinions.items()):
        pid = str(op["plan_id"])
        if pid in plans:
            continue
        reason = docs.INVALID_PLAN if pid in bad_plans else docs.MISSING_PLAN
        detail = f"plan {pid} is {'quarantined (' + bad_plans[pid] + ')' if pid in bad_plans else 'not found'}"
        quarantine.add("specialist_opinions", op, "opinion_id", [docs.Problem(reason, detail)])
        del opinions[oid]

    report(f"{specialist}: plans read {len(plans)} / {len(plan_ids)}, {len(bad_plans)} quarantined")

    # 4. intent confidence filter (filtered and counted, not quarantined); encrypted ids resolve via the plan
    intents: dict[str, str] = {}
    for oid, op in list(opinions.items()):
        own = clear_id(op.get("intent_id"))
        iid = own or plan_intents.get(str(op["plan_id"]))
        if iid is None:
            counts["filtered_no_intent_id"] += 1
            del opinions[oid]
            continue
        counts["intent_from_opinion" if own else "intent_from_plan"] += 1
        intents[oid] = iid
    confidences = audit_reader(sorted(set(intents.values())), start - timedelta(days=1), now)
    for oid, op in list(opinions.items()):
        conf = confidences.get(intents[oid])
        if conf is None:
            counts["filtered_no_audit_event"] += 1
            del opinions[oid]
        elif conf < min_confidence:
            counts["filtered_low_intent_confidence"] += 1
            del opinions[oid]
        else:
            op["_intent_confidence"] = conf

    report(f"{specialist}: audit confidences of {len(set(intents.values()))} intents read, "
           f"{len(opinions)} opinions kept")

    rows = []
    for oid, op in opinions.items():
        body = op["opinion"]
        meta = op.get("metadata") or {}
        fb = latest.get(oid)
        rows.append({
            "opinion_id": oid,
            "plan_id": str(op["plan_id"]),
            "intent_id": intents[oid],
            "specialist_type": specialist,
            # validation lets text or an integer through; an integer is kept as its digits (`collect`'s rule,
            # written out here)
            "specialist_version": (str(op["specialist_version"]) if type(op.get("specialist_version")) is int
                                   else op.get("specialist_version")),
            "evaluated_at": docs.to_utc(op["evaluated_at"]),
            "recommendation": str(body["recommendation"]).lower(),
            "confidence_score": body.get("confidence_score"),
            "ab_test_id": meta.get("ab_test_id"),
            "ab_arm": meta.get("ab_arm"),
            "intent_confidence": op["_intent_confidence"],
            "label": fb["human_recommendation"].lower() if fb else None,
            "feedback_id": fb.get("feedback_id") if fb else None,
            "feedback_source": fb.get("feedback_source") if fb else None,
            "feedback_submitted_at": fb["_submitted"] if fb else None,
            "human_rating": fb.get("human_rating") if fb else None,
            "plan": plans[str(op["plan_id"])],
        })
    frame = pd.DataFrame(rows, columns=RAW_COLUMNS)
    if len(frame):
        frame["evaluated_at"] = pd.to_datetime(frame["evaluated_at"], utc=True, cache=False)
        frame["feedback_submitted_at"] = pd.to_datetime(frame["feedback_submitted_at"], utc=True, cache=False)
        frame = frame.sort_values(["evaluated_at", "opinion_id"], kind="stable").reset_index(drop=True)
    dropped_by_class = Counter(label for _, label in below_quality)
    if trust.min_feedback_quality > 0:
        _refuse_emptied_class(frame, below_quality, trust.min_feedback_quality)
    qframe = quarantine.frame()
    counts = {**dict.fromkeys(INTENT_COUNTS, 0), **counts}
    counts.update({
        "rows": len(frame),
        "labelled": int(frame["label"].notna().sum()) if len(frame) else 0,
        "quarantined": len(qframe),
        "feedback_dropped": dict(dropped),
        "quality_filter_dropped_by_class": {c: dropped_by_class.get(c, 0) for c in CLASSES},
        "window_start": start.isoformat(),
        "window_end": now.isoformat(),
    })
    return CollectResult(specialist, frame, qframe, counts)

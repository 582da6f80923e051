"""Collect labelled examples for one specialist: opinion + plan + latest trusted feedback.

Reads only with find/count on indexed fields and joins client-side (SPEC section 2), so the same
code serves the SQLite store, MongoDB and FerretDB. Malformed documents are quarantined with a
reason code; an opinion whose intent has no audit event or a low NLU confidence is filtered and
counted (not quarantined).

Training collection is driven from the labels (issue 23), so its cost follows the labelled share of
the traffic, not the traffic: the specialist's feedback submitted in the window (index on
specialist_type + submitted_at) -> the opinions with a valid trusted one, by id, restricted to the
window -> all feedback of those opinions (the same join as before, so the same latest label) -> their
plans by id -> audit events. Unlabelled opinions are never read; validation and quarantine cover the
documents read. `source="window"` reads every opinion of the window instead (the drift check: the
plans a model saw, labelled or not); unlabelled opinions are then rows without a label.

The window is [now - window_days, now]; `now` may be a backfill's `as_of`. Nothing after it is read as if
known: opinions are queried up to it, later feedback is not a label, later audit events do not count.

Production specialists encrypt an opinion's `intent_id` (`enc:<Fernet token>`). It is never decrypted:
the intent comes from the opinion when its id is in clear, otherwise from its plan (`plan_data.intent_id`
or the ledger document's `intent_id`, stored in clear); `intent_from_opinion` / `intent_from_plan` count
which path served, `filtered_no_intent_id` the opinions neither could.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import pandas as pd

from hive_assets import clock
from hive_assets.config import CLASSES
from hive_assets.cyclic_gc import cyclic_gc_paused
from hive_assets.data import _documents as docs
from hive_assets.data._audit import AuditReader, audit_confidences_from_store
from hive_assets.data._join import latest_trusted_feedback
from hive_assets.data._quarantine import _Quarantine
from hive_assets.data._trust import BELOW_MIN_QUALITY, FeedbackFilterEmptiedClass, TrustPolicy
from hive_assets.data.store.base import DocumentStore

COLLECTION_SETTINGS = "collection_settings"  # the frame.attrs key of `collection_settings()`, stored with the rows
PROGRESS_EVERY = 5000  # opinions read between two progress lines

Progress = Callable[[str], None]

RAW_COLUMNS = [
    "opinion_id", "plan_id", "intent_id", "specialist_type", "specialist_version", "evaluated_at",
    "recommendation", "confidence_score", "ab_test_id", "ab_arm", "intent_confidence",
    "label", "feedback_id", "feedback_source", "feedback_submitted_at", "human_rating", "plan",
]


@dataclass
class CollectResult:
    specialist: str
    frame: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)
    # `snapshot_hash()`, once computed (or as stored with the frames): a result is not modified after collection
    snapshot: str | None = field(default=None, repr=False, compare=False)

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        return dict(Counter(self.quarantine["reason"])) if len(self.quarantine) else {}

    @property
    def settings(self) -> dict[str, Any]:
        """What the collection was asked for, as it applied it (`collection_settings()`): {} for a result
        stored before collections recorded it."""
        return dict(self.frame.attrs.get(COLLECTION_SETTINGS) or {})

    def snapshot_hash(self) -> str:
        """Identifies the data a model was trained on: every field of the labelled rows (the rows training
        uses; a `source="window"` result's unlabelled rows do not change it), the plans the features come
        from included, so a plan or an opinion replaced in place under the same ids is new data. Key order
        inside a plan does not count (stores differ in it)."""
        if self.snapshot is None:
            self.snapshot = _snapshot_hash(self.frame)
        return self.snapshot


def _snapshot_hash(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    labelled = frame[frame["label"].notna()] if len(frame) else frame
    columns = [c for c in RAW_COLUMNS if c in labelled.columns]
    h.update(orjson.dumps(columns))
    rows = labelled[columns].copy(deep=False)
    for name in columns:  # timestamps as integers (ns, whatever unit a reader gave): no per-value fallback call
        if pd.api.types.is_datetime64_any_dtype(rows[name]):
            rows[name] = rows[name].dt.as_unit("ns").astype("int64")
    if "plan" in columns:  # a plan's text (`plan_text`) goes in verbatim: the bytes its tree would give
        rows["plan"] = [orjson.Fragment(p) if isinstance(p, str) else p for p in rows["plan"]]
    for start in range(0, len(rows), SNAPSHOT_CHUNK_ROWS):
        chunk = rows.iloc[start:start + SNAPSHOT_CHUNK_ROWS].to_numpy(dtype=object).tolist()
        h.update(orjson.dumps(chunk, default=docs.jsonable, option=PLAN_JSON_OPTIONS))
    return h.hexdigest()[:16]


SNAPSHOT_CHUNK_ROWS = 2000  # bounds the text hashed at once (plans are kilobytes each)


ENCRYPTED_PREFIX = "enc:"
INTENT_COUNTS = ("intent_from_opinion", "intent_from_plan", "filtered_no_intent_id", "filtered_no_audit_event",
                 "filtered_low_intent_confidence")


def clear_id(value: Any) -> str | None:
    """An id usable for a join: present, not empty, not field-level encrypted (`enc:...`), and one value (text,
    a number, an ObjectId or UUID): an object or a list is no id (its text changes with its key order), and
    NaN is none (every NaN would be one unit, routed to one arm)."""
    if value is None or isinstance(value, (bool, Mapping, list, tuple, set, frozenset, bytes, bytearray)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    text = str(value)
    return None if not text or text.startswith(ENCRYPTED_PREFIX) else text


# the snapshot hash's options: a plan's text is the very bytes the hash would write for the plan's tree
PLAN_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def plan_text(plan: Mapping, plan_id: str) -> str:
    """A valid plan as collection keeps it (the `plan` column): JSON text, keys sorted, `plan_id` set when
    the plan lacks one. Raises TypeError for a value JSON cannot carry (an integer over 64 bits, bytes)."""
    if "plan_id" not in plan:
        plan = {**plan, "plan_id": plan_id}
    return orjson.dumps(plan, default=docs.jsonable, option=PLAN_JSON_OPTIONS).decode()


def _plan_intent(doc: Mapping, plan: Mapping) -> str | None:
    """A plan's intent id: `plan_data.intent_id`, else the ledger document's top-level `intent_id`."""
    return clear_id(plan.get("intent_id")) or clear_id(doc.get("intent_id"))


@cyclic_gc_paused()  # documents are trees: see hive_assets.cyclic_gc
def collect(
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
    source: str = "labels",
) -> CollectResult:
    """Labelled examples of `specialist` in the window ending at `now` (aware, or naive meaning UTC).

    `source`: "labels" (training: only opinions with trusted feedback in the window are read, every row
    has a label) or "window" (every opinion of the window; unlabelled ones are rows without a label).

    `plan_cache`: a dict shared by calls that read the same unchanged store (the five specialists of
    one drift check share their plans): each plan is then read and validated once.
    `progress`, when given, receives one line every `progress_every` opinions read ("opinions read
    n / total", the total counted first with the same query) and one after each later step, so a long
    collection is never silent. Raises `FeedbackFilterEmptiedClass` when `trust.min_feedback_quality`
    removed every label of a class.
    """
    given = now if now is not None else clock.now()
    now = docs.to_utc(given)  # the platform's clock too: its range is narrower, but one rule reads both
    if now is None or not docs.EARLIEST_TIME <= now - timedelta(days=window_days):
        # e.g. a home's clock pinned in the year 2500: a clear error, not a TypeError or pandas' OverflowError
        raise ValueError(f"cannot collect as of {given}: a window of {window_days} "
                         f"days must lie between {docs.EARLIEST_TIME:%Y-%m-%d} and {docs.LATEST_TIME:%Y-%m-%d}, "
                         "the times the data can hold")
    start = now - timedelta(days=window_days)
    trust = trust or TrustPolicy()
    audit_reader = audit_reader or audit_confidences_from_store(store)
    quarantine = _Quarantine(specialist)
    counts: Counter = Counter()

    # 1. opinions: those with trusted feedback in the window (labels), or every one of the window
    opinion_filter = {"specialist_type": specialist, "evaluated_at": {"$gte": start, "$lte": now}}
    report = progress or (lambda line: None)
    if source == "labels":
        # the quality filter is applied by the join, not here: what it removes is counted per class and
        # may not empty a class (SPEC section 4), so its opinions are read
        feedback_filter = _feedback_window(specialist, start, now)
        candidates, window_feedback = _opinions_with_trusted_feedback(
            store, feedback_filter, now, dataclasses.replace(trust, min_feedback_quality=0.0), counts, quarantine)
        total = len(candidates)
        report(f"{specialist}: {total} opinions with trusted feedback in the window")
        found = store.find_by_keys_where("specialist_opinions", "opinion_id", candidates, opinion_filter)
    elif source == "window":
        window_feedback = feedback_filter = None
        total = store.count("specialist_opinions", opinion_filter) if progress else 0
        found = store.find("specialist_opinions", opinion_filter, sort=[("evaluated_at", 1)])
    else:
        raise ValueError(f"source must be 'labels' or 'window', got {source!r}")
    opinions: dict[str, dict] = {}
    for op in found:
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
        on_dropped=on_dropped, known=window_feedback, known_filter=feedback_filter)
    window_feedback = None  # only the labels are kept from here

    report(f"{specialist}: feedback read {counts['feedback_read']}, {len(latest)} opinions labelled")

    # 3. their plans, from the ledger (plan_data) and plain plan documents
    plan_ids = sorted({str(op["plan_id"]) for op in opinions.values()})
    plans: dict[str, str] = {}  # plan_id -> the plan's JSON text (`plan_text`)
    plan_intents: dict[str, str | None] = {}
    bad_plans: dict[str, str] = {}
    cache = plan_cache if plan_cache is not None else {}

    def take(pid: str, collection: str, doc: dict, problems: list, text: str | None, intent: str | None) -> None:
        if problems:
            quarantine.add(collection, doc, "plan_id", problems)
            bad_plans[pid] = problems[0].reason
        else:
            plans[pid] = text
            plan_intents[pid] = intent

    for pid in plan_ids:
        if pid in cache:
            take(pid, *cache[pid])
    for collection in ("cognitive_ledger", "cognitive_plans"):
        missing = [p for p in plan_ids if p not in plans and p not in bad_plans]
        for doc in store.find_by_keys_where(collection, "plan_id", missing, {}):
            pid = str(doc.get("plan_id"))
            plan = docs.plan_of(doc)
            problems = docs.validate_plan(plan, now, max_tasks, document=doc) if plan is not None else (
                docs.structure_problems(doc) or [docs.Problem(docs.MISSING_TASKS, f"{collection} document has no plan_data")])
            # a valid plan is kept as its JSON text, the form it is stored in: a quarter of the memory of
            # its decoded tree, hashed and written as is; the features decode it a few plans at a time
            text = None
            if not problems:
                try:
                    text = plan_text(plan, pid)
                except TypeError as error:  # orjson.JSONEncodeError: e.g. an integer over 64 bits
                    problems = [docs.Problem(docs.WRONG_TYPE, "the plan holds a value its JSON text cannot carry "
                                                              f"(bytes, an integer beyond 64 bits): {error}")]
            entry = (collection, doc, problems, None, None) if problems else (
                collection, None, problems, text, _plan_intent(doc, plan))
            if plan_cache is not None:
                plan_cache[pid] = entry
            take(pid, *entry)
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
    unlabelled: list[str] = []  # labels source: opinions read that the whole join left without a label
    for oid, op in opinions.items():
        fb = latest.get(oid)
        if fb is None and source == "labels":
            # e.g. its only feedback was under min_feedback_quality: read (the quality filter must see
            # the classes it removes), not a training row
            unlabelled.append(oid)
            continue
        body = op["opinion"]
        meta = op.get("metadata") or {}
        rows.append({
            "opinion_id": oid,
            "plan_id": str(op["plan_id"]),
            "intent_id": intents[oid],
            "specialist_type": specialist,
            "specialist_version": docs.version_text(op.get("specialist_version")),
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
        _refuse_emptied_class(frame, below_quality, trust.min_feedback_quality, unlabelled)
    qframe = quarantine.frame()
    counts = {**dict.fromkeys(INTENT_COUNTS, 0), **counts}
    counts.update({
        "rows": len(frame),
        "labelled": int(frame["label"].notna().sum()) if len(frame) else 0,
        "quarantined": len(qframe),
        "unlabelled_after_join": len(unlabelled),
        "feedback_dropped": dict(dropped),
        "quality_filter_dropped_by_class": {c: dropped_by_class.get(c, 0) for c in CLASSES},
        "window_start": start.isoformat(),
        "window_end": now.isoformat(),
    })
    frame.attrs[COLLECTION_SETTINGS] = collection_settings(window_days, min_confidence, trust, start, now)
    return CollectResult(specialist, frame, qframe, counts)


def collection_settings(window_days: int, min_confidence: float, trust: TrustPolicy, start: datetime,
                        end: datetime) -> dict[str, Any]:
    """The settings that decide which rows and labels a collection yields: with the documents, enough to
    collect the same data again (the training run logs them as MLflow params)."""
    return {"window_days": window_days, "min_confidence": min_confidence,
            "min_feedback_quality": trust.min_feedback_quality,
            "denied_feedback_sources": sorted(trust.denied_sources),
            "quality_exempt_sources": sorted(trust.quality_exempt_sources),
            "window_start": start.isoformat(), "window_end": end.isoformat()}


# Clocks of the services disagree a little (the tolerance a timestamp may be ahead of "now"): an opinion
# evaluated just after the window's start may have its label stamped just before it.
FEEDBACK_CLOCK_SKEW = docs.FUTURE_TOLERANCE


def _feedback_window(specialist: str, start: datetime, now: datetime) -> dict[str, Any]:
    """The specialist's feedback submitted in [start - FEEDBACK_CLOCK_SKEW, now]: served by the index on
    specialist_type + submitted_at (the query's shape is unchanged, only its lower bound is earlier); the
    join reads the complement of the same filter. The opinions stay those evaluated in [start, now]."""
    return {"specialist_type": specialist, "submitted_at": {"$gte": start - FEEDBACK_CLOCK_SKEW, "$lte": now}}


def _opinions_with_trusted_feedback(
    store: DocumentStore, window: Mapping[str, Any], now: datetime, trust: TrustPolicy, counts: Counter,
    quarantine: _Quarantine,
) -> tuple[list[str], dict[str, list[dict]]]:
    """Ids of the opinions that have, among the feedback of `window` (`_feedback_window`), at least one
    valid feedback the trust policy keeps; and the valid feedback read, by opinion_id.

    Feedback comes after its opinion, but for the services' clock skew, which `window` allows for: so an
    opinion of the window has its labels in it (one stamped more than the skew before the window's start is
    not seen: README "Collection driven from the labels"). The join then takes these documents and reads
    only the OTHER feedback of these opinions by id (the filter's complement), so the label is the same
    latest trusted one whatever this index read saw, and no document is read or validated twice (at the
    simulator's mix, 95 % answered, that was most of the feedback). Malformed feedback read here is
    quarantined."""
    ids: set[str] = set()
    valid: dict[str, list[dict]] = {}
    for fb in store.find("specialist_feedback", window):
        counts["feedback_in_window"] += 1
        problems = docs.validate_feedback(fb, now)
        if problems:
            quarantine.add("specialist_feedback", fb, "feedback_id", problems)
            continue
        oid = fb.get("opinion_id")
        if not isinstance(oid, str) or not oid:
            continue
        valid.setdefault(oid, []).append(fb)
        if oid in ids:
            continue
        submitted = docs.to_utc(fb.get("submitted_at"))
        if submitted is None or submitted > now or trust.reason_to_drop(fb):
            continue
        ids.add(oid)
    return sorted(ids), valid


def _refuse_emptied_class(frame: pd.DataFrame, below_quality: list[tuple[str, str]], threshold: float,
                          unlabelled: list[str] = ()) -> None:
    """Raise if a class has no label left while the quality filter removed some of its feedback from
    opinions that are rows, or would be without the label requirement (`unlabelled`), so the class was
    there to learn and the filter alone took it away."""
    labels = Counter(frame["label"].dropna()) if len(frame) else Counter()
    kept_opinions = (set(frame["opinion_id"]) if len(frame) else set()) | set(unlabelled)
    removed = Counter(label for oid, label in below_quality if oid in kept_opinions)
    for label in CLASSES:
        if removed[label] and not labels[label]:
            raise FeedbackFilterEmptiedClass(label, removed[label], threshold)

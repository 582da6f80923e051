"""Production document shapes (SPEC section 2): normalisation and validation with reason codes.

Every check returns a list of `Problem`s; an empty list means the document is usable. Callers
quarantine documents with problems (kept, with reason and source id) and keep every good neighbour.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any

from hive_assets.config import CLASSES, optional_extension

# Optional C fast path of `structure_problems` (hive_assets/data/_structure.c, built with the features' C
# flattener): it answers "sane" only for a document the walk would pass, and the walk judges everything else.
# HIVE_DATA_PURE_PYTHON=1 disables it.
_structure = optional_extension("hive_assets.data._structure", "HIVE_DATA_PURE_PYTHON")

RECOMMENDATIONS = frozenset({"approve", "reject", "review_required", "conditional"})
HUMAN_RECOMMENDATIONS = frozenset(CLASSES)
RISK_BANDS = frozenset({"low", "medium", "high", "critical"})
PRIORITIES = frozenset({"low", "normal", "high", "critical"})

# Reason codes. Stable strings: they appear in asset metadata and the quarantine collection.
NOT_A_DOCUMENT = "not_a_document"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
INVALID_TIMESTAMP = "invalid_timestamp"
TIMESTAMP_IN_FUTURE = "timestamp_in_future"
MISSING_PLAN = "missing_plan"
INVALID_PLAN = "invalid_plan"
MISSING_TASKS = "missing_tasks"
MISSING_TASK_ID = "missing_task_id"
DUPLICATE_TASK_IDS = "duplicate_task_ids"
INVALID_DEPENDENCY = "invalid_dependency"
NEGATIVE_DURATION = "negative_duration"
OVERSIZED_PLAN = "oversized_plan"
UNKNOWN_RECOMMENDATION = "unknown_recommendation"
UNKNOWN_HUMAN_RECOMMENDATION = "unknown_human_recommendation"
SPECIALIST_MISMATCH = "specialist_mismatch"
# Hostile documents: refused before any other check, whatever their size (issue 21).
TOO_DEEP = "too_deep"
INVALID_STRING = "invalid_string"
UNREADABLE_DOCUMENT = "unreadable_document"

REASON_CODES = (
    TOO_DEEP, INVALID_STRING, UNREADABLE_DOCUMENT, NOT_A_DOCUMENT, MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE, INVALID_TIMESTAMP, TIMESTAMP_IN_FUTURE,
    MISSING_PLAN, INVALID_PLAN, MISSING_TASKS, MISSING_TASK_ID, DUPLICATE_TASK_IDS, INVALID_DEPENDENCY,
    NEGATIVE_DURATION, OVERSIZED_PLAN, UNKNOWN_RECOMMENDATION, UNKNOWN_HUMAN_RECOMMENDATION,
    SPECIALIST_MISMATCH,
)

MAX_TASKS = 5_000
# A duration (ms) over this is a data error, not a plan: about 31,700 years. Without a bound, two tasks of
# 1e308 ms summed to infinity, and one plan's infinite features failed every fit of its specialist (scaling
# refuses them) for as long as the plan stayed in the window. 5,000 tasks at the bound stay finite everywhere.
MAX_DURATION_MS = 1e15
# Nesting levels (objects and arrays) a document may have. Real plans use under 10; pickling a value,
# `json.dumps` and the stores' decoders all recurse, so a document hundreds of levels deep fails whoever
# touches it next (a 900-deep plan failed the pickling of the collected rows).
MAX_DEPTH = 64
# A store reader that cannot decode one stored document yields this placeholder instead of failing the
# read: `{<key field>: <key>, UNREADABLE_FIELD: {"reason": ..., "detail": ...}}`; validation quarantines it.
UNREADABLE_FIELD = "$hive_unreadable"
# Clocks disagree a little; a timestamp this far ahead of "now" is an error, not skew.
FUTURE_TOLERANCE = timedelta(minutes=5)


# a detail quotes the offending value: a 200,000-item field made a 20 MB detail, in the quarantine table and
# in a serving error a service returns to its caller
MAX_DETAIL = 500


@dataclass(frozen=True)
class Problem:
    reason: str
    detail: str

    def __post_init__(self):
        if len(self.detail) > MAX_DETAIL:
            object.__setattr__(self, "detail", f"{self.detail[:MAX_DETAIL]}... ({len(self.detail):,} characters)")


def unreadable(reason: str, detail: str, key_field: str | None = None, key: Any = None) -> dict[str, Any]:
    """The placeholder a store reader yields for a stored document it cannot decode (see UNREADABLE_FIELD)."""
    doc: dict[str, Any] = {UNREADABLE_FIELD: {"reason": reason, "detail": safe_text(detail)[:300]}}
    if key_field is not None and isinstance(key, str):
        doc[key_field] = safe_text(key)
    return doc


def valid_text(text: str) -> bool:
    """Encodable as UTF-8: no lone surrogate (`"\\ud800"` is valid JSON that orjson, BSON and every
    UTF-8 writer refuse). NUL is valid text for all of them and is kept."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_text(text: str) -> str:
    """`text` with every lone surrogate written as its escape (`\\ud800`): safe for any writer."""
    return text if valid_text(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


_LEAF_TYPES = frozenset({int, float, bool, type(None), datetime})


def structure_problems(doc: Any, max_depth: int = MAX_DEPTH) -> list[Problem]:
    """TOO_DEEP, INVALID_STRING or the store's UNREADABLE placeholder's own reason; [] for a sane document.

    Level by level with explicit lists, never recursion, so a 100,000-level document is judged like any
    other; it stops at the first problem. On the collection's hot path: a sane tree of dicts, lists and
    valid text (the common case) is passed by the C module when it is built; otherwise plain dicts, lists and
    ASCII text (`str.isascii` is O(1)) take the walk's fast branches."""
    if _structure is not None and _structure.sane(doc, max_depth):
        return []
    if isinstance(doc, Mapping) and isinstance(doc.get(UNREADABLE_FIELD), Mapping):
        marker = doc[UNREADABLE_FIELD]
        return [Problem(str(marker.get("reason") or UNREADABLE_DOCUMENT), str(marker.get("detail", "")))]
    level = [doc]
    depth = 1
    while level:
        if depth > max_depth:
            return [Problem(TOO_DEEP, f"nested deeper than {max_depth} levels")]
        deeper: list[Any] = []
        push = deeper.append
        for node in level:
            if type(node) is dict or isinstance(node, Mapping):
                for key, value in node.items():
                    if type(key) is str and not key.isascii() and not valid_text(key):
                        return [Problem(INVALID_STRING, f"field name {safe_text(key)[:80]!r} is not valid text")]
                    kind = type(value)
                    if kind is str:
                        if not value.isascii() and not valid_text(value):
                            return [Problem(INVALID_STRING, f"{safe_text(str(key))[:80]}: a lone surrogate in the text")]
                    elif kind is dict or kind is list:
                        push(value)
                    elif kind not in _LEAF_TYPES and isinstance(value, (Mapping, list, tuple)):
                        push(value)
            elif isinstance(node, (list, tuple)):
                for value in node:
                    kind = type(value)
                    if kind is str:
                        if not value.isascii() and not valid_text(value):
                            return [Problem(INVALID_STRING, "a list item holds a lone surrogate")]
                    elif kind is dict or kind is list:
                        push(value)
                    elif kind not in _LEAF_TYPES and isinstance(value, (Mapping, list, tuple)):
                        push(value)
        level = deeper
        depth += 1
    return []


def safe_copy(doc: Any, max_depth: int = MAX_DEPTH) -> Any:
    """A copy any writer accepts: containers deeper than `max_depth` replaced by a marker string, lone
    surrogates escaped (`safe_text`). Iterative, like `structure_problems`. Non-container leaves are kept."""
    def clean(value: Any) -> Any:
        return safe_text(value) if isinstance(value, str) else value

    def fresh(value: Any) -> Any:
        return {} if isinstance(value, Mapping) else []

    if not isinstance(doc, (Mapping, list, tuple)):
        return clean(doc)
    root = fresh(doc)
    stack: list[tuple[Any, Any, int]] = [(doc, root, 1)]
    while stack:
        source, target, depth = stack.pop()
        items = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, value in items:
            if isinstance(value, (Mapping, list, tuple)):
                if depth + 1 > max_depth:
                    value_out: Any = f"<nested deeper than {max_depth} levels: cut>"
                else:
                    value_out = fresh(value)
                    stack.append((value, value_out, depth + 1))
            else:
                value_out = clean(value)
            if isinstance(target, dict):
                target[safe_text(key) if isinstance(key, str) else key] = value_out
            else:
                target.append(value_out)
    return root


# the times a document may hold: the rest is "not a timestamp". Epoch milliseconds of 1e15 or 1e20, or
# "9999-12-31T23:59:59-05:00", raised ValueError, OSError or OverflowError from the conversion, and failed the
# collection holding them; a time pandas' nanosecond datetimes cannot hold (1677-09-21 .. 2262-04-11) failed
# it at the frame. Years of margin keep the window arithmetic (now - 90 days...) inside pandas' range.
EARLIEST_TIME = datetime(1700, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(2260, 1, 1, tzinfo=timezone.utc)


def to_utc(value: Any) -> datetime | None:
    """datetime, ISO-8601 text (with Z or offset; naive means UTC) or epoch milliseconds -> aware UTC; None
    for anything else, and for a time outside [EARLIEST_TIME, LATEST_TIME]."""
    try:
        at = _to_utc(value)
    except (ValueError, OverflowError, OSError):  # outside what datetime or the platform's time_t can hold
        return None
    return at if at is None or EARLIEST_TIME <= at <= LATEST_TIME else None


def after_every_time(value: Any) -> bool:
    """Whether `value` names an instant after LATEST_TIME (which `to_utc` calls no timestamp): a reader that
    drops what is stamped after its window's end drops it too, rather than reading it as undated."""
    if is_number(value):  # epoch milliseconds; an int compares exactly, whatever its size (no float of it)
        return (isinstance(value, int) or math.isfinite(value)) and value > LATEST_TIME.timestamp() * 1000.0
    if isinstance(value, str):
        value = _iso_text(value)
    if not isinstance(value, datetime):
        return False
    try:
        return _to_utc(value) > LATEST_TIME
    except OverflowError:  # its offset moves it past year 9999 (or before year 1)
        return value.year > LATEST_TIME.year


def _to_utc(value: Any) -> datetime | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        return datetime.fromtimestamp(value / 1000.0, tz=timezone.utc)
    if isinstance(value, str):
        parsed = _iso_text(value)
        if parsed is None:
            return None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    return None


def _iso_text(text: str) -> datetime | None:
    """ISO-8601 text (a trailing Z allowed) as written, naive or with its offset; None when it is not one."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None


def is_number(value: Any) -> bool:
    """An int or float, finite or not (NaN and infinities are numbers out of every range, not wrong types)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _magnitude(value: float) -> str:
    """A number for a message: an integer of thousands of digits has no float (nor, past 4,300, any str)."""
    try:
        return f"{float(value):.6g}"
    except OverflowError:
        return "an integer beyond any float"


def _non_finite(value: float) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _choice_problems(value: Any, field: str, allowed: frozenset[str], reason: str) -> list[Problem]:
    if value is None:
        return [Problem(MISSING_FIELD, f"{field} is missing")]
    if not isinstance(value, str) or value.lower() not in allowed:
        return [Problem(reason, f"{field}={value!r}")]
    return []


def _unit_interval_problems(value: Any, field: str) -> list[Problem]:
    """An optional number in [0, 1]."""
    if value is None:
        return []
    if not is_number(value):
        return [Problem(WRONG_TYPE, f"{field}={value!r} is not a number")]
    if not 0.0 <= value <= 1.0:  # also false for NaN: extended JSON {"$numberDouble": "NaN"} lands here
        return [Problem(OUT_OF_RANGE, f"{field}={value} not in [0, 1]")]
    return []


def _timestamp_problems(doc: Mapping, field: str, now: datetime | None, required: bool = True) -> list[Problem]:
    """`now` None: a readable timestamp is enough (no check against the clock)."""
    if field not in doc or doc[field] is None:
        return [Problem(MISSING_FIELD, f"{field} is missing")] if required else []
    ts = to_utc(doc[field])
    if ts is None:
        return [Problem(INVALID_TIMESTAMP, f"{field}={doc[field]!r} is not a timestamp")]
    if now is not None and ts > now + FUTURE_TOLERANCE:
        return [Problem(TIMESTAMP_IN_FUTURE, f"{field}={ts.isoformat()} is after now")]
    return []


def plan_of(doc: Mapping) -> Mapping | None:
    """The plan inside a `cognitive_ledger` document (`plan_data`) or a plain `cognitive_plans` one."""
    data = doc.get("plan_data")
    if isinstance(data, Mapping):
        return data
    return doc if "tasks" in doc else None


_PLAIN_NUMBERS = frozenset({int, float})  # exact types: bool is not a duration; NaN fails the range
_TEXT_ONLY = frozenset({str})


def validate_plan(plan: Any, now: datetime | None, max_tasks: int = MAX_TASKS, document: Any = None) -> list[Problem]:
    """`document`: the stored document holding `plan` (a ledger entry); its structure is checked instead of
    the plan's (it contains the plan), so a hostile field beside `plan_data` is caught too. `now` None: no
    check of `created_at` against the clock (a plan being served is judged now, whatever it says)."""
    if hostile := structure_problems(plan if document is None else document):
        return hostile
    if not isinstance(plan, Mapping):
        return [Problem(NOT_A_DOCUMENT, f"plan is a {type(plan).__name__}, not an object")]
    problems: list[Problem] = []
    if not plan.get("plan_id"):
        problems.append(Problem(MISSING_FIELD, "plan_id is missing"))
    elif not isinstance(plan["plan_id"], str):  # plan ids are text: an object or a list joins no opinion
        problems.append(Problem(WRONG_TYPE, f"plan_id={plan['plan_id']!r} is not text"))
    tasks = plan.get("tasks")
    if tasks is None:
        return problems + [Problem(MISSING_TASKS, "plan has no tasks field" if "tasks" not in plan else "tasks is null")]
    if not isinstance(tasks, list):
        return problems + [Problem(WRONG_TYPE, f"tasks is a {type(tasks).__name__}, not a list")]
    if len(tasks) > max_tasks:
        return problems + [Problem(OVERSIZED_PLAN, f"{len(tasks)} tasks > {max_tasks}")]
    for field in ("risk_score", "complexity_score"):
        problems += _unit_interval_problems(plan.get(field), field)
    total = plan.get("estimated_total_duration_ms")
    if total is not None and not is_number(total):
        problems.append(Problem(WRONG_TYPE, f"estimated_total_duration_ms={total!r} is not a number"))
    elif _non_finite(total):
        problems.append(Problem(OUT_OF_RANGE, f"estimated_total_duration_ms={total} is not finite"))
    elif total is not None and total < 0:  # as a task's: no plan takes negative time
        problems.append(Problem(NEGATIVE_DURATION, f"estimated_total_duration_ms={_magnitude(total)} < 0"))
    elif total is not None and total > MAX_DURATION_MS:
        problems.append(Problem(OUT_OF_RANGE, f"estimated_total_duration_ms={_magnitude(total)} is over "
                                              f"{MAX_DURATION_MS:g}"))
    for field in ("original_domain", "original_priority"):
        if plan.get(field) is not None and not isinstance(plan[field], str):
            problems.append(Problem(WRONG_TYPE, f"{field}={plan[field]!r} is not text"))
    seen: set[str] = set()
    duplicates: set[str] = set()
    # per task, the common case (exact types, in range) is decided first: collection checks every task it reads
    for i, task in enumerate(tasks):
        if type(task) is not dict and not isinstance(task, Mapping):
            problems.append(Problem(WRONG_TYPE, f"tasks[{i}] is a {type(task).__name__}, not an object"))
            continue
        tid = task.get("task_id")
        if tid is None or tid == "":
            problems.append(Problem(MISSING_TASK_ID, f"tasks[{i}] has no task_id"))
        elif not isinstance(tid, str):
            problems.append(Problem(WRONG_TYPE, f"tasks[{i}].task_id={tid!r} is not text"))
        elif tid in seen:
            duplicates.add(tid)
        else:
            seen.add(tid)
        duration = task.get("estimated_duration_ms")
        if duration is not None and not (type(duration) in _PLAIN_NUMBERS and 0 <= duration <= MAX_DURATION_MS):
            if not is_number(duration):
                problems.append(Problem(WRONG_TYPE, f"tasks[{i}].estimated_duration_ms={duration!r} is not a number"))
            elif _non_finite(duration):
                problems.append(Problem(OUT_OF_RANGE, f"tasks[{i}].estimated_duration_ms={duration} is not finite"))
            elif duration < 0:
                problems.append(Problem(NEGATIVE_DURATION, f"tasks[{i}].estimated_duration_ms={duration} < 0"))
            elif duration > MAX_DURATION_MS:
                problems.append(Problem(OUT_OF_RANGE, f"tasks[{i}].estimated_duration_ms={_magnitude(duration)} is "
                                                      f"over {MAX_DURATION_MS:g}"))
        deps = task.get("dependencies", [])
        if deps is None:
            deps = []
        if not isinstance(deps, list):
            problems.append(Problem(WRONG_TYPE, f"tasks[{i}].dependencies is not a list"))
        else:
            for dep in deps:
                ok = isinstance(dep, str) or (
                    (type(dep) is dict or isinstance(dep, Mapping))
                    and isinstance(dep.get("task_id"), str)
                    and dep.get("type", "strong") in ("strong", "weak")
                )
                if not ok:
                    problems.append(Problem(INVALID_DEPENDENCY, f"tasks[{i}] dependency {dep!r} is malformed"))
                    break
        caps = task.get("required_capabilities", [])
        if caps is not None and not (isinstance(caps, list) and (
                set(map(type, caps)) <= _TEXT_ONLY or all(isinstance(c, str) for c in caps))):
            problems.append(Problem(WRONG_TYPE, f"tasks[{i}].required_capabilities is not a list of text"))
    if duplicates:
        problems.append(Problem(DUPLICATE_TASK_IDS, f"task ids repeated: {sorted(duplicates)[:5]}"))
    if plan.get("created_at") is not None:
        problems.extend(_timestamp_problems(plan, "created_at", now, required=False))
    return problems


def plan_to_serve(document: Any, max_tasks: int = MAX_TASKS) -> tuple[Any, list[Problem]]:
    """The plan a request carries (a plan, or a `cognitive_ledger` entry: its `plan_data`) and the problems
    collection would quarantine it for, without the clock check: a plan no model was trained on the
    like of (serving refuses it rather than answer with a confident guess)."""
    if isinstance(document, Mapping) and "plan_data" in document:
        return document["plan_data"], validate_plan(document["plan_data"], None, max_tasks, document=document)
    return document, validate_plan(document, None, max_tasks)


def _id_problems(doc: Mapping, fields: tuple[str, ...]) -> list[Problem]:
    """Required ids, which must be text: ids join documents by their text, and whether a number means the
    same document as its digits depends on the store (SQLite keys by text, MongoDB by type)."""
    problems = []
    for field in fields:
        if not doc.get(field):
            problems.append(Problem(MISSING_FIELD, f"{field} is missing"))
        elif not isinstance(doc[field], str):
            problems.append(Problem(WRONG_TYPE, f"{field}={doc[field]!r} is not text"))
    return problems


def _optional_text_problems(doc: Mapping, field: str, path: str | None = None) -> list[Problem]:
    """A field collection copies into a row's text column: None or text. One number among text failed the
    Parquet write of the whole collection, naming no document."""
    value = doc.get(field)
    if value is None or isinstance(value, str):
        return []
    return [Problem(WRONG_TYPE, f"{path or field}={value!r} is not text")]


def version_text(value: Any) -> Any:
    """An opinion's `specialist_version` as collection keeps it: an integer (a service that numbers its
    versions, as the registry does) as its digits, which is what the drift check compares with the registry
    version; anything else as it is (validation allows only text, an integer or none)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def validate_opinion(doc: Any, now: datetime, specialist: str | None = None) -> list[Problem]:
    """Every field collection copies into a row has its type checked: a document of the wrong shape is
    quarantined, never a row (a wrong type there failed the whole collection or its Parquet write)."""
    if not isinstance(doc, Mapping):
        return [Problem(NOT_A_DOCUMENT, f"opinion is a {type(doc).__name__}, not an object")]
    if hostile := structure_problems(doc):
        return hostile
    problems = _id_problems(doc, ("opinion_id", "plan_id"))
    if specialist is not None and doc.get("specialist_type") != specialist:
        problems.append(Problem(SPECIALIST_MISMATCH, f"specialist_type={doc.get('specialist_type')!r}"))
    version = doc.get("specialist_version")
    # an integer is kept as its digits (`version_text`); a float is not (1.10 and 1.1 are one float)
    if version is not None and not isinstance(version, str) and not (isinstance(version, int) and is_number(version)):
        problems.append(Problem(WRONG_TYPE, f"specialist_version={version!r} is not text or an integer"))
    meta = doc.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        problems.append(Problem(WRONG_TYPE, f"metadata={meta!r} is not an object"))
    elif meta is not None:  # the A/B tags: the rollout matches them as text (`hive_assets.rollout`)
        for field in ("ab_test_id", "ab_arm"):
            problems += _optional_text_problems(meta, field, f"metadata.{field}")
    problems.extend(_timestamp_problems(doc, "evaluated_at", now))
    body = doc.get("opinion")
    if body is None:
        return problems + [Problem(MISSING_FIELD, "opinion is missing")]
    if not isinstance(body, Mapping):
        return problems + [Problem(WRONG_TYPE, "opinion is not an object")]
    problems += _choice_problems(body.get("recommendation"), "opinion.recommendation", RECOMMENDATIONS,
                                 UNKNOWN_RECOMMENDATION)
    for field in ("confidence_score", "risk_score"):
        problems += _unit_interval_problems(body.get(field), f"opinion.{field}")
    return problems


def validate_feedback(doc: Any, now: datetime) -> list[Problem]:
    if not isinstance(doc, Mapping):
        return [Problem(NOT_A_DOCUMENT, f"feedback is a {type(doc).__name__}, not an object")]
    if hostile := structure_problems(doc):
        return hostile
    problems = _id_problems(doc, ("feedback_id", "opinion_id"))  # a number as opinion_id labels nothing
    # the trust rules compare source names (a list or an object there raised TypeError in them)
    problems += _optional_text_problems(doc, "feedback_source")
    problems += _choice_problems(doc.get("human_recommendation"), "human_recommendation", HUMAN_RECOMMENDATIONS,
                                 UNKNOWN_HUMAN_RECOMMENDATION)
    problems += _unit_interval_problems(doc.get("human_rating"), "human_rating")
    if doc.get("metadata") is not None and not isinstance(doc["metadata"], Mapping):
        problems.append(Problem(WRONG_TYPE, f"metadata={doc['metadata']!r} is not an object"))
    problems.extend(_timestamp_problems(doc, "submitted_at", now))
    return problems


def jsonable(value: Any) -> Any:
    """JSON encoders' fallback (json, orjson `default=`) for the values documents and results carry beyond
    JSON's own types: numpy scalars and arrays, datetimes (pandas' too), sets, paths, dataclasses."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays, pandas Series
        return value.tolist()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def usable_confidence(event: Mapping[str, Any]) -> float | None:
    """An audit event's `confidence` as a float, or None when it is not a finite number (such an event never
    counts: an intent without a usable one is filtered as having no audit event)."""
    conf = event.get("confidence")
    ok = isinstance(conf, (int, float)) and not isinstance(conf, bool) and math.isfinite(conf)
    return float(conf) if ok else None

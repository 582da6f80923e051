"""The document-store interface shared by the embedded SQLite store and MongoDB/FerretDB.

Queries stay inside what MongoDB 6+ and FerretDB 1.x both serve: find with a small filter language,
count, upsert by a unique key, a `$set` update, and simple `aggregate` ($match, $group, $sort,
$count, $limit). Joins happen client-side.

Filter language (a subset of MongoDB's): `{field: value}` equality on a (dotted) field, and
`{field: {op: value}}` with op in $eq $ne $gt $gte $lt $lte $in $nin $exists; top-level $and / $or /
$nor (a document matching none of the filters: the exact complement of their `$or`).
Values may be str, int, float, bool, None or datetime (timezone-aware UTC).

Non-finite floats (NaN, +-Infinity) survive a round trip through both stores: MongoDB keeps BSON doubles;
JSON has no such numbers, so the SQLite store writes them as extended JSON `{"$numberDouble": "NaN"}` and
reads them back as floats (validation then rejects them as out of range instead of seeing `null`).

Timestamps: both stores accept `datetime` values. The SQLite store keeps them as canonical ISO-8601
strings (`2026-01-02T03:04:05.000000Z`, which sort as text); MongoDB keeps BSON dates. Readers
normalise with `hive_assets.data.to_utc`.
"""

from __future__ import annotations

import abc
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

# Unique key and the fields each collection is queried by (indexed in both stores).
COLLECTIONS: dict[str, dict[str, Any]] = {
    "cognitive_ledger": {"key": "plan_id", "indexed": ("timestamp",)},
    "cognitive_plans": {"key": "plan_id", "indexed": ("created_at",)},
    "specialist_opinions": {"key": "opinion_id", "indexed": ("specialist_type", "evaluated_at", "plan_id")},
    "specialist_feedback": {"key": "feedback_id", "indexed": ("specialist_type", "submitted_at", "opinion_id",
                                                              # the trust rules: the feedback sensor counts by them
                                                              "feedback_source", "metadata.auto_generated",
                                                              "metadata.balanced_dataset", "metadata.source")},
    "intentions_audit": {"key": "id", "indexed": ("timestamp",)},
    # the `intentions.audit` topic, mirrored for collection to read by intent id (hive_assets.data._audit_mirror):
    # written under each message's identity (`upsert_keyless`), so its key field is never set
    "intentions_audit_mirror": {"key": "message", "indexed": ("id", "at_us")},
    "intentions_audit_mirror_state": {"key": "state_id", "indexed": ("topic",)},
    # sensor_evaluation: every tick of the trigger sensors looks up what earlier evaluations of its cursor wrote
    "retraining_triggers": {"key": "trigger_id", "indexed": ("specialist_type", "triggered_at", "status",
                                                             "sensor_evaluation")},
    "drift_monitoring": {"key": "check_id", "indexed": ("specialist_type", "checked_at", "sensor_evaluation")},
    "ab_tests": {"key": "test_id", "indexed": ("specialist_type", "status")},
    "model_decisions": {"key": "decision_id", "indexed": ("specialist_type", "recorded_at")},
    "quarantine": {"key": "quarantine_id", "indexed": ("specialist_type", "reason")},
    # one writer per (job kind, specialist): hive_assets.runs
    "run_leases": {"key": "lease_id", "indexed": ("specialist_type", "owner_run_id")},
    # intent before effect for multi-write registry decisions: hive_assets.registry
    "decision_intents": {"key": "intent_id", "indexed": ("specialist_type", "state")},
    # labels asked of reviewers: hive_assets.review (a reviewer UI reads open ones by specialist)
    "review_requests": {"key": "request_id", "indexed": ("specialist_type", "opinion_id", "status", "requested_at",
                                                         "expires_at")},
    # the simulator's own state between loops (answers not yet due): hive_assets.simulator
    "simulator_state": {"key": "state_id", "indexed": ()},
}

# Compound indexes beyond the single-field ones: the hot query of collection.
COMPOUND_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "specialist_opinions": (("specialist_type", "evaluated_at"),),
    # (specialist, since) plus the trust fields: the feedback sensor's counts read only this index
    "specialist_feedback": (("specialist_type", "submitted_at", "feedback_source", "metadata.auto_generated",
                             "metadata.balanced_dataset", "metadata.source"),),
    # the open queue of a specialist, and today's budget count
    "review_requests": (("specialist_type", "status", "expires_at"), ("specialist_type", "requested_at")),
    # a specialist's latest decision, read before each one is written (`record_decision`, `check_clock`):
    # with the single-field indexes it sorted the specialist's whole ledger (10 ms at 50,000 rows, growing)
    "model_decisions": (("specialist_type", "recorded_at"),),
}

# Compound indexes a later one replaced (a prefix of it): dropped when a store is opened, so writes stop
# maintaining them.
REPLACED_COMPOUND_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "specialist_feedback": (("specialist_type", "submitted_at", "feedback_source", "metadata.auto_generated",
                             "metadata.balanced_dataset"),),
}

Filter = Mapping[str, Any]
Sort = Sequence[tuple[str, int]]


def canonical_time(value: datetime) -> str:
    """Fixed-width UTC ISO-8601 text, so that string order is time order."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_field(collection: str) -> str:
    try:
        return COLLECTIONS[collection]["key"]
    except KeyError:
        raise ValueError(f"unknown collection {collection!r}; known: {sorted(COLLECTIONS)}") from None


def stored_key(value: Any) -> str | bytes:
    """A unique key as the SQLite store indexes it, equal where MongoDB's unique index finds two keys equal.

    Text is itself. Any other JSON type is kept apart from every text (MongoDB: `5` and `"5"`, `true` and
    `"True"` are two documents) as bytes naming its type: numbers by value (`5` and `5.0` are one key, as
    in MongoDB), `true`/`false` apart from `1`/`0`, an object or an array by its JSON text."""
    if isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, Mapping):  # a numpy scalar: its Python value
        value = value.item()
        if isinstance(value, str):
            return value
    if isinstance(value, bool):
        return b"bool:" + (b"true" if value else b"false")
    if isinstance(value, (int, float)):
        number = int(value) if isinstance(value, float) and value.is_integer() else value
        return b"number:" + repr(number).encode()
    return b"json:" + dumps({"k": value}).encode()[5:-1]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return canonical_time(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
NON_FINITE_TAG = "$numberDouble"
_NON_FINITE_TEXT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    return False


def _wrap_non_finite(value: Any) -> Any:
    """A copy with every non-finite float as extended JSON (`{"$numberDouble": "NaN"}`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {NON_FINITE_TAG: "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, Mapping):
        return {k: _wrap_non_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wrap_non_finite(v) for v in value]
    return value


def unwrap_non_finite(value: Any) -> Any:
    """The inverse of the wrapping `dumps` does: `{"$numberDouble": "NaN"}` etc. back to floats, in place.
    An explicit stack, not recursion: a stored document may be nested deeper than Python recurses."""
    def number(v: Any) -> Any:
        if (isinstance(v, dict) and len(v) == 1 and isinstance(v.get(NON_FINITE_TAG), str)
                and v[NON_FINITE_TAG] in _NON_FINITE_TEXT):
            return _NON_FINITE_TEXT[v[NON_FINITE_TAG]]
        return v

    top = number(value)
    if top is not value:
        return top
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if isinstance(v, (dict, list)):
                replaced = number(v)
                if replaced is v:
                    stack.append(v)
                else:
                    node[k] = replaced
    return value


def dumps(doc: Mapping[str, Any]) -> str:
    """A document as compact JSON text (datetimes canonical, numpy values as Python values, non-finite
    floats as `{"$numberDouble": ...}`: orjson would write them as `null`, which reads back as missing)."""
    try:
        text = orjson.dumps(doc, default=_json_default, option=_ORJSON_OPTIONS).decode()
        # orjson writes NaN/Infinity as null: only a text with a null can hide one, so the walk is rare
        if "null" in text and _has_non_finite(doc):
            text = orjson.dumps(_wrap_non_finite(doc), default=_json_default, option=_ORJSON_OPTIONS).decode()
        return text
    except (TypeError, orjson.JSONEncodeError) as exc:  # an integer beyond 64 bits, nesting beyond orjson's 255
        if "surrogates not allowed" in str(exc):
            # a lone surrogate (valid JSON escape, not text): BSON refuses it, and a key holding one failed the
            # SQLite write itself (UnicodeEncodeError, its whole batch lost): refused alike on both stores
            raise UnstorableDocument("holds text that is not UTF-8 (a lone surrogate, such as \\ud800)") from None
        try:
            text = json.dumps(_wrap_non_finite(doc), default=_json_default, separators=(",", ":"), allow_nan=False)
        except RecursionError:
            raise UnstorableDocument("nested too deep to store (JSON encoding ran out of recursion)") from None
        # BSON integers are 64-bit (MongoDB refuses such a document), and the JSON text would read back as a
        # float (1e+30): refused alike on both stores
        if _has_big_int(doc):
            raise UnstorableDocument("holds an integer beyond 64 bits (BSON integers are 64-bit)")
        return text


def _has_big_int(value: Any) -> bool:
    """Whether an integer outside orjson's range (-2**63 .. 2**64 - 1) is anywhere in `value` (no recursion)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, int) and not isinstance(node, bool) and not -2**63 <= node < 2**64:
            return True
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return False


# in a JSON text, a field name with a '.' ends `.<no quote, no backslash>":`; any escape (a backslash: a quote or a
# NUL inside a name) and any string starting with '$' send the document to the walk, which decides
_DOTTED_FIELD_NAME = re.compile(r'\.[^"\\]*":')


def refuse_unstorable_names(doc: Mapping[str, Any], text: str | None = None) -> None:
    """UnstorableDocument when a field name anywhere in `doc` has a '.', a leading '$' or a NUL: FerretDB
    refuses such a document (and a trigger document with `"validation_report.macro_f1"` stayed unwritten in
    production while every test on SQLite passed), so both stores refuse it. `text`: the document's JSON
    (`dumps`), scanned first so that sound documents cost no walk."""
    if text is not None and "\\" not in text and '"$' not in text and not _DOTTED_FIELD_NAME.search(text):
        return
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for name, value in node.items():
                if isinstance(name, str) and ("." in name or name.startswith("$") or "\x00" in name):
                    raise UnstorableDocument(f"has a field name a MongoDB store refuses ({name[:80]!r}: a '.', a "
                                             "leading '$' or a NUL)")
                stack.append(value)
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


class UnstorableDocument(ValueError):
    """A document the store cannot encode (nested deeper than its JSON encoders go): the caller decides
    whether that is a bad input line (import) or an error."""


KEY_CHUNK = 1000  # ids per `$in` query in find_by_keys


def unique_ids(keys: Iterable[str]) -> list[str]:
    """The distinct ids, sorted; find_by_keys matches strings only (no int/float/bool coercions)."""
    wanted = set(keys)
    if not all(isinstance(k, str) for k in wanted):
        raise TypeError(f"find_by_keys takes string ids, got {sorted({type(k).__name__ for k in wanted})}")
    return sorted(wanted)


class StoreUnavailable(RuntimeError):
    """The backing service cannot be reached. The message names the host, never a password."""


class DocumentStore(abc.ABC):
    """What the platform needs from a document database. Implementations: SQLite, MongoDB."""

    #: short name for logs and metadata ("sqlite", "mongodb")
    kind: str = "abstract"

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the store is, safe to print (no credentials)."""

    @abc.abstractmethod
    def upsert_many(self, collection: str, docs: Iterable[Mapping[str, Any]]) -> int:
        """Insert documents, replacing any with the same unique key. Returns how many were written."""

    @abc.abstractmethod
    def upsert_keyless(self, collection: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Write documents that lack the collection's key, each under an identity of the caller's (an
        import's source `_id`): the same identity again replaces its document, so importing a file twice
        adds nothing. Readers never see the identity. Returns how many were written."""

    @abc.abstractmethod
    def insert_keyless_new(self, collection: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """`upsert_keyless` for documents that never change once written (a Kafka message's mirror): an identity
        already stored is left as it is. Returns how many were given. On FerretDB 1.x a plain insert is ~100x
        faster than a replace-with-upsert (measured 50,000 against 400 documents a second)."""

    @abc.abstractmethod
    def find(
        self,
        collection: str,
        filter: Filter | None = None,
        projection: Sequence[str] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Matching documents (without Mongo's `_id`), optionally projected to top-level fields. With a sort,
        ties come in insertion order in the first key's direction (newest-first sorts give the last written)."""

    @abc.abstractmethod
    def count(self, collection: str, filter: Filter | None = None) -> int: ...

    @abc.abstractmethod
    def update_one(self, collection: str, filter: Filter, set_fields: Mapping[str, Any]) -> int:
        """Apply `$set: set_fields` to the first matching document. Returns 1 if one matched.

        Atomic on both stores: with a filter on the unique key and a token field (top-level
        equality, which FerretDB 1.x pushes down), it is a compare-and-swap."""

    @abc.abstractmethod
    def delete_many(self, collection: str, filter: Filter) -> int:
        """Delete every matching document (one transaction on SQLite). Returns how many were deleted."""

    @abc.abstractmethod
    def insert_new(self, collection: str, doc: Mapping[str, Any]) -> bool:
        """Insert `doc` only if no document has its unique key (atomic: the unique index decides).
        Returns False, writing nothing, when one exists."""

    def find_by_keys(
        self, collection: str, field: str, keys: Iterable[str], projection: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Documents whose top-level `field` is one of `keys` (ids: strings), in no particular order.

        The batched read behind every client-side join: `$in` queries of at most KEY_CHUNK ids, so a
        request stays bounded on every store. A store may override the strategy, not the result.
        """
        wanted = unique_ids(keys)
        for i in range(0, len(wanted), KEY_CHUNK):
            yield from self.find(collection, {field: {"$in": wanted[i : i + KEY_CHUNK]}}, projection=projection)

    def find_by_keys_where(
        self, collection: str, field: str, keys: Iterable[str], where: Filter,
        projection: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """`find_by_keys` restricted to the documents that also match `where` (e.g. the collection window,
        so a join by id reads exactly what the window query would have read of those ids).

        `field` must not appear in `where`. Each chunk is one query `{**where, field: {"$in": chunk}}`: on
        SQLite and MongoDB the unique index on the id serves it. A store may override the strategy.
        """
        if field in where:
            raise ValueError(f"find_by_keys_where: {field!r} is both the key field and in `where`")
        wanted = unique_ids(keys)
        for i in range(0, len(wanted), KEY_CHUNK):
            yield from self.find(collection, {**where, field: {"$in": wanted[i : i + KEY_CHUNK]}}, projection=projection)

    def distinct_strings(self, collection: str, field: str) -> list[str]:
        """The distinct text values of `field` (dotted) in `collection`, sorted; values of other types are left
        out. Stores answer it from the field's index (`field` must be indexed); this default reads every
        document."""
        values = (get_path(doc, field) for doc in self.find(collection, projection=[field.split(".")[0]]))
        return sorted({v for v in values if isinstance(v, str)})

    def find_one(self, collection: str, filter: Filter | None = None, sort: Sort | None = None) -> dict | None:
        return next(iter(self.find(collection, filter, sort=sort, limit=1)), None)

    def aggregate(self, collection: str, pipeline: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Simple pipelines ($match first, then $group / $sort / $count / $limit), evaluated here.

        The MongoDB store overrides this to run server-side; the semantics are the same.
        """
        stages = list(pipeline)
        match: Filter | None = None
        if stages and "$match" in stages[0]:
            match = stages.pop(0)["$match"]
        return run_pipeline(self.find(collection, match), stages)

    def close(self) -> None:  # pragma: no cover - trivial default
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def get_path(doc: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _expr(doc: Mapping[str, Any], spec: Any) -> Any:
    if isinstance(spec, str) and spec.startswith("$"):
        return get_path(doc, spec[1:])
    return spec


def run_pipeline(docs: Iterable[Mapping[str, Any]], stages: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Evaluate $group / $sort / $count / $limit client-side (the subset FerretDB 1.x also serves)."""
    rows: list[dict] = [dict(d) for d in docs]
    for stage in stages:
        (op, arg), = stage.items()
        if op == "$group":
            groups: dict[Any, dict] = {}
            for doc in rows:
                gid = _expr(doc, arg["_id"])
                key = tuple(sorted(gid.items())) if isinstance(gid, dict) else gid
                acc = groups.setdefault(key, {"_id": gid})
                for name, spec in arg.items():
                    if name == "_id":
                        continue
                    (agg, operand), = spec.items()
                    value = _expr(doc, operand)
                    if agg == "$sum":
                        acc[name] = acc.get(name, 0) + (value or 0)
                    elif agg == "$max":
                        if value is not None and (acc.get(name) is None or value > acc[name]):
                            acc[name] = value
                    elif agg == "$min":
                        if value is not None and (acc.get(name) is None or value < acc[name]):
                            acc[name] = value
                    else:
                        raise ValueError(f"unsupported accumulator {agg}")
            rows = list(groups.values())
        elif op == "$sort":
            for field, direction in reversed(list(arg.items())):
                rows.sort(key=lambda d: (get_path(d, field) is None, get_path(d, field)), reverse=direction < 0)
        elif op == "$count":
            rows = [{arg: len(rows)}]
        elif op == "$limit":
            rows = rows[: int(arg)]
        elif op == "$match":
            rows = [d for d in rows if matches(d, arg)]
        else:
            raise ValueError(f"unsupported aggregation stage {op}")
    return rows


def _comparable(value: Any) -> Any:
    return canonical_time(value) if isinstance(value, datetime) else value


def _match_op(actual: Any, op: str, expected: Any) -> bool:
    actual, expected = _comparable(actual), _comparable(expected)
    if op == "$eq":
        return actual == expected
    if op == "$ne":
        return actual != expected
    if op == "$in":
        return actual in [_comparable(v) for v in expected]
    if op == "$nin":
        return actual not in [_comparable(v) for v in expected]
    if op == "$exists":
        return (actual is not None) == bool(expected)
    if actual is None:
        return False
    try:
        if op == "$gt":
            return actual > expected
        if op == "$gte":
            return actual >= expected
        if op == "$lt":
            return actual < expected
        if op == "$lte":
            return actual <= expected
    except TypeError:
        return False
    raise ValueError(f"unsupported filter operator {op}")


def matches(doc: Mapping[str, Any], filter: Filter | None) -> bool:
    """Pure-Python evaluation of the filter language above (the reference the stores must agree with)."""
    for field, cond in (filter or {}).items():
        if field == "$and":
            if not all(matches(doc, f) for f in cond):
                return False
        elif field == "$or":
            if not any(matches(doc, f) for f in cond):
                return False
        elif field == "$nor":
            if any(matches(doc, f) for f in cond):
                return False
        elif isinstance(cond, Mapping) and cond and all(k.startswith("$") for k in cond):
            value = get_path(doc, field)
            if not all(_match_op(value, op, exp) for op, exp in cond.items()):
                return False
        elif not _match_op(get_path(doc, field), "$eq", cond):
            return False
    return True

"""MongoDB / FerretDB document store (used when MONGODB_URI is set).

Same documents and the same filter language as the embedded SQLite store (see `base.py`), served by
MongoDB 6+ or FerretDB 1.x. Only commands both serve are used: find (with projection, sort, limit),
countDocuments, bulk replace-with-upsert / insert, updateOne with `$set`, createIndexes, and aggregate
with $match / $group ($sum, $max, $min) / $sort / $count / $limit.

Decisions, where the two servers or the two stores differ:

* Unique key index: `{key: 1}` with `unique=True, sparse=True`. On MongoDB the sparse flag lets any
  number of documents *without* the key coexist (like the SQLite store's partial index
  `WHERE doc_key IS NOT NULL`); a plain unique index would allow only one of them. A partial index
  (`partialFilterExpression`) would say the same thing more precisely, but FerretDB 1.x answers
  NotImplemented (code 238) for it. FerretDB 1.x accepts `sparse` without storing it, and its unique
  indexes already skip documents that lack the field, so the behaviour is the same on both. Should a
  server reject `sparse`, the index is created plainly unique (then one key-less document at a time).
  A document whose key is explicitly `null` is indexed by both servers: only one such document per
  collection (the SQLite store treats it as key-less and allows many).
* `$exists`: the platform's filter language counts a field holding `null` as absent (as SQLite's
  `json_extract(...) IS NULL` does). MongoDB's `$exists: true` matches `null` values, so it is sent
  as `{$ne: null}` and `$exists: false` as `{field: null}` (missing or null).
* `find` without a sort returns the server's natural order; with a sort, `_id` breaks ties (insertion
  order, like the SQLite store's rowid), in the first sort key's direction: "the latest" of documents
  stamped at one instant (a pinned clock) is the one written last.
* `upsert_many`: `ReplaceOne(upsert=True)` by key, `InsertOne` for key-less documents, in ordered
  bulk writes. On FerretDB 1.x, whose SQLite backend pushes only `_id` filters down to SQL (every
  other filter scans the collection, indexes or not), new keys are found with one `$in` query per batch
  and inserted outright, and bulk commands are kept to 50 operations (see `_bulk`: larger `update`
  commands deadlock it). An upsert there still costs a collection scan: FerretDB with SQLite is a test
  and development stand-in, not for large collections.
* `find_by_keys` (the joins' batched read) sends `$in` chunks of KEY_CHUNK ids to MongoDB, which
  answers them from the index. FerretDB 1.x pushes only top-level equality down to its backend, so
  there a `$in` chunk is a full scan; for more than one chunk's worth of ids it scans the collection
  once and filters client-side with `$in`'s semantics (the value, or an element of an array value).
  On PostgreSQL, FerretDB's pushed-down equality (`_jsonb->'f' @> '"x"'`) cannot use the btree
  indexes `createIndexes` makes, only a GIN index (`_ferretdb_postgresql.ensure_lookup_indexes`,
  `hive store index`). How the backend answers `{field: x}` is asked with FerretDB's `explain`
  (`lookup_plan`): its `filterPushdown` (false on SQLite, where every equality query is a full scan:
  asked once per store), and on PostgreSQL whether the plan is an index scan (asked per
  (collection, field) until it is). `find_by_keys_where` (label-driven collection's joins) is one
  pushed-down equality query per id when PostgreSQL answers it from an index (any number of ids) or
  by a scan of its own (up to FERRETDB_POINT_LOOKUPS ids); on SQLite it is one scan, whatever the
  number of ids (issue 23). `find_by_keys` keeps its one scan: its callers read most of a collection.
* Documents are written without `_id` (replacements keep the stored `_id`), and `find` never returns
  it. Timestamps are BSON dates, read back as timezone-aware UTC datetimes (`tz_aware=True`).
* `aggregate` runs server-side when every stage and accumulator is in the subset above; anything
  else (or a server answering NotImplemented) falls back to the base class (client-side).
  FerretDB 1.x (detected from `buildInfo.ferretdbVersion`) implements only the `$sum` accumulator
  (`$max`/`$min` answer NotImplemented), and with more than one accumulator in a `$group` it
  silently returns 0 for all but the first (seen on v1.24.2): there, a `$group` is sent to the
  server only when it has at most one accumulator and that is `$sum`. A final
  `$count` over no documents returns `[{name: 0}]` like the client-side pipeline (MongoDB returns
  nothing).
* `find` reads raw BSON and decodes each document alone (`_decode`): invalid UTF-8 becomes lone
  surrogates (validation quarantines the document as `invalid_string`), and a document the decoder
  refuses (malformed BSON, nesting beyond it) becomes the `unreadable` placeholder with its key, so one
  document never fails its batch. FerretDB 1.x rewrites invalid UTF-8 as U+FFFD on write.
* Every connection problem (server selection timeout, refused connection, network error,
  authentication failure) surfaces as `StoreUnavailable` naming host:port, never the password.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from datetime import timezone
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import bson
import pymongo
from bson.codec_options import TypeRegistry
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel, InsertOne, ReplaceOne
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    InvalidURI,
    OperationFailure,
)

from hive_assets.config import ConfigError, redact_uri, uri_userinfo
from hive_assets.data._documents import MAX_DEPTH, TOO_DEEP, UNREADABLE_DOCUMENT, safe_text, unreadable
from hive_assets.data.store.base import (
    COLLECTIONS,
    COMPOUND_INDEXES,
    KEY_CHUNK,
    REPLACED_COMPOUND_INDEXES,
    DocumentStore,
    Filter,
    Sort,
    StoreUnavailable,
    UnstorableDocument,
    key_field,
    refuse_unstorable_names,
    unique_ids,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
DUPLICATE_KEY = 11000  # MongoDB's (and FerretDB's) code for a unique index refusing a write
# statements per bulk command on FerretDB 1.x: each statement of an update command that matches a document holds
# one pooled backend connection until the command ends (PostgreSQL backend: 50 in all, SQLite: 100), and a
# command that needs more waits forever, with every other client of the server. 5 leaves room for ten writers
# at once; rewriting 3,000 documents took the same 5-6.5 s at 5, 10 or 20 (per-statement cost dominates).
FERRETDB_CHUNK = 5
# up to this many ids, `find_by_keys_where` on FerretDB with PostgreSQL sends one pushed-down equality
# query per id (cost ~ ids x a PostgreSQL scan) rather than one scan converted by FerretDB (~200x dearer
# per row, measured below)
FERRETDB_POINT_LOOKUPS = 300
INDEXED_LOOKUP = "hive: indexed lookup"  # the comment of lookups PostgreSQL answers from a GIN index
# how FerretDB's backend answers a top-level equality `{field: <id>}` (`MongoStore.lookup_plan`)
INDEXED = "indexed"  # pushed down, and PostgreSQL reads it from an index
PUSHED_DOWN = "pushed down"  # pushed down, PostgreSQL scans the table itself
SCAN = "scan"  # FerretDB converts and filters every document (its SQLite backend; MongoDB: not asked)
# OperationFailure codes that mean "the server cannot be used with these credentials"
_AUTH_CODES = {13, 18}  # Unauthorized, AuthenticationFailed
# FerretDB 1.x on PostgreSQL answers a wrong password with code 1 (InternalError) and PostgreSQL's words
_AUTH_WORDS = ("failed sasl auth", "password authentication failed", "authentication failed")
# codes that mean "the server does not implement this" (FerretDB 1.x answers 238)
_NOT_IMPLEMENTED_CODES = {115, 238}  # CommandNotSupported, NotImplemented
# an index with the same key pattern / name but other options already exists
_INDEX_CONFLICT_CODES = {85, 86}
_SERVER_STAGES = {"$match", "$group", "$sort", "$count", "$limit"}
_SERVER_ACCUMULATORS = {"$sum", "$max", "$min"}
PERCENT_ENCODE = ("a '/', '?', '@' or ':' in the user name or password must be percent-encoded "
                  "(urllib.parse.quote_plus)")


def _auth_failure(exc: OperationFailure) -> bool:
    """The server refused these credentials (whatever code it used to say so)."""
    return exc.code in _AUTH_CODES or (exc.code == 1 and any(w in str(exc).lower() for w in _AUTH_WORDS))


def _fallback_encoder(value: Any) -> Any:
    """BSON for what the SQLite store's JSON encoder also accepts: numpy scalars and arrays."""
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value  # bson raises InvalidDocument for anything else


def _hosts(uri: str) -> str:
    """`host:port[,host:port]` from a MongoDB URI, without credentials (no DNS lookups). pymongo's reading,
    unless the password has an unescaped '/' or '?' (`_cut`): pymongo's hosts are then a piece of it
    (`user:2024?Summer@db` reads as host `user`, port 2024), so they are what follows the URI's last '@',
    the host `describe()` shows."""
    userinfo = uri_userinfo(uri)
    if uri.startswith("mongodb://") and not _cut(userinfo[1] if userinfo else None):
        try:
            from pymongo.uri_parser import parse_uri

            return ",".join(f"{host}:{port}" for host, port in parse_uri(uri)["nodelist"])
        except Exception:  # noqa: BLE001 - invalid URIs are reported by MongoClient
            pass
    rest = userinfo[2] if userinfo else uri.split("://", 1)[-1]
    return rest.split("?", 1)[0].split("/", 1)[0] or "localhost:27017"


def _password(uri: str) -> str | None:
    userinfo = uri_userinfo(uri)
    return userinfo[1] if userinfo else None


def _cut(password: str | None) -> bool:
    """pymongo cuts the URI at the first '?', then '/', before it reads the userinfo: a password holding one
    comes back in pieces in its errors and warnings (`Bad database name "ss@db/x"`, `Unknown option:
    word@db`), which no replacement of the whole password catches."""
    return bool(password) and ("/" in password or "?" in password)


def _secret_forms(password: str | None) -> tuple[str, ...]:
    """What `_clean` replaces by ***, longest first: the password as written, quoted and unquoted, and, when
    pymongo cuts it (`_cut`), each piece of 4 or more characters between the characters its parser splits
    at (a host read as `user:2024` comes back as "hive:2024: Name or service not known")."""
    if not password:
        return ()
    forms = {password, quote(password, safe=""), unquote(password)}
    if _cut(password):
        forms.update(piece for piece in re.split(r"[/?@:=&,;#]", password) if len(piece) >= 4)
    return tuple(sorted(forms - {""}, key=len, reverse=True))


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def translate_filter(filter: Filter | None) -> dict[str, Any]:
    """The platform filter language as a MongoDB query with the same semantics (see `$exists` above)."""
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []  # per-field conditions that cannot share one operator document
    for field, cond in (filter or {}).items():
        if field in ("$and", "$or", "$nor"):
            out[field] = [translate_filter(sub) for sub in cond]
        elif isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond):
            ops: dict[str, Any] = {}
            for op, value in cond.items():
                if op == "$exists":
                    op, value = ("$ne", None) if value else ("$eq", None)
                if op in ops and ops[op] != value:
                    extra.append({field: {op: value}})
                else:
                    ops[op] = value
            out[field] = ops
        else:
            out[field] = cond
    if extra:
        out["$and"] = list(out.get("$and", [])) + extra
    return out


@contextlib.contextmanager
def _bson_encodable():
    """BSON integers are 64-bit and its text UTF-8: pymongo refuses a larger integer (OverflowError) or a lone
    surrogate (UnicodeEncodeError) while encoding. The document is unstorable, not the store broken (the SQLite
    store refuses it alike): the importer reports its line."""
    try:
        yield
    except OverflowError as exc:
        raise UnstorableDocument(f"holds an integer beyond 64 bits (BSON integers are 64-bit): {exc}") from None
    except UnicodeEncodeError:
        raise UnstorableDocument("holds text that is not UTF-8 (a lone surrogate, such as \\ud800)") from None


class MongoStore(DocumentStore):
    kind = "mongodb"

    def __init__(self, uri: str, database: str = "neural_hive", timeout_ms: int = 5000):
        self.uri = uri
        self.database = database
        self.timeout_ms = int(timeout_ms)
        self._secret = _password(uri)
        self._secret_forms = _secret_forms(self._secret)
        self._hosts = self._clean(_hosts(uri))
        cut = _cut(self._secret)
        try:
            with warnings.catch_warnings(record=True) as caught:  # "Unknown option: ...": the URI's text
                warnings.simplefilter("always")
                self.client: pymongo.MongoClient = pymongo.MongoClient(
                    uri,
                    tz_aware=True,
                    tzinfo=timezone.utc,
                    serverSelectionTimeoutMS=self.timeout_ms,
                    connectTimeoutMS=self.timeout_ms,
                    socketTimeoutMS=max(60_000, 10 * self.timeout_ms),
                    appname="hive-assets",
                    type_registry=TypeRegistry(fallback_encoder=_fallback_encoder),
                )
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            # a setting, not an outage: the CLI's one line and exit 2, as for every malformed variable
            why = (f"pymongo's reason is not shown, it may quote part of the password: {PERCENT_ENCODE}" if cut
                   else self._clean(str(exc)))
            raise ConfigError(f"MONGODB_URI is not a usable MongoDB URI ({redact_uri(uri)}): {why}") from None
        for warning in caught:
            text = f"pymongo warned about MONGODB_URI (not shown, it may quote part of the password): " \
                   f"{PERCENT_ENCODE}" if cut else self._clean(str(warning.message))
            warnings.warn(text, warning.category, stacklevel=2)
        self.db = self.client[database]
        self._doc_options = self.client.codec_options.with_options(unicode_decode_error_handler="surrogateescape")
        self._raw_options = self._doc_options.with_options(document_class=RawBSONDocument)
        self._indexed: set[str] = set()
        self._indexed_lookups: set[tuple[str, str]] = set()  # (collection, field) PostgreSQL answers by index
        self._pushdown: bool | None = None  # FerretDB's backend pushes top-level equality down (None: not asked)
        self._ferretdb: bool | None = None
        #: look up existing keys and insert new documents outright (None: only on FerretDB)
        self.insert_new_first: bool | None = None

    def describe(self) -> str:
        return redact_uri(self.uri)

    def close(self) -> None:
        self.client.close()

    # -- errors ---------------------------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        for form in self._secret_forms:
            text = text.replace(form, "***")
        return text if len(text) <= 600 else text[:600] + "..."

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        # pymongo appends its timeouts and the whole topology description (about 400 characters that repeat
        # the error): the first part says why
        why = re.sub(r" \(configured timeouts:[^)]*\)", "", str(exc).split(", Timeout: ")[0])
        # a server's refusal (FerretDB's "Unsupported authentication mechanism") comes with pymongo's ", full
        # error: {...}" repeating it, and the message's own newlines: one line, the reason once
        why = " ".join(why.split(", full error: ")[0].split())
        return StoreUnavailable(
            f"MongoDB at {self._hosts} (database {self.database!r}) is unavailable: "
            f"{type(exc).__name__}: {self._clean(why)}"
        )

    @contextlib.contextmanager
    def _guard(self):
        try:
            yield
        except ConnectionFailure as exc:  # ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout, ...
            raise self._unavailable(exc) from None
        except OperationFailure as exc:
            if _auth_failure(exc):
                raise self._unavailable(exc) from None
            raise

    # -- indexes --------------------------------------------------------------------------------------
    def _coll(self, collection: str):
        key_field(collection)  # unknown collection -> ValueError
        if collection not in self._indexed:
            self._ensure_indexes(collection)
            self._indexed.add(collection)
        return self.db[collection]

    def ensure_indexes(self, postgresql_url: str | None = None) -> list[str]:
        """Create every collection's indexes now (they are otherwise created on first use). With
        `postgresql_url` (FerretDB on PostgreSQL: the database FerretDB runs on), also the GIN lookup
        indexes there (`_ferretdb_postgresql`); returns their names (empty without it)."""
        for name in COLLECTIONS:
            self._coll(name)
        if postgresql_url is None:
            return []
        if not self.is_ferretdb:
            raise ValueError("lookup indexes in PostgreSQL are for FerretDB on PostgreSQL; this server is MongoDB")
        self.lookup_plan("specialist_opinions", "opinion_id")  # asks the backend's pushdown once
        if self._pushdown is False:  # FerretDB's SQLite backend: no query reaches PostgreSQL, no index helps
            raise ValueError("this FerretDB does not push filters down to PostgreSQL (its SQLite backend): "
                             "lookup indexes are for FerretDB on PostgreSQL (FERRETDB_HANDLER=postgresql)")
        from hive_assets.data.store._ferretdb_postgresql import ensure_lookup_indexes

        return ensure_lookup_indexes(postgresql_url, self.database)

    def _create(self, coll, models: list[IndexModel]) -> None:
        try:
            coll.create_indexes(models)
        except OperationFailure as exc:
            if _auth_failure(exc):
                raise
            # existing index with other options, duplicates in legacy data, ...: the store still works
            log.warning("could not create indexes %s on %s: %s",
                        [m.document["name"] for m in models], coll.name, self._clean(str(exc)))

    def _ensure_indexes(self, collection: str) -> None:
        meta = COLLECTIONS[collection]
        key = meta["key"]
        coll = self.db[collection]
        with self._guard():
            try:
                coll.create_index([(key, pymongo.ASCENDING)], unique=True, sparse=True)
            except OperationFailure as exc:
                if _auth_failure(exc):
                    raise
                if exc.code in _INDEX_CONFLICT_CODES:
                    log.warning("%s.%s: keeping the existing index (%s)", collection, key, self._clean(str(exc)))
                elif exc.code in _NOT_IMPLEMENTED_CODES or "sparse" in str(exc):
                    self._create(coll, [IndexModel([(key, pymongo.ASCENDING)], unique=True)])
                else:
                    log.warning("%s: no unique index on %s: %s", collection, key, self._clean(str(exc)))
            models = [IndexModel([(f, pymongo.ASCENDING)]) for f in meta["indexed"]]
            models += [IndexModel([(f, pymongo.ASCENDING) for f in fields]) for fields in COMPOUND_INDEXES.get(collection, ())]
            # only the missing ones: FerretDB 1.24 panics on a createIndexes that repeats several
            # existing indexes (seen re-opening a database: "slice bounds out of range [:3:2]")
            indexes = coll.index_information()
            existing = {tuple(tuple(k) for k in info["key"]) for info in indexes.values()}
            replaced = {tuple((f, pymongo.ASCENDING) for f in fields)
                        for fields in REPLACED_COMPOUND_INDEXES.get(collection, ())}
            for name, info in indexes.items():
                if tuple(tuple(k) for k in info["key"]) in replaced:  # a later index starts with its fields
                    try:
                        coll.drop_index(name)
                    except OperationFailure as exc:
                        if _auth_failure(exc):
                            raise
                        log.warning("%s: could not drop the replaced index %s: %s", collection, name,
                                    self._clean(str(exc)))
            models = [m for m in models if tuple(tuple(k) for k in m.document["key"].items()) not in existing]
            if models:
                self._create(coll, models)

    # -- interface ------------------------------------------------------------------------------------
    def upsert_many(self, collection: str, docs: Iterable[Mapping[str, Any]]) -> int:
        key = key_field(collection)
        coll = self._coll(collection)
        written = 0
        batch: list[dict[str, Any]] = []
        for doc in docs:
            refuse_unstorable_names(doc)  # before anything of the batch is written, as on SQLite
            batch.append({k: v for k, v in doc.items() if k != "_id"})
            if len(batch) >= BATCH_SIZE:
                written += self._write_batch(coll, key, batch)
                batch = []
        if batch:
            written += self._write_batch(coll, key, batch)
        return written

    def upsert_keyless(self, collection: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """The identity is the document's `_id` (reads never return it; FerretDB pushes `_id` filters down)."""
        key_field(collection)
        coll = self._coll(collection)
        items = list(items)
        for _, doc in items:
            refuse_unstorable_names(doc)
        ops = [ReplaceOne({"_id": str(identity)}, {k: v for k, v in doc.items() if k != "_id"}, upsert=True)
               for identity, doc in items]
        chunk = FERRETDB_CHUNK if self.is_ferretdb else BATCH_SIZE
        for i in range(0, len(ops), chunk):
            with self._guard(), _bson_encodable():
                coll.bulk_write(ops[i : i + chunk], ordered=True)
        return len(ops)

    def insert_keyless_new(self, collection: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Unordered inserts under `_id` = the identity; a duplicate key (the identity is stored) is skipped,
        any other write error raised."""
        key_field(collection)
        coll = self._coll(collection)
        docs = []
        for identity, doc in items:
            refuse_unstorable_names(doc)
            docs.append({**{k: v for k, v in doc.items() if k != "_id"}, "_id": str(identity)})
        for i in range(0, len(docs), BATCH_SIZE):
            try:
                with self._guard(), _bson_encodable():
                    coll.insert_many(docs[i : i + BATCH_SIZE], ordered=False)
            except BulkWriteError as exc:
                others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
                if others or exc.details.get("writeConcernErrors"):
                    raise
        return len(docs)

    def _write_batch(self, coll, key: str, batch: list[dict[str, Any]]) -> int:
        """One batch: key-less documents are inserted, keyed ones replaced-or-inserted by key.

        On FerretDB the keys already stored are looked up first (one query) and new documents are
        inserted outright: there an upsert costs a scan of the collection (only `_id` filters are pushed
        down to SQLite), an insert does not. A concurrent writer inserting the same key in between makes
        the insert fail with a duplicate key; that document is then upserted by key instead.
        """
        existing: set[Any] | None = None
        if self.insert_new_first is True or (self.insert_new_first is None and self.is_ferretdb):
            keys = list({d[key] for d in batch if d.get(key) is not None and _hashable(d[key])})
            existing = set()
            with self._guard(), _bson_encodable():  # a key the encoder refuses fails here, before any write
                for i in range(0, len(keys), BATCH_SIZE):
                    cursor = coll.find({key: {"$in": keys[i : i + BATCH_SIZE]}}, {key: 1, "_id": 0}, batch_size=BATCH_SIZE)
                    existing.update(d.get(key) for d in cursor if _hashable(d.get(key)))
        plan: list[tuple[str, dict[str, Any]]] = []
        for body in batch:
            k = body.get(key)
            if k is None or (existing is not None and _hashable(k) and k not in existing):
                plan.append(("insert", body))
                if existing is not None and k is not None:
                    existing.add(k)  # the same key again in this batch: replace that one
            else:
                plan.append(("replace", body))
        self._bulk(coll, key, plan)
        return len(batch)

    def _bulk(self, coll, key: str, plan: list[tuple[str, dict[str, Any]]]) -> None:
        # FerretDB 1.x deadlocks on an `update` command with more statements that match documents than its
        # pool has connections (FERRETDB_CHUNK): keep its commands small.
        chunk = FERRETDB_CHUNK if self.is_ferretdb else BATCH_SIZE
        i = 0
        while i < len(plan):
            part = plan[i : i + chunk]
            ops = [
                InsertOne(dict(body)) if kind == "insert" else ReplaceOne({key: body[key]}, body, upsert=True)
                for kind, body in part
            ]
            try:
                with self._guard(), _bson_encodable():
                    coll.bulk_write(ops, ordered=True)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or []
                if not errors:
                    raise
                j = errors[0].get("index", 0)
                kind, body = part[j]
                if errors[0].get("code") == 11000 and kind == "insert" and body.get(key) is not None:
                    # ordered: everything before j was written; upsert j by key, then go on after it
                    plan[i + j] = ("replace", body)
                    i += j
                    continue
                raise
            i += len(part)

    def find(
        self,
        collection: str,
        filter: Filter | None = None,
        projection: Sequence[str] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        *,
        comment: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        return self._find(collection, filter, projection, sort, limit, comment=comment)

    def _find(self, collection: str, filter: Filter | None, projection: Sequence[str] | None = None,
              sort: Sort | None = None, limit: int | None = None, also: tuple[str, ...] = (),
              comment: str | None = None) -> Iterator[dict[str, Any]]:
        """`find`, with the top-level fields `also` kept on an unreadable document's placeholder."""
        # validate and connect eagerly (errors at call time), iterate lazily
        with self._guard():
            coll = self._coll(collection)
        if limit is not None and int(limit) == 0:
            return iter(())
        proj: dict[str, int] = {"_id": 0}
        if projection is not None:
            proj.update({f: 1 for f in projection if f != "_id"})
        # raw documents, decoded one by one (`_decode`): one undecodable document must not fail its batch
        cursor = coll.with_options(codec_options=self._raw_options).find(
            translate_filter(filter), proj, batch_size=BATCH_SIZE, comment=comment)
        if sort:
            spec = [(f, pymongo.DESCENDING if d < 0 else pymongo.ASCENDING) for f, d in sort]
            if not any(f == "_id" for f, _ in spec):  # ties in insertion order, the newest first in a newest-first sort
                spec.append(("_id", spec[0][1]))
            cursor = cursor.sort(spec)
        if limit is not None and int(limit) > 0:
            cursor = cursor.limit(int(limit))
        return self._iterate(cursor, also)

    def find_by_keys(
        self, collection: str, field: str, keys: Iterable[str], projection: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        wanted = unique_ids(keys)
        if len(wanted) <= KEY_CHUNK or not self.is_ferretdb:
            return super().find_by_keys(collection, field, wanted, projection)
        # FerretDB 1.x pushes only top-level equality down to its backend and evaluates `$in` on every
        # document, so each chunk would be a full scan: one scan, filtered here, reads it once instead.
        return self._scan_for_keys(collection, field, set(wanted), projection)

    def find_by_keys_where(
        self, collection: str, field: str, keys: Iterable[str], where: Filter,
        projection: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        if field in where:
            raise ValueError(f"find_by_keys_where: {field!r} is both the key field and in `where`")
        wanted = unique_ids(keys)
        if not self.is_ferretdb:
            return super().find_by_keys_where(collection, field, wanted, where, projection)
        plan = self.lookup_plan(collection, field)
        if plan == INDEXED:
            # PostgreSQL answers each from the GIN index. The comment makes the SQL text FerretDB
            # prepares differ from the same lookup's before the index existed: FerretDB caches prepared
            # statements per PostgreSQL connection, and one that PostgreSQL switched to a generic plan
            # (a sequential scan: the field name is a parameter) keeps it after the index is created
            return self._point_lookups(collection, field, wanted, where, projection, comment=INDEXED_LOOKUP)
        if plan == PUSHED_DOWN and len(wanted) <= FERRETDB_POINT_LOOKUPS:
            # FerretDB 1.x converts every document of a scan to BSON; a top-level equality is pushed
            # down to PostgreSQL instead. Measured (v1.24.2, `simulate_scale` documents, load ~4): a
            # converted scan ~3 ms per plan (ledger) document and ~0.2 ms per opinion, a pushed-down
            # equality 1-14 us per row of the table (~200x less): for a few ids (production's labels),
            # one equality query per id is far cheaper. Not on SQLite: there each equality query is a
            # whole converted scan of its own
            return self._point_lookups(collection, field, wanted, where, projection)
        if len(wanted) <= KEY_CHUNK:
            return super().find_by_keys_where(collection, field, wanted, where, projection)
        # many ids: `where` (top-level equality pushed down) narrows one scan, the ids are matched here
        # as in `find_by_keys` (each `$in` chunk would be a scan of its own)
        return self._scan_where_for_keys(collection, field, set(wanted), where, projection)

    def lookup_plan(self, collection: str, field: str) -> str:
        """On FerretDB: how its backend answers a top-level `{field: <id>}`, asked with `explain`: INDEXED
        (PostgreSQL reads it from an index: `ensure_lookup_indexes`), PUSHED_DOWN (PostgreSQL scans the
        table itself) or SCAN (not pushed down: FerretDB's SQLite backend, or a dotted field). The
        backend's pushdown is asked once per store; an index scan is remembered for the store's life, its
        absence asked again next time (an index may be created meanwhile; the planner also prefers a
        scan while the table is small). Always SCAN for MongoDB (its `$in` reads use the index anyway)."""
        if not self.is_ferretdb or "." in field or self._pushdown is False:  # top-level fields only
            return SCAN
        if (collection, field) in self._indexed_lookups:
            return INDEXED
        try:
            with self._guard():
                plan = self.db.command({"explain": {"find": self._coll(collection).name,
                                                    "filter": {field: "hive-explain-probe"}},
                                        "verbosity": "queryPlanner"})
        except OperationFailure as exc:
            if _auth_failure(exc):
                raise
            return SCAN
        self._pushdown = bool(plan.get("filterPushdown"))
        if not self._pushdown:
            return SCAN
        if "Index Scan" in repr(plan.get("queryPlanner")):  # also "Bitmap Index Scan", "Index Only Scan"
            self._indexed_lookups.add((collection, field))
            return INDEXED
        return PUSHED_DOWN

    def _point_lookups(self, collection: str, field: str, wanted: list[str], where: Filter,
                       projection: Sequence[str] | None, comment: str | None = None) -> Iterator[dict[str, Any]]:
        for key in wanted:
            yield from self.find(collection, {**where, field: key}, projection=projection, comment=comment)

    def _scan_where_for_keys(self, collection: str, field: str, wanted: set[str], where: Filter,
                             projection: Sequence[str] | None) -> Iterator[dict[str, Any]]:
        fields = None if projection is None else [*projection, field]
        # an unreadable document keeps its `field` (`_decode`): it matches, and the caller quarantines it
        for doc in self._find(collection, where or None, projection=fields, also=(field,)):
            value = doc.get(field)
            # `$in` semantics: the value itself, or any element of an array value
            if (value in wanted if isinstance(value, str) else
                    isinstance(value, list) and any(isinstance(v, str) and v in wanted for v in value)):
                if projection is not None and field not in projection:
                    doc.pop(field, None)
                yield doc

    def _scan_for_keys(self, collection: str, field: str, wanted: set[str],
                       projection: Sequence[str] | None) -> Iterator[dict[str, Any]]:
        return self._scan_where_for_keys(collection, field, wanted, {}, projection)

    def _iterate(self, cursor, also: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
        key = key_field(cursor.collection.name)
        try:
            with self._guard():
                for raw in cursor:
                    doc = self._decode(raw, key, also)
                    doc.pop("_id", None)
                    yield doc
        finally:
            cursor.close()

    def _decode(self, raw: RawBSONDocument, key: str, also: tuple[str, ...] = ()) -> dict[str, Any]:
        """One stored document. Text that is not UTF-8 decodes with `surrogateescape` (validation then
        quarantines it as `invalid_string`); any other failure (malformed BSON, nesting beyond the
        decoder) gives the UNREADABLE placeholder with the document's key, and the top-level text fields
        `also` (a join's field: a scan matches the placeholder by it), when its top level decodes."""
        try:
            return bson.decode(raw.raw, self._doc_options)
        except RecursionError:
            reason, detail = TOO_DEEP, f"nested deeper than the BSON decoder allows (> {MAX_DEPTH})"
        except Exception as exc:  # noqa: BLE001 - bson raises InvalidBSON, ValueError, OverflowError, ...
            reason, detail = UNREADABLE_DOCUMENT, f"stored BSON cannot be decoded: {type(exc).__name__}: {exc}"
        try:  # the top level only, inflated once (lazily, by the first `get`): nested documents stay raw
            top = bson.decode(raw.raw, self._raw_options)
            values = [top.get(field) for field in (key, *also)]
        except Exception:  # noqa: BLE001 - a courtesy; the placeholder stands without them
            values = [None] * (1 + len(also))
        doc = unreadable(reason, detail, key, values[0])
        for field, value in zip(also, values[1:]):
            if isinstance(value, str):
                doc[field] = safe_text(value)
            elif isinstance(value, list):  # `$in` matches an element of an array value
                doc[field] = [safe_text(v) for v in value if isinstance(v, str)]
        return doc

    def distinct_strings(self, collection: str, field: str) -> list[str]:
        # the server's `distinct` (MongoDB walks the field's index; FerretDB 1.x scans, as for any filter)
        with self._guard():
            values = self._coll(collection).distinct(field)
        return sorted({v for v in values if isinstance(v, str)})

    def count(self, collection: str, filter: Filter | None = None) -> int:
        with self._guard():
            return self._coll(collection).count_documents(translate_filter(filter))

    def update_one(self, collection: str, filter: Filter, set_fields: Mapping[str, Any]) -> int:
        if not set_fields:
            return 1 if self.count(collection, filter) else 0
        refuse_unstorable_names({"v": list(set_fields.values())})  # the values' names (the keys are paths)
        with self._guard():
            result = self._coll(collection).update_one(translate_filter(filter), {"$set": dict(set_fields)})
        return 1 if result.matched_count else 0

    def delete_many(self, collection: str, filter: Filter) -> int:
        with self._guard():
            return self._coll(collection).delete_many(translate_filter(filter)).deleted_count

    def insert_new(self, collection: str, doc: Mapping[str, Any]) -> bool:
        key = key_field(collection)
        if doc.get(key) is None:
            raise ValueError(f"insert_new needs the {collection} key {key!r}")
        refuse_unstorable_names(doc)
        try:
            with self._guard():
                self._coll(collection).insert_one({k: v for k, v in doc.items() if k != "_id"})
        except DuplicateKeyError:  # the unique key index said no: another writer was first
            return False
        return True

    @property
    def is_ferretdb(self) -> bool:
        """Whether the server is FerretDB (it reports `ferretdbVersion` in buildInfo)."""
        if self._ferretdb is None:
            with self._guard():
                info = self.client.admin.command("buildInfo")
            self._ferretdb = "ferretdbVersion" in info
        return self._ferretdb

    def aggregate(self, collection: str, pipeline: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        stages = [dict(s) for s in pipeline]
        if not self._server_side(stages, ferretdb=self.is_ferretdb):
            return super().aggregate(collection, stages)
        server = [{"$match": translate_filter(s["$match"])} if "$match" in s else s for s in stages]
        try:
            with self._guard():
                rows = list(self._coll(collection).aggregate(server, batchSize=BATCH_SIZE))
        except OperationFailure as exc:
            if exc.code in _NOT_IMPLEMENTED_CODES:
                log.info("aggregate not served by %s (%s); evaluating client-side", self._hosts, exc.code)
                return super().aggregate(collection, stages)
            raise
        if not any("$group" in s or "$count" in s for s in stages):
            for row in rows:
                row.pop("_id", None)
        if not rows and stages and "$count" in stages[-1]:
            rows = [{stages[-1]["$count"]: 0}]
        return rows

    @staticmethod
    def _server_side(stages: list[dict[str, Any]], ferretdb: bool = False) -> bool:
        for stage in stages:
            if len(stage) != 1:
                return False
            (op, arg), = stage.items()
            if op not in _SERVER_STAGES:
                return False
            if op == "$group":
                accumulators = [spec for name, spec in arg.items() if name != "_id"]
                for spec in accumulators:
                    if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in _SERVER_ACCUMULATORS:
                        return False
                if ferretdb and (len(accumulators) > 1 or any(next(iter(spec)) != "$sum" for spec in accumulators)):
                    return False
        return True

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers."""
        with self._guard():
            self.client.admin.command("ping")

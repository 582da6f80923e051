"""Embedded document store: the SPEC's collections as JSON documents in one SQLite file.

One table per collection: `doc` holds the JSON, `doc_key` the collection's unique id, and each field
the platform queries by is a generated column with an index, so filters on them use the index.
WAL mode and a busy timeout make it safe for a simulator to write while a sensor reads.
Rows are fetched as bytes and decoded one by one (`_salvage` for what orjson refuses), so one row
never fails a read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from hive_assets.data._documents import (
    INVALID_STRING, MAX_DEPTH, NOT_A_DOCUMENT, TOO_DEEP, UNREADABLE_DOCUMENT, UNREADABLE_FIELD, unreadable,
)
from hive_assets.data.store.base import (
    COLLECTIONS,
    NON_FINITE_TAG,
    COMPOUND_INDEXES,
    REPLACED_COMPOUND_INDEXES,
    DocumentStore,
    Filter,
    Sort,
    canonical_time,
    dumps,
    KEY_CHUNK,
    key_field,
    refuse_unstorable_names,
    stored_key,
    unique_ids,
    unwrap_non_finite,
)


def _salvage(raw: bytes, key_field_name: str, doc_key: bytes | None) -> dict[str, Any]:
    """A row orjson refused: the standard library's decoder, which accepts lone surrogate escapes
    (validation then quarantines the document as `invalid_string`), else the UNREADABLE placeholder
    with the reason. One document never fails the read."""
    key = doc_key.decode("utf-8", "backslashreplace") if doc_key is not None else None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return unreadable(INVALID_STRING, f"stored text is not UTF-8 (byte {exc.start})", key_field_name, key)
    except RecursionError:
        return unreadable(TOO_DEEP, f"nested deeper than the decoder allows (> {MAX_DEPTH})", key_field_name, key)
    except ValueError as exc:
        return unreadable(UNREADABLE_DOCUMENT, f"stored JSON cannot be decoded: {exc}", key_field_name, key)
    if not isinstance(doc, dict):
        return unreadable(NOT_A_DOCUMENT, f"stored JSON is a {type(doc).__name__}", key_field_name, key)
    return doc


_NON_FINITE_BYTES = NON_FINITE_TAG.encode()


def _decode_row(raw: bytes, key_field_name: str, doc_key: bytes | None,
                projection: Sequence[str] | None) -> dict[str, Any]:
    """One stored row -> its document (orjson on the hot path: ~1.5x faster than json); what orjson
    refuses goes to `_salvage`, so one row never fails a read."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = _salvage(raw, key_field_name, doc_key)
    if _NON_FINITE_BYTES in raw:  # a substring test: the walk runs only for documents that need it
        doc = unwrap_non_finite(doc)
    if projection is not None:
        doc = {f: doc[f] for f in (*projection, UNREADABLE_FIELD) if f in doc}
    return doc


def _storable(doc: Mapping[str, Any]) -> str:
    """The document's JSON text, refused as a MongoDB store would refuse it (field names)."""
    text = dumps(doc)
    refuse_unstorable_names(doc, text)
    return text


def _column(field: str) -> str:
    return "f_" + field.replace(".", "__")


def _add_column(conn: sqlite3.Connection, table: str, column_sql: str) -> None:
    """ALTER TABLE ... ADD COLUMN, where another process opening the same store may have added it since its
    columns were read (collections starting together on a new home): SQLite has no ADD COLUMN IF NOT EXISTS, and
    each statement commits on its own, so the schema is made without holding the write lock at every open."""
    try:
        conn.execute(f'ALTER TABLE "{table}" ADD COLUMN {column_sql}')
    except sqlite3.OperationalError as exc:
        if not str(exc).startswith("duplicate column name"):
            raise


class SQLiteStore(DocumentStore):
    kind = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._ensure_schema()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    # -- connection -----------------------------------------------------------------------------
    @property
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _ensure_schema(self) -> None:
        with self._conn as conn:
            for name, meta in COLLECTIONS.items():
                cols = "".join(
                    f", {_column(f)} GENERATED ALWAYS AS (json_extract(doc, '$.{f}')) VIRTUAL"
                    for f in meta["indexed"]
                )
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{name}" (rid INTEGER PRIMARY KEY, doc_key TEXT, doc TEXT NOT NULL{cols})'
                )
                # a store created before a field was indexed gains its generated column (VIRTUAL: no rewrite)
                present = {row[1] for row in conn.execute(f'PRAGMA table_xinfo("{name}")')}
                for f in meta["indexed"]:
                    if _column(f) not in present:
                        _add_column(conn, name, f"{_column(f)} GENERATED ALWAYS AS (json_extract(doc, '$.{f}')) "
                                                "VIRTUAL")
                conn.execute(
                    f'CREATE UNIQUE INDEX IF NOT EXISTS "{name}__key" ON "{name}"(doc_key) WHERE doc_key IS NOT NULL'
                )
                if "import_id" not in present:  # a key-less document's identity (upsert_keyless); no rewrite
                    _add_column(conn, name, "import_id TEXT")
                conn.execute(f'CREATE UNIQUE INDEX IF NOT EXISTS "{name}__import_id" ON "{name}"(import_id) '
                             "WHERE import_id IS NOT NULL")
                for f in meta["indexed"]:
                    conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}__{f}" ON "{name}"({_column(f)})')
                for fields in REPLACED_COMPOUND_INDEXES.get(name, ()):
                    conn.execute(f'DROP INDEX IF EXISTS "{name}__{"_".join(fields)}"')
                for fields in COMPOUND_INDEXES.get(name, ()):
                    cols_sql = ", ".join(_column(f) for f in fields)
                    conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}__{"_".join(fields)}" ON "{name}"({cols_sql})')

    # -- query translation --------------------------------------------------------------------------
    def _field_sql(self, collection: str, field: str) -> str:
        if field in COLLECTIONS[collection]["indexed"]:
            return _column(field)
        if field == key_field(collection):
            return "doc_key"
        path = "$." + field
        return f"json_extract(doc, '{path}')"

    @staticmethod
    def _param(value: Any) -> Any:
        if isinstance(value, datetime):
            return canonical_time(value)
        if isinstance(value, bool):
            return int(value)
        return value

    def _where(self, collection: str, filter: Filter | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for field, cond in (filter or {}).items():
            if field in ("$and", "$or", "$nor"):
                parts = [self._where(collection, sub) for sub in cond]
                joiner = " AND " if field == "$and" else " OR "
                combined = "(" + joiner.join(f"({sql})" for sql, _ in parts) + ")"
                # $nor: not matched, where a comparison with a missing field is NULL (not matched either)
                clauses.append(f"NOT COALESCE({combined}, 0)" if field == "$nor" else combined)
                for _, p in parts:
                    params.extend(p)
                continue
            expr = self._field_sql(collection, field)
            # the key column holds `stored_key` forms: a value that is not text is compared in that form
            param = stored_key if expr == "doc_key" else self._param
            ops = cond if isinstance(cond, Mapping) and cond and all(k.startswith("$") for k in cond) else {"$eq": cond}
            for op, value in ops.items():
                if op in ("$eq", "$ne") and value is None:
                    clauses.append(f"{expr} IS {'NOT ' if op == '$ne' else ''}NULL")
                elif op == "$eq":
                    clauses.append(f"{expr} = ?")
                    params.append(param(value))
                elif op == "$ne":
                    clauses.append(f"({expr} IS NULL OR {expr} != ?)")
                    params.append(param(value))
                elif op in ("$in", "$nin"):
                    values = [param(v) for v in value]
                    marks = ",".join("?" * len(values)) or "NULL"
                    neg = "NOT " if op == "$nin" else ""
                    clauses.append(f"{expr} {neg}IN ({marks})" if op == "$in" else f"({expr} IS NULL OR {expr} NOT IN ({marks}))")
                    params.extend(values)
                elif op == "$exists":
                    clauses.append(f"{expr} IS {'NOT ' if value else ''}NULL")
                else:
                    sql_op = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}.get(op)
                    if sql_op is None:
                        raise ValueError(f"unsupported filter operator {op}")
                    clauses.append(f"{expr} {sql_op} ?")
                    params.append(param(value))
        return (" AND ".join(clauses) or "1"), params

    # -- interface ------------------------------------------------------------------------------------
    def upsert_many(self, collection: str, docs: Iterable[Mapping[str, Any]]) -> int:
        key = key_field(collection)
        rows = []
        for doc in docs:
            k = doc.get(key) if isinstance(doc, Mapping) else None
            rows.append((None if k is None else stored_key(k), _storable(doc)))
        return self._write_rows(rows, f'INSERT INTO "{collection}"(doc_key, doc) VALUES (?, ?) '
                                      "ON CONFLICT(doc_key) WHERE doc_key IS NOT NULL DO UPDATE SET doc = excluded.doc")

    def _write_rows(self, rows: list[tuple[str | None, str]], sql: str) -> int:
        """`sql` for every row in one transaction; how many rows."""
        if not rows:
            return 0
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # not after a COMMIT that went through (Ctrl-C landed just after it)
                conn.execute("ROLLBACK")
            raise
        return len(rows)

    def upsert_keyless(self, collection: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        key_field(collection)
        rows = [(str(identity), _storable(doc)) for identity, doc in items]
        return self._write_rows(rows, f'INSERT INTO "{collection}"(doc_key, doc, import_id) VALUES (NULL, ?2, ?1) '
                                      "ON CONFLICT(import_id) WHERE import_id IS NOT NULL DO UPDATE SET doc = excluded.doc")

    def insert_keyless_new(self, collection: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        key_field(collection)
        rows = [(str(identity), _storable(doc)) for identity, doc in items]
        return self._write_rows(rows, f'INSERT INTO "{collection}"(doc_key, doc, import_id) '
                                      "VALUES (NULL, ?2, ?1) ON CONFLICT(import_id) WHERE import_id IS NOT NULL "
                                      "DO NOTHING")

    def insert_new(self, collection: str, doc: Mapping[str, Any]) -> bool:
        key = doc.get(key_field(collection))
        if key is None:
            raise ValueError(f"insert_new needs the {collection} key {key_field(collection)!r}")
        cursor = self._conn.execute(
            f'INSERT INTO "{collection}"(doc_key, doc) VALUES (?, ?) ON CONFLICT(doc_key) WHERE doc_key IS NOT NULL '
            "DO NOTHING", (stored_key(key), _storable(doc)))
        return cursor.rowcount == 1

    def find(
        self,
        collection: str,
        filter: Filter | None = None,
        projection: Sequence[str] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        key_field(collection)
        where, params = self._where(collection, filter)
        order = ", ".join(
            f"{self._field_sql(collection, f)} {'DESC' if d < 0 else 'ASC'}" for f, d in (sort or ())
        )
        # bytes, not text: a row whose text is not UTF-8 must not fail the fetch of its whole batch
        # ties in insertion order, in the first sort key's direction: "the latest" of documents stamped at one
        # instant (a pinned clock) is the one written last, not the first
        tie = "rid DESC" if sort and sort[0][1] < 0 else "rid"
        sql = (f'SELECT CAST(doc_key AS BLOB), CAST(doc AS BLOB) FROM "{collection}" WHERE {where} '
               f'ORDER BY {order + ", " if order else ""}{tie}')
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cursor = self._conn.execute(sql, params)
        key = key_field(collection)
        while batch := cursor.fetchmany(5000):
            for doc_key, raw in batch:
                yield _decode_row(raw, key, doc_key, projection)

    def find_by_keys_where(
        self, collection: str, field: str, keys: Iterable[str], where: Filter,
        projection: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        if field != key_field(collection):
            yield from super().find_by_keys_where(collection, field, keys, where, projection)
            return
        if field in where:
            raise ValueError(f"find_by_keys_where: {field!r} is both the key field and in `where`")
        wanted = unique_ids(keys)
        key = key_field(collection)
        for i in range(0, len(wanted), KEY_CHUNK):
            sql, params = self._where(collection, {**where, field: {"$in": wanted[i : i + KEY_CHUNK]}})
            # the planner would pick the index of `where` (e.g. the whole window of evaluated_at) over the
            # unique key index: name the key index, so each chunk reads its ids and nothing else.
            # Bytes, not text, as in `find`: one undecodable row becomes a placeholder, never an exception.
            cursor = self._conn.execute(
                f'SELECT CAST(doc_key AS BLOB), CAST(doc AS BLOB) FROM "{collection}" '
                f'INDEXED BY "{collection}__key" WHERE {sql} ORDER BY rid', params)
            for doc_key, raw in cursor.fetchall():
                yield _decode_row(raw, key, doc_key, projection)

    def distinct_strings(self, collection: str, field: str) -> list[str]:
        if field not in COLLECTIONS[collection]["indexed"]:
            return super().distinct_strings(collection, field)
        column = _column(field)
        # a loose index scan: one index seek per distinct value (text sorts after numbers and NULL)
        rows = self._conn.execute(
            f'WITH RECURSIVE walk(v) AS (SELECT (SELECT MIN({column}) FROM "{collection}" WHERE {column} >= \'\') '
            f'UNION ALL SELECT (SELECT MIN({column}) FROM "{collection}" WHERE {column} > walk.v) FROM walk '
            f"WHERE walk.v IS NOT NULL) SELECT v FROM walk WHERE v IS NOT NULL").fetchall()
        # an object or an array in the field reads as its JSON text: such a value is text only if a document
        # holds it as text (one indexed probe, rare)
        return [v for (v,) in rows if isinstance(v, str) and (v[:1] not in "{[" or self._conn.execute(
            f'SELECT 1 FROM "{collection}" WHERE {column} = ? AND json_type(doc, \'$.{field}\') = \'text\' '
            "LIMIT 1", (v,)).fetchone())]

    def count(self, collection: str, filter: Filter | None = None) -> int:
        key_field(collection)
        where, params = self._where(collection, filter)
        return self._conn.execute(f'SELECT COUNT(*) FROM "{collection}" WHERE {where}', params).fetchone()[0]

    def delete_many(self, collection: str, filter: Filter) -> int:
        where, params = self._where(collection, filter)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = conn.execute(f'DELETE FROM "{collection}" WHERE {where}', params).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # not after a COMMIT that went through (Ctrl-C landed just after it)
                conn.execute("ROLLBACK")
            raise
        return deleted

    def update_one(self, collection: str, filter: Filter, set_fields: Mapping[str, Any]) -> int:
        refuse_unstorable_names({"v": list(set_fields.values())})  # the values' names (the keys are paths)
        where, params = self._where(collection, filter)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(f'SELECT rid, doc FROM "{collection}" WHERE {where} ORDER BY rid LIMIT 1', params).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return 0
            doc = json.loads(row[1])
            for dotted, value in set_fields.items():
                target = doc
                *parents, leaf = dotted.split(".")
                for part in parents:
                    target = target.setdefault(part, {})
                target[leaf] = json.loads(dumps({"v": value}))["v"]
            conn.execute(f'UPDATE "{collection}" SET doc = ? WHERE rid = ?', (dumps(doc), row[0]))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # not after a COMMIT that went through (Ctrl-C landed just after it)
                conn.execute("ROLLBACK")
            raise
        return 1

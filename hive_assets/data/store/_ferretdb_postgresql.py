"""Lookup indexes for FerretDB 1.x on PostgreSQL, created in FerretDB's own PostgreSQL schema.

FerretDB 1.x pushes a top-level equality `{field: "x"}` down to PostgreSQL as
`_jsonb -> 'field' @> '"x"'`, and the indexes its `createIndexes` makes are btree expression indexes on
`(_jsonb -> 'field')`. A btree serves `=`, `<`, ... but not `@>`, so every pushed-down lookup is a
sequential scan of the collection's table, indexes or not (checked with EXPLAIN on v1.24.2). A GIN
index on the same expression (`jsonb_path_ops`, which serves exactly `@>`) turns it into an index scan:
with these, a join by id costs one short query per id whatever the size of the collection.

FerretDB does not know of these indexes (they are not listed by `listIndexes` and cost nothing to it);
PostgreSQL maintains them on every write and drops them with the collection's table. Creating them
needs a PostgreSQL role that owns FerretDB's tables (FerretDB's own), so it is an operator's step
(`hive store index` with FERRETDB_POSTGRESQL_URL, or `ensure_lookup_indexes`), idempotent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from hive_assets.data.store.base import COLLECTIONS, StoreUnavailable

# FerretDB's per-database (PostgreSQL schema) table mapping collection names to table names
METADATA_TABLE = "_ferretdb_database_metadata"

#: top-level fields looked up by equality, one id at a time (FerretDB pushes only those down): every
#: collection's key, and the join fields of collection (feedback by opinion, opinions by plan)
LOOKUP_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(dict.fromkeys((meta["key"], *{"specialist_feedback": ("opinion_id",),
                                               "specialist_opinions": ("plan_id",),
                                               # the review queue's label selections and requested opinions
                                               "review_requests": ("opinion_id",),
                                               # collection's intents, by id
                                               "intentions_audit_mirror": ("id",)}.get(name, ()))))
    for name, meta in COLLECTIONS.items()
}


def index_name(table: str, field: str) -> str:
    """A stable name within PostgreSQL's 63 bytes: the table, a hash of the field, a suffix of ours."""
    digest = hashlib.sha256(field.encode()).hexdigest()[:8]
    return f"{table[:44]}_{digest}_hive_gin"


def lookup_index_statements(schema: str, tables: Mapping[str, str]) -> list[tuple[str, str]]:
    """(index name, CREATE INDEX IF NOT EXISTS statement) for every lookup field of the collections
    present in `tables` (collection -> FerretDB table name), in the order of LOOKUP_FIELDS."""
    from psycopg2 import sql

    out = []
    for collection, fields in LOOKUP_FIELDS.items():
        table = tables.get(collection)
        if table is None:
            continue
        for field in fields:
            name = index_name(table, field)
            statement = sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} USING gin ((_jsonb -> {}) jsonb_path_ops)").format(
                sql.Identifier(name), sql.Identifier(schema), sql.Identifier(table), sql.Literal(field))
            out.append((name, statement))
    return out


def ferretdb_tables(cursor, schema: str) -> dict[str, str]:
    """collection -> table name of FerretDB's database `schema` (empty if FerretDB never wrote it)."""
    from psycopg2 import sql

    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".{METADATA_TABLE}',))
    if not cursor.fetchone()[0]:
        return {}
    cursor.execute(sql.SQL("SELECT _jsonb ->> '_id', _jsonb ->> 'table' FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(METADATA_TABLE)))
    return {collection: table for collection, table in cursor.fetchall() if collection and table}


def _dsn(postgresql_url: str) -> dict[str, str]:
    """libpq's reading of `postgresql_url` (a URL or `key=value` words), {} when it cannot be read."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    try:
        return parse_dsn(postgresql_url)
    except psycopg2.Error:
        return {}


def _cut(postgresql_url: str, dsn: Mapping[str, str]) -> bool:
    """libpq read another password than the URL's userinfo holds (to its last '@', `uri_userinfo`), or none
    (`dsn` empty: it could not read the URL): one with an unescaped '/', '?' or '@', whose pieces libpq took
    for the host, port or database, and quotes in its errors (`invalid integer value "Xy9Q" for connection
    option "port"`)."""
    from urllib.parse import unquote

    from hive_assets.config import uri_userinfo

    userinfo = uri_userinfo(postgresql_url)
    return userinfo is not None and userinfo[1] is not None and unquote(userinfo[1]) != dsn.get("password")


def postgresql_where(postgresql_url: str) -> str:
    """`host:port/database` of a libpq connection string in either form, never its text: a password can be
    in the URL's userinfo, a `?password=` parameter or a `password='...'` word. When libpq cuts the
    userinfo's password (`_cut`), what follows the URL's last '@' instead (libpq's host is a piece of it)."""
    dsn = _dsn(postgresql_url)
    if _cut(postgresql_url, dsn):
        return postgresql_url.rpartition("@")[2].split("?", 1)[0]
    if not dsn:
        return "FERRETDB_POSTGRESQL_URL (not shown: it is not a connection string libpq reads)"
    return f"{dsn.get('host', 'localhost')}:{dsn.get('port', '5432')}/{dsn.get('dbname', dsn.get('user', ''))}"


def ensure_lookup_indexes(postgresql_url: str, database: str) -> list[str]:
    """Create the missing GIN lookup indexes of FerretDB database `database` (a PostgreSQL schema) in
    the PostgreSQL that FerretDB runs on; returns the names of the indexes that exist afterwards.
    Collections FerretDB has not created yet are skipped (run it again after they are). Idempotent."""
    import psycopg2

    try:
        conn = psycopg2.connect(postgresql_url, connect_timeout=10)
    except psycopg2.Error as exc:  # the message names host and port; the password is cut out anyway
        dsn = _dsn(postgresql_url)
        secret = dsn.get("password")
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if not dsn or _cut(postgresql_url, dsn):  # it quotes what it could not read: a piece of the password
            from hive_assets.config import UNESCAPED_USERINFO

            text = "libpq's reason is not shown, it may quote part of the password" + (
                f": {UNESCAPED_USERINFO}" if "://" in postgresql_url else "")
        elif secret:
            text = text.replace(secret, "***")
        raise StoreUnavailable(f"PostgreSQL at {postgresql_where(postgresql_url)} is unavailable: "
                               f"{type(exc).__name__}: {text}") from None
    try:
        with conn, conn.cursor() as cursor:
            tables = ferretdb_tables(cursor, database)
            if not tables:  # another PostgreSQL, database or schema than the one this FerretDB writes to
                raise ValueError(f"no FerretDB collections of database {database!r} in PostgreSQL at "
                                 f"{postgresql_where(postgresql_url)}: is that the PostgreSQL this FerretDB runs on?")
            statements = lookup_index_statements(database, tables)
            for _name, statement in statements:
                cursor.execute(statement)
            names = [name for name, _ in statements]
            cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexname = ANY(%s)",
                           (database, names))
            present = {row[0] for row in cursor.fetchall()}
    finally:
        conn.close()
    return [name for name in names if name in present]

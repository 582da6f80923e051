"""scripts/services.sh beyond what the session fixtures use: FerretDB on its PostgreSQL backend.

The collect benchmark runs FerretDB on a private PostgreSQL cluster (Debian's postgresql binaries);
this checks that `HIVE_FERRETDB_HANDLER=postgresql services.sh up ferretdb` gives a working store and
that `down` / `clean` leave nothing running or behind.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hive_assets.data.store import base as store_base
from hive_assets.data.store import mongo as store_mongo
from hive_assets_tests.services import SERVICES_SH, _read_env, _tail, require_service


def _services(run_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SERVICES_SH), *args],
        env={**os.environ, "HIVE_SERVICES_RUN_DIR": str(run_dir), "HIVE_SERVICES_WATCH_PID": str(os.getpid()), **env},
        capture_output=True, text=True, timeout=240, check=False,
    )


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_ferretdb_on_the_postgresql_backend(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    installed = _services(run_dir, "install", "postgresql")
    if installed.returncode != 0:
        require_service("PostgreSQL (Debian's postgresql package)", _tail(installed.stderr))
    up = _services(run_dir, "up", "ferretdb", HIVE_FERRETDB_HANDLER="postgresql")
    try:
        if up.returncode != 0:
            require_service("FerretDB on PostgreSQL", _tail(up.stderr))
        env = _read_env(run_dir / "env")
        assert env["HIVE_TEST_FERRETDB_HANDLER"] == "postgresql"
        assert env["HIVE_TEST_POSTGRES_URL"].startswith("postgresql://hive@127.0.0.1:")
        pids = [int((run_dir / f"{name}.pid").read_text()) for name in ("ferretdb", "postgresql")]
        assert all(_alive(pid) for pid in pids)
        status = _services(run_dir, "status", "postgresql")
        assert status.returncode == 0 and "postgresql: running" in status.stdout

        database = f"hive_test_{uuid.uuid4().hex[:8]}"
        with store_mongo.MongoStore(env["HIVE_TEST_MONGODB_URI"], database) as store:
            assert store.is_ferretdb
            docs = [{"opinion_id": f"o-{i:03d}", "plan_id": f"p-{i % 10}", "n": i} for i in range(120)]
            assert store.upsert_many("specialist_opinions", docs) == 120
            assert store.upsert_many("specialist_opinions", docs[:5]) == 5  # replaced, not duplicated
            assert store.count("specialist_opinions") == 120
            # every document replaced, by six writers at once (five specialists' runs and a sensor): FerretDB
            # 1.x holds a pooled PostgreSQL connection (50 in all) per statement of an update command, and
            # chunks of 50 left every client of the server waiting until it was restarted
            def rewrite(k: int) -> int:
                with store_mongo.MongoStore(env["HIVE_TEST_MONGODB_URI"], database, timeout_ms=30_000) as writer:
                    return writer.upsert_many("specialist_opinions", [{**d, "writer": k} for d in docs])

            with ThreadPoolExecutor(6) as pool:
                assert list(pool.map(rewrite, range(6))) == [120] * 6
            assert store.count("specialist_opinions") == 120
            assert [d["n"] for d in store.find("specialist_opinions", {"plan_id": "p-3"}, sort=[("n", 1)])] == \
                list(range(3, 120, 10))
            monkeypatch.setattr(store_base, "KEY_CHUNK", 4)
            monkeypatch.setattr(store_mongo, "KEY_CHUNK", 4)
            got = store.find_by_keys("specialist_opinions", "plan_id", ["p-1", "p-2", "p-7", "p-8", "p-9", "nope"])
            assert sorted(d["n"] for d in got) == [n for n in range(120) if n % 10 in (1, 2, 7, 8, 9)]
            _lookup_indexes(store, env["HIVE_TEST_POSTGRES_URL"].rsplit("/", 1)[0] + "/ferretdb", database)
            store.client.drop_database(database)
    finally:
        down = _services(run_dir, "down")
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids), "services.sh down left a process running"
    cluster = Path((run_dir / "postgresql.dir").read_text().strip()) if (run_dir / "postgresql.dir").exists() else None
    assert _services(run_dir, "clean").returncode == 0
    assert not run_dir.exists() and (cluster is None or not cluster.exists())


def _lookup_indexes(store, postgresql_url: str, database: str) -> None:
    """Issue 23: FerretDB's own btree indexes leave a pushed-down equality a sequential scan; the GIN
    lookup indexes `ensure_indexes(postgresql_url)` creates make PostgreSQL answer it from an index, and
    `find_by_keys_where` then reads any number of ids by one lookup each, with the same result."""
    import psycopg2

    from hive_assets.data.store._ferretdb_postgresql import ensure_lookup_indexes

    # enough rows that PostgreSQL's planner prefers an index to a scan (it scans a few pages anyway)
    many = [{"opinion_id": f"x-{i:05d}", "plan_id": f"xp-{i}", "specialist_type": "business" if i % 2 else "technical"}
            for i in range(6000)]
    store.db["specialist_opinions"].insert_many(many)
    # FerretDB's btree: pushed down, but a scan (so point lookups only up to FERRETDB_POINT_LOOKUPS ids)
    assert store.lookup_plan("specialist_opinions", "opinion_id") == store_mongo.PUSHED_DOWN
    names = store.ensure_indexes(postgresql_url)
    assert store.ensure_indexes(postgresql_url) == names  # idempotent
    # a PostgreSQL (database, schema) this FerretDB does not write to: said, not "0 indexes"
    with pytest.raises(ValueError, match=r"no FerretDB collections of database 'elsewhere' in PostgreSQL at "):
        ensure_lookup_indexes(postgresql_url, "elsewhere")
    with psycopg2.connect(postgresql_url) as conn, conn.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = ANY(%s)", (database, names))
        definitions = [row[0] for row in cursor.fetchall()]
    conn.close()
    assert len(definitions) == len(names) == len(set(names))
    assert all("USING gin" in d and "jsonb_path_ops" in d for d in definitions)
    for field in ("opinion_id", "plan_id"):  # the key and the join field of the opinions
        assert sum(f"_jsonb -> '{field}'::text" in d and "specialist_opinions" in d for d in definitions) == 1
    assert store.lookup_plan("specialist_opinions", "opinion_id") == store_mongo.INDEXED
    wanted = [f"x-{i:05d}" for i in range(0, 6000, 13)] + ["x-nope"]  # over FERRETDB_POINT_LOOKUPS ids
    assert len(wanted) > store_mongo.FERRETDB_POINT_LOOKUPS
    got = store.find_by_keys_where("specialist_opinions", "opinion_id", wanted, {"specialist_type": "business"})
    assert sorted(d["opinion_id"] for d in got) == [f"x-{i:05d}" for i in range(0, 6000, 13) if i % 2]


@pytest.mark.parametrize("handler", ["mysql", "nonsense"])
def test_an_unknown_ferretdb_handler_is_refused(tmp_path, handler):
    out = _services(tmp_path / "run", "up", "ferretdb", HIVE_FERRETDB_HANDLER=handler)
    assert out.returncode != 0 and "HIVE_FERRETDB_HANDLER must be sqlite or postgresql" in out.stderr

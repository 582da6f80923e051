"""The embedded store in WAL mode: a simulator writing in one process while another reads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from hive_assets.data.store import SQLiteStore

WRITER = """
import sys
from datetime import datetime, timezone
from hive_assets.simulator import simulate
from hive_assets.data.store import SQLiteStore
simulate(SQLiteStore(sys.argv[1]), plans=1500, seed=1, now=datetime(2026, 1, 1, tzinfo=timezone.utc), batch_size=200)
"""


def test_reads_never_fail_while_a_simulator_writes(tmp_path):
    path = tmp_path / "store.sqlite"
    reader = SQLiteStore(path)
    assert reader._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stderr=subprocess.PIPE, text=True)
    seen = []
    while writer.poll() is None:
        seen.append(reader.count("specialist_opinions", {"specialist_type": "business"}))
        list(reader.find("specialist_feedback", {"specialist_type": "business"}, limit=50))
        time.sleep(0.05)
    assert writer.returncode == 0, writer.stderr.read()
    assert seen == sorted(seen)  # counts only grow: every read saw a committed state
    assert len(set(seen)) > 3  # and the reads really interleaved with the writes
    assert reader.count("specialist_opinions") == 7500


class _InterruptedAfterCommit:
    """The store's connection, where Ctrl-C lands just after a COMMIT went through: a timing a real signal hits
    only by chance (it did, in `hive loop`), so it is arranged here."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        out = self._conn.execute(sql, *args)
        if sql == "COMMIT":
            raise KeyboardInterrupt
        return out

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_an_interrupt_just_after_a_commit_stays_an_interrupt_and_the_write_stays(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    real = store._conn  # noqa: SLF001 (the store's per-thread connection)
    store._local.conn = _InterruptedAfterCommit(real)  # noqa: SLF001
    with pytest.raises(KeyboardInterrupt):  # was: sqlite3.OperationalError "cannot rollback - no transaction"
        store.upsert_many("specialist_opinions", [{"opinion_id": "op-1", "specialist_type": "business"}])
    with pytest.raises(KeyboardInterrupt):
        store.update_one("specialist_opinions", {"opinion_id": "op-1"}, {"specialist_type": "technical"})
    store._local.conn = real  # noqa: SLF001
    assert [d["specialist_type"] for d in store.find("specialist_opinions")] == ["technical"]
    assert not real.in_transaction



class _PausedAfterReadingColumns:
    """The store's connection, which pauses once, after reading a table's columns, until `resume` is set (at
    most 3 s): the instant where another process opening the same new store could add those columns first."""

    def __init__(self, conn, resume):
        self._conn, self._resume, self._paused = conn, resume, False

    def execute(self, sql, *args):
        result = self._conn.execute(sql, *args)
        if sql.startswith("PRAGMA table_xinfo") and not self._paused:
            self._paused = True
            rows = result.fetchall()
            self._resume.wait(3)
            return iter(rows)
        return result

    def __enter__(self):
        self._conn.__enter__()
        return self

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_two_processes_opening_a_new_store_at_once_both_get_it(tmp_path):
    """Collections starting together on a new home each open the store: one made the schema while another had
    read the columns it lacked, and that one failed on "duplicate column name" (seen with five processes). The
    first opener here pauses at that instant while a second opens the store."""
    path, resume = tmp_path / "store.sqlite", threading.Event()

    class Paused(SQLiteStore):
        @property
        def _conn(self):
            if getattr(self._local, "paused", None) is None:
                self._local.paused = _PausedAfterReadingColumns(SQLiteStore._conn.fget(self), resume)
            return self._local.paused

    failures = []

    def first():
        try:
            Paused(path)
        except Exception as exc:  # the assertion below says which
            failures.append(exc)

    opener = threading.Thread(target=first)
    opener.start()
    time.sleep(0.5)  # the first is paused inside its schema (at most 3 s)
    SQLiteStore(path).count("specialist_opinions")  # the second opens it whole meanwhile
    resume.set()
    opener.join(30)
    assert not opener.is_alive() and failures == []
    assert SQLiteStore(path).count("specialist_opinions") == 0

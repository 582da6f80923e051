"""The embedded store in WAL mode: a simulator writing in one process while another reads."""

from __future__ import annotations

import subprocess
import sys
import time

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

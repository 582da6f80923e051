"""The `hive` command, run as a user would: a subprocess against a fresh HIVE_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HIVE = str(Path(sys.executable).with_name("hive"))


def _hive(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([HIVE, *args], env=env, capture_output=True, text=True, timeout=600)


def test_simulate_import_and_collect_json(hive_home, tmp_path):
    env = {**os.environ}
    out = _hive("simulate", "--plans", "400", "--days", "20", "--seed", "5", "--json", "--no-serve", env=env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["written"]["specialist_opinions"] == 2000

    # mongoexport lines (extended JSON) are imported into the configured store
    lines = [
        {"_id": {"$oid": "65a000000000000000000001"}, "id": "intent-extra-1",
         "timestamp": {"$date": "2026-01-01T00:00:00Z"}, "confidence": {"$numberDouble": "0.91"},
         "intent": {"text": "t", "domain": "BUSINESS"}},
        {"_id": {"$oid": "65a000000000000000000002"}, "id": "intent-extra-2",
         "timestamp": {"$date": {"$numberLong": "1767225600000"}}, "confidence": 0.5},
    ]
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = _hive("store", "import", "--collection", "intentions_audit", str(path), env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"] == 2

    out = _hive("collect", "--specialist", "business,technical", "--min-samples", "100", "--json", env=env)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["specialist"] for r in records] == ["business", "technical"]
    for r in records:
        assert 0 < r["labelled"] <= r["rows"] < 400
        assert all(isinstance(v, int) and v > 0 for v in r["quarantined"].values())
    # each collect left a run in the Dagster instance
    runs = subprocess.run([str(Path(sys.executable).with_name("dagster")), "run", "list"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert runs.stdout.count("Run: ") == 2, runs.stdout + runs.stderr


def test_unknown_specialist_is_a_clear_error(hive_home):
    out = _hive("collect", "--specialist", "marketing", env={**os.environ})
    assert out.returncode != 0 and "unknown specialist" in out.stderr

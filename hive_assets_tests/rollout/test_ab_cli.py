"""`hive ab-test start|check|expand|stop` through the console script; each verb is a run in the instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.data import SQLiteStore
from hive_assets_tests.rollout.ab_world import fresh_model

pytestmark = pytest.mark.services

HIVE = str(Path(sys.executable).with_name("hive"))
T0 = datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc)


def hive(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([HIVE, "ab-test", *args, "--json"], env=env, capture_output=True, text=True, timeout=600)


def state(out: subprocess.CompletedProcess) -> dict:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def errors(out: subprocess.CompletedProcess) -> list[str]:
    return [line for line in out.stderr.splitlines() if line and not line.startswith("hive: HIVE_HOME=")]


def test_ab_test_verbs_run_jobs_in_the_instance(hive_home, mlflow_server):
    client = registry.client_for(mlflow_server)
    store = SQLiteStore(hive_home / "store.sqlite")
    v1, v2 = fresh_model(client, "business")
    try:
        registry.ensure_alias(client, store, "business", registry.CHAMPION, v1, actor="test", reason="setup")
        env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
        iso = lambda hours: (T0 + timedelta(hours=hours)).isoformat()  # noqa: E731

        # v2 has no validation verdict (registered by hand): a test would serve it production traffic, so
        # starting one takes promote's override (it opened the test without a word)
        ungated = hive("start", "--specialist", "business", "--new-version", v2, "--now", iso(0), env=env)
        assert ungated.returncode == 1 and len(errors(ungated)) == 1, ungated.stderr
        assert f"business-evaluator v{v2}: validation gate unknown (no gate verdict); refused" in ungated.stderr
        assert client.get_registered_model("business-evaluator").aliases == {"champion": v1}
        started = state(hive("start", "--specialist", "business", "--new-version", v2, "--baseline-version", v1,
                             "--traffic", "10", "--force", "--reason", "trained elsewhere", "--now", iso(0),
                             env=env))
        assert (started["status"], started["traffic_percent"], started["challenger_version"]) == ("running", 10.0, v2)
        test_id = started["test_id"]
        assert test_id == f"business_v{v2}_20260401_080000"
        aliases = client.get_registered_model("business-evaluator").aliases
        assert aliases == {"champion": v1, "challenger": v2, f"ab-test-v{v2}": v2}

        checked = state(hive("check", "--specialist", "business", "--test-id", test_id, "--now", iso(1), env=env))
        assert (checked["status"], checked["verdict"]) == ("running", "insufficient_data")

        expanded = state(hive("expand", "--specialist", "business", "--traffic", "25", "--test-id", test_id,
                              "--now", iso(2), env=env))
        assert expanded["traffic_percent"] == 25.0
        assert client.get_registered_model("business-evaluator").tags["ab_challenger_traffic_percent"] == "25.0"

        shrink = hive("expand", "--specialist", "business", "--traffic", "5", "--now", iso(2.5), env=env)
        assert shrink.returncode == 1 and "traffic can only grow" in shrink.stderr
        assert len(errors(shrink)) == 1, shrink.stderr  # its cause in one line: no event log, no stack trace
        past = hive("check", "--specialist", "business", "--now", iso(0.5), env=env)  # before the look at 1 h
        assert past.returncode == 1 and "a look cannot go back in time, none was taken" in past.stderr
        assert len(errors(past)) == 1 and "Traceback" not in past.stderr, past.stderr

        stopped = state(hive("stop", "--specialist", "business", "--reason", "wrong data", "--now", iso(3), env=env))
        assert (stopped["status"], stopped["traffic_percent"]) == ("stopped", 0.0)
        assert client.get_registered_model("business-evaluator").aliases == {"champion": v1}
        doc = store.find_one("ab_tests", {"test_id": test_id})
        assert [float(h["percent"]) for h in doc["traffic_history"]] == [10.0, 25.0, 0.0]
        assert doc["end_reason"] == "wrong data"

        # the same stop again: nothing left to do, said without a failure (it was "no running A/B test", exit 1)
        again = state(hive("stop", "--specialist", "business", "--now", iso(4), env=env))
        assert (again["test_id"], again["status"], again["traffic_percent"]) == (test_id, "stopped", 0.0)
        other = hive("stop", "--specialist", "business", "--test-id", "business_v9_x", "--now", iso(4), env=env)
        assert other.returncode == 1 and "no running A/B test" in other.stderr

        with dg.DagsterInstance.get() as instance:  # the DAGSTER_HOME the commands used
            runs = {}
            for run in instance.get_runs():
                runs.setdefault(run.job_name, []).append(run)
            assert sorted((name, len(r)) for name, r in runs.items()) == [
                ("ab_test_check", 2), ("ab_test_expand", 2), ("ab_test_start", 2), ("ab_test_stop", 3)]
            assert runs["ab_test_check"][0].tags["dagster/partition"] == "business"
            assert all(r.tags["hive/actor"].startswith("user:") for rs in runs.values() for r in rs)
            statuses = sorted(r.status.value for rs in runs.values() for r in rs)
            assert statuses.count("FAILURE") == 4 and statuses.count("SUCCESS") == 5
            # the operator's runs are recorded against the asset too
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("ab_test_outcome"), asset_partitions=["business"]),
                limit=10).records
            assert len(records) == 5
        moves = [d for d in store.find("model_decisions", {"specialist_type": "business"})
                 if d["kind"] == "alias_move" and d["model_version"] == v2]
        assert [(d["details"]["alias"], d["reason"]) for d in moves] == [
            ("challenger", "A/B test started by an operator (gate unknown, forced: trained elsewhere)"),
            (f"ab-test-v{v2}", f"A/B test {test_id} opened")]
        kinds = sorted(d["kind"] for d in store.find("model_decisions", {"specialist_type": "business"}))
        assert kinds == ["ab_test_closed", "alias_move", "alias_move", "alias_move", "traffic_step", "traffic_step",
                         "traffic_step"]
    finally:
        client.delete_registered_model("business-evaluator")

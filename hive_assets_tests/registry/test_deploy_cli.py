"""`hive deploy` through the console script (subprocesses), against a real `mlflow server`; every run
lands in the Dagster instance of DAGSTER_HOME with its config and outcome."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets_tests.registry.conftest import ledger, record_gate

pytestmark = pytest.mark.services
HIVE = str(Path(sys.executable).with_name("hive"))
WORKTREE = str(Path(__file__).resolve().parents[2])


def test_every_deploy_verb_through_the_console_script(clean_registry, store, business_runs, hive_home,
                                                      mlflow_server, tmp_path):
    client = clean_registry
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server,
           "PYTHONPATH": os.pathsep.join([WORKTREE, os.environ.get("PYTHONPATH", "")])}
    for run_id in business_runs[:2]:
        record_gate(store, "business", run_id)  # as validation_report does

    def hive(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        out = subprocess.run([HIVE, "deploy", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == expect, out.stdout + out.stderr[-3000:]
        assert "Traceback" not in out.stderr
        return out

    def result(*args: str):
        return json.loads(hive(*args, "--json").stdout.strip().splitlines()[-1])["result"]

    first = result("register", "--model-type", "business", "--run-id", business_runs[0])
    again = result("register", "--model-type", "business", "--run-id", business_runs[0])
    assert (first["version"], first["created"], again["version"], again["created"]) == ("1", True, "1", False)
    assert result("register", "--model-type", "business", "--run-id", business_runs[1])["version"] == "2"
    promoted = result("promote", "--model-type", "business", "--model-version", "1", "--reason", "first")
    assert promoted["moved"] and client.get_model_version_by_alias("business-evaluator", "champion").version == "1"
    before_second = datetime.now(timezone.utc)
    hive("promote", "--model-type", "business", "--model-version", "2")
    assert client.get_model_version_by_alias("business-evaluator", "champion").version == "2"
    hive("alias", "--model-type", "business", "--alias", "challenger", "--model-version", "1")
    assert client.get_model_version_by_alias("business-evaluator", "challenger").version == "1"
    listed = result("list", "--specialist", "business")  # read directly: no run (asserted below)
    assert [(v["version"], v["aliases"], v["gate"]) for v in listed] == [("2", ["champion"], "passed"),
                                                                          ("1", ["challenger"], "passed")]
    back = result("rollback", "--model-type", "business")
    assert (back["version"], back["previous_version"]) == ("1", "2")
    assert client.get_model_version_by_alias("business-evaluator", "champion").version == "1"

    text = hive("history", "--model-type", "business").stdout
    assert text.count(" champion since ") == 3 and "rollback by user:" in text
    first_tenure, *_, last_tenure = text.splitlines()  # v1's first tenure had no champion before it
    assert first_tenure.endswith(", no previous champion)") and last_tenure.endswith(", previous v2)")
    at = json.loads(hive("history", "--model-type", "business", "--at", before_second.isoformat(), "--json").stdout)
    assert [(t["version"], t["reason"]) for t in at] == [("1", "first")]

    # a refused operation: one line, exit 1, nothing changed, and a failed run in the instance
    rows = ledger(store, "business")
    refused = hive("promote", "--model-type", "business", "--model-version", "42", expect=1)
    error, state = refused.stderr.strip().splitlines()[-2:]
    assert error.startswith("error: business-evaluator has no version 42 (run ")
    assert state == "now: business-evaluator@champion -> v1 (read back from MLflow)"
    assert "STEP_FAILURE" not in refused.stderr  # Dagster's console log stays in the instance
    assert ledger(store, "business") == rows
    bad = hive("promote", "--specialist", "marketing", "--model-version", "1", expect=2)
    assert "error: argument --specialist: unknown specialist(s) 'marketing'" in bad.stderr
    # the seed's spelling still works, with a one-line note
    old = hive("history", "--model-type", "business")
    assert old.stdout == text and "--model-type is deprecated here, use --specialist" in old.stderr

    me = f"user:{getpass.getuser()}"
    promotions = [r for r in ledger(store, "business") if r["kind"] in registry.ALIAS_KINDS]
    assert [(r["kind"], r["model_version"]) for r in promotions] == [
        ("promotion", "1"), ("promotion", "2"), ("alias_move", "1"), ("rollback", "1")]
    assert all(r["actor"] == me for r in promotions)

    instance = dg.DagsterInstance.get()  # the DAGSTER_HOME the subprocesses used

    def runs(job):
        return instance.get_runs(filters=dg.RunsFilter(job_name=job))

    assert [r.status for r in runs("register_model_version")] == [dg.DagsterRunStatus.SUCCESS] * 3
    promote_runs = runs("promote_model_version")
    assert sorted(r.status.value for r in promote_runs) == ["FAILURE", "SUCCESS", "SUCCESS"]
    failed = next(r for r in promote_runs if r.status == dg.DagsterRunStatus.FAILURE)
    assert failed.run_config["ops"]["promote_op"]["config"]["model_version"] == "42"
    assert failed.tags["hive/actor"] == me
    for job in ("set_model_alias", "rollback_champion"):
        assert [r.status for r in runs(job)] == [dg.DagsterRunStatus.SUCCESS]
    assert runs("list_model_versions") == []  # reading launches no run
    # the ledger row names the Dagster run that moved the alias
    rollback_run = runs("rollback_champion")[0]
    assert promotions[-1]["dagster_run_id"] == rollback_run.run_id

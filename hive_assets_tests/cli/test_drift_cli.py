"""`hive drift check --once`: the sensor's check from the shell; --dry-run writes and launches nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets.cli._main import main
from hive_assets.data import SQLiteStore
from hive_assets.simulator import simulate
from hive_assets_tests.monitoring.champion import register_champion, train_small_model


@pytest.fixture(scope="module")
def champion_uri(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    register_champion(uri, "business", train_small_model("business", datetime.now(timezone.utc) - timedelta(days=30)))
    return uri


@pytest.fixture
def drifted(hive_home, champion_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_uri)
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=400, days=0.5, seed=41, now=datetime.now(timezone.utc), drift=1.0, feedback_rate=0.0)
    return store


def runs(hive_home):
    with dg.DagsterInstance.from_config(str(hive_home / "dagster")) as instance:
        return instance.get_runs()


def test_dry_run_prints_the_table_and_writes_nothing(drifted, hive_home, capsys):
    before = {c: drifted.count(c) for c in ("drift_monitoring", "retraining_triggers")}
    assert main(["drift", "check", "--once", "--dry-run"]) == 0
    out = capsys.readouterr().out
    business = next(line for line in out.splitlines() if line.startswith("business"))
    assert " drift " in f" {business} " and "would retrain (drift:business:v1:t" in business
    assert "no champion" in next(line for line in out.splitlines() if line.startswith("technical"))
    assert {c: drifted.count(c) for c in before} == before == {"drift_monitoring": 0, "retraining_triggers": 0}
    assert runs(hive_home) == []


def test_once_records_the_checks_and_launches_the_retraining_run(drifted, hive_home, capsys):
    assert main(["drift", "check", "--once", "--specialist", "business"]) == 0
    out, err = capsys.readouterr()
    assert " - dagster - " not in out + err, err  # the run's log stays in the instance, not in the table
    [check] = drifted.find("drift_monitoring")
    assert check["decision"] == "drift" and check["specialist_type"] == "business"
    [trigger] = drifted.find("retraining_triggers")
    [run] = runs(hive_home)
    assert run.tags["hive/trigger_id"] == trigger["trigger_id"] == check["run_key"]
    assert check["retraining"] == {"action": "requested", "reason": "hive drift check"}
    assert run.tags["dagster/partition"] == "business" and run.job_name == "retrain_specialist"
    # the trigger document ends with the run's own outcome
    assert trigger["dagster_run_id"] == run.run_id
    assert trigger["status"] == {"SUCCESS": "completed", "FAILURE": "failed"}[run.status.value]
    assert f"retrained: run {run.run_id}" in out
    # a second --once in the same interval finds the trigger and launches nothing
    assert main(["drift", "check", "--once", "--specialist", "business"]) == 0
    assert "already triggered" in capsys.readouterr().out and len(runs(hive_home)) == 1
    # and so does a dry run: it said "would retrain" while the command would launch nothing
    assert main(["drift", "check", "--once", "--dry-run", "--specialist", "business"]) == 0
    business = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("business"))
    assert f"already triggered ({trigger['status']}, run {run.run_id})" in business, business


def test_the_table_s_columns_hold_the_longest_feature_name(hive_home, champion_uri, monkeypatch, capsys):
    """Seed 55's quiet window has its largest (small) shift in duration_coefficient_of_variation, the
    longest name in the feature contract: it ran into the decision column ("...variationno_drift")."""
    from hive_assets.features import NUMERIC_FEATURES

    longest = max(NUMERIC_FEATURES, key=len)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_uri)
    simulate(SQLiteStore(hive_home / "store.sqlite"), plans=400, days=0.5, seed=55, now=datetime.now(timezone.utc),
             feedback_rate=0.0)
    assert main(["drift", "check", "--once", "--dry-run", "--specialist", "business"]) == 0
    header, _, row, *_ = capsys.readouterr().out.splitlines()
    feature_at, decision_at = header.index("top feature"), header.index("decision")
    assert row[feature_at:decision_at].rstrip() == longest  # the precondition: this window's top feature
    assert row[decision_at - 1] == " " and row[decision_at:].split()[0] == "no_drift"

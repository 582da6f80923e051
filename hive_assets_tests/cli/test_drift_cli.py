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
    # a pinned clock, a minute into the hour: on the wall clock two commands of a test could fall in two drift
    # intervals, and the trigger's key (which names the interval) moved under the test
    at = datetime.now(timezone.utc).replace(minute=1, second=0, microsecond=0)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", at.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=400, days=0.5, seed=41, now=at, drift=1.0, feedback_rate=0.0)
    return store


def tick(monkeypatch, seconds=1):
    """Move the pinned clock on: each check is its own record (a check is keyed by its instant)."""
    from hive_assets import clock

    monkeypatch.setenv("HIVE_SIMULATED_NOW", (clock.now() + timedelta(seconds=seconds)).isoformat())


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
    # the trigger document ends with the run's own outcome: failed (no labels: its data gate blocks it)
    assert run.status == dg.DagsterRunStatus.FAILURE and run.tags["dagster/run_key"] == trigger["trigger_id"]
    assert (trigger["dagster_run_id"], trigger["status"]) == (run.run_id, "failed")
    assert f"retrained: run {run.run_id} failed" in out
    # a dry run says what the command would do: the trigger's next attempt (next test), launching nothing
    assert main(["drift", "check", "--once", "--dry-run", "--specialist", "business"]) == 0
    business = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("business"))
    assert f"would retrain ({trigger['trigger_id']}:retry-1)" in business, business
    assert len(runs(hive_home)) == 1 and drifted.count("retraining_triggers") == 1


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


def test_once_after_a_failed_retraining_launches_the_trigger_s_next_attempt(drifted, hive_home, capsys, monkeypatch):
    """The interval's retraining failed (no labels: its data gate blocks it). `hive drift check --once` again in
    the same interval said "already triggered (failed ...)" and launched nothing, while the drift sensor requests
    the trigger's next attempt: it launches `<key>:retry-1`, then `:retry-2`, then, every attempt failed, nothing,
    as the sensor's `trigger_attempt` would; each attempt's run carries its run key, so the sensor sees it too."""
    from hive_assets.defs.monitoring.sensors import trigger_attempt
    from hive_assets.monitoring import MAX_TRIGGER_ATTEMPTS

    args = ["drift", "check", "--once", "--specialist", "business"]
    assert main(args) == 0
    [check] = drifted.find("drift_monitoring")
    key = check["run_key"]
    assert drifted.find_one("retraining_triggers", {"trigger_id": key})["status"] == "failed"
    assert "failed: blocked by " in capsys.readouterr().out  # its data gate
    keys = [key] + [f"{key}:retry-{n}" for n in range(1, MAX_TRIGGER_ATTEMPTS)]
    for attempt, attempt_key in enumerate(keys[1:], start=1):
        tick(monkeypatch)
        assert main(args) == 0
        business = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("business"))
        assert "retrained: run " in business and "failed" in business, business
        launched = runs(hive_home)
        assert len(launched) == attempt + 1
        assert (launched[0].tags["hive/trigger_id"], launched[0].tags["dagster/run_key"]) == (attempt_key, attempt_key)
        trigger = drifted.find_one("retraining_triggers", {"trigger_id": attempt_key})
        assert (trigger["status"], trigger["dagster_run_id"]) == ("failed", launched[0].run_id)
    with dg.DagsterInstance.from_config(str(hive_home / "dagster")) as instance:
        assert trigger_attempt(instance, key) == keys[-1]  # what the sensor requests: the last, which Dagster skips
    for dry_run in ([], ["--dry-run"]):  # and a dry run, which said "would retrain" while it would not
        tick(monkeypatch)
        assert main(args + dry_run) == 0
        business = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("business"))
        assert f"already triggered (failed, run {runs(hive_home)[0].run_id})" in business, business
    assert len(runs(hive_home)) == MAX_TRIGGER_ATTEMPTS
    assert sorted(d["trigger_id"] for d in drifted.find("retraining_triggers")) == sorted(keys)
    assert [d["run_key"] for d in drifted.find("drift_monitoring", sort=[("checked_at", 1)])] == [
        key, *keys[1:], keys[-1]]


def test_a_canceled_trigger_is_said_to_be_canceled_and_not_retried():
    """A canceled retrain's trigger document says failed ("run canceled"), and the command said "already triggered
    (failed, ...)", which the README keeps for a trigger whose every attempt failed."""
    from hive_assets.cli._drift import _already_triggered

    assert _already_triggered({"status": "failed", "dagster_run_id": "r1", "error": "run canceled"}) == (
        "already triggered (canceled, run r1; a canceled run is not retried)")
    assert _already_triggered({"status": "failed", "dagster_run_id": "r2", "error": "boom"}) == (
        "already triggered (failed, run r2)")
    assert _already_triggered({"status": "pending"}) is None


def test_a_running_ab_test_holds_the_drift_unless_the_operator_supersedes_it(drifted, hive_home, capsys):
    """The command launched the retraining while the specialist's A/B test ran (the sensor held it, `hive status`
    said so): its new version superseded a test of four days at 50 %, and the command said only "retrained", its
    dry run "would retrain". Held as the sensor holds it, said so; `--supersede-test` retrains anyway."""
    from hive_assets.rollout import open_test

    test, _ = open_test(drifted, "business", "1", "2", 25.0)
    held = (f"A/B test {test['test_id']} running: retraining waits for its verdict (v2 at 25 %; --supersede-test "
            "retrains anyway)")
    assert main(["drift", "check", "--once", "--dry-run", "--specialist", "business"]) == 0
    business = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("business"))
    assert business.endswith(f"would be held: {held}"), business

    assert main(["drift", "check", "--once", "--specialist", "business"]) == 0
    business = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("business"))
    assert business.endswith(f"held: {held}"), business
    assert runs(hive_home) == [] and drifted.count("retraining_triggers") == 0
    [check] = drifted.find("drift_monitoring")
    assert check["retraining"] == {"action": "held", "reason": f"A/B test {test['test_id']} running: retraining "
                                                              "waits for its verdict"}

    assert main(["drift", "check", "--once", "--dry-run", "--supersede-test", "--specialist", "business"]) == 0
    business = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("business"))
    assert f", superseding A/B test {test['test_id']} if it registers a version" in business, business
    assert main(["drift", "check", "--once", "--supersede-test", "--specialist", "business"]) == 0
    [run] = runs(hive_home)
    assert run.job_name == "retrain_specialist" and run.tags["dagster/partition"] == "business"

"""A/B tests re-evaluated by `ab_test_outcome` (job `ab_test_check`) against a real `mlflow server` and the
SQLite store, with an injected clock: the 10 -> 25 -> 50 -> 100 schedule and promotion, a rollback,
a superseded test, and a check killed mid-way then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.data import SQLiteStore, to_utc
from hive_assets.defs import build_defs
from hive_assets.rollout import open_test, running_test
from hive_assets_tests.rollout.ab_world import Traffic, fresh_model

pytestmark = pytest.mark.services

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MATURITY_HOURS = 6.0


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def world(hive_home, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    client = registry.client_for(mlflow_server)
    store = SQLiteStore(hive_home / "store.sqlite")
    defs = build_defs()
    instance = dg.DagsterInstance.ephemeral()
    made: list[str] = []

    def model(specialist: str, versions: int = 2) -> list[str]:
        made.append(specialist)
        return fresh_model(client, specialist, versions)

    def check(specialist: str, hours: float, **config):
        config = {"now": at(hours).isoformat(), "label_maturity_hours": MATURITY_HOURS, **config}
        result = defs.resolve_job_def("ab_test_check").execute_in_process(
            run_config={"ops": {"ab_test_outcome": {"config": config}}}, instance=instance,
            partition_key=specialist)
        assert result.success
        return result

    yield store, client, model, check
    for specialist in made:  # the server is shared: leave no model behind for other modules' tests
        client.delete_registered_model(registry.model_name(specialist))


def champion_and_challenger(client, store, specialist: str, champion: str, challenger: str) -> None:
    registry.ensure_alias(client, store, specialist, registry.CHAMPION, champion, actor="test", reason="setup")
    registry.ensure_alias(client, store, specialist, registry.CHALLENGER, challenger, actor="test", reason="setup")


def opened_test(world, specialist: str) -> dict:
    """A fresh champion and challenger for `specialist`, and the test the look at hour 0 opens."""
    store, client, model, check = world
    v1, v2 = model(specialist)
    champion_and_challenger(client, store, specialist, v1, v2)
    check(specialist, 0)
    return running_test(store, specialist)


def aliases(client, specialist: str) -> dict[str, str]:
    return {a: v for a, v in client.get_registered_model(registry.model_name(specialist)).aliases.items()}


def ledger(store, specialist: str, kind: str) -> list[dict]:
    return [d for d in store.find("model_decisions", {"specialist_type": specialist}) if d["kind"] == kind]


def tags(client, specialist: str) -> dict[str, str]:
    return client.get_registered_model(registry.model_name(specialist)).tags


def test_expansion_10_25_50_100_and_promotion(world):
    store, client, model, check = world
    v1, v2 = model("technical")
    champion_and_challenger(client, store, "technical", v1, v2)
    opened = check("technical", 0).output_for_node("ab_test_outcome")
    assert (opened["status"], opened["traffic_percent"], opened["verdict"]) == ("running", 10.0, "insufficient_data")
    test = running_test(store, "technical")
    assert to_utc(test["started_at"]) == T0 and test["test_id"] == f"technical_v{v2}_20260302_090000"
    assert aliases(client, "technical")[f"ab-test-v{v2}"] == v2
    assert tags(client, "technical")["ab_challenger_traffic_percent"] == "10.0"
    # the ab-test alias is in the ledger like any alias (deploy history --alias ab-test-vN), with the data the
    # challenger was trained on; so is every row the test writes
    snapshot = client.get_model_version(registry.model_name("technical"), v2).tags["data_snapshot_hash"]
    assert snapshot == "snapshot-technical-2"
    (opened_row,) = [r for r in ledger(store, "technical", "alias_move") if r["details"]["alias"] == f"ab-test-v{v2}"]
    assert (opened_row["model_version"], opened_row["data_snapshot_hash"]) == (v2, snapshot)
    assert registry.holder_at(store, "technical", alias=f"ab-test-v{v2}").version == v2
    # the look records the constants it decided with: a recount does not depend on the home's settings today
    policy = store.find_one("ab_tests", {"test_id": test["test_id"]})["checks"][-1]["policy"]
    assert (policy["label_maturity_hours"], policy["srm_p_value"], policy["max_duration_hours"]) == \
        (MATURITY_HOURS, 0.001, 14 * 24)

    traffic = Traffic("technical", champion_agreement=0.70, challenger_agreement=0.85, seed=1)
    schedule = [(12, "hold", 10.0), (25, "expand", 25.0), (49, "expand", 50.0), (73, "promote", 100.0)]
    previous = 0
    for hours, action, percent in schedule:
        traffic.serve(store, running_test(store, "technical"), at(previous), at(hours))
        previous = hours
        result = check("technical", hours)
        outcome = result.output_for_node("ab_test_outcome")
        doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
        assert doc["checks"][-1]["action"] == action, doc["checks"][-1]["reason"]
        assert float(doc["traffic_percent"]) == percent == outcome["traffic_percent"]
        # the counts behind the decision are what was written, under the maturity rule
        expected = traffic.expected(at(hours), timedelta(hours=MATURITY_HOURS))
        for arm in ("champion", "challenger"):
            got = doc["checks"][-1]["statistics"][arm]
            assert {k: got[k] for k in ("served", "labelled", "agreements")} == expected[arm]
        metadata = result.asset_materializations_for_node("ab_test_outcome")[0].metadata
        assert metadata["verdict"].value == action and metadata["traffic_percent"].value == percent

    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert doc["status"] == "promoted" and to_utc(doc["started_at"]) == T0
    assert [(float(h["percent"]), to_utc(h["at"])) for h in doc["traffic_history"]] == \
        [(10.0, at(0)), (25.0, at(25)), (50.0, at(49)), (100.0, at(73))]
    assert [c["action"] for c in doc["checks"]] == ["insufficient_data", "hold", "expand", "expand", "promote"]
    final = doc["checks"][-1]["statistics"]
    assert final["difference"]["lower"] > 0 and final["challenger"]["labelled"] >= 1000
    assert final["challenger"]["agreement"] == pytest.approx(0.85, abs=0.04)

    # registry: champion moved to the challenger, challenger and ab-test aliases gone, split tags closed
    assert aliases(client, "technical") == {"champion": v2}
    t = tags(client, "technical")
    assert (t["ab_test_id"], t["ab_test_status"], t["ab_challenger_traffic_percent"]) == \
        (test["test_id"], "promoted", "0.0")
    # ledger: one row per traffic step, the promotion with the previous champion, the closure
    steps = sorted(ledger(store, "technical", "traffic_step"), key=lambda d: d["details"]["at"])
    assert [d["details"]["traffic_percent"] for d in steps] == [10.0, 25.0, 50.0, 100.0]
    (promotion,) = ledger(store, "technical", "promotion")
    assert (promotion["model_version"], promotion["details"]["previous_version"]) == (v2, v1)
    assert len(ledger(store, "technical", "ab_test_closed")) == 1
    assert {r["data_snapshot_hash"] for r in [*steps, promotion, *ledger(store, "technical", "ab_test_closed")]} == \
        {snapshot}
    assert registry.holder_at(store, "technical", alias=f"ab-test-v{v2}") is None  # its tenure ended with the test
    assert registry.holder_at(store, "technical").version == v2

    # a retried check at the same instant, and a later one, change nothing
    before = store.count("model_decisions", {"specialist_type": "technical"})
    again = check("technical", 73).output_for_node("ab_test_outcome")
    later = check("technical", 80).output_for_node("ab_test_outcome")
    assert again["status"] == later["status"] == "promoted"
    assert store.count("model_decisions", {"specialist_type": "technical"}) == before
    assert len(store.find_one("ab_tests", {"test_id": test["test_id"]})["checks"]) == 5
    assert store.count("ab_tests", {"specialist_type": "technical"}) == 1  # no new test for the old challenger


def test_a_bad_challenger_is_rolled_back(world):
    store, client, model, check = world
    v1, v2 = model("behavior")
    champion_and_challenger(client, store, "behavior", v1, v2)
    check("behavior", 0)
    test = running_test(store, "behavior")
    traffic = Traffic("behavior", champion_agreement=0.85, challenger_agreement=0.55, seed=2)
    traffic.serve(store, test, at(0), at(25))
    outcome = check("behavior", 25).output_for_node("ab_test_outcome")
    assert (outcome["status"], outcome["traffic_percent"], outcome["rule"]) == ("rolled_back", 0.0,
                                                                               "significantly_worse")
    assert outcome["interval"][1] < 0
    assert aliases(client, "behavior") == {"champion": v1}  # challenger and ab-test-v2 removed
    assert client.get_model_version(registry.model_name("behavior"), v2).version == v2  # the version is kept
    assert tags(client, "behavior")["ab_challenger_traffic_percent"] == "0.0"
    (rollback,) = ledger(store, "behavior", "rollback")
    assert rollback["model_version"] == v2 and rollback["details"]["test_id"] == test["test_id"]
    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert [float(h["percent"]) for h in doc["traffic_history"]] == [10.0, 0.0]
    # the next look does not reopen a test for the rolled-back version
    assert check("behavior", 26).output_for_node("ab_test_outcome")["status"] == "rolled_back"
    assert store.count("ab_tests", {"specialist_type": "behavior"}) == 1


def test_a_test_opened_without_its_alias_row_gets_one_that_says_when_it_opened(world):
    """A test opened by a release that wrote no `ab-alias:` row (or whose opening run died before it): the
    next look records the row at its own time, and says when the test opened (it said "opened" at the look)."""
    store, client, model, check = world
    v1, v2 = model("behavior")
    champion_and_challenger(client, store, "behavior", v1, v2)
    test, _ = open_test(store, "behavior", v1, v2, 10.0, now=T0)  # the older release's opening: no row
    check("behavior", 12)
    (row,) = [r for r in ledger(store, "behavior", "alias_move") if r["details"]["alias"] == f"ab-test-v{v2}"]
    assert row["reason"].startswith(f"A/B test {test['test_id']} opened at 2026-03-02 09:00 UTC; recorded after")
    assert row["details"]["at"] == T0.isoformat()
    # and the alias's history starts at the opening, not at the row (`hive deploy history --at` said nobody)
    tenure = registry.holder_at(store, "behavior", T0 + timedelta(hours=1), alias=f"ab-test-v{v2}")
    assert tenure is not None and (tenure.version, tenure.since) == (str(v2), T0)


def test_a_superseded_test_closes_with_a_ledger_entry_and_its_alias_removed(world):
    store, client, model, check = world
    v1, v2, v3 = model("architecture", 3)
    champion_and_challenger(client, store, "architecture", v1, v2)
    check("architecture", 0)
    old = running_test(store, "architecture")
    # a newer version is registered as challenger (what registered_model_version does)
    registry.ensure_alias(client, store, "architecture", registry.CHALLENGER, v3, actor="test", reason="registered")
    outcome = check("architecture", 5).output_for_node("ab_test_outcome")
    assert outcome["challenger_version"] == v3 and outcome["status"] == "running"
    assert outcome["test_id"] == f"architecture_v{v3}_20260302_140000"
    doc = store.find_one("ab_tests", {"test_id": old["test_id"]})
    assert doc["status"] == "superseded" and doc["settled"]
    assert aliases(client, "architecture") == {"champion": v1, "challenger": v3, f"ab-test-v{v3}": v3}
    (closed,) = ledger(store, "architecture", "ab_test_closed")
    assert closed["details"]["test_id"] == old["test_id"] and closed["details"]["status"] == "superseded"
    assert tags(client, "architecture")["ab_test_id"] == outcome["test_id"]


@pytest.mark.parametrize("how", ["operator_promotion", "alias_moved_in_mlflow"])
def test_a_champion_moved_outside_the_test_stops_it_without_a_verdict(world, monkeypatch, how):
    """The test compares its challenger with the champion it opened against. An operator who promotes another
    version (or moves the alias in MLflow's UI) leaves the champion arm served by a model the counts are not
    about: the test kept running and could later "promote" against a model that no longer served. It is
    stopped instead: at once by the registry job, at the next look otherwise; the champion stays where the
    operator put it."""
    store, client, model, check = world
    # the ledger's rows and the looks on one clock: a promotion on a clock before the rows is refused
    monkeypatch.setenv("HIVE_SIMULATED_NOW", at(0).isoformat())
    v1, v2, v3 = model("evolution", 3)
    champion_and_challenger(client, store, "evolution", v1, v2)
    check("evolution", 0)
    test = running_test(store, "evolution")
    Traffic("evolution", champion_agreement=0.80, challenger_agreement=0.80, seed=3).serve(store, test, at(0), at(5))
    monkeypatch.setenv("HIVE_SIMULATED_NOW", at(5).isoformat())
    if how == "operator_promotion":
        result = build_defs().resolve_job_def("promote_model_version").execute_in_process(
            run_config={"ops": {"promote_op": {"config": {"specialist": "evolution", "model_version": v3,
                                                          "force": True, "reason": "hotfix"}}}},
            instance=dg.DagsterInstance.ephemeral())
        assert result.success
        assert result.output_for_node("promote_op")["ab_test_stopped"] == test["test_id"]
    else:
        client.set_registered_model_alias(registry.model_name("evolution"), registry.CHAMPION, v3)
        assert running_test(store, "evolution") is not None  # nothing here heard of it yet
        monkeypatch.setenv("HIVE_SIMULATED_NOW", at(6).isoformat())  # a look is never after the platform clock
        check("evolution", 6)
    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert doc["status"] == "stopped" and doc["settled"] and float(doc["traffic_percent"]) == 0.0
    assert doc["end_reason"] == (f"champion moved to v{v3} outside the test, which compared v{v2} with v{v1}: "
                                 f"stopped without a verdict, v{v3} stays champion")
    assert aliases(client, "evolution") == {"champion": v3}  # the challenger no longer routed
    t = tags(client, "evolution")
    assert (t["ab_test_status"], t["ab_challenger_traffic_percent"]) == ("stopped", "0.0")
    (closed,) = ledger(store, "evolution", "ab_test_closed")
    assert closed["details"] == {"test_id": test["test_id"], "status": "stopped", "at": closed["details"]["at"]}
    # later looks change nothing and open no test for the old challenger; the operator's champion stays
    monkeypatch.setenv("HIVE_SIMULATED_NOW", at(12).isoformat())
    assert check("evolution", 12).output_for_node("ab_test_outcome")["status"] == "stopped"
    assert store.count("ab_tests", {"specialist_type": "evolution"}) == 1
    assert aliases(client, "evolution") == {"champion": v3}
    assert not ledger(store, "evolution", "rollback") and len(ledger(store, "evolution", "promotion")) == (
        1 if how == "operator_promotion" else 0)


@pytest.mark.parametrize("how", ["version_deleted", "alias_removed", "alias_moved_to_the_champion"])
def test_a_challenger_deleted_or_unaliased_by_hand_stops_its_test(world, how):
    """An operator who deletes the version under test in MLflow: every look failed on the missing version
    ("Model Version not found"), hour after hour. One who removes its `challenger` alias by hand: serving
    stopped routing to it and the test ran on until the sample-ratio check rolled it back, days later. The
    next look stops the test instead, champion kept."""
    store, client, model, check = world
    v1, v2 = model("business")
    champion_and_challenger(client, store, "business", v1, v2)
    check("business", 0)
    test = running_test(store, "business")
    if how == "version_deleted":
        client.delete_model_version(registry.model_name("business"), v2)
        why = f"challenger v{v2} was deleted from the registry"
    elif how == "alias_removed":
        client.delete_registered_model_alias(registry.model_name("business"), registry.CHALLENGER)
        why = f"the challenger alias was removed from v{v2} outside the test"
    else:  # in MLflow's UI: `hive deploy alias` refuses it
        client.set_registered_model_alias(registry.model_name("business"), registry.CHALLENGER, v1)
        why = f"the challenger alias was moved to the champion from v{v2} outside the test"
    outcome = check("business", 6).output_for_node("ab_test_outcome")
    assert (outcome["test_id"], outcome["status"], outcome["traffic_percent"]) == (test["test_id"], "stopped", 0.0)
    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert doc["end_reason"].startswith(f"{why} (the test compared v{v2} with v{v1}")
    assert doc["end_reason"].endswith("stopped without a verdict")
    # an alias someone moved is left where they put it (the router never splits to the champion)
    assert aliases(client, "business") == {"champion": v1, **({"challenger": v1} if how.endswith("champion") else {})}
    assert tags(client, "business")["ab_test_status"] == "stopped"
    assert len(ledger(store, "business", "ab_test_closed")) == 1
    later = check("business", 12)
    assert later.output_for_node("ab_test_outcome")["status"] == "stopped"
    # every later look says how it ended, in the value (`hive ab-test check`) and in the UI's metadata
    assert later.output_for_node("ab_test_outcome")["end_reason"] == doc["end_reason"]
    assert later.asset_materializations_for_node("ab_test_outcome")[0].metadata["end_reason"].value == doc["end_reason"]


def test_a_challenger_alias_moved_to_a_version_tested_before_stops_the_running_test(world):
    """`hive deploy alias --alias challenger` to a version tested before (or `hive ab-test start` killed after
    its alias write): the look opens no second test of that version, so the running test went on with its
    challenger no longer served, expanding on old labels (audit, stop 51). The look stops it instead, and
    leaves the alias where the operator put it; `hive ab-test start` then tests that version again."""
    store, client, model, check = world
    v1, v2, v3 = model("behavior", 3)
    champion_and_challenger(client, store, "behavior", v1, v3)
    check("behavior", 0)
    earlier = running_test(store, "behavior")
    registry.ensure_alias(client, store, "behavior", registry.CHALLENGER, v2, actor="test", reason="setup")
    check("behavior", 1)  # v2 had no test: the look opens it, superseding v3's
    assert store.find_one("ab_tests", {"test_id": earlier["test_id"]})["status"] == "superseded"
    test = running_test(store, "behavior")
    assert test["challenger_version"] == v2
    client.set_registered_model_alias(registry.model_name("behavior"), registry.CHALLENGER, v3)  # tested before
    outcome = check("behavior", 6).output_for_node("ab_test_outcome")
    assert (outcome["test_id"], outcome["status"], outcome["traffic_percent"]) == (test["test_id"], "stopped", 0.0)
    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert doc["end_reason"].startswith(f"the challenger alias was moved to v{v3} outside the test (the test "
                                        f"compared v{v2} with v{v1}")
    assert f"a version tested before ({earlier['test_id']}, superseded)" in doc["end_reason"]
    assert aliases(client, "behavior") == {"champion": v1, "challenger": v3}
    assert tags(client, "behavior")["ab_test_status"] == "stopped"
    assert check("behavior", 12).output_for_node("ab_test_outcome")["status"] == "stopped"
    assert store.count("ab_tests", {"specialist_type": "behavior", "status": "running"}) == 0


KILLED_CHECK = textwrap.dedent("""
    import os, signal, sys
    from datetime import datetime, timedelta
    from hive_assets.data import SQLiteStore
    from hive_assets.rollout import RolloutPolicy, evaluate, record_decision_in_test, running_test

    store = SQLiteStore(sys.argv[1])
    now = datetime.fromisoformat(sys.argv[2])
    test = running_test(store, "evolution")
    decision, counts = evaluate(store, test, now, RolloutPolicy(label_maturity=timedelta(hours=6)))
    record_decision_in_test(store, test, decision, now, counts)
    print(decision.action, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # dies before the registry and the ledger hear of it
""")


def test_a_check_killed_mid_way_resumes_without_resetting_the_test(world, hive_home):
    store, client, model, check = world
    test = opened_test(world, "evolution")
    traffic = Traffic("evolution", champion_agreement=0.80, challenger_agreement=0.80, seed=3)
    traffic.serve(store, test, at(0), at(25))

    proc = subprocess.run([sys.executable, "-c", KILLED_CHECK, str(hive_home / "store.sqlite"), at(25).isoformat()],
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    assert proc.returncode == -signal.SIGKILL and proc.stdout.strip() == "expand", proc.stderr
    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert float(doc["traffic_percent"]) == 25.0  # the state write happened ...
    assert tags(client, "evolution")["ab_challenger_traffic_percent"] == "10.0"  # ... its effects did not
    assert len(ledger(store, "evolution", "traffic_step")) == 1

    # resume: a new process serves at the recorded traffic and looks again an hour later
    traffic.serve(store, running_test(store, "evolution"), at(25), at(26))
    outcome = check("evolution", 26).output_for_node("ab_test_outcome")
    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert outcome["test_id"] == test["test_id"] and to_utc(doc["started_at"]) == T0  # the clock was not reset
    assert outcome["traffic_percent"] == 25.0 and outcome["status"] == "running"
    assert [float(h["percent"]) for h in doc["traffic_history"]] == [10.0, 25.0]
    assert [to_utc(c["at"]) for c in doc["checks"]] == [at(0), at(25), at(26)]
    expected = traffic.expected(at(26), timedelta(hours=MATURITY_HOURS))
    for arm in ("champion", "challenger"):  # counts cover the whole test, not the time since the restart
        got = doc["checks"][-1]["statistics"][arm]
        assert {k: got[k] for k in ("served", "labelled", "agreements")} == expected[arm]
    assert tags(client, "evolution")["ab_challenger_traffic_percent"] == "25.0"
    steps = ledger(store, "evolution", "traffic_step")
    assert sorted(d["details"]["traffic_percent"] for d in steps) == [10.0, 25.0]  # written once, on resume


def test_a_look_at_a_time_before_the_latest_one_is_refused_and_records_nothing(world):
    store, client, model, check = world
    test = opened_test(world, "behavior")
    Traffic("behavior", champion_agreement=0.80, challenger_agreement=0.80, seed=4).serve(store, test, at(0), at(30))
    check("behavior", 30)
    before = store.find_one("ab_tests", {"test_id": test["test_id"]})
    rows = len(ledger(store, "behavior", "traffic_step"))
    # the home's clock pinned back (`hive clock pin`, or `hive ab-test check --now`): a look at hour 20 would
    # have been appended after hour 30's, with the counts of hour 20
    for hours in (20, -5):  # before the latest look; before the test's start
        result = build_defs().resolve_job_def("ab_test_check").execute_in_process(
            run_config={"ops": {"ab_test_outcome": {"config": {"now": at(hours).isoformat(),
                                                               "label_maturity_hours": MATURITY_HOURS}}}},
            instance=dg.DagsterInstance.ephemeral(), partition_key="behavior", raise_on_error=False)
        assert not result.success
        (failure,) = [e for e in result.get_step_failure_events()]
        description = failure.step_failure_data.user_failure_data.description
        assert f"before the latest look of A/B test {test['test_id']}" in description
        assert at(30).strftime("%Y-%m-%d %H:%M") in description and at(hours).strftime("%Y-%m-%d %H:%M") in description
    after = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert [c["at"] for c in after["checks"]] == [c["at"] for c in before["checks"]]
    assert after["traffic_percent"] == before["traffic_percent"]
    assert len(ledger(store, "behavior", "traffic_step")) == rows
    check("behavior", 30 - 2 / 60)  # 2 minutes behind: another host's clock, the same look (CLOCK_SKEW)
    assert len(store.find_one("ab_tests", {"test_id": test["test_id"]})["checks"]) == len(before["checks"])
    check("behavior", 31)  # forward again: looks go on
    assert [to_utc(c["at"]) for c in store.find_one("ab_tests", {"test_id": test["test_id"]})["checks"]][-1] == at(31)


def operator_verb(job: str, op: str, specialist: str, hours: float, **config) -> str | None:
    """Run an A/B operator job with `now` at hour `hours`: None when it succeeded, else its failure's text."""
    result = build_defs().resolve_job_def(job).execute_in_process(
        run_config={"ops": {op: {"config": {"specialist": specialist, "now": at(hours).isoformat(), **config}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    if result.success:
        return None
    (failure,) = result.get_step_failure_events()
    return failure.step_failure_data.user_failure_data.description


def test_an_operator_verb_at_a_time_before_the_test_s_history_is_refused_and_changes_nothing(world):
    """`hive ab-test expand --now` before the looks already taken put a traffic step behind them (the next
    look's sample-ratio check then rolled the test back), and a stop before the start ended the test before
    it began."""
    store, client, model, check = world
    v1, v2, v3 = model("architecture", 3)
    champion_and_challenger(client, store, "architecture", v1, v2)
    check("architecture", 0)
    test = running_test(store, "architecture")
    Traffic("architecture", champion_agreement=0.80, challenger_agreement=0.80, seed=6).serve(store, test, at(0),
                                                                                              at(30))
    check("architecture", 30)
    before = store.find_one("ab_tests", {"test_id": test["test_id"]})
    rows, registry_before = store.count("model_decisions"), (aliases(client, "architecture"), tags(client, "architecture"))
    refusals = {
        "expand": operator_verb("ab_test_expand", "expand_ab_test", "architecture", 20, traffic=60.0),
        "stop": operator_verb("ab_test_stop", "stop_ab_test", "architecture", -5),
    }
    assert refusals["expand"].startswith(f"architecture: an expand at {at(20):%Y-%m-%d %H:%M} UTC is before the "
                                         f"latest look of A/B test {test['test_id']} ({at(30):%Y-%m-%d %H:%M} UTC)")
    assert refusals["stop"] == (f"architecture: a stop at {at(-5):%Y-%m-%d %H:%M} UTC is before the latest look of "
                                f"A/B test {test['test_id']} ({at(30):%Y-%m-%d %H:%M} UTC): a test's history cannot "
                                "be rewritten; nothing was changed")
    assert store.find_one("ab_tests", {"test_id": test["test_id"]}) == before
    assert store.count("model_decisions") == rows
    assert (aliases(client, "architecture"), tags(client, "architecture")) == registry_before
    # two minutes behind the latest look: another host's clock, recorded at that look's instant
    assert float(before["traffic_percent"]) < 60.0
    assert operator_verb("ab_test_expand", "expand_ab_test", "architecture", 30 - 2 / 60, traffic=60.0) is None
    step = store.find_one("ab_tests", {"test_id": test["test_id"]})["traffic_history"][-1]
    assert (float(step["percent"]), to_utc(step["at"])) == (60.0, at(30))
    check("architecture", 31)  # the next look sees no mismatch the expand made
    assert running_test(store, "architecture")["test_id"] == test["test_id"]
    assert operator_verb("ab_test_stop", "stop_ab_test", "architecture", 31.5) is None
    assert store.find_one("ab_tests", {"test_id": test["test_id"]})["status"] == "stopped"
    # a new test opened a day back: before the one just stopped ended (its maximum duration mostly spent, its
    # start before the champion it compares with won)
    rows = store.count("model_decisions")
    start = dict(new_version=test["challenger_version"], force=True, reason="a replay")
    refused = operator_verb("ab_test_start", "start_ab_test", "architecture", 7.5, **start)
    assert refused == (f"architecture: a start at {at(7.5):%Y-%m-%d %H:%M} UTC is before the end of A/B test "
                       f"{test['test_id']} ({at(31.5):%Y-%m-%d %H:%M} UTC): a test's history cannot be rewritten; "
                       "nothing was changed")
    assert store.count("ab_tests") == 1 and store.count("model_decisions") == rows
    # within 5 minutes of that end (another host's clock): opened at the end, not before it
    assert operator_verb("ab_test_start", "start_ab_test", "architecture", 31.5 - 2 / 60, **start) is None
    reopened = running_test(store, "architecture")
    assert reopened["test_id"] != test["test_id"] and to_utc(reopened["started_at"]) == at(31.5)
    check("architecture", 33)
    # a start that would supersede the running test before its latest look is refused too
    assert operator_verb("ab_test_start", "start_ab_test", "architecture", 32, **{**start, "new_version": v3}) \
        .startswith(f"architecture: a start at {at(32):%Y-%m-%d %H:%M} UTC is before the latest look of A/B test "
                    f"{reopened['test_id']} ({at(33):%Y-%m-%d %H:%M} UTC)")
    assert running_test(store, "architecture")["test_id"] == reopened["test_id"]
    huge = operator_verb("ab_test_start", "start_ab_test", "architecture", 34, **{**start, "new_version": "9" * 12})
    assert huge == f"'{'9' * 12}' is not a model version: MLflow numbers versions up to 2,147,483,647"


def test_a_start_while_another_test_runs_is_refused_and_changes_nothing(world):
    """`hive ab-test start` of another version closed the running test as superseded ("challenger vN registered",
    which no registration did) at its last share, and said nothing; of the same version at another share it said
    "running" at the old share. Both are refused now; the same start again is still a no-op that succeeds."""
    store, client, model, check = world
    v1, v2, v3 = model("business", 3)
    champion_and_challenger(client, store, "business", v1, v2)
    check("business", 0)
    test = running_test(store, "business")
    before = (store.find_one("ab_tests", {"test_id": test["test_id"]}), aliases(client, "business"),
              tags(client, "business"), store.count("model_decisions"))
    forced = dict(force=True, reason="no gate verdict in this registry")
    other = operator_verb("ab_test_start", "start_ab_test", "business", 1, new_version=v3, traffic=5.0, **forced)
    assert other == (f"business-evaluator: A/B test {test['test_id']} of v{v2} is running at 10 %; stop it first "
                     f"(hive ab-test stop --specialist business --reason ...), then start v{v3}; nothing was changed")
    share = operator_verb("ab_test_start", "start_ab_test", "business", 1, new_version=v2, traffic=15.0, **forced)
    assert share.startswith(f"business-evaluator: A/B test {test['test_id']} of v{v2} is running already, at 10 %, "
                            "not 15 %: hive ab-test expand raises its share")
    after = (store.find_one("ab_tests", {"test_id": test["test_id"]}), aliases(client, "business"),
             tags(client, "business"), store.count("model_decisions"))
    assert after == before
    assert operator_verb("ab_test_start", "start_ab_test", "business", 1, new_version=v2, **forced) is None  # again
    assert operator_verb("ab_test_start", "start_ab_test", "business", 1, new_version=v2, traffic=10.0, **forced) \
        is None
    assert running_test(store, "business")["test_id"] == test["test_id"]


def test_an_expand_or_a_stop_cut_short_is_completed_by_the_same_command_again(world):
    """An expand or a stop whose run died after writing the test (MLflow down before the split's tags were
    mirrored) could not be run again: "traffic can only grow ... 25 % -> 25 %" and "no running A/B test", while
    serving kept the old share, or kept routing to the stopped test's challenger, until the next look."""
    from hive_assets.rollout import close_test, set_traffic

    store, client, model, check = world
    test = opened_test(world, "evolution")
    assert tags(client, "evolution")["ab_challenger_traffic_percent"] == "10.0"
    set_traffic(store, test, 25.0, at(1), "expanded by user:x", "user:x")  # the run died here
    assert tags(client, "evolution")["ab_challenger_traffic_percent"] == "10.0"
    for _ in range(2):  # the retry completes it; a repeat changes nothing
        assert operator_verb("ab_test_expand", "expand_ab_test", "evolution", 1, traffic=25.0) is None
        assert tags(client, "evolution")["ab_challenger_traffic_percent"] == "25.0"
        doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
        assert [float(h["percent"]) for h in doc["traffic_history"]] == [10.0, 25.0]
        assert sorted(float(d["details"]["traffic_percent"]) for d in ledger(store, "evolution", "traffic_step")) == [
            10.0, 25.0]

    close_test(store, running_test(store, "evolution"), "stopped", at(2), "wrong data")  # the run died here
    assert "challenger" in aliases(client, "evolution") and tags(client, "evolution")["ab_test_status"] == "running"
    for _ in range(2):
        assert operator_verb("ab_test_stop", "stop_ab_test", "evolution", 2) is None
        assert "challenger" not in aliases(client, "evolution")
        assert tags(client, "evolution")["ab_test_status"] == "stopped"
        assert len(ledger(store, "evolution", "ab_test_closed")) == 1
    assert store.find_one("ab_tests", {"test_id": test["test_id"]})["end_reason"] == "wrong data"
    # a stop cut short, then a new test of the same version: the old test's settle removed the challenger alias
    # the new test had kept, and the next look stopped the new test ("alias removed outside the test")
    start = dict(new_version=test["challenger_version"], force=True, reason="again")
    assert operator_verb("ab_test_start", "start_ab_test", "evolution", 3, **start) is None
    close_test(store, running_test(store, "evolution"), "stopped", at(4), "cut short")  # the run died here
    assert operator_verb("ab_test_start", "start_ab_test", "evolution", 5, **start) is None
    third = running_test(store, "evolution")
    assert to_utc(third["started_at"]) == at(5) and aliases(client, "evolution")["challenger"] == test["challenger_version"]
    check("evolution", 6)
    assert running_test(store, "evolution")["test_id"] == third["test_id"]
    assert tags(client, "evolution")["ab_test_id"] == third["test_id"]
    # the same window, then `hive deploy alias --alias challenger` of that version: the next settle removed it
    close_test(store, third, "stopped", at(7), "cut short")  # the run died here
    result = build_defs().resolve_job_def("set_model_alias").execute_in_process(
        run_config={"ops": {"alias_op": {"config": {"specialist": "evolution", "alias": "challenger",
                                                    "model_version": test["challenger_version"], "force": True,
                                                    "reason": "by hand"}}}},
        instance=dg.DagsterInstance.ephemeral())
    assert result.success and aliases(client, "evolution")["challenger"] == test["challenger_version"]
    check("evolution", 8)  # settles nothing more: the alias stays where the operator put it
    assert aliases(client, "evolution")["challenger"] == test["challenger_version"]
    assert tags(client, "evolution")["ab_test_status"] == "stopped"


def test_with_ab_testing_disabled_no_test_opens(world, monkeypatch):
    store, client, model, _ = world
    v1, v2 = model("business")
    champion_and_challenger(client, store, "business", v1, v2)
    monkeypatch.setenv("AB_TESTING_ENABLED", "false")
    result = build_defs().resolve_job_def("ab_test_check").execute_in_process(
        run_config={"ops": {"ab_test_outcome": {"config": {"now": at(0).isoformat()}}}},
        instance=dg.DagsterInstance.ephemeral(), partition_key="business")
    assert result.output_for_node("ab_test_outcome")["status"] == "no_test"
    assert store.count("ab_tests", {}) == 0
    assert f"ab-test-v{v2}" not in aliases(client, "business")


def test_no_test_opens_or_grows_to_100_percent_by_hand(hive_home):
    """At 100 % the champion arm is empty: a test opened there served the untested challenger alone until its
    maximum duration, 14 days later, with "insufficient data" at every look. Only a promotion takes traffic
    to 100; opening at it, or an operator's expand to it, is refused and writes nothing."""
    from hive_assets.rollout import open_test, set_traffic

    store = SQLiteStore(hive_home / "store.sqlite")
    with pytest.raises(ValueError, match=r"a test opens with a challenger share in \[0.0001, 100\) % .*, got 100"):
        open_test(store, "business", "1", "2", 100.0, now=at(0))
    assert store.count("ab_tests") == 0
    test, _ = open_test(store, "business", "1", "2", 10.0, now=at(0))
    with pytest.raises(ValueError, match=r"stays below 100 %.*10 % -> 100 % is not in \(10, 100\)"):
        set_traffic(store, test, 100.0, at(1), "expand", actor="test")
    assert float(running_test(store, "business")["traffic_percent"]) == 10.0
    assert float(set_traffic(store, test, 99.0, at(1), "expand", actor="test")["traffic_percent"]) == 99.0


def test_a_test_stopped_and_reopened_within_the_second_keeps_both_records(hive_home):
    """Ids are named after the opening second, and a simulated clock stands still within its hour: the reopened
    test overwrote the stopped one's record (its end and reason gone) and shared its ledger ids."""
    from hive_assets.rollout import close_test, open_test

    store = SQLiteStore(hive_home / "store.sqlite")
    first, _ = open_test(store, "business", "1", "2", 10.0, now=at(0))
    close_test(store, first, "stopped", at(0), "stopped by an operator")
    second, opened = open_test(store, "business", "1", "2", 10.0, now=at(0))
    assert opened and second["test_id"] == first["test_id"] + "_2" and second["salt"] != first["salt"]
    again, opened = open_test(store, "business", "1", "2", 10.0, now=at(0))  # a retry: the same test
    assert not opened and again["test_id"] == second["test_id"]
    kept = store.find_one("ab_tests", {"test_id": first["test_id"]})
    assert kept["status"] == "stopped" and kept["end_reason"] == "stopped by an operator"
    assert store.count("ab_tests") == 2 and running_test(store, "business")["test_id"] == second["test_id"]


def test_a_look_is_never_after_the_platform_clock_nor_at_an_unreadable_instant(world, monkeypatch):
    """`now` replays a look; one "next year" ended a test at its maximum duration while the ledger stamped the
    decision today, and "tomorrow" was a traceback."""
    store, client, model, _ = world
    v1, v2 = model("technical")
    champion_and_challenger(client, store, "technical", v1, v2)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", at(0).isoformat())
    for now, expected in ((at(24 * 400).isoformat(), "is after the platform clock"),
                          ("tomorrow", "now='tomorrow' is not an ISO-8601 instant")):
        result = build_defs().resolve_job_def("ab_test_check").execute_in_process(
            run_config={"ops": {"ab_test_outcome": {"config": {"now": now}}}},
            instance=dg.DagsterInstance.ephemeral(), partition_key="technical", raise_on_error=False)
        (failure,) = result.get_step_failure_events()
        description = failure.step_failure_data.user_failure_data.description
        assert not result.success and expected in description and "\n" not in description
    assert store.count("ab_tests", {"specialist_type": "technical"}) == 0  # no test opened, nothing decided
    assert not ledger(store, "technical", "traffic_step")


@pytest.mark.parametrize("field", ["label_maturity_hours", "max_duration_days"])
def test_a_look_refuses_a_zero_window_in_its_run_config(field):
    """0 h of label maturity freezes every label at its serving instant (no test could count one); 0 days of
    maximum ends every test at its first look. The environment refuses both; so does the run config."""
    from pydantic import ValidationError

    from hive_assets.defs.rollout.assets import AbTestOutcomeConfig

    with pytest.raises(ValidationError, match="greater than 0"):
        AbTestOutcomeConfig(**{field: 0})
    assert getattr(AbTestOutcomeConfig(**{field: 0.5}), field) == 0.5


def whole_graph_ab_step() -> dg.JobDefinition:
    """The A/B step as a whole-graph run runs it: a job of its own, not ab_test_check, so it takes the
    training lease (`lease_target`), and its decisions the operator lease too."""
    defs = build_defs()
    whole_graph = dg.define_asset_job("whole_graph", selection=["ab_test_outcome"],
                                      partitions_def=defs.resolve_assets_def("ab_test_outcome").partitions_def)
    return dg.Definitions(assets=list(defs.assets), jobs=[whole_graph], resources=defs.resources).resolve_job_def(
        "whole_graph")


def test_a_training_run_s_test_decisions_wait_for_an_operator_verb(world, monkeypatch):
    """A whole-graph run holds its specialist's training lease; the operator verbs (promote, rollback, A/B
    start/expand/stop) take the operator lease. The run's registry decisions (the registration's alias, the
    test it opens or judges) took no lease of the operator's, so they could interleave with a promotion or
    a rollback writing the same aliases. They now take the operator lease for their few seconds: while an
    operator holds it, they wait (HIVE_LEASE_WAIT_SECONDS), then fail naming the holder, having written
    nothing; the training lease is given back whatever happens."""
    from hive_assets import runs
    from hive_assets.defs.runs.lease import lease_target

    store, client, model, _ = world
    v1, v2 = model("evolution")
    champion_and_challenger(client, store, "evolution", v1, v2)
    job = whole_graph_ab_step()
    instance = dg.DagsterInstance.ephemeral()
    config = {"ops": {"ab_test_outcome": {"config": {"now": at(0).isoformat(), "label_maturity_hours": 6.0}}}}
    monkeypatch.setenv("HIVE_LEASE_WAIT_SECONDS", "0")
    operator, _ = runs.try_acquire(store, runs.OPERATOR, "evolution", "an-operator-rollback", ttl_seconds=600)
    before = aliases(client, "evolution")
    refused = job.execute_in_process(run_config=config, instance=instance, partition_key="evolution",
                                     raise_on_error=False)
    assert lease_target(refused.dagster_run) == (runs.TRAINING, "evolution")
    assert not refused.success
    failures = [e.event_specific_data.error.to_string() for e in refused.all_events if e.is_failure]
    assert any("another run of evolution holds it (run an-operator-rollback, operator run" in f
               for f in failures), failures
    assert running_test(store, "evolution") is None and aliases(client, "evolution") == before
    assert [d["owner_run_id"] for d in runs.held_leases(store)] == ["an-operator-rollback"]

    runs.release(store, operator, "the rollback ended")
    opened = job.execute_in_process(run_config=config, instance=instance, partition_key="evolution")
    assert opened.success and running_test(store, "evolution")["challenger_version"] == v2
    assert aliases(client, "evolution") == {**before, f"ab-test-v{v2}": v2}
    assert runs.held_leases(store) == []  # both leases given back


def test_decisions_that_fail_say_their_own_error_even_when_the_lease_cannot_be_released(world, monkeypatch):
    """The store went away while a training run's A/B step decided: its error (here from opening the test) is
    what the step reports; the lease's release failing too is a warning, and the lease goes stale."""
    import hive_assets.defs.rollout.assets as rollout_assets
    from hive_assets.defs.runs import lease as lease_module

    store, client, model, _ = world
    v1, v2 = model("architecture")
    champion_and_challenger(client, store, "architecture", v1, v2)
    job = whole_graph_ab_step()

    def store_gone(*args, **kwargs):
        raise RuntimeError("the store went away while opening the test")

    real_end = lease_module._Holder.end

    def end(holder, reason):
        if reason == "decisions failed":
            raise ConnectionError("cannot reach the store to release the lease")
        return real_end(holder, reason)

    monkeypatch.setattr(rollout_assets, "start_test", store_gone)
    monkeypatch.setattr(lease_module._Holder, "end", end)
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(run_config={"ops": {"ab_test_outcome": {"config": {"now": at(0).isoformat()}}}},
                                    instance=instance, partition_key="architecture", raise_on_error=False)
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "the store went away while opening the test" in failure.event_specific_data.error.to_string()
    assert "cannot reach the store" not in failure.event_specific_data.error.to_string()
    warned = [e.user_message for e in instance.all_logs(result.run_id) if "was not released" in e.user_message]
    assert warned and "the operator lease of architecture was not released" in warned[0]

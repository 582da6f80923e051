"""What a request may carry, on a real `mlflow server`: a `cognitive_ledger` entry is scored on its plan
(`plan_data`), and a plan collection would quarantine gets a clear error instead of a confident guess."""

from __future__ import annotations

import copy
import re
from datetime import timedelta

import numpy as np
import pytest

from hive_assets import clock, registry
from hive_assets.data import SQLiteStore
from hive_assets.features import features_frame
from hive_assets.serving import InvalidPlan, SpecialistRouter, opinion_document
from hive_assets.simulator import CORRUPTIONS, make_plans
from hive_assets.training import encode
from hive_assets_tests.serving.conftest import fresh, register

pytestmark = pytest.mark.services


def ledger_entry(plan: dict) -> dict:
    """The plan as `cognitive_ledger` stores it (SPEC section 2): a few fields beside the whole plan."""
    return {"plan_id": plan["plan_id"], "intent_id": plan["intent_id"], "version": 1,
            "execution_order": plan["execution_order"], "risk_score": plan["risk_score"],
            "risk_band": plan["risk_band"], "timestamp": plan["created_at"], "hash": "0" * 16,
            "plan_data": plan}


@pytest.fixture
def router(server, logged, hive_home):
    url, _ = server
    client = registry.client_for(url)
    fresh(client, "business")
    version = register(client, "business", logged["business"])
    registry.ensure_alias(client, SQLiteStore(hive_home / "store.sqlite"), "business", registry.CHAMPION, version,
                          actor="test", reason="setup")
    router = SpecialistRouter("business", url, refresh_interval=None)
    assert router.refresh()["champion_version"] == version
    yield router
    client.delete_registered_model(registry.model_name("business"))


def test_a_ledger_entry_is_scored_on_its_plan(router, models):
    plans = make_plans(12, seed=5)
    # the oracle: the registered model (the forest of the conftest) on the plans' own features
    expected = models["v"][0].estimator.predict_proba(encode(features_frame(plans)))
    for plan, probabilities in zip(plans, expected):
        opinion = router.evaluate(ledger_entry(plan))
        assert np.allclose([opinion.probabilities[c] for c in models["v"][0].classes_], probabilities)
        assert opinion == router.evaluate(plan)
    assert router.evaluate_many([ledger_entry(p) for p in plans]) == router.evaluate_many(plans)
    # its opinion document names the plan that was scored: the entry's top level named none (plan_id None,
    # which collection quarantines), or another plan than the one routed and scored
    entry = {**ledger_entry(plans[0]), "plan_id": "entry-level-id", "intent_id": "entry-level-intent"}
    doc = opinion_document(router.evaluate(entry), entry)
    assert (doc["plan_id"], doc["intent_id"]) == (plans[0]["plan_id"], plans[0]["intent_id"])
    assert doc["opinion"]["risk_score"] == plans[0]["risk_score"]


def test_a_plan_collection_would_quarantine_gets_a_clear_error(router):
    plans = make_plans(len(CORRUPTIONS), seed=6)
    corruptions = [c for c in CORRUPTIONS if c[0] == "cognitive_ledger"]
    assert corruptions
    for plan, (_, kind, reason, mutate) in zip(plans, corruptions):
        entry = copy.deepcopy(ledger_entry(plan))
        mutate(entry)  # the simulator's malformed documents, each with the reason collection records
        for request in (entry, entry["plan_data"]):
            with pytest.raises(InvalidPlan) as refused:
                router.evaluate(request)
            assert reason in [code for code, _ in refused.value.problems[0]], kind
            assert plan["plan_id"] in str(refused.value) and reason in str(refused.value)
    deep: list = []
    for _ in range(200):  # deeper than any document collection keeps (MAX_DEPTH)
        deep = [deep]
    task = {**plans[0]["tasks"][0], "parameters": {"filters": deep}}
    with pytest.raises(InvalidPlan) as refused:
        router.evaluate({**plans[0], "tasks": [task, *plans[0]["tasks"][1:]]})
    assert [code for code, _ in refused.value.problems[0]] == ["too_deep"]
    # served before, as collection kept them: a plan of negative length, a plan id that is an object
    for change, reason, detail in (({"estimated_total_duration_ms": -1}, "negative_duration", "< 0"),
                                   ({"plan_id": {"id": "p-1"}}, "wrong_type", "is not text")):
        with pytest.raises(InvalidPlan) as refused:
            router.evaluate({**plans[0], **change})
        assert [code for code, _ in refused.value.problems[0]] == [reason] and detail in str(refused.value)
    with pytest.raises(InvalidPlan, match=r"^a plan whose plan_id is not text \(int\) not evaluated: wrong_type"):
        router.evaluate({**plans[0], "plan_id": 5})  # it said "a plan without plan_id" of a plan that had one
    with pytest.raises(InvalidPlan, match="plan_id is missing"):
        router.evaluate({})
    for plan, detail in (({"plan_id": "p-1"}, "plan has no tasks field"), ({"plan_id": "p-1", "tasks": None},
                                                                         "tasks is null")):
        with pytest.raises(InvalidPlan) as refused:
            router.evaluate(plan)
        assert refused.value.problems == {0: [("missing_tasks", detail)]}
    for body in ("plan-1", ["plan-1"], None, 42):  # a request body that is not a JSON object: a bad request
        with pytest.raises(InvalidPlan) as refused:  # (a TypeError reached the service as a server error)
            router.evaluate(body)
        assert refused.value.problems == {0: [("not_a_document", f"a plan is a mapping, got {type(body).__name__}")]}


def test_a_batch_with_refused_plans_names_each_and_scores_none(router):
    plans = make_plans(5, seed=7)
    batch = [plans[0], {**plans[1], "tasks": "t0,t1"}, plans[2], {"plan_id": "p-x"}, ledger_entry(plans[4])]
    with pytest.raises(InvalidPlan) as refused:
        router.evaluate_many(batch)
    assert set(refused.value.problems) == {1, 3}
    assert "2 plans" in str(refused.value) and plans[1]["plan_id"] in str(refused.value)
    assert [c for c, _ in refused.value.problems[3]] == ["missing_tasks"]
    with pytest.raises(InvalidPlan) as refused:
        router.evaluate_many([plans[0], "p-2", plans[2]])
    assert list(refused.value.problems) == [1] and refused.value.problems[1][0][0] == "not_a_document"
    # not a batch: one plan (its keys were taken for plans), a string (its characters), None
    for body, said in ((plans[0], "got dict: evaluate(plan) scores one plan"), ("abc", "got str"),
                       (None, "got NoneType")):
        with pytest.raises(TypeError, match=f"^evaluate_many takes a list of plans, {re.escape(said)}$"):
            router.evaluate_many(body)
    assert len(router.evaluate_many(iter(plans[:2]))) == 2 and router.evaluate_many(()) == []


def test_a_plan_is_served_whatever_its_created_at_says(router, hive_home):
    # collection refuses a plan stamped after its clock; a service judges the plan it is asked about now
    plan = make_plans(1, seed=8)[0]
    later = {**plan, "created_at": (clock.now() + timedelta(days=3)).isoformat()}
    assert router.evaluate(later).probabilities == router.evaluate(plan).probabilities


@pytest.mark.parametrize("arguments", [{"refresh_interval": "30"}, {"refresh_interval": True},
                                       {"refresh_interval": float("inf")}, {"refresh_interval": 0},
                                       {"refresh_interval": 1e10}, {"refresh_interval": 10 ** 400},
                                       {"max_staleness": "5"}, {"max_staleness": 10 ** 400}, {"wait": "5"},
                                       {"wait": -1}, {"wait": 1e10}])
def test_a_timing_that_is_not_a_finite_number_of_seconds_is_refused(tmp_path, monkeypatch, arguments):
    """"30" was a TypeError from a comparison, True refreshed every second, infinity (and any interval beyond
    threading.TIMEOUT_MAX, ~292 years) killed the refresh thread on its first sleep while health() stayed
    healthy, "5" as max_staleness made every health() raise, and 10**400 was an OverflowError."""
    monkeypatch.chdir(tmp_path)
    name = next(iter(arguments))
    with pytest.raises(ValueError, match=f"^{name} must be a finite number of seconds"):
        SpecialistRouter("business", "http://127.0.0.1:9", **{"refresh_interval": None, "wait": 0, **arguments})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tracking_uri", ["", "  "])
def test_an_empty_tracking_uri_is_refused_rather_than_taken_for_mlflow_s_default(tmp_path, monkeypatch, tracking_uri):
    # MLflow took "" for a new mlflow.db in the service's working directory: no model, "no registered model"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="tracking_uri is empty"):
        SpecialistRouter("business", tracking_uri, refresh_interval=None)
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_registry_that_does_not_exist_is_not_created(tmp_path, monkeypatch):
    """A mistyped path (`mlfow.db`, a missing directory) made MLflow create an empty registry there, directories
    included, and the router said "no registered model", reachable, for ever."""
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "typo-dir" / "mlfow.db"
    router = SpecialistRouter("business", f"sqlite:///{typo}", refresh_interval=None)
    health = router.refresh()
    assert not health["ready"] and not health["healthy"]
    assert health["ab_reason"].startswith(f"no MLflow database at {typo}")
    assert list(tmp_path.iterdir()) == []


def test_a_service_in_production_mode_needs_only_the_registry_s_url(tmp_path, monkeypatch):
    """tracking_uri=None under HIVE_ENV=production asked for the platform's MONGODB_URI and HIVE_ASSET_STORAGE,
    which a specialist service does not have."""
    monkeypatch.chdir(tmp_path)
    for name in ("MONGODB_URI", "HIVE_ASSET_STORAGE", "MLFLOW_TRACKING_URI", "HIVE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HIVE_ENV", "production")
    with pytest.raises(ValueError, match="^HIVE_ENV=production refuses the embedded defaults: MLFLOW_TRACKING_URI "
                                         "is not set$"):
        SpecialistRouter("business", refresh_interval=None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI must be an http"):
        SpecialistRouter("business", refresh_interval=None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert SpecialistRouter("business", refresh_interval=None).tracking_uri == "http://127.0.0.1:9"
    assert list(tmp_path.iterdir()) == []

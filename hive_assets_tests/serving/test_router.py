"""`SpecialistRouter` under change and failure, on a real `mlflow server`: the controller expands and then
rolls back a test while threads serve continuously; the server is stopped and restarted mid-traffic; a
challenger whose artifact is truncated, and a model on another feature schema, never reach a request."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hive_assets import registry
from hive_assets.data import SQLiteStore
from hive_assets.rollout import RolloutPolicy, check_test, start_test
from hive_assets.routing import CHALLENGER, CHAMPION, bucket
from hive_assets.serving import SpecialistRouter, opinion_document
from hive_assets.simulator import make_plans
from hive_assets_tests.rollout.ab_world import Traffic
from hive_assets_tests.serving.conftest import artifact_files, fresh, log, register
from hive_assets_tests.tcp_forwarder import TcpForwarder

pytestmark = pytest.mark.services

T0 = datetime(2026, 4, 6, 8, 0, tzinfo=timezone.utc)
INTERVAL = 0.5  # seconds between refreshes
POLICY = RolloutPolicy(second_after=timedelta(hours=1), min_labelled_per_arm=20, label_maturity=timedelta(hours=1),
                       mixture_sd=0.1)


@dataclass(frozen=True)
class Request:
    started: float   # time.monotonic()
    intent_id: str
    test_id: str | None
    arm: str | None
    version: str


class Load:
    """`threads` threads calling `router.evaluate` on `plans` round-robin until stopped; every answer and
    every exception is kept."""

    def __init__(self, router: SpecialistRouter, plans: list[dict], threads: int = 2):
        self.router, self.plans = router, plans
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.none = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, args=(k,), daemon=True) for k in range(threads)]

    def _serve(self, k: int) -> None:
        i = k
        while not self._stop.is_set():
            plan = self.plans[i % len(self.plans)]
            i += len(self._threads)
            started = time.monotonic()
            try:
                opinion = self.router.evaluate(plan)
            except BaseException as exc:  # recorded: the test asserts there are none
                self.errors.append(exc)
                continue
            if opinion is None:
                self.none += 1
                continue
            self.requests.append(Request(started, plan["intent_id"], opinion.ab_test_id, opinion.ab_arm,
                                         opinion.model_version))

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def since(self, t: float) -> list[Request]:
        return [r for r in list(self.requests) if r.started >= t]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def version_of_its_own(client, url: str, root, specialist: str, model) -> tuple[str, Path]:
    """A version of `specialist` logged from `model` with artifacts of its own (a test may damage them, no
    other test's), and its stored estimator file."""
    logged_here = log(url, model)
    (estimator,) = [p for p in artifact_files(root, logged_here.model_id) if p.name == "estimator.skops"]
    return register(client, specialist, logged_here), estimator


def two_versions(client, store, specialist: str, logged, champion="business", challenger="technical"):
    fresh(client, specialist)
    v1, v2 = register(client, specialist, logged[champion]), register(client, specialist, logged[challenger])
    registry.ensure_alias(client, store, specialist, registry.CHAMPION, v1, actor="test", reason="setup")
    registry.ensure_alias(client, store, specialist, registry.CHALLENGER, v2, actor="test", reason="setup")
    return v1, v2


def test_the_controller_s_expansion_and_rollback_are_served_within_one_refresh(server, logged, hive_home):
    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    v1, v2 = two_versions(client, store, "architecture", logged)
    test, _, _ = start_test(client, store, "architecture", v1, v2, 10.0, T0, actor="test")
    plans = make_plans(200, seed=3)
    # the intents that change arm when traffic goes 10 -> 25 %: they tell which split served a request
    moving = {p["intent_id"] for p in plans if 10.0 <= bucket(test["salt"], p["intent_id"]) < 25.0}
    assert len(moving) >= 15
    # labelled traffic the controller decides on (equal arms, then a much worse challenger)
    traffic = Traffic("architecture", champion_agreement=0.8, challenger_agreement=0.8, rate_per_hour=600, seed=4)

    router = SpecialistRouter("architecture", url, refresh_interval=INTERVAL, wait=120)
    try:
        assert router.health()["ab_challenger_traffic_percent"] == 10.0
        with Load(router, plans) as load:
            wait_for(lambda: len(load.requests) > 50, 120, "requests")
            traffic.serve(store, test, T0, T0 + timedelta(hours=2))
            expand_started = time.monotonic()
            result = check_test(client, store, "architecture", T0 + timedelta(hours=2), POLICY, actor="test")
            expanded = time.monotonic()
            assert (result.decision.action, result.test["traffic_percent"]) == ("expand", 25.0), result.decision.reason
            wait_for(lambda: len(load.since(expanded + INTERVAL + 1.0)) > 50, 120, "requests after the expansion")

            traffic.challenger_agreement = 0.2
            traffic.serve(store, result.test, T0 + timedelta(hours=2), T0 + timedelta(hours=4))
            rollback_started = time.monotonic()
            result = check_test(client, store, "architecture", T0 + timedelta(hours=4), POLICY, actor="test")
            rolled_back = time.monotonic()
            assert result.test["status"] == "rolled_back", result.decision.reason
            wait_for(lambda: len(load.since(rolled_back + INTERVAL + 1.0)) > 50, 120, "requests after the rollback")
        assert not load.errors and load.none == 0
        requests = load.requests

        def new_split(r: Request) -> bool:  # served at 25 %: a moving intent in the challenger arm
            return r.intent_id in moving and r.arm == CHALLENGER

        # before the look nobody was served at 25 %; one interval (+ the refresh's own time, < 1 s even on
        # a loaded machine) after it everybody was
        assert not any(new_split(r) for r in requests if r.started < expand_started)
        first = min(r.started for r in requests if new_split(r))
        stale = [r for r in requests if expanded + INTERVAL + 1.0 <= r.started < rollback_started
                 and r.intent_id in moving and not new_split(r)]
        assert not stale and first - expanded < INTERVAL + 1.0
        # the rollback: not one challenger opinion, nor an opinion tagged with the closed test, after the bound
        assert all(r.test_id == test["test_id"] for r in requests if r.started < rollback_started)
        after = [r for r in requests if r.started >= rolled_back + INTERVAL + 1.0]
        assert after and {(r.test_id, r.arm, r.version) for r in after} == {(None, None, v1)}
        untagged = min(r.started for r in requests if r.test_id is None)
        assert untagged - rolled_back < INTERVAL + 1.0
        # every opinion came from the version of its arm
        assert all(r.version == (v2 if r.arm == CHALLENGER else v1) for r in requests)
        health = router.health()
        assert health["healthy"] and not health["ab_routing"] and "rolled_back" in health["ab_reason"]
    finally:
        router.close()
    client.delete_registered_model(registry.model_name("architecture"))


def test_no_request_fails_while_the_mlflow_server_is_stopped_and_restarted(serving_server, server, logged,
                                                                           hive_home, monkeypatch, caplog):
    url, _ = server
    # what a pod sets: a refresh fails fast instead of retrying for minutes (it never blocks a request)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    v1, v2 = two_versions(client, store, "evolution", logged)
    test, _, _ = start_test(client, store, "evolution", v1, v2, 50.0, T0, actor="test")
    caplog.set_level(logging.WARNING, logger="hive_assets.serving")

    router = SpecialistRouter("evolution", url, refresh_interval=0.3, max_staleness=2.0, wait=120)
    try:
        assert router.health()["healthy"]
        with Load(router, make_plans(100, seed=5)) as load:
            wait_for(lambda: len(load.requests) > 20, 60, "requests")
            serving_server.stop()
            stopped = time.monotonic()
            wait_for(lambda: not router.health()["registry_reachable"], 60, "the outage to show in health()")
            health = router.health()
            assert not health["healthy"] and health["ready"] and health["registry_error"]
            time.sleep(2.5)  # several failed refreshes: still one warning line
            assert not router.health()["healthy"]
            serving_server.start()
            restarted = time.monotonic()
            wait_for(lambda: router.health()["healthy"], 60, "recovery after the restart")
            recovered = time.monotonic()
            wait_for(lambda: len(load.since(recovered)) > 20, 60, "requests after the recovery")
        assert not load.errors and load.none == 0
        during = [r for r in load.requests if stopped <= r.started < restarted]
        assert len(during) > 20
        # the outage served the last good state: both versions, tagged with the running test
        assert {(r.test_id, r.version) for r in during} == {(test["test_id"], v1), (test["test_id"], v2)}
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len([w for w in warnings if "unreachable" in w]) == 1, warnings
        assert any("reachable again" in w for w in warnings)
    finally:
        router.close()
        serving_server.start()
    client.delete_registered_model(registry.model_name("evolution"))


def test_a_challenger_that_does_not_load_leaves_the_champion_serving(server, models, logged, hive_home, caplog,
                                                                     monkeypatch):
    url, root = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "technical")
    v1 = register(client, "technical", logged["business"])
    v2, estimator = version_of_its_own(client, url, root, "technical", models["v"][1])
    intact = estimator.read_bytes()
    estimator.write_bytes(intact[: len(intact) // 2])  # after registration, which records its checksums
    registry.ensure_alias(client, store, "technical", registry.CHAMPION, v1, actor="test", reason="setup")
    registry.ensure_alias(client, store, "technical", registry.CHALLENGER, v2, actor="test", reason="setup")
    test, _, _ = start_test(client, store, "technical", v1, v2, 50.0, T0, actor="test")
    caplog.set_level(logging.WARNING, logger="hive_assets.serving")

    router = SpecialistRouter("technical", url, refresh_interval=None)
    health = router.refresh()
    assert health["ready"] and not health["healthy"] and not health["ab_routing"]
    assert health["champion_version"] == v1 and list(health["failed_versions"]) == [v2]
    plans = make_plans(60, seed=6)
    opinions = [router.evaluate(p) for p in plans]
    arms = {p["intent_id"]: CHALLENGER if bucket(test["salt"], p["intent_id"]) < 50.0 else CHAMPION for p in plans}
    assert {o.model_version for o in opinions} == {v1}
    # champion-arm units keep their tags; the challenger arm's units are served by the champion, outside
    # the test (tagging them either arm would bias the tally; the SRM check sees the missing arm)
    for plan, o in zip(plans, opinions):
        assert (o.ab_test_id, o.ab_arm) == ((test["test_id"], CHAMPION) if arms[plan["intent_id"]] == CHAMPION
                                            else (None, None))
    router.refresh()  # tried again, still failing: no second warning
    assert len([r for r in caplog.records if "does not load" in r.getMessage()]) == 1

    # every try downloads the artifacts again: after 1, 2, 4, 8, then every 16 refreshes, not at each one
    tried: list[int] = []
    real_load = registry.load_version_model

    def counted(client, mv):
        tried.append(router.health()["refreshes"])  # during a refresh: its number, counted from 0
        return real_load(client, mv)

    monkeypatch.setattr(registry, "load_version_model", counted)
    for _ in range(40):
        router.refresh()
    schedule, n, gap = [], 1, 2  # tries so far: at refreshes 0 and 1 (numbered from 0); the next gap is 2
    while n + gap < 42:
        n += gap
        schedule.append(n)
        gap = min(2 * gap, 16)
    assert tried == schedule == [3, 7, 15, 31]
    health = router.health()
    assert list(health["failed_versions"]) == [v2] and health["failed_versions_retry_in"] == {v2: 47 - 42 + 1}
    estimator.write_bytes(intact)  # repaired in place: served at its next try, no restart
    for _ in range(health["failed_versions_retry_in"][v2]):
        health = router.refresh()
    assert health["failed_versions"] == {} and health["healthy"] and health["ab_routing"]
    assert health["challenger_version"] == v2 and tried[-1] == 47
    client.delete_registered_model(registry.model_name("technical"))


def test_a_model_on_another_feature_schema_is_refused(server, models, logged, hive_home):
    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "business")
    router = SpecialistRouter("business", url, refresh_interval=None)
    health = router.refresh()
    assert not health["ready"] and router.evaluate(make_plans(1, seed=1)[0]) is None  # nothing registered yet
    good = register(client, "business", logged["business"])
    registry.ensure_alias(client, store, "business", registry.CHAMPION, good, actor="test", reason="setup")
    assert router.refresh()["champion_version"] == good
    # the version tag says 0.9.0: refused before anything is downloaded ...
    tagged = register(client, "business", log(url, models["old_schema"]), {"feature_schema_version": "0.9.0"})
    registry.ensure_alias(client, store, "business", registry.CHAMPION, tagged, actor="test", reason="push")
    health = router.refresh()
    assert health["champion_version"] == good and not health["healthy"]
    assert "trained on feature schema 0.9.0" in health["failed_versions"][tagged]
    # ... and without the tag, when the stored model's schema is read at load
    client.delete_model_version_tag(registry.model_name("business"), tagged, "feature_schema_version")
    health = router.refresh()
    assert health["champion_version"] == good and "model at " in health["failed_versions"][tagged]
    assert "0.9.0" in health["failed_versions"][tagged]
    assert router.evaluate(make_plans(1, seed=1)[0]).model_version == good
    # the registry back on a version that loads: healthy again (a failure once seen stayed until a restart)
    registry.ensure_alias(client, store, "business", registry.CHAMPION, good, actor="test", reason="back")
    health = router.refresh()
    assert health["healthy"] and health["failed_versions"] == {}
    client.delete_registered_model(registry.model_name("business"))


def test_an_unreadable_split_tag_keeps_the_last_split_and_is_not_healthy(server, logged, hive_home, caplog):
    """A running test's traffic tag that cannot be read ended the routing without a word while health() said
    healthy: the last good split keeps serving, one warning is logged, and health() says what is wrong."""
    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    v1, v2 = two_versions(client, store, "evolution", logged)
    test, _, _ = start_test(client, store, "evolution", v1, v2, 30.0, T0, actor="test")
    router = SpecialistRouter("evolution", url, refresh_interval=None)
    health = router.refresh()
    assert health["healthy"] and health["ab_routing"] and health["ab_split_error"] is None
    caplog.set_level(logging.WARNING, logger="hive_assets.serving")
    name = registry.model_name("evolution")
    client.set_registered_model_tag(name, "ab_challenger_traffic_percent", "30%")
    for _ in range(2):
        health = router.refresh()
        assert health["ab_routing"] and health["challenger_version"] == v2 and not health["healthy"]
        assert health["ab_split_error"].startswith("unreadable ab_challenger_traffic_percent='30%'")
    plans = make_plans(80, seed=9)
    arms = {o.ab_arm for o in (router.evaluate(p) for p in plans)}
    assert arms == {CHAMPION, CHALLENGER}  # still split, both arms tagged
    assert len([r for r in caplog.records if "unreadable" in r.getMessage()]) == 1
    client.set_registered_model_tag(name, "ab_challenger_traffic_percent", "30.0")
    health = router.refresh()
    assert health["healthy"] and health["ab_routing"] and health["ab_split_error"] is None
    # unreadable again, then the test closes as a rollback starts one (the challenger alias removed first):
    # the last split served on, v2 given 30 % of the units under the closed test's id
    for traffic in ("150", "nan"):
        client.set_registered_model_tag(name, "ab_challenger_traffic_percent", traffic)
        health = router.refresh()
        assert health["ab_routing"] and health["ab_challenger_traffic_percent"] == 30.0 and not health["healthy"]
    client.delete_registered_model_alias(name, registry.CHALLENGER)
    health = router.refresh()
    assert not health["ab_routing"] and health["ab_split_error"] is None and "not on v" in health["ab_reason"]
    assert {(o.ab_test_id, o.ab_arm, o.model_version) for o in router.evaluate_many(plans)} == {(None, None, v1)}
    client.delete_registered_model(name)


def test_a_ledger_entry_whose_plan_has_no_intent_is_routed_by_the_entry_s(server, logged, hive_home):
    """The router routed by `plan_data.intent_id` only, while collection takes the entry's top-level
    `intent_id` when the plan has none: such units were served outside the test, and their opinion
    documents had no intent_id."""
    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    v1, v2 = two_versions(client, store, "behavior", logged)
    test, _, _ = start_test(client, store, "behavior", v1, v2, 50.0, T0, actor="test")
    router = SpecialistRouter("behavior", url, refresh_interval=None)
    assert router.refresh()["ab_routing"]
    plans = make_plans(60, seed=11)
    entries = [{"plan_id": p["plan_id"], "intent_id": p["intent_id"],
                "plan_data": {k: v for k, v in p.items() if k != "intent_id"}} for p in plans]
    opinions = router.evaluate_many(entries)
    # the arm each intent's bucket gives at 50 % (routing.bucket: the salted hash, in [0, 100))
    expected = [CHALLENGER if bucket(test["salt"], p["intent_id"]) < 50.0 else CHAMPION for p in plans]
    assert [(o.ab_test_id, o.ab_arm) for o in opinions] == [(test["test_id"], arm) for arm in expected]
    assert {CHAMPION, CHALLENGER} == set(expected)
    assert [router.evaluate(e).ab_arm for e in entries] == expected
    assert [opinion_document(o, e)["intent_id"] for o, e in zip(opinions, entries)] == [p["intent_id"] for p in plans]
    client.delete_registered_model(registry.model_name("behavior"))


def test_a_champion_removed_from_the_registry_keeps_serving_but_is_not_healthy(server, logged, hive_home, caplog):
    # by hand in the MLflow UI: the alias deleted, or its version; the pod serves its last good model and said
    # healthy, while a new pod would have nothing to serve and the platform sees no champion
    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "behavior")
    v1 = register(client, "behavior", logged["behavior"])
    registry.ensure_alias(client, store, "behavior", registry.CHAMPION, v1, actor="test", reason="setup")
    router = SpecialistRouter("behavior", url, refresh_interval=None)
    health = router.refresh()
    assert health["healthy"] and health["registry_champion_version"] == v1
    caplog.set_level(logging.WARNING, logger="hive_assets.serving")
    client.delete_registered_model_alias(registry.model_name("behavior"), registry.CHAMPION)
    health = router.refresh()
    assert health["ready"] and not health["healthy"]
    assert health["champion_version"] == v1 and health["registry_champion_version"] is None
    assert router.evaluate(make_plans(1, seed=2)[0]).model_version == v1
    assert [r.getMessage() for r in caplog.records if "alias champion" in r.getMessage()] == [
        f"behavior: alias champion is not set; serving last good v{v1}"]
    client.set_registered_model_alias(registry.model_name("behavior"), registry.CHAMPION, v1)
    assert router.refresh()["healthy"]
    # the failure's end is logged as its start was (README: "one when it ends")
    assert [r.getMessage() for r in caplog.records if "alias champion set again" in r.getMessage()] == [
        f"behavior: alias champion set again (v{v1})"]
    client.delete_model_version(registry.model_name("behavior"), v1)  # deleting the version drops its alias
    health = router.refresh()
    assert health["ready"] and not health["healthy"] and health["registry_champion_version"] is None
    client.delete_registered_model(registry.model_name("behavior"))


def test_a_router_on_a_url_whose_password_holds_a_slash_shows_no_part_of_it(monkeypatch, caplog):
    # `user:1/s3cret-pw@host`: urlsplit's host is `localhost`, port 1, so the credentials stayed in the URI
    # MLflow was given, and its error quoted it ("API request to http://localhost:1/s3cret-pw@...")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    router = SpecialistRouter("business", "http://localhost:1/s3cret-pw@mlflow.internal:5000", refresh_interval=None)
    health = router.refresh()
    assert not health["registry_reachable"] and "an '@' after its host" in health["registry_error"]
    assert "s3cret-pw" not in str(health) + caplog.text + repr(router)


def test_an_unexpected_refresh_failure_is_logged_with_its_traceback_redacted(monkeypatch, caplog):
    def broken(self):
        raise RuntimeError("cannot read http://hive:s3cret-pw@mlflow.internal:5000/api")

    monkeypatch.setattr(SpecialistRouter, "_refresh", broken)
    caplog.set_level(logging.ERROR, logger="hive_assets.serving")
    router = SpecialistRouter("business", "http://mlflow.internal:5000", refresh_interval=30, wait=10)
    try:
        [record] = [r for r in caplog.records if "refresh failed unexpectedly" in r.getMessage()]
    finally:
        router.close()
    assert "Traceback (most recent call last)" in record.getMessage() and "in broken" in record.getMessage()
    assert "hive:***@mlflow.internal:5000" in record.getMessage()
    assert "s3cret-pw" not in caplog.text and record.exc_info is None  # no unredacted copy for a handler to print


def test_a_router_says_refused_not_unreachable(mlflow_server, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = mlflow_server.replace("http://", "http://hive:s3cret-pw@") + "/not/mlflow"
    router = SpecialistRouter("business", uri, refresh_interval=None)
    assert "s3cret-pw" not in router.tracking_uri + repr(router) and "hive:***@" in router.tracking_uri
    health = router.refresh()
    assert not health["registry_reachable"] and health["registry_error"].startswith("refused: HTTP 404: no MLflow API")
    assert any("model registry refused the request (HTTP 404" in r.getMessage() for r in caplog.records)
    assert "s3cret-pw" not in str(health) + caplog.text


def test_a_test_whose_champion_does_not_load_here_tags_no_unit(server, models, logged, hive_home, caplog):
    """The registry's champion v2 fails its checksum on this pod, which keeps serving v1; a test of v3 against v2
    runs. Its champion-arm units were tagged `ab_arm champion` though v1 answered them: the tally counted v1's
    agreement as v2's (audit, stop 53). No unit is tagged until v2 loads; then the test is served again."""
    url, root = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "architecture")
    v1 = register(client, "architecture", logged["business"])
    v2, estimator = version_of_its_own(client, url, root, "architecture", models["v"][2])
    v3 = register(client, "architecture", logged["technical"])
    registry.ensure_alias(client, store, "architecture", registry.CHAMPION, v1, actor="test", reason="setup")
    router = SpecialistRouter("architecture", url, refresh_interval=None)
    assert router.refresh()["champion_version"] == v1
    intact = estimator.read_bytes()
    estimator.write_bytes(intact[: len(intact) // 2])
    registry.ensure_alias(client, store, "architecture", registry.CHAMPION, v2, actor="test", reason="promoted")
    registry.ensure_alias(client, store, "architecture", registry.CHALLENGER, v3, actor="test", reason="setup")
    test, _, _ = start_test(client, store, "architecture", v2, v3, 40.0, T0, actor="test")
    caplog.set_level(logging.WARNING, logger="hive_assets.serving")
    health = router.refresh()
    assert (health["champion_version"], health["registry_champion_version"]) == (v1, v2) and not health["healthy"]
    assert health["ab_test_id"] is None and not health["ab_routing"]
    plans = make_plans(200, seed=8)
    opinions = router.evaluate_many(plans)
    assert {(o.model_version, o.ab_test_id, o.ab_arm) for o in opinions} == {(v1, None, None)}
    assert [r.getMessage() for r in caplog.records if "not served" in r.getMessage()] == [
        f"architecture: A/B test {test['test_id']} not served: its champion v{v2} is not loaded here; serving "
        f"v{v1} to every unit, untagged"]

    estimator.write_bytes(intact)  # repaired: loaded at its next try
    for _ in range(2):
        health = router.refresh()
    assert health["healthy"] and health["ab_routing"] and health["champion_version"] == v2
    arms = {p["intent_id"]: CHALLENGER if bucket(test["salt"], p["intent_id"]) < 40.0 else CHAMPION for p in plans}
    for plan, o in zip(plans, router.evaluate_many(plans)):
        arm = arms[plan["intent_id"]]
        assert (o.model_version, o.ab_test_id, o.ab_arm) == ({CHAMPION: v2, CHALLENGER: v3}[arm], test["test_id"], arm)
    assert any("champion v%s loaded: A/B tests are served again" % v2 in r.getMessage() for r in caplog.records)
    client.delete_registered_model(registry.model_name("architecture"))


def test_a_version_no_longer_served_is_freed(server, logged, hive_home):
    """The process's cache of loaded versions kept every version a router had served (up to 32): each promotion
    left one more model in a long-lived pod's memory (audit, stop 53). The router releases what it stops serving."""
    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "evolution")
    versions = [register(client, "evolution", logged[p]) for p in ("business", "technical", "behavior")]
    router = SpecialistRouter("evolution", url, refresh_interval=None)
    served = []
    for v in versions:
        registry.ensure_alias(client, store, "evolution", registry.CHAMPION, v, actor="test", reason="promoted")
        assert router.refresh()["champion_version"] == v
        mv = client.get_model_version(registry.model_name("evolution"), v)
        served.append(weakref.ref(registry.load_version_model(client, mv)))  # the cached object the router loaded
    gc.collect()
    assert [ref() is not None for ref in served] == [False, False, True]  # only the champion's is still held
    client.delete_registered_model(registry.model_name("evolution"))


def _in_a_forked_child(body) -> int:
    """Fork; the child runs `body()` (True: exit 0) and exits at once; returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        code = 1
        try:
            code = 0 if body() else 1
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_forked_child_serves_the_registry_s_decisions_too(server, logged, hive_home):
    """gunicorn --preload, uWSGI without lazy-apps, multiprocessing's fork: only the forking thread survives a
    fork, so the child served the parent's champion for ever, still `ready` (audit, stop 53). It refreshes in
    its own thread; and a refresh running at the fork (its lock held) does not block the child's."""
    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "business")
    v1, v2 = register(client, "business", logged["business"]), register(client, "business", logged["technical"])
    registry.ensure_alias(client, store, "business", registry.CHAMPION, v1, actor="test", reason="setup")
    router = SpecialistRouter("business", url, refresh_interval=INTERVAL, wait=30)
    plan = make_plans(1, seed=4)[0]
    try:
        assert router.evaluate(plan).model_version == v1

        def sees_the_promotion() -> bool:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if router.evaluate(plan).model_version == v2 and router.health()["healthy"]:
                    return True
                time.sleep(0.05)
            return False

        with router._refresh_lock:  # a refresh running in the parent at the fork
            child = _in_a_forked_child(lambda: router.refresh()["ready"] and sees_the_promotion())
        registry.ensure_alias(client, store, "business", registry.CHAMPION, v2, actor="test", reason="promoted")
        assert _exit_code(child, 60) == 0  # 1: still v1 after 30 s; None: blocked on the parent's lock
        wait_for(lambda: router.evaluate(plan).model_version == v2, 10, "the parent to serve v2")
    finally:
        router.close()
    client.delete_registered_model(registry.model_name("business"))


def test_a_version_whose_files_were_not_handed_over_is_tried_at_every_refresh(server, models, logged, hive_home):
    """The artifact store lost a promoted version's files for a while (an outage, a restore): its downloads fail,
    and each failure pushed the next try further (after 1, 2, 4, 8, then 16 refreshes), so the promotion, or the
    rollback of a bad model, reached the pod up to 8 minutes after the files were back (audit, stop 53). A
    download that fails is tried again at the next refresh; files that do not load still back off."""
    url, root = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "behavior")
    v1 = register(client, "behavior", logged["business"])
    promoted = log(url, models["v"][1])  # its own artifacts: the moved directory is no other test's
    v2 = register(client, "behavior", promoted)
    registry.ensure_alias(client, store, "behavior", registry.CHAMPION, v1, actor="test", reason="setup")
    router = SpecialistRouter("behavior", url, refresh_interval=None)
    assert router.refresh()["champion_version"] == v1
    files = artifact_files(root, promoted.model_id)
    model_dir = next(p for p in files[0].parents if p.name == promoted.model_id)
    hidden = model_dir.with_name(model_dir.name + ".away")
    model_dir.rename(hidden)
    registry.ensure_alias(client, store, "behavior", registry.CHAMPION, v2, actor="test", reason="promoted")
    for _ in range(8):  # eight refreshes without the files
        health = router.refresh()
        assert health["champion_version"] == v1 and list(health["failed_versions"]) == [v2]
        assert health["failed_versions_retry_in"] == {v2: 1}
    hidden.rename(model_dir)
    health = router.refresh()  # the files are back: served at the next refresh
    assert health["champion_version"] == v2 and health["healthy"]
    client.delete_registered_model(registry.model_name("behavior"))


def test_a_registry_that_stops_answering_is_not_reachable_before_its_read_times_out(server, logged, hive_home,
                                                                                     monkeypatch):
    """A registry that kept the connection and never answered left `registry_reachable` true (and the pod
    healthy) until MLflow's read timed out: 120 s a try by default, with its retries minutes."""
    from hive_assets.serving import _router

    url, _ = server
    client, store = registry.client_for(url), SQLiteStore(hive_home / "store.sqlite")
    fresh(client, "architecture")
    v1 = register(client, "architecture", logged["technical"])
    registry.ensure_alias(client, store, "architecture", registry.CHAMPION, v1, actor="test", reason="setup")
    monkeypatch.setattr(_router, "REGISTRY_READ_PATIENCE", 2.0)  # 10 s in a pod
    proxy = TcpForwarder(int(url.rsplit(":", 1)[1]))
    router = SpecialistRouter("architecture", f"http://127.0.0.1:{proxy.port}", refresh_interval=None)
    try:
        assert router.refresh()["healthy"]
        proxy.hold()
        reading = threading.Thread(target=router.refresh, daemon=True)
        reading.start()
        assert router.health()["registry_reachable"]  # a read under way is not a failure yet
        wait_for(lambda: not router.health()["registry_reachable"], 20, "the held read to count as no answer")
        health = router.health()
        assert health["registry_error"].startswith("no answer for ") and not health["healthy"] and health["ready"]
        assert reading.is_alive()  # still waiting for MLflow: the health came from the read's age, not its end
        assert router.evaluate(make_plans(1, seed=3)[0]).model_version == v1  # the last good model serves
        proxy.release()
        reading.join(60)
        health = router.health()
        assert health["registry_reachable"] and health["healthy"] and health["registry_error"] is None
    finally:
        proxy.close()
        client.delete_registered_model(registry.model_name("architecture"))

"""The A/B promotion interrupted before its registry effects: the real `mlflow server` SIGKILLed at the
promotion's first alias write (a hook on the client call, the allowed fault injection), then one tick of
`ab_test_check_sensor` after MLflow is back completes it, the ledger in agreement with the aliases."""

from __future__ import annotations

import signal
from datetime import timedelta

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.rollout.sensors import ab_test_check_sensor
from hive_assets.defs.simulator.daemon import InProcessDaemon
from hive_assets.rollout import RolloutPolicy, check_test, running_test, start_test
from hive_assets_tests.conftest import start_mlflow_server, stop_process
from hive_assets_tests.rollout.ab_world import Traffic, fresh_model
from hive_assets_tests.rollout.test_ab_rollout import MATURITY_HOURS, aliases, at, champion_and_challenger, ledger, tags

pytestmark = pytest.mark.services
SENSOR = "sensor:ab_test_check_sensor"


class KillAtChampionWrite:
    """The real client, except that its write of `champion` first SIGKILLs the mlflow server."""

    def __init__(self, client, kill):
        self._client, self._kill = client, kill

    def __getattr__(self, name):
        return getattr(self._client, name)

    def set_registered_model_alias(self, name, alias, version):
        if alias == registry.CHAMPION:
            self._kill()
        return self._client.set_registered_model_alias(name, alias, version)


def test_mlflow_killed_at_the_promotions_first_alias_write_then_one_sensor_tick_completes_it(
        hive_home, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast on the dead server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    root = tmp_path / "mlflow"
    root.mkdir()
    proc, url = start_mlflow_server(root)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        client = registry.client_for(url)
        store = SQLiteStore(hive_home / "store.sqlite")
        v1, v2 = fresh_model(client, "technical")
        champion_and_challenger(client, store, "technical", v1, v2)
        policy = RolloutPolicy(label_maturity=timedelta(hours=MATURITY_HOURS))
        traffic = Traffic("technical", champion_agreement=0.70, challenger_agreement=0.85, seed=1)
        start_test(client, store, "technical", v1, v2, 10.0, at(0), actor=SENSOR)
        previous = 0
        for hours in (25, 49):  # 10 -> 25 -> 50 %, as the hourly looks decide
            traffic.serve(store, running_test(store, "technical"), at(previous), at(hours))
            previous = hours
            assert check_test(client, store, "technical", at(hours), policy, actor=SENSOR).decision.action == "expand"
        traffic.serve(store, running_test(store, "technical"), at(49), at(73))
        test_id = running_test(store, "technical")["test_id"]

        killer = KillAtChampionWrite(client, lambda: stop_process(proc, signal.SIGKILL))
        with pytest.raises(Exception) as failure:
            check_test(killer, store, "technical", at(73), policy, actor=SENSOR)
        assert not isinstance(failure.value, AssertionError)
        assert proc.poll() is not None  # the server really died at the write
        assert store.find_one("ab_tests", {"test_id": test_id})["status"] == "promoted"  # decided ...
        intent = store.find_one("decision_intents", {"intent_id": f"ab-outcome:{test_id}"})
        assert intent["state"] == "intended"  # ... recorded before any effect ...
        assert not ledger(store, "technical", "promotion")  # ... and none applied

        proc, url = start_mlflow_server(root, int(url.rsplit(":", 1)[1]))  # the same registry, back
        assert aliases(client, "technical")[registry.CHAMPION] == v1  # the champion never moved
        assert tags(client, "technical")["ab_test_status"] == "running"

        # one tick of the sensor, and its run executed as the daemon would
        defs = build_defs()
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
            requests = ab_test_check_sensor.evaluate_tick(context).run_requests
            assert [(r.partition_key, r.tags.get("hive/resume_intent")) for r in requests] == \
                [("technical", f"ab-outcome:{test_id}")]
            run = InProcessDaemon(instance, defs).launch(at(74), "ab_test_check", requests[0],
                                                         sensor=ab_test_check_sensor.name)
            assert run is not None and run.success

        assert aliases(client, "technical") == {registry.CHAMPION: v2}  # challenger and ab-test-v2 removed
        assert registry.ledger_agrees(client, store, "technical")
        (promotion,) = ledger(store, "technical", "promotion")
        assert (promotion["model_version"], promotion["details"]["previous_version"], promotion["actor"]) == \
            (v2, v1, SENSOR)
        assert len(ledger(store, "technical", "ab_test_closed")) == 1
        t = tags(client, "technical")
        assert (t["ab_test_status"], t["ab_challenger_traffic_percent"]) == ("promoted", "0.0")
        done = store.find_one("decision_intents", {"intent_id": f"ab-outcome:{test_id}"})
        assert done["state"] == "done" and done["completed_by"]
    finally:
        if proc.poll() is None:
            stop_process(proc)

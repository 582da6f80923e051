"""Artifacts verified (issue 21): a checksum recorded at registration, checked at load. A truncated champion
artifact (in the artifact store of a real `mlflow server`) stops only its specialist's drift check, naming the
version; the other four run, and the simulator serves the heuristic for that specialist only."""

from __future__ import annotations

import re
import signal
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.cli._main import main
from hive_assets.config import SPECIALISTS
from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.monitoring.sensors import drift_retraining_sensor
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.features import features_frame
from hive_assets.registry import _mlflow
from hive_assets.serving import routers_for
from hive_assets.simulator import make_plans, refresh_all, served_opinions, simulate
from hive_assets_tests.conftest import start_mlflow_server, stop_process
from hive_assets_tests.monitoring.champion import train_small_model

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def five_champions(tmp_path_factory):
    """A real `mlflow server` whose artifact store we can reach on disk, a champion for every specialist."""
    root = tmp_path_factory.mktemp("mlflow-artifacts-check")
    proc, url = start_mlflow_server(root)
    try:
        client = registry.client_for(url)
        experiment_id = registry.ensure_experiment(client, "artifact-integrity")
        versions = {}
        # one fit serves as every specialist's weights (a fit per specialist costs time and shows nothing more);
        # each version's files still differ: schema.json names its specialist
        model = train_small_model("business", NOW - timedelta(days=30), n_plans=500)
        for specialist in SPECIALISTS:
            model.specialist = specialist
            run = client.create_run(experiment_id, run_name=f"{specialist}-champion")
            uri = registry.log_model(model, url, run.info.run_id)
            version, _ = registry.register_version(client, specialist, run.info.run_id, uri, tags={},
                                                   model_id=uri.removeprefix("models:/"))
            client.set_registered_model_alias(registry.model_name(specialist), registry.CHAMPION, version.version)
            versions[specialist] = version
        yield url, root, client, versions
    finally:
        stop_process(proc, signal.SIGKILL)  # nothing to keep: a graceful stop costs ~20 s of worker timeouts


def _stored_files(root: Path, version) -> list[Path]:
    """The version's files in the server's artifact store (`--artifacts-destination root/artifacts`)."""
    model_id = version.source.removeprefix("models:/")
    files = [p for p in (root / "artifacts").rglob("*") if p.is_file() and model_id in p.parts]
    assert files, f"no stored files for {model_id}"
    return files


def _truncate_estimator(root: Path, version) -> Path:
    [estimator] = [p for p in _stored_files(root, version) if p.name.startswith("estimator.")]
    data = estimator.read_bytes()
    estimator.write_bytes(data[: len(data) // 2])
    return estimator


@pytest.fixture
def fresh_loads():
    """Loads go to the artifact store (the per-process cache holds models of versions loaded before)."""
    _mlflow._VERSION_MODELS.clear()
    yield
    _mlflow._VERSION_MODELS.clear()


def test_the_checksum_recorded_at_registration_is_what_a_load_downloads(five_champions):
    url, _, client, versions = five_champions
    for specialist, version in versions.items():
        recorded = version.tags[registry.ARTIFACT_CHECKSUM_TAG]
        assert re.fullmatch(r"[0-9a-f]{64}", recorded)
        with tempfile.TemporaryDirectory() as tmp:
            # the load path's download (models:/<name>/<version>) adds registered_model_meta: not hashed
            local = _mlflow._download(url, f"models:/{version.name}/{version.version}", tmp)
            assert registry.artifact_checksum(local) == recorded
    assert len({v.tags[registry.ARTIFACT_CHECKSUM_TAG] for v in versions.values()}) == len(SPECIALISTS)


def test_truncated_champion_stops_only_its_drift_check(five_champions, hive_home, monkeypatch, capsys, fresh_loads):
    url, root, client, versions = five_champions
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("DRIFT_MIN_ROWS", "100000")  # every sound check is "insufficient_data": no retraining run
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=60, days=0.5, seed=41, now=NOW, feedback_rate=0.0)
    _truncate_estimator(root, versions["business"])

    code = main(["drift", "check", "--once"])

    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert set(lines) == set(SPECIALISTS)
    assert lines["business"].count("\n") == 0 and "Traceback" not in out
    assert "model_unavailable" in lines["business"]
    assert lines["business"].endswith("business-evaluator v1: artifact checksum mismatch")
    for other in set(SPECIALISTS) - {"business"}:
        assert "insufficient_data" in lines[other], out
    assert code == 1  # README: a champion that cannot be served fails the command, after the others ran
    documents = {doc["specialist_type"]: doc for doc in store.find("drift_monitoring")}
    assert set(documents) == set(SPECIALISTS)
    assert documents["business"]["decision"] == "model_unavailable"
    assert documents["business"]["reason"] == "business-evaluator v1: artifact checksum mismatch"
    for other in set(SPECIALISTS) - {"business"}:
        assert documents[other]["decision"] == "insufficient_data" and documents[other]["window_size"] > 0

    # the drift sensor's tick: the same five checks, business as a `model_unavailable` observation, no request
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, definitions=build_defs(), resources={
            "document_store": DocumentStoreResource(), "mlflow": MlflowResource(tracking_uri=url)})
        tick = drift_retraining_sensor.evaluate_tick(ctx)
    assert tick.run_requests == []
    assert "business-evaluator v1: artifact checksum mismatch" in tick.skip_message
    shown = {e.partition: e.metadata["decision"].value for e in tick.asset_events}
    assert shown["business"] == "model_unavailable" and len(shown) == len(SPECIALISTS)
    assert store.count("drift_monitoring", {"decision": "model_unavailable"}) == 2

    # the simulator: the heuristic serves business alone, the champions the four others
    routers = routers_for(url, refresh_interval=None)  # the serving client, as the simulator runs it
    assert refresh_all(routers) is None
    failed = routers["business"].health()["failed_versions"]
    assert set(failed) == {"1"} and "business-evaluator v1: artifact checksum mismatch" in failed["1"]
    assert all(not routers[s].health()["failed_versions"] for s in SPECIALISTS if s != "business")
    serve = served_opinions(routers)
    plans = make_plans(5, seed=9, now=NOW)
    assert {version for _, _, version, _ in serve("business", plans)} == {"0.0.0-heuristic"}
    for other in set(SPECIALISTS) - {"business"}:
        assert {version for _, _, version, _ in serve(other, plans)} == {"1"}


def test_versions_without_a_checksum_still_load_and_a_broken_one_is_named(five_champions, fresh_loads):
    url, root, client, versions = five_champions
    for specialist in ("technical", "behavior"):  # as registered before checksums existed
        client.delete_model_version_tag(versions[specialist].name, versions[specialist].version,
                                        registry.ARTIFACT_CHECKSUM_TAG)
    legacy = client.get_model_version(versions["technical"].name, versions["technical"].version)
    assert registry.ARTIFACT_CHECKSUM_TAG not in legacy.tags
    assert registry.load_version_model(client, legacy).predict_proba(
        features_frame(make_plans(3, seed=1, now=NOW))).shape == (3, 3)

    _truncate_estimator(root, versions["behavior"])
    broken = client.get_model_version(versions["behavior"].name, versions["behavior"].version)
    with pytest.raises(registry.ArtifactError) as caught:
        registry.load_version_model(client, broken)
    message = str(caught.value)
    assert message.startswith("behavior-evaluator v1 cannot be loaded: ")
    assert "\n" not in message and len(message) < 300

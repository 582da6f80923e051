"""What the Dagster UI shows of one materialized partition: tables, embedded images, numbers it can plot,
links into the MLflow UI; and that no credential of the configured URIs reaches metadata, logs or
descriptions.

One world per module: a real `mlflow server` addressed through a tracking URI that carries basic-auth
userinfo (the server ignores it; a query string would break the client's endpoint paths), resources bound from the environment as in
production, the whole graph materialized twice for `business` (a champion, then a challenger that
opens an A/B test) and two drift sensor ticks, on a persistent test instance and a registry of its own.
"""

from __future__ import annotations

import io
import os
import urllib.request
from collections import Counter
from datetime import datetime, timezone

import dagster as dg
import pytest
from PIL import Image

from hive_assets import registry
from hive_assets.config import CLASSES
from hive_assets.data import SQLiteStore, to_utc
from hive_assets.defs import build_defs
from hive_assets.defs._ui import rounded
from hive_assets.defs.monitoring.sensors import drift_retraining_sensor
from hive_assets.defs.resources import default_resources
from hive_assets.evaluation import minimum_metrics
from hive_assets.simulator import simulate
from hive_assets_tests.conftest import served_registry
from hive_assets_tests.test_figures import decode_embedded_png

pytestmark = pytest.mark.services

SECRET = "s3cr3t-token"
USER = "hiveuser"
SPECIALIST = "business"
EXPERIMENT = "ui-metadata"
DAGSTER_UI = "http://127.0.0.1:3999"  # DAGSTER_WEBSERVER_URL: the MLflow runs link back to the Dagster runs


def _clear_mlflow_credentials(mp: pytest.MonkeyPatch) -> None:
    """Unset MLflow's basic-auth variables for the test, and unset again afterwards: the code under test
    sets them (registry.tracking_target) with setdefault, which a plain delenv would not undo."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        mp.setenv(name, "")
        mp.delenv(name)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """This module's own `mlflow server`: the asserted version numbers and the one specialist with a
    champion need a registry no other test module wrote to."""
    yield from served_registry(tmp_path_factory.mktemp("mlflow-ui-metadata"))


@pytest.fixture(scope="module")
def world(mlflow_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("ui-metadata")
    (home / "dagster").mkdir()
    server = mlflow_server.removeprefix("http://")
    secret_uri = f"http://{USER}:{SECRET}@{server}"  # basic-auth userinfo: the server ignores it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIVE_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        for name in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS"):
            mp.delenv(name, raising=False)
        _clear_mlflow_credentials(mp)
        mp.setenv("MLFLOW_TRACKING_URI", secret_uri)
        mp.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        mp.delenv("MLFLOW_UI_URL", raising=False)  # the tracking URI is http: it is the UI's address
        mp.setenv("DAGSTER_WEBSERVER_URL", DAGSTER_UI)
        store = SQLiteStore(home / "store.sqlite")
        simulate(store, plans=2500, days=45, seed=21, now=datetime.now(timezone.utc))
        defs = build_defs()
        resources = default_resources()  # bound from the environment (dg.EnvVar), as the code location does
        with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
            first = dg.materialize(list(defs.assets), partition_key=SPECIALIST, resources=resources,
                                   instance=instance, raise_on_error=False)
            ticks = []
            for _ in range(2):  # the second tick sees the same window: no new observation
                context = dg.build_sensor_context(instance=instance, definitions=defs, resources=resources)
                ticks.append(drift_retraining_sensor.evaluate_tick(context))
                for event in ticks[-1].asset_events:  # what the sensor daemon stores for a tick
                    instance.report_runless_asset_event(event)
            # another seed: the same data and configuration again would train nothing ("nothing changed")
            second = dg.materialize(list(defs.assets), partition_key=SPECIALIST, resources=resources,
                                    instance=instance, raise_on_error=False,
                                    run_config={"ops": {"trained_model": {"config": {"random_state": 1}}}})
            yield {"store": store, "instance": instance, "defs": defs, "first": first, "second": second,
                   "ticks": ticks, "home": home, "server": mlflow_server, "client": registry.client_for(mlflow_server)}


def _latest(instance, asset: str) -> dg.AssetMaterialization:
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[SPECIALIST]), limit=1).records
    return record.event_log_entry.asset_materialization


def _materialization_of_run(result, asset: str) -> dg.AssetMaterialization:
    (mat,) = result.asset_materializations_for_node(asset)
    return mat


def _table(value) -> tuple[list[str], list[dict]]:
    assert isinstance(value, dg.TableMetadataValue), type(value)
    return [c.name for c in value.schema.columns], [dict(r.data) for r in value.records]


def _png_of(markdown_value) -> tuple[str, bytes, tuple[int, int]]:
    assert isinstance(markdown_value, dg.MarkdownMetadataValue)
    alt, png = decode_embedded_png(markdown_value.value)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        size = image.size
    assert 120 <= min(size) and max(size) <= 700, size  # a small picture, not a poster or a thumbnail
    assert len(png) < 40_000
    return alt, png, size


def _experiment_id(world) -> str:
    return world["client"].get_experiment_by_name(EXPERIMENT).experiment_id


def test_both_runs_succeed(world):
    assert world["first"].success and world["second"].success


def test_raw_production_data_tables_match_the_store(world):
    result, store = world["first"], world["store"]
    meta = _materialization_of_run(result, "raw_production_data").metadata
    frame = result.output_for_node("raw_production_data").frame
    columns, rows = _table(meta["collected"])
    assert columns == ["step", "count", "meaning"]
    counted = {r["step"]: r["count"] for r in rows}
    assert counted["rows"] == len(frame) == meta["rows"].value
    assert counted["labelled"] == int(frame["label"].notna().sum()) == meta["labelled"].value
    # collection is driven by the labels (the exact read set is data/test_label_driven_collect.py's): every
    # row's opinion was read, and never more than the specialist's opinions
    assert counted["labelled"] <= counted["opinions_read"] <= store.count("specialist_opinions",
                                                                          {"specialist_type": SPECIALIST})
    # the quarantine collection (keyed per document and reason; the second run saw the same documents)
    quarantined = Counter(q["reason"] for q in store.find("quarantine", {"specialist_type": SPECIALIST}))
    assert sum(quarantined.values()) > 0  # the simulator writes ~1% malformed documents
    columns, rows = _table(meta["quarantined"])
    assert columns == ["reason", "count"]
    assert {r["reason"]: r["count"] for r in rows} == dict(quarantined)
    assert counted["quarantined"] == sum(quarantined.values()) == meta["quarantined_total"].value
    assert isinstance(meta["quarantined_total"], dg.IntMetadataValue)


def test_the_metrics_table_shows_a_metric_not_computable_as_empty_not_0():
    """A class without test rows: its precision and recall are None in the report (not 0.000 with an interval
    [0, 0]); the table leaves value and interval empty, fails the row, and the version tags leave it out."""
    import numpy as np
    import pandas as pd

    from hive_assets.defs.evaluation.assets import metrics_table
    from hive_assets.evaluation import build_report

    labels = ["approve", "review_required"] * 20  # no reject
    test = pd.DataFrame({"plan_id": [f"p{i}" for i in range(len(labels))], "label": labels})
    proba = np.tile([0.9, 0.05, 0.05], (len(labels), 1))
    proba[1::2] = [0.05, 0.05, 0.9]
    report = build_report(test, proba, n_boot=50)
    by_metric = {r["metric"]: r for r in _table(metrics_table(report))[1]}
    for name in ("recall_reject", "precision_reject", "macro_f1"):
        assert by_metric[name]["value"] is None and by_metric[name]["95% low"] is None, name
        assert by_metric[name]["passed"] is False
    assert by_metric["recall_approve"]["value"] == 1.0 and by_metric["recall_approve"]["passed"] is True
    tags = registry.version_tags("business", gate="failed", dagster_run_id=None, data_snapshot_hash=None,
                                 feature_schema_version=None, model_type=None, training_config=None,
                                 metrics=report["metrics"])
    assert "metric.macro_f1" not in tags and tags["metric.accuracy"] == "1.0000"


def test_validation_report_metrics_table_images_and_links(world):
    result = world["first"]
    report = result.output_for_node("validation_report")
    meta = _materialization_of_run(result, "validation_report").metadata
    columns, rows = _table(meta["metrics"])
    assert columns == ["metric", "value", "95% low", "95% high", "minimum", "passed"]
    # minimum metrics, then the calibration row; no champion yet, so no comparison rows
    assert [r["metric"] for r in rows] == [*minimum_metrics(), "ece (debiased)"]
    by_metric = {r["metric"]: r for r in rows}
    for name in ("accuracy", "macro_f1", f"recall_{CLASSES[0]}"):
        low, high = report["intervals"][name]
        row = by_metric[name]
        # rounded for display (4 significant digits); the run keeps the full precision
        assert (row["value"], row["95% low"], row["95% high"]) == tuple(map(rounded, (report["metrics"][name], low, high)))
        assert row["passed"] is (report["metrics"][name] >= minimum_metrics()[name])
    assert by_metric["ece (debiased)"]["95% low"] is None
    for name in ("accuracy", "macro_f1", "ece", "brier"):
        assert isinstance(meta[name], dg.FloatMetadataValue), name
    assert meta["accuracy"].value == rounded(report["metrics"]["accuracy"])
    assert meta["ece"].value == rounded(report["calibration"]["ece"])
    mlflow_metrics = world["client"].get_run(report["mlflow_run_id"]).data.metrics
    assert mlflow_metrics["test_accuracy"] == report["metrics"]["accuracy"]  # full precision in MLflow
    def json_floats(data):
        if isinstance(data, dict):
            return [f for v in data.values() for f in json_floats(v)]
        if isinstance(data, list):
            return [f for v in data for f in json_floats(v)]
        return [data] if isinstance(data, float) else []

    in_json = [f for v in meta.values() if isinstance(v, dg.JsonMetadataValue) for f in json_floats(v.data)]
    assert json_floats(meta["intervals"].data) and json_floats(meta["test_metrics"].data)  # (they showed 17 digits)
    assert meta["test_metrics"].data["accuracy"] == rounded(report["metrics"]["accuracy"])
    for value in [*(v.value for v in meta.values() if isinstance(v, dg.FloatMetadataValue)),
                  *(r[c] for r in rows for c in ("value", "95% low", "95% high") if r[c] is not None), *in_json]:
        assert value == rounded(value), value  # at most 4 significant digits anywhere a person reads

    run_url = f"{world['server']}/#/experiments/{_experiment_id(world)}/runs/{report['mlflow_run_id']}"
    assert meta["mlflow_run"] == dg.MetadataValue.url(run_url)
    for key, words in (("confusion_matrix", "confusion matrix"), ("reliability_diagram", "reliability diagram")):
        alt, _, _ = _png_of(meta[key])
        assert words in alt and meta[key].value.endswith(f"[open the MLflow run]({run_url})")
    with urllib.request.urlopen(run_url.split("#")[0], timeout=10) as response:  # the link's page is served
        assert response.status == 200


def test_the_second_report_compares_with_the_champion_in_its_table(world):
    meta = _latest(world["instance"], "validation_report").metadata
    _, rows = _table(meta["metrics"])
    report = world["second"].output_for_node("validation_report")
    compared = [r for r in rows if r["metric"].endswith(" - champion")]
    assert len(compared) == len(report["champion_comparison"]["deltas"]) > 0
    for row in compared:
        name = row["metric"].removesuffix(" - champion")
        low, high = report["champion_comparison"]["delta_intervals"][name]
        assert (row["value"], row["95% low"], row["95% high"]) == tuple(map(rounded, (
            report["champion_comparison"]["deltas"][name], low, high)))


def test_trained_model_and_registered_version_link_to_mlflow(world):
    result, server = world["first"], world["server"]
    trained = result.output_for_node("trained_model")
    run_url = f"{server}/#/experiments/{_experiment_id(world)}/runs/{trained['mlflow_run_id']}"
    assert _materialization_of_run(result, "trained_model").metadata["mlflow_run"] == dg.MetadataValue.url(run_url)
    meta = _materialization_of_run(result, "registered_model_version").metadata
    assert meta["mlflow_model_version"] == dg.MetadataValue.url(f"{server}/#/models/business-evaluator/versions/1")
    assert meta["mlflow_run"] == dg.MetadataValue.url(run_url)
    latest = _latest(world["instance"], "registered_model_version").metadata
    assert latest["mlflow_model_version"].value.endswith("/#/models/business-evaluator/versions/2")
    # and back: the MLflow run links to the Dagster run that trained it (a tag, and the run's markdown note)
    tags = world["client"].get_run(trained["mlflow_run_id"]).data.tags
    back = f"{DAGSTER_UI}/runs/{result.run_id}"
    assert tags["dagster.run_url"] == back and f"]({back})" in tags["mlflow.note.content"]


def test_ab_test_outcome_shows_traffic_arms_and_the_trajectory(world):
    meta = _latest(world["instance"], "ab_test_outcome").metadata
    doc = world["store"].find_one("ab_tests", {"test_id": meta["test_id"].value})
    assert isinstance(meta["traffic_percent"], dg.FloatMetadataValue)
    assert meta["traffic_percent"].value == float(doc["traffic_percent"]) == 10.0
    for arm in ("champion", "challenger"):
        assert isinstance(meta[f"{arm}_served"], dg.IntMetadataValue)
    alt, _, _ = _png_of(meta["trajectory"])
    assert doc["test_id"] in alt
    assert f"{len(doc['checks'])} looks, {len(doc['traffic_history'])} traffic steps" in meta["trajectory"].value
    # the first run had no challenger: no test, so no chart
    first = _materialization_of_run(world["first"], "ab_test_outcome").metadata
    assert first["status"].value == "no_test" and "trajectory" not in first


def test_drift_is_observed_once_per_material_change_with_its_psi_chart(world):
    first_tick, second_tick = world["ticks"]
    assert [e.partition for e in first_tick.asset_events] == [SPECIALIST]  # the only specialist with a champion
    assert second_tick.asset_events == []  # same window, same decision, same score: nothing new to show
    records = world["instance"].fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("drift"), asset_partitions=[SPECIALIST]), limit=10).records
    assert len(records) == 1
    meta = records[0].event_log_entry.asset_observation.metadata
    (doc,) = world["store"].find("drift_monitoring", {"check_id": meta["check_id"].value})
    assert isinstance(meta["drift_score"], dg.FloatMetadataValue)
    assert meta["drift_score"].value == rounded(doc["drift_score"])  # 4 significant digits, as elsewhere
    assert meta["checked_at"].value == to_utc(doc["checked_at"]).isoformat()
    assert meta["window_size"] == dg.MetadataValue.int(doc["window_size"]) and doc["window_size"] > 0
    assert meta["decision"].value == doc["decision"]
    alt, _, _ = _png_of(meta["psi_by_feature"])
    assert "PSI by feature" in alt


# -- no credential anywhere ---------------------------------------------------------------------------
def _definitions_text(defs: dg.Definitions) -> str:
    """Every description and config schema the UI shows, as the code location serves it (the repository
    snapshot: assets, checks, jobs, ops, sensors, resources and their config defaults)."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    return dg.serialize_value(RepositorySnap.from_def(defs.get_repository_def()))


def test_no_credential_in_metadata_logs_or_descriptions(world):
    instance, home = world["instance"], world["home"]
    runs = instance.get_runs()
    assert len(runs) == 2
    texts = []
    for run in runs:
        texts.append(dg.serialize_value(run))  # config, tags
        for entry in instance.all_logs(run.run_id):  # user messages and dagster events, metadata included
            texts.append(dg.serialize_value(entry))
            texts.append(entry.message or "")
    observations = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("drift")), limit=100)
    texts += [dg.serialize_value(r.event_log_entry) for r in observations.records]
    for tick in world["ticks"]:
        texts += [tick.skip_message or "", tick.cursor or "", dg.serialize_value(list(tick.asset_events))]
    texts.append(_definitions_text(world["defs"]))
    joined = "\n".join(texts)
    assert "mlflow_run" in joined and "psi_by_feature" in joined  # the haystack holds what was searched
    assert SECRET not in joined and f"{USER}:" not in joined
    # and nothing in the instance's storage (event log, runs, compute logs) holds it either
    leaks = [p for p in (home / "dagster").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaks == []
    # the credential went where MLflow's Basic auth reads it, not into the URI MLflow formats into messages
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == SECRET and world["client"].tracking_uri == world["server"]



def test_unreachable_services_with_passwords_are_reported_without_them(hive_home, monkeypatch):
    """MONGODB_URI and MLFLOW_TRACKING_URI with user:password, on ports nothing listens on: the feedback
    sensor skips naming the store's host, the drift sensor naming MLflow's; neither message nor the
    instance's storage repeats the password."""
    from hive_assets.defs.monitoring.sensors import feedback_retraining_sensor
    from hive_assets_tests.conftest import free_port

    _clear_mlflow_credentials(monkeypatch)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once, not after minutes of backoff
    monkeypatch.setenv("MONGODB_URI", f"mongodb://{USER}:{SECRET}@127.0.0.1:{free_port()}/?authSource=admin")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://{USER}:{SECRET}@127.0.0.1:{free_port()}")
    defs, resources = build_defs(), default_resources()
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster")) as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=resources)
        skipped = feedback_retraining_sensor.evaluate_tick(context)
        assert skipped.run_requests == [] and "document store unavailable" in skipped.skip_message
        assert "127.0.0.1" in skipped.skip_message and SECRET not in skipped.skip_message
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=resources)
        skipped = drift_retraining_sensor.evaluate_tick(context)  # it failed on MLflow, with a traceback
        assert skipped.run_requests == [] and "model registry unavailable" in skipped.skip_message
        assert "127.0.0.1" in skipped.skip_message and SECRET not in skipped.skip_message
        assert [p for p in (hive_home / "dagster").rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()] == []

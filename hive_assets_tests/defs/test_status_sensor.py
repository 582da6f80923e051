"""The `platform_status` sensor with `build_sensor_context`: a real instance and the definitions."""

from __future__ import annotations

import dagster as dg

from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.monitoring.status import platform_status_sensor
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets_tests.conftest import free_port


def _tick(instance, uri: str, cursor: str | None = None):
    ctx = dg.build_sensor_context(instance=instance, definitions=build_defs(), cursor=cursor, resources={
        "document_store": DocumentStoreResource(), "mlflow": MlflowResource(tracking_uri=uri)})
    return platform_status_sensor.evaluate_tick(ctx)


def test_an_unreachable_registry_skips_in_one_line_without_the_password(hive_home, monkeypatch):
    """MLflow down: every tick waited for MLflow's client retries (minutes), then failed with a traceback
    (audit, stop 53). One health request says so in one line; the last observation and cursor are kept."""
    SQLiteStore(hive_home / "store.sqlite")
    port = free_port()  # bound, then closed: a real refused connection
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # without the check: a traceback at once, not in minutes
    with dg.instance_for_test() as instance:
        result = _tick(instance, f"http://hive:s3cret-pw@127.0.0.1:{port}", cursor="earlier-view")
    assert result.asset_events == [] and result.cursor == "earlier-view"
    message = result.skip_message
    assert message.startswith(f"model registry unavailable, status not refreshed: MLflow at http://hive:***@127.0.0.1:"
                              f"{port} unreachable (") and "\n" not in message and "s3cret" not in message


def test_a_changed_view_is_observed_once(hive_home):
    """The embedded registry (a local file, never "down"): the first tick records the view, the second the
    same view: nothing new."""
    SQLiteStore(hive_home / "store.sqlite")
    uri = f"sqlite:///{hive_home / 'mlflow.db'}"
    with dg.instance_for_test() as instance:
        first = _tick(instance, uri)
        second = _tick(instance, uri, cursor=first.cursor)
    assert [e.asset_key for e in first.asset_events] == [dg.AssetKey("platform_status")] and first.cursor
    assert first.skip_message == "status view changed: champions none"
    assert second.asset_events == [] and second.skip_message == "the status view has not changed"

"""The `platform_status` view in the UI: an unpartitioned asset observed by `platform_status_sensor` with the
markdown table of hive_assets.monitoring.platform_status (what `hive status` prints), only when it changed.

The sensor requests no run: it reads the registry, the store and the instance, and records an observation
when the table differs from the last one (its hash is the cursor), so a home whose clock stands still
records nothing new however often the daemon ticks.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import dagster as dg

from hive_assets import clock
from hive_assets.config import SPECIALISTS, env_int
from hive_assets.data import StoreUnavailable
from hive_assets.defs.catalog import MONITORING, OWNERS
from hive_assets.defs.monitoring.sensors import SETTINGS, TRUST_POLICY, last_training, untrainable_collection
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.defs.rollout.sensors import check_interval_seconds
from hive_assets.monitoring import MonitoringSettings, platform_status, status_markdown
from hive_assets.reachability import registry_down

platform_status_asset = dg.AssetSpec(
    "platform_status", kinds={"mongodb", "mlflow"}, group_name=MONITORING, owners=OWNERS,
    description="What each specialist is doing (`hive status`): champion (version, since, why), challenger and "
                "traffic, the A/B estimate with its always-valid interval, the last drift verdict, trusted feedback "
                "since training vs the threshold, the last retrain, the next scheduled look and today's review queue. Observed by "
                "platform_status_sensor when the view changes.",
)


def current_status(instance: dg.DagsterInstance, store, client) -> list:
    """The view of every specialist, with the last trainings read from the instance."""
    settings = MonitoringSettings.from_env()
    trainings = {s: last_training(instance, s) for s in SPECIALISTS}
    return platform_status(
        store, client, last_trained={s: at for s, (at, _) in trainings.items()},
        untrainable=lambda s: untrainable_collection(instance, store, s, trainings[s][1]),
        feedback_threshold=settings.feedback_threshold, drift_interval=settings.drift_check_interval,
        ab_interval=timedelta(seconds=check_interval_seconds()), specialists=SPECIALISTS, trust=TRUST_POLICY,
        now=clock.now())


@dg.sensor(
    name="platform_status_sensor",
    minimum_interval_seconds=env_int("HIVE_STATUS_SENSOR_INTERVAL_SECONDS", SETTINGS.feedback_sensor_interval_s, low=1),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records the platform_status observation (the `hive status` table) when the view changed.",
)
def platform_status_sensor(context: dg.SensorEvaluationContext, document_store: DocumentStoreResource,
                           mlflow: MlflowResource):
    # MLflow's client retries a server that is down for minutes on every tick; one health request answers in
    # seconds, and the last observation (and the cursor) stay as they were
    if down := registry_down(mlflow.uri):
        return dg.SkipReason(f"model registry unavailable, status not refreshed: {down}")
    try:
        with document_store.open() as store:
            statuses = current_status(context.instance, store, mlflow.client())
    except StoreUnavailable as exc:
        return dg.SkipReason(f"document store unavailable, status not refreshed: {exc}")
    table = status_markdown(statuses)
    digest = hashlib.sha256(table.encode()).hexdigest()[:16]
    if digest == context.cursor:
        return dg.SkipReason("the status view has not changed")
    champions = ", ".join(f"{st.specialist} v{st.champion}" for st in statuses if st.champion) or "none"
    observation = dg.AssetObservation(asset_key=platform_status_asset.key, metadata={
        "status": dg.MetadataValue.md(table),
        "platform_clock": dg.MetadataValue.text(f"{clock.now():%Y-%m-%d %H:%M} UTC"),
        "champions": dg.MetadataValue.text(champions),
    })
    return dg.SensorResult(asset_events=[observation], cursor=digest,
                           skip_reason=f"status view changed: champions {champions}")

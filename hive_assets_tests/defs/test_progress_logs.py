"""Long work reports progress in the run logs (issue 15): collection (opinions read / total), tuning
(one line per successive-halving rung) and the bootstrap (replicate blocks), read back from the instance's
event log of a real materialization against a real `mlflow server`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets.data import TrustPolicy, to_utc
from hive_assets.data._collect import FEEDBACK_CLOCK_SKEW
from hive_assets.data._documents import validate_feedback
from hive_assets.data.store import SQLiteStore
from hive_assets.defs.data.assets import raw_production_data
from hive_assets.defs.evaluation.assets import validation_report
from hive_assets.defs.features.assets import enhanced_features
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.training.assets import trained_model
from hive_assets.evaluation import DEFAULT_N_BOOT
from hive_assets.simulator import simulate

pytestmark = pytest.mark.services

SPECIALIST = "technical"


def test_a_materialization_logs_collection_tuning_and_bootstrap_progress(hive_home, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    store = SQLiteStore(hive_home / "store.sqlite")
    now = datetime.now(timezone.utc)
    simulate(store, plans=2000, days=40, seed=33, now=now)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [raw_production_data, enhanced_features, trained_model, validation_report], partition_key=SPECIALIST,
        instance=instance,
        resources={"document_store": DocumentStoreResource(), "platform": PlatformSettings(),
                   "mlflow": MlflowResource(tracking_uri=mlflow_server, experiment_name="progress-logs")},
        run_config={"ops": {
            "raw_production_data": {"config": {"window_days": 40, "as_of": now.isoformat()}},
            "trained_model": {"config": {"model_type": "xgboost", "hyperparameter_tuning": True,
                                         "tuning_candidates": 3}}}},  # one family: one tuning
    )
    assert result.success
    logs = [entry for entry in instance.all_logs(result.run_id) if entry.user_message and not entry.is_dagster_event]
    by_step: dict[str, list[str]] = {}
    for entry in logs:
        by_step.setdefault(entry.step_key, []).append(entry.user_message)

    # collection (label-driven, issue 23): the opinions with trusted feedback submitted in the window, read
    # from FEEDBACK_CLOCK_SKEW before its start (announced first), of which those evaluated in the window are
    # read; counted here without the collector
    start = now - timedelta(days=40)
    feedback_start = start - FEEDBACK_CLOCK_SKEW
    trust = TrustPolicy()
    announced = {fb["opinion_id"] for fb in store.find("specialist_feedback", {"specialist_type": SPECIALIST})
                 if feedback_start <= (to_utc(fb.get("submitted_at")) or start - timedelta(1)) <= now
                 and not validate_feedback(fb, now) and trust.reason_to_drop(fb) is None}
    read = sum(1 for op in store.find("specialist_opinions", {"specialist_type": SPECIALIST})
               if op["opinion_id"] in announced
               and start <= (to_utc(op.get("evaluated_at")) or start - timedelta(1)) <= now)
    collect_lines = by_step["raw_production_data"]
    assert f"{SPECIALIST}: {len(announced)} opinions with trusted feedback in the window" in collect_lines
    final = f"{SPECIALIST}: opinions read {read} / {len(announced)}, "
    assert any(line.startswith(final) for line in collect_lines), collect_lines
    assert any(f"{SPECIALIST}: plans read" in line for line in collect_lines)

    # tuning: 3 candidates, factor 3 -> rungs of 3 and 1 candidates
    rungs = [line for line in by_step["trained_model"] if line.startswith("tuning rung")]
    assert [line.split(":")[0] for line in rungs] == ["tuning rung 1 / 2", "tuning rung 2 / 2"], rungs

    # bootstrap: blocks of replicates up to DEFAULT_N_BOOT (no champion here, so no paired bootstrap)
    boot = [line for line in by_step["validation_report"] if line.startswith("bootstrap:")]
    assert boot and boot[-1].startswith(f"bootstrap: {DEFAULT_N_BOOT} / {DEFAULT_N_BOOT} replicates")

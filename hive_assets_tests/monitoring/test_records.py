"""The trigger documents on both stores (hive_assets.monitoring._records): what a finished run writes."""

from __future__ import annotations

from datetime import datetime, timezone

from hive_assets.monitoring import record_trigger, update_trigger_status
from hive_assets_tests.data.store import any_store  # noqa: F401  (fixture)

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
# what run_metrics reads from a retrain_specialist run: "<asset>.<metadata name>"
METRICS = {"raw_production_data.rows": 1666, "validation_report.macro_f1": 0.81, "validation_report.n_test": 249}


def test_a_finished_run_s_metrics_are_written_on_every_store(any_store):
    # FerretDB refused the field names with a '.': every completed or failed trigger stayed "running"
    for trigger, status, error in (("t-ok", "completed", None), ("t-ko", "failed", "validation_report: gate")):
        record_trigger(any_store, trigger, "business", "feedback", NOW)
        update_trigger_status(any_store, trigger, "running", run_id="r1")
        doc, changed = update_trigger_status(any_store, trigger, status, run_id="r1", metrics=METRICS, error=error)
        assert changed
        stored = any_store.find_one("retraining_triggers", {"trigger_id": trigger})
        assert stored["status"] == status and stored["metrics"] == doc["metrics"] == {
            "raw_production_data": {"rows": 1666}, "validation_report": {"macro_f1": 0.81, "n_test": 249}}
    assert [d["trigger_id"] for d in any_store.find(
        "retraining_triggers", {"metrics.validation_report.macro_f1": {"$gte": 0.8}}, sort=[("trigger_id", 1)])] == [
        "t-ko", "t-ok"]

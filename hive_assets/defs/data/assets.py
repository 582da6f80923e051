"""raw_production_data, with the enough_samples data gate."""

from datetime import datetime, timezone

import dagster as dg

from hive_assets.data import (
    TrustPolicy, audit_confidences_from_kafka, audit_confidences_from_store, collect, persist_quarantine,
)
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, PlatformSettings
from hive_assets.evaluation import DEFAULT_MIN_SAMPLES


class CollectConfig(dg.Config):
    """The seed collector's parameters (collect_production_data.py)."""

    window_days: int | None = None  # default: DATA_COLLECTION_DAYS
    min_confidence: float | None = None  # default: MIN_CONFIDENCE
    min_feedback_quality: float = 0.0
    min_samples: int = DEFAULT_MIN_SAMPLES
    denied_feedback_sources: list[str] = ["synthetic_backfill", "load_test"]
    as_of: str | None = None  # ISO-8601 end of the window; default now


def audit_reader_for(platform: PlatformSettings, store):
    if platform.kafka_bootstrap_servers:
        return audit_confidences_from_kafka(platform.kafka_bootstrap_servers, timeout_s=platform.kafka_timeout_s)
    return audit_confidences_from_store(store)


@dg.asset(
    partitions_def=specialist_partitions,
    group_name="retraining",
    kinds={"python", "pandas"},
    check_specs=[dg.AssetCheckSpec("enough_samples", asset="raw_production_data",
                                   description="Warns when fewer than min_samples rows were collected.")],
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
)
def raw_production_data(
    context: dg.AssetExecutionContext, config: CollectConfig, document_store: DocumentStoreResource,
    platform: PlatformSettings,
):
    """Opinion + plan + latest trusted feedback for one specialist; rejected documents are quarantined."""
    specialist = context.partition_key
    now = datetime.fromisoformat(config.as_of) if config.as_of else datetime.now(timezone.utc)
    with document_store.open() as store:
        result = collect(
            store, specialist, now=now,
            window_days=config.window_days or platform.data_collection_days,
            min_confidence=platform.min_confidence if config.min_confidence is None else config.min_confidence,
            trust=TrustPolicy(denied_sources=frozenset(config.denied_feedback_sources),
                              min_feedback_quality=config.min_feedback_quality),
            audit_reader=audit_reader_for(platform, store),
        )
        persist_quarantine(store, result, context.run_id)
    counts = result.counts
    context.log.info(f"{specialist}: {counts['rows']} rows, {counts['labelled']} labelled, "
                     f"{counts['quarantined']} quarantined {result.quarantined_by_reason}")
    yield dg.Output(
        result,
        metadata={
            "store": document_store.describe(),
            "rows": counts["rows"],
            "labelled": counts["labelled"],
            "quarantined": counts["quarantined"],
            "quarantined_by_reason": dg.MetadataValue.json(result.quarantined_by_reason),
            "filtered_low_intent_confidence": counts.get("filtered_low_intent_confidence", 0),
            "filtered_no_audit_event": counts.get("filtered_no_audit_event", 0),
            "feedback_dropped": dg.MetadataValue.json(counts.get("feedback_dropped", {})),
            "window": f"{counts['window_start']} .. {counts['window_end']}",
            "data_snapshot_hash": result.snapshot_hash(),
            "label_counts": dg.MetadataValue.json(result.frame["label"].value_counts().to_dict()),
        },
    )
    yield dg.AssetCheckResult(
        check_name="enough_samples",
        passed=counts["rows"] >= config.min_samples,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows": counts["rows"], "min_samples": config.min_samples},
    )

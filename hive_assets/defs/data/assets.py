"""raw_production_data, with the enough_samples data gate."""

from datetime import timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from hive_assets import clock, review
from hive_assets.data import (
    FeedbackFilterEmptiedClass, KafkaRefused, TrustPolicy, audit_confidences_from_kafka, audit_confidences_from_store,
    collect, persist_quarantine, to_utc,
)
from hive_assets.defs import _ui
from hive_assets.defs.catalog import OWNERS, DATA
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, PlatformSettings
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.defs.runs.interrupts import no_retry_after_ctrl_c
from hive_assets.defs.runs.run_config import step_config
from hive_assets.evaluation import DEFAULT_MIN_SAMPLES
from hive_assets.config import ConfigError
from hive_assets.registry import CLOCK_SKEW


@step_config("raw_production_data")
class CollectConfig(dg.Config):
    """The seed collector's parameters (collect_production_data.py)."""

    # bounds as for the environment's settings: a negative window collected nothing and succeeded, 0 meant 90
    window_days: int | None = Field(
        None, ge=1, le=36_500, description="Days of opinions to collect (1 to 36,500); default DATA_COLLECTION_DAYS.")
    min_confidence: float | None = Field(
        None, ge=0.0, le=1.0,
        description="NLU intent confidence (0 to 1) under which an opinion is filtered; default MIN_CONFIDENCE.")
    min_feedback_quality: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Drop feedback whose human_rating is below this (0 disables the filter). Never applies "
                    "to quality_exempt_sources; a run fails if the filter removes every label of a class.")
    quality_exempt_sources: list[str] = Field(
        ["approval_service"],
        description="Feedback origins the quality filter skips, matched case-insensitively against "
                    "feedback_source and metadata.source (the approval service rates its rejections 0.0).")
    min_samples: int = Field(DEFAULT_MIN_SAMPLES, ge=0, description="Rows under which the enough_samples check warns.")
    denied_feedback_sources: list[str] = Field(
        ["synthetic_backfill", "load_test"], description="feedback_source values never used as labels.")
    as_of: str | None = Field(
        None, description="ISO-8601 end of the window for backfills (naive means UTC); default now. Nothing "
                          "after it is read: later opinions, feedback and audit events are outside the window. At most the "
                          "platform clock (5 minutes' skew allowed): a later one fails the run.")


# (name, what it counts) in the order collection applies them; `collected_table` shows these rows
COLLECTION_STEPS = (
    ("opinions_read", "opinions of the specialist in the window with trusted feedback (the only ones read)"),
    ("quarantined", "documents rejected by validation (opinions, plans, feedback), by reason in `quarantined`"),
    ("filtered_no_intent_id", "opinions filtered: no clear intent id on the opinion or its plan"),
    ("filtered_no_audit_event", "opinions filtered: no NLU audit event for the intent"),
    ("filtered_low_intent_confidence", "opinions filtered: NLU intent confidence under min_confidence"),
    ("feedback_dropped", "feedback of the valid opinions read not used as a label, by reason in `feedback_dropped`: "
                         "auto_generated, balanced_dataset, denied_source, below_min_quality, submitted_after_window "
                         "(an older label beside a newer one is not counted)"),
    ("rows", "rows collected"),
    ("labelled", "rows with a trusted human label"),
)


def collected_table(counts: dict) -> dg.TableMetadataValue:
    """What collection read, filtered, quarantined and kept, one row per step."""
    def count(name: str) -> int:
        value = counts.get(name, 0)
        return int(sum(value.values())) if isinstance(value, dict) else int(value or 0)

    return _ui.table([("step", "string", "collection step"), ("count", "int", "documents"),
                      ("meaning", "string", "what the count is")],
                     [{"step": name, "count": count(name), "meaning": meaning} for name, meaning in COLLECTION_STEPS])


def quarantined_table(by_reason: dict[str, int]) -> dg.TableMetadataValue:
    """Quarantined documents per reason code, most frequent first (an empty table when none)."""
    return _ui.table([("reason", "string", "quarantine reason code"), ("count", "int", "documents")],
                     [{"reason": reason, "count": int(n)}
                      for reason, n in sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))])


def audit_reader_for(platform: PlatformSettings, store, window_days: int | None = None):
    """The intents' confidences: the `intentions_audit` collection, or with Kafka the topic's mirror in `store`,
    kept for the longest window asked (the platform's or this run's `window_days`) and a month of backfills."""
    if platform.kafka_bootstrap_servers:
        try:
            security = platform.kafka_security()
        except ConfigError as exc:  # a resource configured in the Launchpad: the environment's were checked at load
            raise dg.Failure(f"the platform resource's Kafka settings: {exc}", allow_retries=False) from None
        days = max(platform.data_collection_days, window_days or 0) + 30  # the audit window is a day longer
        return audit_confidences_from_kafka(platform.kafka_bootstrap_servers, timeout_s=platform.kafka_timeout_s,
                                            security=security, mirror_store=store,
                                            mirror_retention=timedelta(days=days))
    return audit_confidences_from_store(store)


@dg.asset(
    partitions_def=specialist_partitions,
    group_name=DATA,
    kinds={"sqlite", "mongodb", "kafka"},
    owners=OWNERS,
    check_specs=[dg.AssetCheckSpec("enough_samples", asset="raw_production_data",
                                   description="Warns when fewer than min_samples rows were collected.")],
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    resource_defs={"run_lease": RUN_LEASE},  # the partition's one-writer lease, held for the whole run
)
def raw_production_data(
    context: dg.AssetExecutionContext, config: CollectConfig, document_store: DocumentStoreResource,
    platform: PlatformSettings, run_lease: RunLeaseResource,
):
    """Opinion + plan + latest trusted feedback for one specialist; rejected documents are quarantined."""
    no_retry_after_ctrl_c()  # a retry policy would otherwise retry what the user's Ctrl-C cut short
    specialist = context.partition_key
    now = clock.now()
    if config.as_of:
        now = to_utc(config.as_of)
        if now is None:
            raise dg.Failure(f"as_of={config.as_of!r} is not an ISO-8601 timestamp", allow_retries=False)
        current = clock.now()
        # a window ending after the platform clock reads data that does not exist yet: on a simulated home
        # the partition's output was replaced by an empty or partial collection, which training then used
        if now > current + CLOCK_SKEW:
            raise dg.Failure(f"as_of={now.isoformat()} is after the platform clock ({current.isoformat()}): a "
                             "window cannot end at a time that has not come; leave as_of out for now, or move "
                             "the home's clock (`hive clock advance`)", allow_retries=False)
    trust = TrustPolicy(denied_sources=frozenset(config.denied_feedback_sources),
                        min_feedback_quality=config.min_feedback_quality,
                        quality_exempt_sources=frozenset(config.quality_exempt_sources))
    with document_store.opened_in_step(context) as store:
        audit_reader = audit_reader_for(platform, store, config.window_days)
        try:
            result = collect(
                store, specialist, now=now,
                window_days=platform.data_collection_days if config.window_days is None else config.window_days,
                min_confidence=platform.min_confidence if config.min_confidence is None else config.min_confidence,
                trust=trust,
                audit_reader=audit_reader,
                progress=context.log.info,
            )
        except FeedbackFilterEmptiedClass as exc:  # a configuration error: a retry would fail the same way
            raise dg.Failure(str(exc), metadata={"class": exc.label, "feedback_dropped": exc.dropped},
                             allow_retries=False) from exc
        except KafkaRefused as exc:  # credentials or TLS: a retry is refused the same way (a broker away is retried)
            raise dg.Failure(f"{exc}; nothing was written", allow_retries=False) from None
        persist_quarantine(store, result, context.run_id)
        # how each label was asked for (review queue: active / random, else organic): decisions use no active one
        ids = result.frame["opinion_id"].astype(str)
        selections = review.label_selections(store, specialist, ids, dict(zip(
            ids, result.frame["feedback_submitted_at"].map(lambda t: None if pd.isna(t) else t.to_pydatetime()))))
        result.frame["label_selection"] = ids.map(selections)
    counts = result.counts
    context.log.info(f"{specialist}: {counts['rows']} rows, {counts['labelled']} labelled, "
                     f"{counts['quarantined']} quarantined {result.quarantined_by_reason}")
    yield dg.Output(
        result,
        metadata={
            "store": document_store.describe(),
            "rows": counts["rows"],
            "labelled": counts["labelled"],
            "quarantined_total": counts["quarantined"],
            "collected": collected_table(counts),
            "quarantined": quarantined_table(result.quarantined_by_reason),
            "quarantined_by_reason": dg.MetadataValue.json(result.quarantined_by_reason),
            "filtered_low_intent_confidence": counts.get("filtered_low_intent_confidence", 0),
            "filtered_no_audit_event": counts.get("filtered_no_audit_event", 0),
            "filtered_no_intent_id": counts.get("filtered_no_intent_id", 0),
            "intent_from_opinion": counts.get("intent_from_opinion", 0),
            "intent_from_plan": counts.get("intent_from_plan", 0),
            "feedback_dropped": dg.MetadataValue.json(counts.get("feedback_dropped", {})),
            "quality_filter_dropped_by_class": dg.MetadataValue.json(counts.get("quality_filter_dropped_by_class", {})),
            "window": f"{counts['window_start']} .. {counts['window_end']}",
            # the intents' confidences: the collection, or the Kafka topic through its mirror (what was new)
            "audit_source": dg.MetadataValue.json(getattr(audit_reader, "last", {}) or {}),
            # the settings as applied (defaults resolved): trained_model logs them as MLflow params
            "collection_settings": dg.MetadataValue.json(result.settings),
            "data_snapshot_hash": result.snapshot_hash(),
            "label_counts": dg.MetadataValue.json(result.frame["label"].value_counts().to_dict()),
        },
    )
    yield _ui.check_result(
        specialist,
        check_name="enough_samples",
        passed=counts["rows"] >= config.min_samples,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{counts['rows']} rows >= min_samples {config.min_samples}"
                     if counts["rows"] >= config.min_samples
                     else f"{counts['rows']} rows < min_samples {config.min_samples} (a warning; what blocks "
                          "training is enhanced_features' trainable check)"),
        metadata={"rows": counts["rows"], "min_samples": config.min_samples},
    )

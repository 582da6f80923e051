"""Production data (SPEC section 2): document shapes and validation, stores, the audit source, collection.

- `open_store()`: the configured document store (embedded SQLite, or MongoDB/FerretDB with MONGODB_URI);
  the stores themselves live in `hive_assets.data.store`, the Kafka reader in `hive_assets.data.kafka`.
- `collect(store, specialist, ...)`: labelled examples (opinion + plan + latest trusted feedback) and the
  quarantine of rejected documents; `persist_quarantine` keeps them in the `quarantine` collection. Each
  row's plan is its JSON text (`plan_text`), which `features_frame` decodes a few plans at a time.
- `plan_to_serve(document)`: the plan a serving request carries and what collection would quarantine it for.
- `TrustPolicy`, `latest_trusted_feedback`: which feedback becomes a label, and the opinion-feedback join;
  `FeedbackFilterEmptiedClass`: raised by `collect` when the quality filter removed every label of a class.
- `KafkaUnavailable` (a broker away: retried), `KafkaRefused` (credentials or TLS refused: not retried).
"""

from hive_assets.data._audit import (
    AuditReader, audit_confidences_from_kafka, audit_confidences_from_store, audit_sink_for,
)
from hive_assets.data._collect import COLLECTION_SETTINGS, RAW_COLUMNS, CollectResult, clear_id, collect, plan_text
from hive_assets.data._documents import (
    FUTURE_TOLERANCE, NOT_A_DOCUMENT, REASON_CODES, Problem, is_number, jsonable, plan_to_serve, to_utc,
)
from hive_assets.data._join import latest_trusted_feedback
from hive_assets.data._kafka_errors import KafkaRefused, KafkaUnavailable
from hive_assets.data._quarantine import QUARANTINE_COLUMNS, persist_quarantine
from hive_assets.data._trust import FeedbackFilterEmptiedClass, TrustPolicy
from hive_assets.data.store import DocumentStore, SQLiteStore, StoreUnavailable, open_store

__all__ = [
    "COLLECTION_SETTINGS", "FUTURE_TOLERANCE", "NOT_A_DOCUMENT", "QUARANTINE_COLUMNS", "RAW_COLUMNS", "REASON_CODES",
    "AuditReader",
    "CollectResult",
    "DocumentStore",
    "FeedbackFilterEmptiedClass", "KafkaRefused", "KafkaUnavailable",
    "Problem", "SQLiteStore", "StoreUnavailable", "TrustPolicy", "audit_confidences_from_kafka",
    "audit_confidences_from_store", "audit_sink_for", "clear_id", "collect", "latest_trusted_feedback", "open_store", "persist_quarantine",
    "is_number", "jsonable", "plan_text", "plan_to_serve", "to_utc",
]

"""Intent confidences from the `intentions.audit` topic, or the `intentions_audit` collection without Kafka."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from hive_assets import clock
from hive_assets.config import KafkaSecurity
from hive_assets.data._documents import after_every_time, to_utc, usable_confidence
from hive_assets.data.store.base import DocumentStore

log = logging.getLogger(__name__)


AuditReader = Callable[[list[str], datetime, datetime], dict[str, float]]


def audit_confidences_from_store(store: DocumentStore) -> AuditReader:
    """Intent confidences from the `intentions_audit` collection (used when Kafka is not configured).

    An event stamped after `end` (the end of the window, e.g. a backfill's `as_of`) did not exist then and
    is ignored, and so is one stamped after every time collection holds (after 2260); one stamped at `end`
    counts, as an opinion or feedback at that instant does (the window is [start, end]); earlier ones count
    whatever their age (an intent may precede the window), and so do undated ones.
    """

    def read(intent_ids: list[str], start: datetime, end: datetime) -> dict[str, float]:
        read.last = {"source": "intentions_audit collection"}
        out: dict[str, float] = {}
        for ev in store.find_by_keys_where("intentions_audit", "id", intent_ids, {},
                                           projection=["id", "confidence", "timestamp"]):
            stamped = to_utc(ev.get("timestamp"))
            if (stamped > end) if stamped is not None else after_every_time(ev.get("timestamp")):
                continue
            if (conf := usable_confidence(ev)) is not None:
                out[str(ev["id"])] = conf
        return out

    read.last = {}
    return read


def audit_sink_for(settings) -> Callable[[list[dict]], int] | None:
    """Where intent audit events written by the simulator must also go for collection to read them: with
    KAFKA_BOOTSTRAP_SERVERS set, the `intentions.audit` topic (its security too), which collection then reads
    instead of the `intentions_audit` collection; None without Kafka (the collection is the source)."""
    if not settings.kafka_bootstrap_servers:
        return None
    producer = None  # made at the first batch, kept for the next (`AuditProducer`)

    def produce(events: list[dict]) -> int:
        nonlocal producer
        if producer is None:
            from hive_assets.data.kafka import AuditProducer

            producer = AuditProducer(settings.kafka_bootstrap_servers, security=settings.kafka_security)
        try:
            return producer.produce(events)
        except Exception:
            producer = None  # a batch left undelivered: the next starts from a new producer
            raise

    return produce


def audit_confidences_from_kafka(bootstrap_servers: str, topic: str = "intentions.audit",
                                 timeout_s: float = 30.0, security: KafkaSecurity | None = None,
                                 mirror_store: DocumentStore | None = None,
                                 mirror_retention: timedelta | None = None) -> AuditReader:
    """Intent confidences from the `intentions.audit` topic, read for the collection window [start, end].

    With `mirror_store`, the topic is first mirrored into that store (`AuditMirror`: only what is new since
    the last read) and the intents are read from it by id, so collection costs what its labels cost, not
    the traffic; a window older than the mirror reads the topic itself. `mirror_retention`: how far back the
    mirror keeps envelopes (default 120 days), pruned against the platform clock."""

    def read_topic(intent_ids: list[str], start: datetime, end: datetime) -> dict[str, float]:
        from hive_assets.data.kafka import read_audit_events

        read_topic.last = {"source": f"kafka topic {topic}"}

        wanted = set(intent_ids)
        out: dict[str, float] = {}
        events = read_audit_events(bootstrap_servers, start, end, topic=topic, timeout_s=timeout_s,
                                   end_inclusive=True, security=security,
                                   keep=lambda event: str(event.get("id")) in wanted)
        if events.bad_messages:  # skipped, never fatal: said once per read, by reason
            log.warning("%s: %d unusable audit messages skipped %s", topic, len(events.bad_messages),
                        events.bad_by_reason())
        for event in events:
            if str(event.get("id")) in wanted and (conf := usable_confidence(event)) is not None:
                out[str(event["id"])] = conf
        return out

    read_topic.last = {}
    if mirror_store is None:
        return read_topic

    def read(intent_ids: list[str], start: datetime, end: datetime) -> dict[str, float]:
        from hive_assets.data._audit_mirror import DEFAULT_RETENTION, AuditMirror

        mirror = AuditMirror(mirror_store, bootstrap_servers, topic, timeout_s=timeout_s, security=security,
                             retention=mirror_retention or DEFAULT_RETENTION)
        synced = mirror.sync(since=start, now=clock.now())
        log.info("%s mirrored: %d new messages read, %d kept%s%s", topic, synced.messages_read, synced.mirrored,
                 f", {synced.pruned} older than the retention pruned" if synced.pruned else "",
                 f"; unusable, by reason: {synced.bad_by_reason}" if synced.bad_by_reason else "")
        found = mirror.confidences(intent_ids, start, end)
        covered = mirror.covered_since()
        # what the run's metadata says of where the confidences came from
        read.last = {"source": f"kafka topic {topic}, mirrored", "mirror_covers_since": covered and covered.isoformat(),
                     "new_messages_read": synced.messages_read, "new_envelopes_kept": synced.mirrored,
                     "unusable_by_reason": synced.bad_by_reason, "without_confidence": synced.no_confidence,
                     "pruned": synced.pruned,
                     "lost_to_topic_retention": synced.lost_to_retention}
        if synced.waited_for_fill_s >= 0.5:  # another collection was filling the new mirror
            read.last["waited_for_the_first_fill_s"] = round(synced.waited_for_fill_s, 1)
        if synced.took_over_fill:
            read.last["took_over_the_fill_of"] = synced.took_over_fill
        if found is not None:
            return found
        log.info("%s: the window from %s starts before the mirror (%s): the topic itself is read", topic,
                 start.isoformat(), covered)
        read.last["source"] = f"kafka topic {topic}: the window starts before the mirror"
        return read_topic(intent_ids, start, end)

    read.last = {}
    return read

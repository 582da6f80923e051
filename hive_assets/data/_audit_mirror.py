"""The `intentions.audit` topic mirrored into the document store, so that collection reads its intents by id.

Read directly, every collection read the whole window of the topic (91 days of traffic) to find the few intents
of its labelled opinions: its time followed the traffic (8-9 us an envelope, ~80 s per specialist at 9 million
envelopes), once per specialist and retrain. The mirror reads each message once, for every specialist and
every later collection, and keeps what collection uses of it in `intentions_audit_mirror`: the intent `id` (as
text, as the direct read compares it), its `confidence` (envelopes without a usable one are not kept: they never
count), its time `at_us` (the envelope's own `timestamp`, epoch microseconds) and its `partition` and `offset`
(the order in which the direct read lets a later envelope of one intent replace an earlier one). Each is
written under the message's identity (topic, partition, offset) once (`insert_keyless_new`): writing it again
changes nothing.

State, in `intentions_audit_mirror_state`:

* `<topic>|coverage`: `covered_since_us`, `complete` and the topic's id (a topic deleted and made again has
  another: the mirror then starts over). A complete mirror holds every usable envelope stamped
  at or after `covered_since_us` that the topic held when the mirror read it. The first sync starts it at the
  window asked for (`since`) and sets `complete` when it reaches the high watermarks;
* `<topic>|<partition>`: `next_offset`, written after the messages before it are stored: a sync that dies
  (deadline, store outage, a killed pod) loses nothing, and the next one carries on from there;
* `<topic>|filler`: who does the first fill. The five specialists' collections often start together; on a new
  mirror each would read the whole window (the same messages, written once) and pay the fill five times. The
  first takes this lease (`insert_new`: one wins) and renews it while it reads; the others wait for the fill to
  complete and then only top up. A filler that died (no renewal for `fill_ttl_s` of the wall clock, which
  measures whether a process is alive, as the run leases do) is taken over, and the fill carries on from the
  stored offsets.

A window that starts before `covered_since_us` (a backfill older than the mirror) is not answered from it: the
caller reads the topic directly. Pruning keeps the mirror to `retention`: it first moves `covered_since_us`
(compare-and-swap), then deletes what is older; a read checks the coverage again after reading, so a prune that
ran meanwhile sends it to the topic instead of answering with events deleted under it. Messages the topic's own
retention deleted before the mirror read them are counted in `lost_to_retention` (a direct read could not see
them either).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from confluent_kafka import KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from hive_assets import clock
from hive_assets.config import KafkaSecurity
from hive_assets.data._documents import usable_confidence
from hive_assets.data.kafka import (
    AUDIT_TOPIC,
    _client,
    _Deadline,
    _topic_partitions,
    _utc,
    consume_to_watermarks,
    offsets_at,
    reader_client,
    usable_envelope,
    watermarks,
)
from hive_assets.data.store.base import DocumentStore

log = logging.getLogger(__name__)

MIRROR = "intentions_audit_mirror"
MIRROR_STATE = "intentions_audit_mirror_state"
DEFAULT_RETENTION = timedelta(days=120)  # the 91-day audit window of collection, and a month of backfills
_PRUNE_STEP = timedelta(days=1)  # pruned when the horizon has moved this much: a prune is a delete by time
_WRITE_BATCH = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_FILL_POLL_S = 1.0  # how often a sync waiting for another's fill looks at it


def micros(when: datetime) -> int:
    """Epoch microseconds of an aware instant: exact, so that it orders and compares as the datetimes do."""
    return (_utc(when) - _EPOCH) // _MICROSECOND


def _instant(us: int) -> datetime:
    return _EPOCH + int(us) * _MICROSECOND


@dataclass
class MirrorSync:
    """What one sync did: for run metadata and logs."""

    messages_read: int = 0
    mirrored: int = 0
    no_confidence: int = 0
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    lost_to_retention: int = 0
    started: bool = False  # this sync began the mirror
    pruned: int = 0
    waited_for_fill_s: float = 0.0  # waited while another sync did the first fill
    took_over_fill: str | None = None  # the filler that died, when this sync carried its fill on


class AuditMirror:
    """The mirror of one topic in one document store (see the module doc)."""

    def __init__(self, store: DocumentStore, bootstrap_servers: str, topic: str = AUDIT_TOPIC, *,
                 timeout_s: float = 30.0, security: KafkaSecurity | None = None,
                 retention: timedelta = DEFAULT_RETENTION, fill_ttl_s: float | None = None):
        if retention <= timedelta(0):
            raise ValueError(f"the audit mirror's retention must be positive, got {retention}")
        self.store, self.bootstrap_servers, self.topic = store, bootstrap_servers, topic
        self.timeout_s, self.security, self.retention = timeout_s, security, retention
        # a filler renews at least every timeout_s (a wait for the broker is bounded by it) plus a third of this
        self.fill_ttl_s = fill_ttl_s if fill_ttl_s is not None else max(60.0, 3 * timeout_s)
        self._coverage_id = f"{topic}|coverage"
        self._filler_id = f"{topic}|filler"

    def coverage(self) -> dict[str, Any] | None:
        return self.store.find_one(MIRROR_STATE, {"state_id": self._coverage_id})

    def covered_since(self) -> datetime | None:
        """The earliest instant the mirror answers for, or None while it is not complete."""
        cov = self.coverage()
        if not cov or not cov.get("complete"):
            return None
        return _instant(cov["covered_since_us"])

    def sync(self, since: datetime, now: datetime) -> MirrorSync:
        """Read what the topic holds beyond the mirror (from `since` when the mirror is new) up to the high
        watermarks of now, then prune what is older than `now - retention`. KafkaUnavailable when the broker
        does not answer; what was read before that is kept."""
        stats = MirrorSync()
        deadline = _Deadline(self.timeout_s)
        consumer, errors = reader_client(self.bootstrap_servers, self.timeout_s, self.security)
        filler: _FillLease | None = None
        try:
            # first: a broker away, a refused client or no such topic fails here, before anything is written
            partitions = _topic_partitions(consumer, self.bootstrap_servers, self.topic, deadline, errors)
            cov = self._coverage_for(since, self._topic_id(deadline), stats)
            if not cov.get("complete"):
                waiting_since = time.monotonic()
                filler = self._take_fill(stats)
                stats.waited_for_fill_s = time.monotonic() - waiting_since
                if filler is None:  # another sync completed the fill meanwhile: a top-up from its offsets
                    cov = self.coverage() or cov
                deadline = _Deadline(self.timeout_s)  # the wait was not the broker's
            marks = watermarks(consumer, self.bootstrap_servers, self.topic, partitions, deadline)
            stored = {int(doc["partition"]): int(doc["next_offset"])
                      for doc in self.store.find(MIRROR_STATE, {"topic": self.topic, "kind": "offset"})}
            unstarted = [p for p in partitions if p not in stored]
            starts = dict(stored)
            if unstarted and not cov.get("complete"):  # the first fill: from the coverage's start
                starts.update(offsets_at(consumer, self.bootstrap_servers, self.topic, unstarted,
                                         _instant(cov["covered_since_us"]), deadline))
            for p in partitions:
                low, high = marks[p]
                if p not in starts:  # a partition added after the fill: everything it holds is newer
                    starts[p] = low
                elif starts[p] < low and p in stored:  # deleted by the topic's retention before it was read
                    stats.lost_to_retention += low - starts[p]
                    starts[p] = low
                starts[p] = min(starts[p], high)
            if stats.lost_to_retention:
                log.warning("%s: %d messages were deleted by the topic's retention before the mirror read them",
                            self.topic, stats.lost_to_retention)
            assignment = [TopicPartition(self.topic, p, starts[p]) for p in partitions if starts[p] < marks[p][1]]
            batch: list[tuple[str, dict[str, Any]]] = []
            progress: dict[int, int] = {}
            for p, offset, msg in consume_to_watermarks(consumer, self.bootstrap_servers, self.topic, assignment,
                                                        marks, self.timeout_s):
                stats.messages_read += 1
                progress[p] = offset + 1
                if filler is not None:
                    filler.renew_if_due()
                if (doc := self._mirrored(p, offset, msg.value(), stats)) is not None:
                    batch.append((f"{self.topic}|{p}|{offset}", doc))
                if len(batch) >= _WRITE_BATCH or stats.messages_read % (4 * _WRITE_BATCH) == 0:
                    self._write(batch, progress)
                    batch, progress = [], {}
            # read to every high watermark: that is where the next sync starts (past markers and gaps too)
            self._write(batch, {p: marks[p][1] for p in partitions})
            if not cov.get("complete"):
                self.store.update_one(MIRROR_STATE, {"state_id": self._coverage_id}, {"complete": True})
        finally:
            consumer.close()
            if filler is not None:
                filler.release()
        stats.pruned = self._prune(now)
        return stats

    def _take_fill(self, stats: MirrorSync) -> _FillLease | None:
        """The lease of the first fill, or None once another sync completed the fill (waited for while its
        filler renews its lease; a filler that stopped renewing is taken over)."""
        told = False
        while True:
            cov = self.coverage()
            if cov is not None and cov.get("complete"):
                return None
            lease = _FillLease(self.store, self._filler_id, self.topic, self.fill_ttl_s)
            if lease.acquire():
                return lease
            holder = self.store.find_one(MIRROR_STATE, {"state_id": self._filler_id})
            if holder is None:
                continue  # released in between
            if (holder.get("expires_at_us") or 0) <= micros(clock.wall_now()):
                log.warning("%s: the mirror's fill by %s pid %s stopped renewing its lease: carried on here",
                            self.topic, holder.get("host"), holder.get("pid"))
                stats.took_over_fill = f"{holder.get('host')} pid {holder.get('pid')}"
                # as read (its token and expiry): a renewal since keeps it
                self.store.delete_many(MIRROR_STATE, {"state_id": self._filler_id, "token": holder.get("token"),
                                                      "expires_at_us": holder.get("expires_at_us")})
                continue
            if not told:
                log.info("%s: the mirror's first fill is under way (%s pid %s): waiting for it", self.topic,
                         holder.get("host"), holder.get("pid"))
                told = True
            time.sleep(_FILL_POLL_S)

    def _coverage_for(self, since: datetime, topic_id: str | None, stats: MirrorSync) -> dict[str, Any]:
        """The coverage document, made (from `since`) when the mirror is new or its topic was made again."""
        cov = self.coverage()
        if cov is not None and topic_id and cov.get("topic_id") not in (None, topic_id):
            log.warning("%s was deleted and made again (topic id %s, now %s): the mirror starts over", self.topic,
                        cov["topic_id"], topic_id)
            self._forget()
            cov = None
        if cov is None:
            stats.started = self.store.insert_new(MIRROR_STATE, {
                "state_id": self._coverage_id, "topic": self.topic, "topic_id": topic_id,
                "covered_since_us": micros(since), "complete": False})
            return self.coverage()
        if topic_id and cov.get("topic_id") is None:
            self.store.update_one(MIRROR_STATE, {"state_id": self._coverage_id}, {"topic_id": topic_id})
        return cov

    def _topic_id(self, deadline: _Deadline) -> str | None:
        """The topic's id (Kafka 2.8+), which a topic deleted and made again changes; None when the broker does
        not say (then a topic made again goes unseen: older brokers are not supported)."""
        admin, _errors = _client(AdminClient, self.bootstrap_servers, self.timeout_s, self.security)
        try:
            described = admin.describe_topics(TopicCollection([self.topic]),
                                              request_timeout=max(0.1, deadline.left()))[self.topic].result()
        except (KafkaException, TimeoutError):  # no answer now: the next sync asks again
            return None
        return str(described.topic_id) if getattr(described, "topic_id", None) is not None else None

    def _forget(self) -> None:
        # the coverage first: a read under way sees the mirror gone and reads the topic
        self.store.delete_many(MIRROR_STATE, {"state_id": self._coverage_id})
        self.store.delete_many(MIRROR_STATE, {"topic": self.topic})
        self.store.delete_many(MIRROR, {"topic": self.topic})

    def _mirrored(self, partition: int, offset: int, raw: bytes | None, stats: MirrorSync) -> dict[str, Any] | None:
        """The document kept of one message, or None: the same envelopes the direct read skips are skipped, and
        those without a usable confidence (they never count)."""
        event, when, reason, _error = usable_envelope(raw)
        if event is None:
            stats.bad_by_reason[reason] = stats.bad_by_reason.get(reason, 0) + 1
            return None
        if (conf := usable_confidence(event)) is None:
            stats.no_confidence += 1
            return None
        stats.mirrored += 1
        return {"topic": self.topic, "partition": partition, "offset": offset, "id": str(event.get("id")),
                "confidence": conf, "at_us": micros(when)}

    def _write(self, batch: list[tuple[str, dict[str, Any]]], progress: Mapping[int, int]) -> None:
        # the messages first, then how far they go: an offset is never ahead of what is stored
        if batch:  # a message's content at its offset never changes: stored ones are skipped, not rewritten
            self.store.insert_keyless_new(MIRROR, batch)
        if progress:
            self.store.upsert_many(MIRROR_STATE, [
                {"state_id": f"{self.topic}|{p}", "topic": self.topic, "kind": "offset", "partition": p,
                 "next_offset": offset} for p, offset in sorted(progress.items())])

    def _prune(self, now: datetime) -> int:
        cov = self.coverage()
        horizon = micros(now - self.retention)
        if not cov or not cov.get("complete") or cov["covered_since_us"] > horizon - _PRUNE_STEP // _MICROSECOND:
            return 0
        # coverage first (compare-and-swap: one pruner moves it), then the documents: a read that saw the old
        # coverage sees the new one when it checks again after reading
        if not self.store.update_one(MIRROR_STATE, {"state_id": self._coverage_id,
                                                    "covered_since_us": cov["covered_since_us"]},
                                     {"covered_since_us": horizon}):
            return 0
        return self.store.delete_many(MIRROR, {"topic": self.topic, "at_us": {"$lt": horizon}})

    def confidences(self, intent_ids: Iterable[str], start: datetime, end: datetime) -> dict[str, float] | None:
        """The confidence of each intent as the direct read of [start, end] gives it (the latest envelope in
        the window by time, partition and offset, among those with a usable confidence), or None when the
        mirror does not cover `start`: then only the topic can answer."""
        start_us, end_us = micros(start), micros(end)

        def covers() -> bool:
            cov = self.coverage()
            return bool(cov and cov.get("complete") and cov["covered_since_us"] <= start_us)

        if not covers():
            return None
        found = [doc for doc in self.store.find_by_keys_where(
                     MIRROR, "id", intent_ids, {"topic": self.topic},
                     projection=["id", "confidence", "at_us", "partition", "offset"])
                 if start_us <= doc["at_us"] <= end_us]
        if not covers():  # pruned while it was read
            return None
        found.sort(key=lambda doc: (doc["at_us"], doc["partition"], doc["offset"]))
        return {doc["id"]: float(doc["confidence"]) for doc in found}


class _FillLease:
    """The first fill's lease: one document, `insert_new` decides who holds it, the token proves it."""

    def __init__(self, store: DocumentStore, state_id: str, topic: str, ttl_s: float):
        self.store, self.state_id, self.topic, self.ttl_s = store, state_id, topic, ttl_s
        self.token = uuid.uuid4().hex
        self._renewed = 0.0

    def _expiry_us(self) -> int:
        self._renewed = time.monotonic()
        return micros(clock.wall_now()) + int(self.ttl_s * 1_000_000)

    def acquire(self) -> bool:
        return self.store.insert_new(MIRROR_STATE, {
            "state_id": self.state_id, "topic": self.topic, "kind": "filler", "token": self.token,
            "host": socket.gethostname(), "pid": os.getpid(), "expires_at_us": self._expiry_us()})

    def renew_if_due(self) -> None:
        if time.monotonic() - self._renewed < self.ttl_s / 3:
            return
        if not self.store.update_one(MIRROR_STATE, {"state_id": self.state_id, "token": self.token},
                                     {"expires_at_us": self._expiry_us()}):
            # taken over (this process looked dead): both write the same documents, so reading on is harmless
            log.warning("%s: the mirror's fill lease was taken over by another sync", self.topic)

    def release(self) -> None:
        try:
            self.store.delete_many(MIRROR_STATE, {"state_id": self.state_id, "token": self.token})
        except Exception as exc:  # the store that stopped the fill: the lease expires by itself, the error stands
            log.warning("%s: the mirror's fill lease was not released (%s): it expires in %.0f s", self.topic,
                        type(exc).__name__, self.ttl_s)

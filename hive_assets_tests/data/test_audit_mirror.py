"""The `intentions.audit` mirror (issue 23): a real KRaft broker, the SQLite store and FerretDB.

The reference is the topic's direct read (`read_audit_events`, which the mirror does not use for its answers),
and for one window a computation from the produced envelopes themselves."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data import audit_confidences_from_kafka
from hive_assets.data._audit_mirror import MIRROR, MIRROR_STATE, AuditMirror
from hive_assets.data.kafka import event_time, produce_audit_events
from hive_assets.data.store import StoreUnavailable
from hive_assets_tests.data.store import any_store  # noqa: F401 - the fixture

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEEP = {"retention.ms": "-1"}  # the events are dated in the past: never let retention expire them


def envelope(i: int, when: datetime, confidence=None, intent_id=None) -> dict:
    return {"id": intent_id or f"intent-{i:04d}",
            "confidence": 0.5 + (i % 50) / 100 if confidence is None else confidence,
            "timestamp": when.isoformat().replace("+00:00", "Z") if i % 2 else int(when.timestamp() * 1000),
            "intent": {"text": f"do thing {i}"}}


def corpus() -> list[dict]:
    """72 envelopes over 6 days, and an intent seen again: later, later with no usable confidence, at the same
    instant (the later offset wins), once more after every window's end, and stamped earlier than before (the
    later time wins, not the later offset)."""
    events = [envelope(i, T0 + timedelta(hours=2 * i)) for i in range(72)]
    events += [envelope(100, T0 + timedelta(hours=30), 0.11, "intent-0003"),
               envelope(101, T0 + timedelta(hours=31), "high", "intent-0003"),
               envelope(102, T0 + timedelta(hours=40), 0.22, "intent-0020"),
               envelope(103, T0 + timedelta(hours=40), 0.33, "intent-0020"),
               envelope(104, T0 + timedelta(days=30), 0.44, "intent-0010"),
               envelope(106, T0 + timedelta(hours=50), 0.66, "intent-0030"),  # earlier than its first one
               envelope(105, T0 + timedelta(hours=5), None, 12345678901234567890123)]
    return events


def expected(events: list[dict], wanted: set[str], start: datetime, end: datetime) -> dict[str, float]:
    """The latest usable confidence of each wanted intent in [start, end], from the envelopes as produced (one
    partition: production order breaks ties)."""
    out = {}
    for order, e in sorted(enumerate(events), key=lambda item: (event_time(item[1]["timestamp"]), item[0])):
        ok = isinstance(e["confidence"], float)
        if str(e["id"]) in wanted and ok and start <= event_time(e["timestamp"]) <= end:
            out[str(e["id"])] = e["confidence"]
    return out


def hostile_messages(bootstrap: str, topic: str) -> None:
    """What the direct read skips by reason: not JSON, a tombstone, too deep, a lone surrogate, no timestamp."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    ts = int((T0 + timedelta(hours=7)).timestamp() * 1000)
    stamp = f'"timestamp": {ts}, "confidence": 0.9'
    for value in (b"\xff not json", None, ('{"id": "intent-0001", ' + stamp + ', "x": ' + '{"x":' * 70 + "1"
                                           + "}" * 71).encode(),
                  ('{"id": "intent-0002", ' + stamp + ', "t": "\\ud800"}').encode(),
                  json.dumps({"id": "intent-0004", "confidence": 0.99, "timestamp": "someday"}).encode()):
        producer.produce(topic, value, key=b"k", timestamp=ts)
    assert producer.flush(10) == 0


@pytest.fixture
def topic() -> str:
    return f"intentions.audit.mirror-{uuid.uuid4().hex[:10]}"


WANTED = [f"intent-{i:04d}" for i in range(0, 80, 3)] + ["intent-0020", "intent-0010", "12345678901234567890123",
                                                          "never-seen"]
WINDOWS = [(T0, T0 + timedelta(days=6)), (T0 + timedelta(hours=30), T0 + timedelta(hours=40)),
           (T0 + timedelta(days=2), T0 + timedelta(days=40)), (T0 + timedelta(days=7), T0 + timedelta(days=8))]


def test_the_mirror_answers_as_the_topic_does(kafka_bootstrap, topic, any_store):  # noqa: F811
    events = corpus()
    assert produce_audit_events(kafka_bootstrap, events, topic, num_partitions=3, topic_config=KEEP) == len(events)
    hostile_messages(kafka_bootstrap, topic)
    direct = audit_confidences_from_kafka(kafka_bootstrap, topic)
    mirrored = audit_confidences_from_kafka(kafka_bootstrap, topic, mirror_store=any_store,
                                            mirror_retention=timedelta(days=36_500))
    for start, end in WINDOWS:
        got = mirrored(WANTED, start, end)
        assert got == direct(WANTED, start, end), (start, end)
    # and against the envelopes themselves, on the window with every repeat of an intent
    assert mirrored(WANTED, T0, T0 + timedelta(days=40)) == expected(events, set(WANTED), T0, T0 + timedelta(days=40))
    # three envelopes of intent-0020 at one instant, on one partition (one key): the last produced wins
    assert mirrored(WANTED, T0, T0 + timedelta(days=40))["intent-0020"] == 0.33
    mirror = AuditMirror(any_store, kafka_bootstrap, topic)
    assert mirror.covered_since() == T0
    # every usable envelope, once: the hostile ones and the one without a usable confidence are not kept
    assert any_store.count(MIRROR, {"topic": topic}) == len(events) - 1


def test_only_what_is_new_is_read_again(kafka_bootstrap, topic, any_store):  # noqa: F811
    produce_audit_events(kafka_bootstrap, corpus(), topic, num_partitions=3, topic_config=KEEP)
    mirror = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=36_500))
    first = mirror.sync(since=T0, now=T0 + timedelta(days=7))
    assert first.started and first.messages_read == len(corpus()) and first.mirrored == len(corpus()) - 1
    late = [envelope(200 + i, T0 + timedelta(days=1, minutes=i), 0.9, f"late-{i}") for i in range(5)]
    produce_audit_events(kafka_bootstrap, late, topic)
    second = mirror.sync(since=T0, now=T0 + timedelta(days=7))
    assert (second.started, second.messages_read, second.mirrored) == (False, 5, 5)
    assert mirror.sync(since=T0, now=T0 + timedelta(days=7)).messages_read == 0
    # a late envelope, stamped inside a window already read, is answered
    assert mirror.confidences(["late-2"], T0, T0 + timedelta(days=2)) == {"late-2": 0.9}


def test_the_first_fill_starts_at_the_window_asked_and_older_windows_read_the_topic(kafka_bootstrap, topic,
                                                                                    any_store):  # noqa: F811
    events = corpus()
    produce_audit_events(kafka_bootstrap, events, topic, num_partitions=3, topic_config=KEEP)
    since = T0 + timedelta(days=3)
    mirror = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=36_500))
    synced = mirror.sync(since=since, now=T0 + timedelta(days=7))
    assert synced.messages_read < len(events)  # the partitions were read from `since` on
    assert mirror.confidences(WANTED, T0, T0 + timedelta(days=6)) is None  # older than the mirror
    assert mirror.confidences(WANTED, since, T0 + timedelta(days=6)) == expected(events, set(WANTED), since,
                                                                                 T0 + timedelta(days=6))
    # through the reader: the older window is answered from the topic, whole
    read = audit_confidences_from_kafka(kafka_bootstrap, topic, mirror_store=any_store,
                                        mirror_retention=timedelta(days=36_500))
    assert read(WANTED, T0, T0 + timedelta(days=6)) == expected(events, set(WANTED), T0, T0 + timedelta(days=6))


class FailingWrites:
    """The store, whose `fail_at`-th mirror write fails as a store outage would (between two batches: the
    real store cannot be made to fail at that instant)."""

    def __init__(self, store, fail_at: int):
        self._store, self.fail_at, self.writes = store, fail_at, 0

    def insert_keyless_new(self, collection, items):
        self.writes += 1
        if self.writes == self.fail_at:
            raise StoreUnavailable("the store went away")
        return self._store.insert_keyless_new(collection, items)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_an_interrupted_fill_carries_on_where_it_stopped(kafka_bootstrap, topic, any_store, monkeypatch):  # noqa: F811
    import hive_assets.data._audit_mirror as mirror_module

    monkeypatch.setattr(mirror_module, "_WRITE_BATCH", 10)
    events = corpus()
    produce_audit_events(kafka_bootstrap, events, topic, num_partitions=1, topic_config=KEEP)
    failing = FailingWrites(any_store, fail_at=3)
    with pytest.raises(StoreUnavailable):
        AuditMirror(failing, kafka_bootstrap, topic).sync(since=T0, now=T0 + timedelta(days=7))
    assert any_store.find_one(MIRROR_STATE, {"state_id": f"{topic}|filler"}) is None  # its lease released
    mirror = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=36_500))
    assert mirror.covered_since() is None and mirror.confidences(WANTED, T0, T0 + timedelta(days=6)) is None
    resumed = mirror.sync(since=T0 + timedelta(days=5), now=T0 + timedelta(days=7))  # `since` of the fill stands
    assert not resumed.started and resumed.messages_read == len(events) - 20  # two batches of 10 were stored
    assert mirror.covered_since() == T0
    window = (T0, T0 + timedelta(days=40))
    assert mirror.confidences(WANTED, *window) == expected(events, set(WANTED), *window)


class SlowWrites:
    """The store, whose mirror writes take `seconds` each: a fill long enough for another sync to start."""

    def __init__(self, store, seconds: float):
        self._store, self.seconds = store, seconds

    def insert_keyless_new(self, collection, items):
        time.sleep(self.seconds)
        return self._store.insert_keyless_new(collection, items)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_collections_starting_together_fill_the_mirror_once(kafka_bootstrap, topic, any_store,  # noqa: F811
                                                            monkeypatch):
    """The second sync waits for the first one's fill (renewed past its lease's TTL of 1.5 s: not taken over)
    and then reads only what is new; both answer as the envelopes do."""
    import hive_assets.data._audit_mirror as mirror_module

    monkeypatch.setattr(mirror_module, "_WRITE_BATCH", 10)
    monkeypatch.setattr(mirror_module, "_FILL_POLL_S", 0.1)
    events = corpus()
    produce_audit_events(kafka_bootstrap, events, topic, num_partitions=3, topic_config=KEEP)
    syncs = {}

    def sync(name, store):
        mirror = AuditMirror(store, kafka_bootstrap, topic, retention=timedelta(days=36_500), fill_ttl_s=1.5)
        syncs[name] = mirror.sync(since=T0, now=T0 + timedelta(days=7))

    first = threading.Thread(target=sync, args=("first", SlowWrites(any_store, 0.4)))
    first.start()
    deadline = time.monotonic() + 30
    while any_store.find_one(MIRROR_STATE, {"state_id": f"{topic}|filler"}) is None:
        assert first.is_alive() and time.monotonic() < deadline, "the first sync never took the fill's lease"
        time.sleep(0.02)
    second = threading.Thread(target=sync, args=("second", any_store))
    second.start()
    first.join(60)
    second.join(60)
    assert (syncs["first"].messages_read, syncs["second"].messages_read) == (len(events), 0)
    assert syncs["first"].waited_for_fill_s < 0.5 and syncs["second"].waited_for_fill_s > 1.5  # 8 writes of 0.4 s
    assert syncs["second"].took_over_fill is None
    assert any_store.count(MIRROR, {"topic": topic}) == len(events) - 1
    assert any_store.find_one(MIRROR_STATE, {"state_id": f"{topic}|filler"}) is None
    window = (T0, T0 + timedelta(days=40))
    assert AuditMirror(any_store, kafka_bootstrap, topic).confidences(WANTED, *window) == \
        expected(events, set(WANTED), *window)


def test_a_filler_that_stopped_renewing_is_taken_over(kafka_bootstrap, topic, any_store, monkeypatch):  # noqa: F811
    """A fill cut short whose process is gone (its lease left held, 1.5 s to run): the next sync waits for the
    lease to expire, then carries the fill on from the stored offsets."""
    import hive_assets.data._audit_mirror as mirror_module
    from hive_assets import clock
    from hive_assets.data._audit_mirror import micros

    monkeypatch.setattr(mirror_module, "_WRITE_BATCH", 10)
    monkeypatch.setattr(mirror_module, "_FILL_POLL_S", 0.1)
    events = corpus()
    produce_audit_events(kafka_bootstrap, events, topic, num_partitions=1, topic_config=KEEP)
    with pytest.raises(StoreUnavailable):
        AuditMirror(FailingWrites(any_store, fail_at=3), kafka_bootstrap, topic).sync(since=T0, now=T0)
    any_store.insert_new(MIRROR_STATE, {"state_id": f"{topic}|filler", "topic": topic, "kind": "filler",
                                        "token": "gone", "host": "elsewhere", "pid": 4242,
                                        "expires_at_us": micros(clock.wall_now()) + 1_500_000})
    synced = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=36_500)).sync(
        since=T0, now=T0 + timedelta(days=7))
    assert synced.took_over_fill == "elsewhere pid 4242" and 1.0 < synced.waited_for_fill_s < 10
    assert synced.messages_read == len(events) - 20  # two batches of 10 were stored before the cut
    assert any_store.find_one(MIRROR_STATE, {"state_id": f"{topic}|filler"}) is None
    window = (T0, T0 + timedelta(days=40))
    assert AuditMirror(any_store, kafka_bootstrap, topic).confidences(WANTED, *window) == \
        expected(events, set(WANTED), *window)


def test_pruning_moves_the_coverage_before_deleting_and_a_read_racing_it_reads_the_topic(kafka_bootstrap, topic,
                                                                                        any_store):  # noqa: F811
    events = corpus()
    produce_audit_events(kafka_bootstrap, events, topic, num_partitions=3, topic_config=KEEP)
    mirror = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=10))
    assert mirror.sync(since=T0, now=T0 + timedelta(days=10, hours=12)).pruned == 0  # under a day past: kept
    synced = mirror.sync(since=T0, now=T0 + timedelta(days=13))
    horizon = T0 + timedelta(days=3)
    assert mirror.covered_since() == horizon
    older = [e for e in events if isinstance(e["confidence"], float) and event_time(e["timestamp"]) < horizon]
    assert synced.pruned == len(older) == len(events) - 1 - any_store.count(MIRROR, {"topic": topic})
    assert mirror.confidences(WANTED, T0, T0 + timedelta(days=6)) is None
    # a prune between the coverage check and the end of the read: the read does not answer
    racing = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=8))
    real_find = any_store.find_by_keys_where

    def find_then_prune(*args, **kwargs):
        found = list(real_find(*args, **kwargs))
        racing._prune(T0 + timedelta(days=13))
        return iter(found)

    any_store.find_by_keys_where = find_then_prune
    try:
        assert mirror.confidences(WANTED, horizon, T0 + timedelta(days=6)) is None
    finally:
        del any_store.find_by_keys_where
    assert mirror.covered_since() == T0 + timedelta(days=5)
    # the reader, asked for the pruned part, answers from the topic
    read = audit_confidences_from_kafka(kafka_bootstrap, topic, mirror_store=any_store,
                                        mirror_retention=timedelta(days=8))
    assert read(WANTED, T0, T0 + timedelta(days=6)) == expected(events, set(WANTED), T0, T0 + timedelta(days=6))


def test_messages_the_topic_deleted_before_they_were_read_are_counted(kafka_bootstrap, topic, any_store):  # noqa: F811
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    events = [envelope(i, T0 + timedelta(hours=i), 0.8) for i in range(30)]
    produce_audit_events(kafka_bootstrap, events[:10], topic, num_partitions=1, topic_config=KEEP)
    mirror = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=36_500))
    assert mirror.sync(since=T0, now=T0 + timedelta(days=2)).mirrored == 10
    produce_audit_events(kafka_bootstrap, events[10:], topic)
    # the topic's retention deletes offsets 10..14 before the mirror comes back
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_records([TopicPartition(topic, 0, 15)], request_timeout=30).values():
        future.result(timeout=30)
    synced = mirror.sync(since=T0, now=T0 + timedelta(days=2))
    assert (synced.lost_to_retention, synced.messages_read) == (5, 15)
    got = mirror.confidences([e["id"] for e in events], T0, T0 + timedelta(days=2))
    assert sorted(got) == sorted(e["id"] for e in events[:10] + events[15:])


def test_the_mirror_state_is_its_own_per_topic(kafka_bootstrap, topic, any_store):  # noqa: F811
    """Two topics in one store: each has its coverage and offsets, and answers only its own envelopes."""
    other = topic + "-b"
    produce_audit_events(kafka_bootstrap, [envelope(1, T0, 0.6)], topic, topic_config=KEEP)
    produce_audit_events(kafka_bootstrap, [envelope(1, T0, 0.7)], other, topic_config=KEEP)
    for name in (topic, other):
        AuditMirror(any_store, kafka_bootstrap, name).sync(since=T0, now=T0)
    assert AuditMirror(any_store, kafka_bootstrap, topic).confidences(["intent-0001"], T0, T0) == {"intent-0001": 0.6}
    assert AuditMirror(any_store, kafka_bootstrap, other).confidences(["intent-0001"], T0, T0) == {"intent-0001": 0.7}
    assert any_store.count(MIRROR_STATE, {"topic": topic}) == 2  # coverage, and partition 0's offset


def test_a_topic_made_again_is_read_again_from_its_start(kafka_bootstrap, topic, any_store):  # noqa: F811
    """Deleted and created again, the topic's offsets start over: the mirror forgets that partition's messages
    (their identities now name others) and reads the new topic whole."""

    from confluent_kafka.admin import AdminClient

    produce_audit_events(kafka_bootstrap, [envelope(i, T0 + timedelta(hours=i), 0.8) for i in range(10)], topic,
                         topic_config=KEEP)
    mirror = AuditMirror(any_store, kafka_bootstrap, topic, retention=timedelta(days=36_500))
    mirror.sync(since=T0, now=T0 + timedelta(days=1))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    # more messages than the mirror had read: only the topic's id tells it is another topic
    again = [envelope(i, T0 + timedelta(hours=i), 0.3, f"again-{i}") for i in range(12)]
    produce_audit_events(kafka_bootstrap, again, topic, topic_config=KEEP)
    synced = mirror.sync(since=T0, now=T0 + timedelta(days=1))
    assert synced.started and synced.messages_read == 12
    ids = [f"intent-{i:04d}" for i in range(10)] + [e["id"] for e in again]
    assert mirror.confidences(ids, T0, T0 + timedelta(days=1)) == {e["id"]: 0.3 for e in again}

"""`intentions.audit` against a real single-node KRaft broker (the `kafka_bootstrap` session fixture)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data.kafka import (
    AuditEvents,
    KafkaUnavailable,
    event_time,
    produce_audit_events,
    read_audit_events,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
KEEP = {"retention.ms": "-1"}  # the events are dated in the past: never let retention expire them


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def envelope(i: int, when: datetime, iso: bool) -> dict:
    return {
        "id": f"intent-{i:04d}",
        "timestamp": when.isoformat().replace("+00:00", "Z") if iso else int(when.timestamp() * 1000),
        "confidence": 0.5 + (i % 50) / 100,
        "intent": {"text": f"do thing {i}", "domain": "TECHNICAL" if i % 2 else "business"},
        "actor": {"id": "u1"},
        "context": {"channel": "api"},
    }


@pytest.fixture
def topic() -> str:
    return f"intentions.audit.test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def six_days(kafka_bootstrap, topic):
    """72 envelopes, one every 2 hours over 6 days, on 3 partitions, half epoch-ms half ISO, out of order."""
    events = [envelope(i, T0 + timedelta(hours=2 * i), iso=i % 2 == 0) for i in range(72)]
    shuffled = events[1::2] + events[::2]
    assert produce_audit_events(kafka_bootstrap, shuffled, topic, num_partitions=3, topic_config=KEEP) == 72
    return events


def in_window(events, start, end) -> list[str]:
    return sorted(e["id"] for e in events if start <= event_time(e["timestamp"]) < end)


def test_reads_exactly_the_window(kafka_bootstrap, topic, six_days):
    start, end = T0 + timedelta(days=2), T0 + timedelta(days=4)
    t0 = time.monotonic()
    got = read_audit_events(kafka_bootstrap, start, end, topic=topic, timeout_s=30)
    assert time.monotonic() - t0 < 15
    assert isinstance(got, AuditEvents) and isinstance(got, list)
    assert sorted(e["id"] for e in got) == in_window(six_days, start, end)
    assert len(got) == 24
    # the start is inclusive and the end exclusive (events sit exactly on both)
    ids = {e["id"] for e in got}
    assert "intent-0024" in ids and "intent-0048" not in ids
    # sorted by event time, decoded as produced
    times = [event_time(e["timestamp"]) for e in got]
    assert times == sorted(times)
    assert got[0] == next(e for e in six_days if e["id"] == "intent-0024")
    assert got.partitions == 3
    assert got.bad_messages == []
    # produced out of time order: some messages before the window are read and dropped
    assert got.messages_read == 24 + got.out_of_window
    assert got.messages_read < 72
    assert got.stats()["events"] == 24


def test_keeps_only_the_events_it_is_asked_for(kafka_bootstrap, topic, six_days):
    """Collection wants a few intents of a window holding the whole traffic: only those are kept in memory."""
    start, end = T0 + timedelta(days=2), T0 + timedelta(days=4)
    wanted = {"intent-0024", "intent-0031", "intent-0047", "intent-0060"}  # the last one is after the window
    got = read_audit_events(kafka_bootstrap, start, end, topic=topic, keep=lambda e: e["id"] in wanted)
    assert [e["id"] for e in got] == ["intent-0024", "intent-0031", "intent-0047"]
    assert got.not_kept == 24 - 3 and got.messages_read == 24 + got.out_of_window


def test_seeks_to_the_window_start(kafka_bootstrap, topic):
    """Produced in time order, nothing before `start` is even read (offsets_for_times)."""
    events = [envelope(i, T0 + timedelta(hours=2 * i), iso=i % 3 == 0) for i in range(72)]
    produce_audit_events(kafka_bootstrap, events, topic, num_partitions=2, topic_config=KEEP)
    got = read_audit_events(kafka_bootstrap, T0 + timedelta(days=2), T0 + timedelta(days=4), topic=topic)
    assert [e["id"] for e in got] == [f"intent-{i:04d}" for i in range(24, 48)]
    assert got.messages_read == 48  # events 24..71: from the window start to the high watermark
    assert got.out_of_window == 24


def test_windows_partition_the_stream(kafka_bootstrap, topic, six_days):
    edges = [T0 - timedelta(days=1), T0 + timedelta(hours=13), T0 + timedelta(days=3, minutes=1), T0 + timedelta(days=9)]
    seen: list[str] = []
    for start, end in zip(edges, edges[1:]):
        seen += [e["id"] for e in read_audit_events(kafka_bootstrap, start, end, topic=topic, timeout_s=30)]
    assert sorted(seen) == sorted(e["id"] for e in six_days)
    assert read_audit_events(kafka_bootstrap, T0 + timedelta(days=30), T0 + timedelta(days=31), topic=topic) == []
    assert read_audit_events(kafka_bootstrap, T0 + timedelta(days=3), T0 + timedelta(days=3), topic=topic) == []


def test_collection_reads_its_window_end_inclusive(kafka_bootstrap, topic, six_days):
    """Collection's window is [start, now]: an opinion or a label stamped at `now` counts, and so does an
    audit event stamped there (it was dropped: [start, end) is what partitions the stream, the default)."""
    from hive_assets.data import audit_confidences_from_kafka

    start, end = T0 + timedelta(days=2), T0 + timedelta(days=4)
    got = read_audit_events(kafka_bootstrap, start, end, topic=topic, timeout_s=30, end_inclusive=True)
    assert [e["id"] for e in got] == [f"intent-{i:04d}" for i in range(24, 49)]  # 0048 sits at `end`
    at_one_instant = read_audit_events(kafka_bootstrap, end, end, topic=topic, timeout_s=30, end_inclusive=True)
    assert [e["id"] for e in at_one_instant] == ["intent-0048"]
    read = audit_confidences_from_kafka(kafka_bootstrap, topic=topic, timeout_s=30)
    assert set(read(["intent-0047", "intent-0048", "intent-0049"], start, end)) == {"intent-0047", "intent-0048"}


def test_naive_datetimes_are_utc(kafka_bootstrap, topic, six_days):
    aware = read_audit_events(kafka_bootstrap, T0 + timedelta(days=1), T0 + timedelta(days=2), topic=topic)
    naive = read_audit_events(kafka_bootstrap, datetime(2026, 1, 2), datetime(2026, 1, 3), topic=topic)
    assert [e["id"] for e in aware] == [e["id"] for e in naive] and len(aware) == 12


def test_undecodable_messages_are_reported_not_raised(kafka_bootstrap, topic):
    from confluent_kafka import Producer

    good = [envelope(i, T0 + timedelta(hours=i), iso=False) for i in range(5)]
    produce_audit_events(kafka_bootstrap, good, topic, num_partitions=1, topic_config=KEEP)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    ts = int((T0 + timedelta(hours=2, minutes=30)).timestamp() * 1000)
    producer.produce(topic, b"\xff\xfe not json", timestamp=ts)
    producer.produce(topic, b"[1, 2]", timestamp=ts)
    producer.produce(topic, json.dumps({"id": "no-time"}).encode(), timestamp=ts)
    producer.produce(topic, json.dumps({"id": "bad-time", "timestamp": "someday"}).encode(), timestamp=ts)
    producer.produce(topic, None, key=b"tombstone", timestamp=ts)
    assert producer.flush(10) == 0
    produce_audit_events(kafka_bootstrap, [envelope(9, T0 + timedelta(hours=3), iso=True)], topic)

    got = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=1), topic=topic, timeout_s=30)
    assert [e["id"] for e in got] == ["intent-0000", "intent-0001", "intent-0002", "intent-0003", "intent-0009", "intent-0004"]
    assert len(got.bad_messages) == 5
    assert [b["offset"] for b in got.bad_messages] == [5, 6, 7, 8, 9]
    assert all(b["partition"] == 0 and b["error"] for b in got.bad_messages)
    assert "no usable timestamp" in got.bad_messages[2]["error"]


def test_hostile_envelopes_are_counted_by_reason_not_raised(kafka_bootstrap, topic):
    """Issue 21: an envelope nested 100,000 levels deep (the decoder recurses), one over the 64-level limit,
    one with a lone surrogate (valid JSON text): each skipped with its reason, the good ones read."""
    from confluent_kafka import Producer

    good = [envelope(i, T0 + timedelta(hours=i), iso=False) for i in range(3)]
    produce_audit_events(kafka_bootstrap, good, topic, num_partitions=1, topic_config=KEEP)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    ts = int((T0 + timedelta(hours=1, minutes=30)).timestamp() * 1000)
    stamp = f'"timestamp": {ts}, "confidence": 0.9'
    producer.produce(topic, ('{"id": "deep", ' + stamp + ', "x": ' + '{"x":' * 100_000 + "1" + "}" * 100_001).encode(),
                     timestamp=ts)
    producer.produce(topic, ('{"id": "deep70", ' + stamp + ', "x": ' + '{"x":' * 70 + "1" + "}" * 71).encode(),
                     timestamp=ts)
    producer.produce(topic, ('{"id": "intent-\\ud800", ' + stamp + "}").encode(), timestamp=ts)
    assert producer.flush(10) == 0

    got = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=1), topic=topic, timeout_s=30)

    assert [e["id"] for e in got] == ["intent-0000", "intent-0001", "intent-0002"]
    assert [(b["offset"], b["reason"]) for b in got.bad_messages] == [(3, "too_deep"), (4, "too_deep"),
                                                                       (5, "invalid_string")]
    assert got.bad_by_reason() == {"too_deep": 2, "invalid_string": 1}
    json.dumps(got.bad_messages)  # the report itself is plain, writable text
    # asked for some intents (collection): a hostile one asked for is still refused with its reason; one not
    # asked for is only counted (its walk was 40 % of a read); one the decoder cannot read is reported either way
    wanted = {"intent-0001", "deep70", "intent-\ud800"}
    kept = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=1), topic=topic,
                             keep=lambda e: e["id"] in wanted)
    assert [e["id"] for e in kept] == ["intent-0001"]
    assert kept.bad_by_reason() == {"too_deep": 2, "invalid_string": 1} and kept.not_kept == 2


def test_message_timestamps_follow_the_envelope(kafka_bootstrap, topic):
    from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition

    events = [envelope(0, T0 + timedelta(days=1), iso=True), envelope(1, T0 + timedelta(days=2), iso=False)]
    produce_audit_events(kafka_bootstrap, events, topic)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "t", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        msgs = []
        deadline = time.monotonic() + 20
        while len(msgs) < 2 and time.monotonic() < deadline:
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                msgs.append(m)
    finally:
        consumer.close()
    assert [m.timestamp() for m in msgs] == [
        (TIMESTAMP_CREATE_TIME, int((T0 + timedelta(days=1)).timestamp() * 1000)),
        (TIMESTAMP_CREATE_TIME, int((T0 + timedelta(days=2)).timestamp() * 1000)),
    ]
    assert [m.key() for m in msgs] == [b"intent-0000", b"intent-0001"]


def test_does_not_wait_for_messages_produced_later(kafka_bootstrap, topic, six_days):
    """Reading stops at the high watermark captured at the start: an idle topic returns at once."""
    t0 = time.monotonic()
    got = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=10), topic=topic, timeout_s=30)
    assert len(got) == 72
    assert time.monotonic() - t0 < 10


def test_missing_topic(kafka_bootstrap):
    name = f"intentions.audit.absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaUnavailable, match="not found") as info:
        read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=1), topic=name, timeout_s=10)
    assert name in str(info.value) and kafka_bootstrap in str(info.value)
    # asking did not create it
    from confluent_kafka.admin import AdminClient

    assert name not in AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics


def test_produce_creates_the_topic_once(kafka_bootstrap, topic):
    assert produce_audit_events(kafka_bootstrap, [envelope(1, T0, iso=True)], topic, num_partitions=2) == 1
    assert produce_audit_events(kafka_bootstrap, [envelope(2, T0, iso=True)], topic, num_partitions=5) == 1
    got = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(seconds=1), topic=topic)
    assert sorted(e["id"] for e in got) == ["intent-0001", "intent-0002"]
    assert got.partitions == 2


def test_one_producer_delivers_batch_after_batch(kafka_bootstrap, topic):
    """`hive simulate` and `hive loop` hand their audit events over in batches: one producer takes them all."""
    from hive_assets.data.kafka import AuditProducer

    producer = AuditProducer(kafka_bootstrap, topic, topic_config=KEEP)
    events = [envelope(i, T0 + timedelta(hours=i), iso=i % 2 == 0) for i in range(30)]
    assert [producer.produce(events[:10]), producer.produce(events[10:])] == [10, 20]
    got = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=2), topic=topic)
    assert sorted(e["id"] for e in got) == sorted(e["id"] for e in events)

def test_a_deadline_beyond_five_minutes_is_taken(kafka_bootstrap, topic):
    """A long window's read (`kafka_timeout_s: 900`) built a client librdkafka refused: socket.timeout.ms
    is at most 300,000."""
    produce_audit_events(kafka_bootstrap, [envelope(1, T0, iso=True)], topic, timeout_s=900)
    got = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=1), topic=topic, timeout_s=900)
    assert [e["id"] for e in got] == ["intent-0001"]

def test_a_read_longer_than_the_timeout_is_read_to_its_end(kafka_bootstrap, topic):
    """`timeout_s` bounds the broker's silence, not the read: a window whose handling takes 3 s (here a slow
    `keep`; in production millions of envelopes) is read whole with a timeout of 1 s."""
    events = [envelope(i, T0 + timedelta(seconds=i), iso=False) for i in range(1500)]  # several fetches
    produce_audit_events(kafka_bootstrap, events, topic, topic_config=KEEP)

    def slow_keep(_event) -> bool:
        time.sleep(0.002)
        return True

    t0 = time.monotonic()
    got = read_audit_events(kafka_bootstrap, T0, T0 + timedelta(days=1), topic=topic, timeout_s=1, keep=slow_keep)
    assert len(got) == 1500 and time.monotonic() - t0 >= 3

# -- no broker: bounded failures, never a hang --------------------------------------------------------------
def test_unreachable_broker_fails_within_timeout():
    bootstrap = f"127.0.0.1:{closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(KafkaUnavailable) as info:
        read_audit_events(bootstrap, T0, T0 + timedelta(days=1), timeout_s=3)
    elapsed = time.monotonic() - t0
    assert elapsed < 3 + 5, elapsed
    assert bootstrap in str(info.value)


def test_produce_to_unreachable_broker_fails_within_timeout():
    bootstrap = f"127.0.0.1:{closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(KafkaUnavailable) as info:
        produce_audit_events(bootstrap, [envelope(1, T0, iso=True)], timeout_s=3)
    assert time.monotonic() - t0 < 3 + 5
    assert bootstrap in str(info.value)


@pytest.mark.parametrize(
    "value, expected",
    [
        (1767225600000, T0),
        (1767225600000.0, T0),
        ("1767225600000", T0),
        (1767225600, T0),  # epoch seconds
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T02:00:00+02:00", T0),
        ("2026-01-01T00:00:00", T0),
        (datetime(2026, 1, 1), T0),
        (None, None),
        ("", None),
        ("soon", None),
        (True, None),
        (float("nan"), None),
        ({"$date": 1}, None),
    ],
)
def test_event_time(value, expected):
    assert event_time(value) == expected

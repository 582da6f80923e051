"""The `intentions.audit` Kafka topic: intent envelopes (SPEC section 2), read for a time window.

`read_audit_events(bootstrap, start, end)` returns an `AuditEvents`: a `list` of the decoded envelopes
whose `timestamp` falls in [start, end) (sorted by that time; consecutive windows partition the stream), or
in [start, end] with `end_inclusive` (collection: an event stamped at its window's end counts, as an opinion
or feedback at that instant does), which also carries

* `bad_messages`: one dict per message that could not be used (`partition`, `offset`, `reason`, `error`):
  not UTF-8 JSON or not a JSON object (`not_json`), nested deeper than `MAX_DEPTH` (`too_deep`), a lone
  surrogate in a text (`invalid_string`), or no usable `timestamp` (`no_timestamp`). They are reported,
  never raised;
* `messages_read`, `out_of_window`, `partitions`: counts for run metadata.

How the window is read, bounded in time and in offsets:

1. metadata: the topic must exist (`KafkaUnavailable("topic ... not found on <bootstrap>")`);
   metadata for all topics is requested so that a broker with `auto.create.topics.enable` does not
   create the topic by being asked about it;
2. the high watermark of every partition is captured first: messages produced while reading are not
   waited for;
3. `offsets_for_times(start)` seeks every partition to the first message whose Kafka timestamp is
   >= start (the producer sets the message timestamp from the envelope, see `produce_audit_events`;
   a message produced later than its envelope's time has a later Kafka timestamp, so nothing in the
   window is skipped). Partitions with nothing at/after `start` are not read at all;
4. messages are consumed until each partition reaches the captured high watermark (or reports EOF),
   and envelopes are filtered on their own `timestamp` (epoch milliseconds, or ISO-8601; a number
   below 1e11 is taken as epoch seconds, as no audit event predates 1973).

Connecting and the offsets share one deadline of `timeout_s`, and reading waits at most `timeout_s` for the
next messages: a broker that is down or stops answering raises `KafkaUnavailable` naming the bootstrap
servers instead of hanging, while a window of millions of envelopes is read to its end.

Every function takes the client's `security` (`hive_assets.config.KafkaSecurity`: TLS, SASL, both or neither;
default PLAINTEXT). A broker that refuses it (credentials, mechanism, a certificate that does not verify) raises
`KafkaRefused` at once, with librdkafka's reason and the variables to check: waiting would not change the
answer, and librdkafka itself retries such a connection until the deadline and then says only "all brokers are
down". A CA, certificate or key file that does not exist is a KafkaRefused naming its variable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hive_assets.config import KAFKA_SECURITY_ENV, KafkaSecurity
from hive_assets.data._kafka_errors import KafkaRefused, KafkaUnavailable
from hive_assets.data._documents import MAX_DEPTH, TOO_DEEP, safe_text, structure_problems

__all__ = [
    "AUDIT_TOPIC",
    "AuditEvents",
    "AuditProducer",
    "KafkaRefused",
    "KafkaUnavailable",
    "event_time",
    "produce_audit_events",
    "read_audit_events",
]

AUDIT_TOPIC = "intentions.audit"
log = logging.getLogger(__name__)
_SECONDS_BELOW = 1e11  # an epoch number smaller than this is seconds, not milliseconds


class AuditEvents(list):
    """The in-window envelopes (a list of dicts) plus what was skipped and why."""

    def __init__(self, events: Iterable[dict[str, Any]] = ()):
        super().__init__(events)
        self.bad_messages: list[dict[str, Any]] = []
        self.messages_read = 0
        self.out_of_window = 0
        self.not_kept = 0
        self.partitions = 0

    def stats(self) -> dict[str, int]:
        return {
            "events": len(self),
            "messages_read": self.messages_read,
            "out_of_window": self.out_of_window,
            "not_kept": self.not_kept,
            "bad_messages": len(self.bad_messages),
            "partitions": self.partitions,
        }

    def bad_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for bad in self.bad_messages:
            counts[bad["reason"]] = counts.get(bad["reason"], 0) + 1
        return counts


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def event_time(value: Any) -> datetime | None:
    """An envelope `timestamp` (epoch ms, epoch s, ISO-8601 text or datetime) as aware UTC, else None."""
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return event_time(float(text))
        except ValueError:
            pass
        try:
            return _utc(datetime.fromisoformat(text))
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        seconds = value if abs(value) < _SECONDS_BELOW else value / 1000.0
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _millis(value: datetime) -> int:
    return int(_utc(value).timestamp() * 1000)


class _QuietLog:
    """librdkafka's own log lines (one per failed reconnect) at DEBUG: failures surface as exceptions."""

    def __init__(self, logger: logging.Logger):
        self._logger = logger

    def log(self, _level: int, msg: str, *args: Any) -> None:
        self._logger.debug(msg, *args)


_LIBRDKAFKA_LOG = _QuietLog(logging.getLogger(__name__ + ".librdkafka"))


class _Deadline:
    def __init__(self, seconds: float):
        self.total = float(seconds)
        self.end = time.monotonic() + self.total

    def left(self, cap: float | None = None) -> float:
        remaining = max(0.0, self.end - time.monotonic())
        return min(remaining, cap) if cap is not None else remaining

    def expired(self) -> bool:
        return time.monotonic() >= self.end


# "sasl_ssl://127.0.0.1:9093/bootstrap: " before an error's text, " (after 311ms in state AUTH_REQ)" after it
_BROKER_PREFIX = re.compile(r"^\S+://\S+?/\S+?: ")
_STATE_SUFFIX = re.compile(r" \(after \d+ms in state \w+\)$")
# a broker's TLS alert about the client's certificate (none given, or not one its CA signed): librdkafka calls
# it a transport failure, and retries it until the deadline
_CERTIFICATE_ALERT = re.compile(r"alert (bad certificate|certificate required|unknown ca|certificate unknown)")


class _Errors:
    """What librdkafka reported through `error_cb` (connection, authentication and TLS failures), which its
    exceptions do not carry: they say "Broker transport failure" whatever the cause."""

    def __init__(self, bootstrap: str, security: KafkaSecurity):
        self.bootstrap, self.security = bootstrap, security
        self.seen: deque[KafkaError] = deque(maxlen=50)  # the latest: one per failed connection attempt

    def __call__(self, err: KafkaError) -> None:
        self.seen.append(err)

    @staticmethod
    def _text(err: KafkaError) -> str:
        return _STATE_SUFFIX.sub("", _BROKER_PREFIX.sub("", err.str()))

    def refusal(self, client: Any) -> KafkaRefused | None:
        """The broker's refusal of this client, if it said one (callbacks are served by `client.poll`)."""
        client.poll(0)
        env = KAFKA_SECURITY_ENV
        for err in self.seen:  # librdkafka's codes for a broker that refused the client, not one that is away
            if err.code() == KafkaError._AUTHENTICATION:
                failed, check = "authentication", (f"check {env['sasl_username']}, {env['sasl_password']} and "
                                                   f"{env['sasl_mechanism']}")
            elif err.code() == KafkaError._SSL:
                failed, check = "TLS", (f"{env['ssl_ca_location']} must name the CA that signed the brokers' "
                                        "certificates (unset: the system's CAs)")
            elif err.code() == KafkaError._TRANSPORT and _CERTIFICATE_ALERT.search(err.str()):
                failed, check = "TLS", (f"the brokers refused the client's certificate: "
                                        f"{env['ssl_certificate_location']} and {env['ssl_key_location']} must name "
                                        "one their CA signed, and its key")
            else:
                continue
            return KafkaRefused(f"Kafka at {self.bootstrap}: {failed} failed ({self.security.describe()}): "
                                f"{self._text(err)}; {check}")
        return None

    def cause(self) -> str:
        """The last reported failure other than "all brokers are down", or a hint at the protocol when the
        brokers only closed the connections (what a listener expecting TLS or SASL does to another client)."""
        causes = [err for err in self.seen if err.code() != KafkaError._ALL_BROKERS_DOWN]
        if causes:
            return f"; {self._text(causes[-1])}"  # the latest: what the brokers say now
        if self.seen:
            return (f"; the brokers closed every connection: if their listener expects another protocol, set "
                    f"{KAFKA_SECURITY_ENV['security_protocol']} (now {self.security.security_protocol})")
        return ""


def _client_config(bootstrap_servers: str, timeout_s: float, security: KafkaSecurity,
                   errors: _Errors) -> dict[str, Any]:
    for name in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location"):
        path = getattr(security, name)
        if security.tls and path and not os.path.isfile(path):
            raise KafkaRefused(f"{KAFKA_SECURITY_ENV[name]}={path}: no such file (for Kafka at {bootstrap_servers})")
    return {
        "bootstrap.servers": bootstrap_servers,
        # librdkafka's range is 10..300000: a deadline beyond 5 min (a large window) refused every client
        "socket.timeout.ms": min(300_000, max(1000, int(timeout_s * 1000))),
        "socket.connection.setup.timeout.ms": max(1000, int(min(timeout_s, 30) * 1000)),
        "reconnect.backoff.max.ms": 1000,
        "logger": _LIBRDKAFKA_LOG,
        "log.connection.close": False,
        "error_cb": errors,
        **security.client_config(),
    }


def _client(kind: type, bootstrap_servers: str, timeout_s: float, security: KafkaSecurity | None,
            extra: Mapping[str, Any] | None = None) -> tuple[Any, _Errors]:
    """An AdminClient, Consumer or Producer with `security`, and what it reports; a file librdkafka cannot load
    (not a PEM CA, a key that does not match its certificate) is a KafkaRefused."""
    security = security or KafkaSecurity()
    errors = _Errors(bootstrap_servers, security)
    try:
        return kind({**_client_config(bootstrap_servers, timeout_s, security, errors), **(extra or {})}), errors
    except KafkaException as exc:
        raise KafkaRefused(f"Kafka at {bootstrap_servers}: the client's settings were refused "
                           f"({security.describe()}): {_err_text(exc)}") from None


def _err_text(exc: BaseException) -> str:
    err = exc.args[0] if exc.args else None
    if isinstance(err, KafkaError):
        return f"{err.name()}: {err.str()}"
    return str(err or exc)


def _metadata(client: Any, bootstrap: str, deadline: _Deadline, errors: _Errors):
    """The cluster's metadata, asked for in slices of a second so that a refusal ends the wait at once."""
    while True:
        try:
            return client.list_topics(timeout=max(0.1, deadline.left(cap=1.0)))
        except KafkaException as exc:
            if refused := errors.refusal(client):
                raise refused from None
            if deadline.expired():
                raise KafkaUnavailable(f"Kafka at {bootstrap} unreachable ({errors.security.security_protocol}): "
                                       f"{_err_text(exc)}{errors.cause()}") from None


def _topic_partitions(client: Any, bootstrap: str, topic: str, deadline: _Deadline, errors: _Errors) -> list[int]:
    md = _metadata(client, bootstrap, deadline, errors)
    meta = md.topics.get(topic)
    if meta is None or (meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise KafkaUnavailable(f"topic {topic!r} not found on {bootstrap}")
    if meta.error is not None:
        raise KafkaUnavailable(f"topic {topic!r} on {bootstrap} unusable: {meta.error}")
    return sorted(meta.partitions)


def audit_topic_problem(bootstrap_servers: str, topic: str = "intentions.audit", timeout_s: float = 5.0,
                        security: KafkaSecurity | None = None) -> KafkaUnavailable | None:
    """Why `topic` cannot be read now (the broker does not answer within `timeout_s`, has no such topic, or
    refuses the client: a KafkaRefused), its message one line; None when it can. What a shell command checks
    before launching a collection, whose runs would otherwise retry for minutes."""
    try:
        admin, errors = _client(AdminClient, bootstrap_servers, timeout_s, security)
        _topic_partitions(admin, bootstrap_servers, topic, _Deadline(timeout_s), errors)
    except KafkaUnavailable as exc:
        return exc
    return None


def read_audit_events(
    bootstrap_servers: str,
    start: datetime,
    end: datetime,
    topic: str = AUDIT_TOPIC,
    timeout_s: float = 30.0,
    end_inclusive: bool = False,
    security: KafkaSecurity | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> AuditEvents:
    """Intent envelopes of `topic` whose `timestamp` is in [start, end), or [start, end] with `end_inclusive`
    (see the module doc). `keep(event)`: only the in-window events it accepts are kept (the others are counted
    in `not_kept`): collection wants a few intents of a window that holds the whole traffic, whose envelopes all
    in memory at once took gigabytes."""
    start, end = _utc(start), _utc(end)
    result = AuditEvents()
    if end < start or (end == start and not end_inclusive):
        return result
    deadline = _Deadline(timeout_s)
    consumer, errors = reader_client(bootstrap_servers, timeout_s, security)
    try:
        partitions = _topic_partitions(consumer, bootstrap_servers, topic, deadline, errors)
        result.partitions = len(partitions)
        marks = watermarks(consumer, bootstrap_servers, topic, partitions, deadline)
        starts = offsets_at(consumer, bootstrap_servers, topic, partitions, start, deadline)
        # no message at or after `start` in a partition (OFFSET_END), or none before its high watermark: not read
        assignment = [TopicPartition(topic, p, starts[p]) for p in partitions if starts[p] < marks[p][1]]
        collected: list[tuple[datetime, int, int, dict[str, Any]]] = []
        for p, offset, msg in consume_to_watermarks(consumer, bootstrap_servers, topic, assignment, marks,
                                                    timeout_s):
            result.messages_read += 1
            _collect(msg, p, offset, start, end, end_inclusive, result, collected, keep)
        collected.sort(key=lambda item: item[:3])
        result.extend(event for *_, event in collected)
        return result
    finally:
        consumer.close()


def reader_client(bootstrap_servers: str, timeout_s: float, security: KafkaSecurity | None) -> tuple[Any, _Errors]:
    """A consumer that reads partitions it is assigned: it never joins a group and commits nothing."""
    return _client(Consumer, bootstrap_servers, timeout_s, security, {
        "group.id": f"hive-assets-audit-reader-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "allow.auto.create.topics": False,
        "fetch.wait.max.ms": 200,
    })


def watermarks(consumer: Any, bootstrap_servers: str, topic: str, partitions: list[int],
               deadline: _Deadline) -> dict[int, tuple[int, int]]:
    """(low, high) watermark of every partition, asked now: messages produced later are not waited for."""
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=max(0.1, deadline.left()),
                                                  cached=False)
                for p in partitions}
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"Kafka at {bootstrap_servers}: could not read offsets of {topic!r}: {_err_text(exc)}") from None


def offsets_at(consumer: Any, bootstrap_servers: str, topic: str, partitions: list[int], when: datetime,
               deadline: _Deadline) -> dict[int, int]:
    """The first offset of every partition whose Kafka timestamp is at or after `when`; a partition with none
    maps to a number beyond every offset."""
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, p, _millis(when)) for p in partitions],
                                           timeout=max(0.1, deadline.left()))
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"Kafka at {bootstrap_servers}: could not read offsets of {topic!r}: {_err_text(exc)}") from None
    out = {}
    for tp in found:
        if tp.error is not None:
            raise KafkaUnavailable(f"Kafka at {bootstrap_servers}: offsets of {topic}[{tp.partition}]: {tp.error}")
        out[tp.partition] = tp.offset if tp.offset >= 0 and tp.offset != OFFSET_END else 2**63 - 1
    return out


def consume_to_watermarks(consumer: Any, bootstrap_servers: str, topic: str, assignment: list[TopicPartition],
                          marks: Mapping[int, tuple[int, int]], timeout_s: float) -> Iterator[tuple[int, int, Any]]:
    """(partition, offset, message) of every message from the assigned offsets up to each partition's captured
    high watermark. `timeout_s` bounds a wait for the next messages, not the whole read: a broker that stops
    answering fails the read in that time, a large window is read to its end (90 days of traffic took longer
    than the 30 s that used to bound it all)."""
    pending = {tp.partition for tp in assignment}
    if not pending:
        return
    consumer.assign(assignment)
    deadline = _Deadline(timeout_s)
    while pending:
        if deadline.expired():
            raise KafkaUnavailable(
                f"Kafka at {bootstrap_servers}: no message for {timeout_s:g}s reading {topic!r} "
                f"(partitions {sorted(pending)} not read up to their high watermark)"
            )
        messages = consumer.consume(num_messages=500, timeout=deadline.left(cap=0.1))
        for msg in messages:
            p = msg.partition()
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(p)
                    continue
                if err.fatal():
                    raise KafkaUnavailable(f"Kafka at {bootstrap_servers}: {err}")
                log.warning("kafka %s: %s", bootstrap_servers, err)
                continue
            if p not in pending:
                continue
            offset = msg.offset()
            high = marks[p][1]
            if offset >= high:
                pending.discard(p)
                continue
            if offset >= high - 1:
                pending.discard(p)
            yield p, offset, msg
        if messages:  # after they were handled: only the broker's silence counts, not the caller's work
            deadline = _Deadline(timeout_s)


def usable_envelope(raw: bytes | None, check_structure: bool = True) -> tuple[dict | None, datetime | None, str, str]:
    """(the envelope, its time, "", "") of a message's value, or (None, None, reason, error) for one no reader
    uses: `not_json` (not UTF-8 JSON, not an object, a tombstone), `too_deep` (nested beyond the decoder, or with
    `check_structure` beyond MAX_DEPTH), `invalid_string` (a lone surrogate; with `check_structure`) or
    `no_timestamp`. The direct read and the mirror skip the same messages by this one rule."""
    try:
        if raw is None:
            raise ValueError("empty message (tombstone)")
        event = json.loads(raw)
        if not isinstance(event, dict):
            raise ValueError(f"expected a JSON object, got {type(event).__name__}")
    except RecursionError:  # the decoder recurses: an envelope nested ~1,000 levels deep
        return None, None, TOO_DEEP, f"envelope nested deeper than the decoder allows (> {MAX_DEPTH})"
    except (ValueError, UnicodeDecodeError) as exc:
        return None, None, "not_json", f"{type(exc).__name__}: {exc}"
    if check_structure and (hostile := structure_problems(event)):
        return None, None, hostile[0].reason, hostile[0].detail
    when = event_time(event.get("timestamp"))
    if when is None:
        return None, None, "no_timestamp", f"no usable timestamp: {event.get('timestamp')!r}"
    return event, when, "", ""


def _collect(msg, partition: int, offset: int, start: datetime, end: datetime, end_inclusive: bool,
             result: AuditEvents, out: list, keep: Callable[[dict[str, Any]], bool] | None = None) -> None:
    def bad(reason: str, error: str) -> None:
        result.bad_messages.append({"partition": partition, "offset": offset, "reason": reason,
                                    "error": safe_text(error)[:300]})

    # too deep, or a lone surrogate: kept out of the window. With `keep`, judged for the kept events only: the
    # walk was 40 % of a read whose envelopes are almost all not wanted (the others are counted, never used)
    event, when, reason, error = usable_envelope(msg.value(), check_structure=keep is None)
    if event is None:
        bad(reason, error)
    elif not (start <= when and (when <= end if end_inclusive else when < end)):
        result.out_of_window += 1
    elif keep is None:
        out.append((when, partition, offset, event))
    elif not keep(event):
        result.not_kept += 1
    elif hostile := structure_problems(event):
        bad(hostile[0].reason, hostile[0].detail)
    else:
        out.append((when, partition, offset, event))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def ensure_topic(
    bootstrap_servers: str,
    topic: str = AUDIT_TOPIC,
    num_partitions: int = 1,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
    security: KafkaSecurity | None = None,
) -> bool:
    """Create `topic` unless it exists. True if this call created it."""
    deadline = _Deadline(timeout_s)
    admin, errors = _client(AdminClient, bootstrap_servers, timeout_s, security)
    if topic in _metadata(admin, bootstrap_servers, deadline, errors).topics:
        return False
    new = NewTopic(topic, num_partitions=num_partitions, replication_factor=replication_factor, config=dict(config or {}))
    future = admin.create_topics([new], operation_timeout=deadline.left(cap=30.0), request_timeout=max(0.1, deadline.left()))[topic]
    try:
        future.result(timeout=max(0.1, deadline.left()))
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise KafkaUnavailable(f"Kafka at {bootstrap_servers}: could not create topic {topic!r}: {_err_text(exc)}") from None
    except Exception as exc:  # concurrent.futures.TimeoutError
        raise KafkaUnavailable(f"Kafka at {bootstrap_servers}: creating topic {topic!r} timed out: {exc!r}") from None
    # wait until every partition has a leader, so that the first produce does not race the creation
    while not deadline.expired():
        meta = _metadata(admin, bootstrap_servers, deadline, errors).topics.get(topic)
        if meta is not None and meta.error is None and len(meta.partitions) == num_partitions \
                and all(pm.leader >= 0 for pm in meta.partitions.values()):
            return True
        time.sleep(0.1)
    raise KafkaUnavailable(f"Kafka at {bootstrap_servers}: topic {topic!r} created but has no leader after {timeout_s:g}s")


def produce_audit_events(
    bootstrap_servers: str,
    events: Iterable[Mapping[str, Any]],
    topic: str = AUDIT_TOPIC,
    *,
    num_partitions: int = 1,
    topic_config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
    security: KafkaSecurity | None = None,
) -> int:
    """Produce envelopes as JSON (key = `id`, Kafka timestamp = the envelope's `timestamp`).

    Creates the topic first if it is missing (`num_partitions`, replication 1, `topic_config`).
    Returns how many were delivered; raises KafkaUnavailable if any was not within `timeout_s`.
    A caller with many batches keeps one `AuditProducer` instead.
    """
    return AuditProducer(bootstrap_servers, topic, num_partitions=num_partitions, topic_config=topic_config,
                         timeout_s=timeout_s, security=security).produce(events)


class AuditProducer:
    """`produce_audit_events` for many batches: the topic is ensured and the producer made once. An idempotent
    producer's first delivery waits ~0.5 s for its producer id (measured on the test broker: 514 ms, then 5 ms a
    batch), which a new producer per batch paid every time (every simulated hour of `hive loop`)."""

    def __init__(self, bootstrap_servers: str, topic: str = AUDIT_TOPIC, *, num_partitions: int = 1,
                 topic_config: Mapping[str, str] | None = None, timeout_s: float = 30.0,
                 security: KafkaSecurity | None = None):
        deadline = _Deadline(timeout_s)
        ensure_topic(bootstrap_servers, topic, num_partitions=num_partitions, config=topic_config,
                     timeout_s=timeout_s, security=security)
        self.bootstrap_servers, self.topic, self.timeout_s = bootstrap_servers, topic, timeout_s
        self._producer, _errors = _client(Producer, bootstrap_servers, timeout_s, security, {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": max(1000, int(deadline.left() * 1000)),
        })

    def produce(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Deliver `events` within `timeout_s`: how many were delivered, or KafkaUnavailable."""
        deadline, producer, timeout_s = _Deadline(self.timeout_s), self._producer, self.timeout_s
        delivered = 0
        failures: list[str] = []

        def on_delivery(err, _msg) -> None:
            nonlocal delivered
            if err is None:
                delivered += 1
            elif len(failures) < 5:
                failures.append(str(err))

        sent = 0
        for event in events:
            value = json.dumps(dict(event), default=_json_default, separators=(",", ":")).encode()
            key = event.get("id")
            when = event_time(event.get("timestamp"))
            kwargs: dict[str, Any] = {"on_delivery": on_delivery}
            if key is not None:
                kwargs["key"] = str(key).encode()
            if when is not None:
                kwargs["timestamp"] = _millis(when)
            while True:
                try:
                    producer.produce(self.topic, value, **kwargs)
                    break
                except BufferError:
                    if deadline.expired():
                        raise KafkaUnavailable(f"Kafka at {self.bootstrap_servers}: producer queue full after "
                                               f"{timeout_s:g}s") from None
                    producer.poll(0.1)
            sent += 1
            producer.poll(0)
        left = producer.flush(max(0.1, deadline.left()))
        if left or failures or delivered != sent:
            detail = "; ".join(failures) or f"{left} message(s) still queued"
            raise KafkaUnavailable(
                f"Kafka at {self.bootstrap_servers}: delivered {delivered} of {sent} events to {self.topic!r}: "
                f"{detail}"
            )
        return delivered

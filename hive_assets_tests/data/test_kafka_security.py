"""Secured Kafka against the real broker's secured listeners (`kafka_secured`): SASL (SCRAM-SHA-512, PLAIN) over
TLS, and TLS with a client certificate; every refusal is a KafkaRefused that says why, at once, with no password."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.config import KafkaSecurity
from hive_assets.data.kafka import (
    KafkaRefused,
    KafkaUnavailable,
    audit_topic_problem,
    produce_audit_events,
    read_audit_events,
)

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
KEEP = {"retention.ms": "-1"}
WRONG_PASSWORD = "not-the-password-7f3a"


def envelopes(n: int) -> list[dict]:
    return [{"id": f"sec-{i}", "timestamp": (T0 + timedelta(hours=i)).isoformat(), "confidence": 0.8,
             "intent": {"text": "t", "domain": "business"}} for i in range(n)]


def sasl(kafka_secured, mechanism: str = "SCRAM-SHA-512", **changes) -> KafkaSecurity:
    values = {"security_protocol": "SASL_SSL", "sasl_mechanism": mechanism, "sasl_username": kafka_secured["user"],
              "sasl_password": kafka_secured["password"], "ssl_ca_location": f"{kafka_secured['tls_dir']}/ca.crt"}
    return KafkaSecurity.from_values(**{**values, **changes})


def mutual_tls(kafka_secured, **changes) -> KafkaSecurity:
    tls = kafka_secured["tls_dir"]
    values = {"security_protocol": "SSL", "ssl_ca_location": f"{tls}/ca.crt",
              "ssl_certificate_location": f"{tls}/client.crt", "ssl_key_location": f"{tls}/client.key"}
    return KafkaSecurity.from_values(**{**values, **changes})


@pytest.fixture
def topic() -> str:
    return f"intentions.audit.secured-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_sasl_over_tls_produces_and_reads_the_window(kafka_secured, topic, mechanism):
    security = sasl(kafka_secured, mechanism)
    assert produce_audit_events(kafka_secured["sasl_ssl"], envelopes(30), topic, topic_config=KEEP,
                                security=security) == 30
    got = read_audit_events(kafka_secured["sasl_ssl"], T0 + timedelta(hours=5), T0 + timedelta(hours=15),
                            topic=topic, security=security)
    assert [e["id"] for e in got] == [f"sec-{i}" for i in range(5, 15)]
    assert audit_topic_problem(kafka_secured["sasl_ssl"], topic, security=security) is None


def test_a_client_certificate_reads_the_topic_the_sasl_client_wrote(kafka_secured, topic):
    produce_audit_events(kafka_secured["sasl_ssl"], envelopes(4), topic, topic_config=KEEP,
                         security=sasl(kafka_secured))
    got = read_audit_events(kafka_secured["ssl"], T0, T0 + timedelta(days=1), topic=topic,
                            security=mutual_tls(kafka_secured))
    assert len(got) == 4


def _refused(bootstrap: str, security: KafkaSecurity | None, timeout_s: float = 60.0) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(KafkaRefused) as caught:
        read_audit_events(bootstrap, T0, T0 + timedelta(days=1), topic="intentions.audit", timeout_s=timeout_s,
                          security=security)
    return str(caught.value), time.monotonic() - started


def test_a_wrong_password_is_refused_at_once_without_the_password(kafka_secured):
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):
        message, took = _refused(kafka_secured["sasl_ssl"], sasl(kafka_secured, mechanism,
                                                                  sasl_password=WRONG_PASSWORD))
        assert "authentication failed" in message and mechanism in message, message
        assert "KAFKA_SASL_PASSWORD" in message and WRONG_PASSWORD not in message
        assert took < 30  # not the 60 s deadline: librdkafka would retry the refused login until then


def test_a_mechanism_the_broker_does_not_offer_is_refused(kafka_secured):
    message, _ = _refused(kafka_secured["sasl_ssl"], sasl(kafka_secured, "SCRAM-SHA-256"))
    assert "authentication failed" in message and "SCRAM-SHA-512" in message  # the broker's own list


def test_a_broker_certificate_no_trusted_ca_signed_is_refused(kafka_secured):
    message, took = _refused(kafka_secured["sasl_ssl"], sasl(kafka_secured, ssl_ca_location=""))
    assert "TLS failed" in message and "certificate verify failed" in message
    assert "KAFKA_SSL_CA_LOCATION" in message and took < 30


def test_a_broker_that_requires_a_client_certificate_refuses_none(kafka_secured):
    message, took = _refused(kafka_secured["ssl"], mutual_tls(kafka_secured, ssl_certificate_location="",
                                                              ssl_key_location=""))
    assert "KAFKA_SSL_CERTIFICATE_LOCATION" in message and "bad certificate" in message and took < 30


def test_a_file_that_is_not_there_or_not_a_certificate_is_named(kafka_secured, tmp_path):
    message, _ = _refused(kafka_secured["ssl"], mutual_tls(kafka_secured, ssl_ca_location=str(tmp_path / "ca.crt")))
    assert message.startswith(f"KAFKA_SSL_CA_LOCATION={tmp_path / 'ca.crt'}: no such file")
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    message, _ = _refused(kafka_secured["ssl"], mutual_tls(kafka_secured, ssl_ca_location=str(not_pem)))
    assert "ssl.ca.location" in message and "settings were refused" in message


def test_plaintext_against_a_tls_listener_names_the_protocol(kafka_secured):
    """A plain client's connections are closed by a TLS listener: librdkafka says only "brokers are down", so the
    error hints at the protocol. Unavailable, not refused: a broker restarting closes connections too."""
    with pytest.raises(KafkaUnavailable) as caught:
        read_audit_events(kafka_secured["ssl"], T0, T0 + timedelta(days=1), timeout_s=3)
    assert not isinstance(caught.value, KafkaRefused)
    assert "KAFKA_SECURITY_PROTOCOL (now PLAINTEXT)" in str(caught.value)


"""Kafka's security settings (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*): read, checked, bound."""

from __future__ import annotations

import dagster as dg
import pytest

from hive_assets.config import ConfigError, KafkaSecurity, Settings

SECRET = "pw-9d2c-never-shown"


def test_sasl_over_tls_is_read_in_any_case_and_given_to_librdkafka_by_its_names(monkeypatch):
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": " kafka-1:9093,kafka-2:9093 ", "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                        "KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "hive",
                        "KAFKA_SASL_PASSWORD": SECRET, "KAFKA_SSL_CA_LOCATION": "/etc/kafka/ca.crt"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.kafka_bootstrap_servers == "kafka-1:9093,kafka-2:9093"
    assert settings.kafka_security.client_config() == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "hive",
        "sasl.password": SECRET, "ssl.ca.location": "/etc/kafka/ca.crt"}
    assert SECRET not in repr(settings) and SECRET not in settings.kafka_security.describe()


def test_unset_is_plaintext_and_a_client_certificate_is_mutual_tls(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    assert Settings.from_env().kafka_security.client_config() == {"security.protocol": "PLAINTEXT"}
    security = KafkaSecurity.from_values(security_protocol="SSL", ssl_certificate_location="c.pem",
                                         ssl_key_location="k.pem", ssl_key_password=SECRET)
    assert security.client_config() == {"security.protocol": "SSL", "ssl.certificate.location": "c.pem",
                                        "ssl.key.location": "k.pem", "ssl.key.password": SECRET}


@pytest.mark.parametrize("values, named", [
    ({"security_protocol": "tls"},  # quoted as given
     "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got 'tls'"),
    ({"security_protocol": "sasl_ssl", "sasl_mechanism": "gssapi", "sasl_username": "u", "sasl_password": SECRET},
     "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 with KAFKA_SECURITY_PROTOCOL=SASL_SSL, "
     "got 'gssapi'"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
     "KAFKA_SASL_PASSWORD is not set (needed with KAFKA_SECURITY_PROTOCOL=SASL_SSL)"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_password": SECRET},
     "KAFKA_SASL_USERNAME is not set"),
    # credentials beside PLAINTEXT were sent nowhere: the broker's refusal said only "all brokers are down"
    ({"sasl_username": "u", "sasl_password": SECRET},
     "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT sends no SASL credentials"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": SECRET,
      "ssl_ca_location": "ca.crt"}, "KAFKA_SSL_CA_LOCATION is set but KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does "
                                    "not use TLS"),
    ({"security_protocol": "SSL", "ssl_certificate_location": "c.pem"},
     "KAFKA_SSL_CERTIFICATE_LOCATION is set but KAFKA_SSL_KEY_LOCATION is not"),
    ({"security_protocol": "SSL", "ssl_key_location": "k.pem"},
     "KAFKA_SSL_KEY_LOCATION is set but KAFKA_SSL_CERTIFICATE_LOCATION is not"),
    ({"security_protocol": "SSL", "ssl_key_password": SECRET},
     "KAFKA_SSL_KEY_PASSWORD is set but KAFKA_SSL_KEY_LOCATION"),
])
def test_every_wrong_combination_names_its_variable_never_a_password(values, named):
    with pytest.raises(ConfigError) as caught:
        KafkaSecurity.from_values(**values)
    assert named in str(caught.value) and SECRET not in str(caught.value)


def test_production_refuses_a_password_sent_unencrypted(monkeypatch):
    """PLAIN over SASL_PLAINTEXT puts the password on the wire as it is: accepted on a laptop, refused in
    production, where SCRAM (a challenge, never the password) or TLS is asked for instead."""
    plain = {"security_protocol": "sasl_plaintext", "sasl_mechanism": "plain", "sasl_username": "hive",
             "sasl_password": SECRET}
    assert KafkaSecurity.from_values(**plain).client_config()["sasl.mechanism"] == "PLAIN"
    monkeypatch.setenv("HIVE_ENV", "production")
    with pytest.raises(ConfigError) as info:
        KafkaSecurity.from_values(**plain)
    assert str(info.value) == ("KAFKA_SASL_MECHANISM=PLAIN over KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT sends the "
                               "password unencrypted: HIVE_ENV=production refuses it; use SASL_SSL, or "
                               "SCRAM-SHA-256/512 (which never sends the password)")
    assert KafkaSecurity.from_values(**{**plain, "sasl_mechanism": "scram-sha-512"}).sasl_mechanism == "SCRAM-SHA-512"
    assert KafkaSecurity.from_values(**{**plain, "security_protocol": "sasl_ssl"}).tls


def test_from_the_environment_every_problem_is_said_at_once(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(ConfigError, match="KAFKA_SASL_USERNAME is not set.*; KAFKA_SASL_PASSWORD is not set"):
        Settings.from_env()


def test_security_without_brokers_is_an_error_not_the_collection_instead(monkeypatch):
    """Unset KAFKA_BOOTSTRAP_SERVERS means the intentions_audit collection: security settings beside it say the
    brokers were meant to be set (a Secret key mistyped), so reading the collection would be a silent fallback."""
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert message.startswith("KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_PASSWORD set but KAFKA_BOOTSTRAP_SERVERS is not")
    assert SECRET not in message


def test_the_resource_binds_the_credentials_as_variables_and_builds_the_same_security(monkeypatch):
    from hive_assets.defs.resources import PlatformSettings, default_resources

    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9093", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                        "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "hive",
                        "KAFKA_SASL_PASSWORD": SECRET}.items():
        monkeypatch.setenv(name, value)
    platform = default_resources()["platform"]
    # a bound EnvVar shows its name in the UI, never the value
    assert platform.kafka_sasl_password == dg.EnvVar("KAFKA_SASL_PASSWORD")
    assert platform.kafka_sasl_username == dg.EnvVar("KAFKA_SASL_USERNAME")
    assert (platform.kafka_security_protocol, platform.kafka_ssl_ca_location) == ("SASL_SSL", "")
    resolved = PlatformSettings(kafka_bootstrap_servers="kafka:9093", kafka_security_protocol="SASL_SSL",
                                kafka_sasl_mechanism="PLAIN", kafka_sasl_username="hive", kafka_sasl_password=SECRET)
    assert resolved.kafka_security() == Settings.from_env().kafka_security

"""Kafka's failures, importable without the Kafka client (which loads only when Kafka is configured)."""


class KafkaUnavailable(RuntimeError):
    """Kafka cannot serve the request: broker unreachable, topic missing, or the deadline passed."""


class KafkaRefused(KafkaUnavailable):
    """The brokers answered and refused this client (authentication, TLS), or its settings name a file that is
    not there: a retry fails the same way until the settings change."""

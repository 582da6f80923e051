"""Readers for the platform's streaming sources (Kafka). Domain code only: no Dagster or MLflow here.

Import the submodules directly (`from hive_assets.sources.kafka import read_audit_events`); this
package imports nothing heavy so that `import hive_assets.sources` stays cheap without confluent-kafka.
"""

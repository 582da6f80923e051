"""raw_production_data from MongoDB (FerretDB) + Kafka equals the embedded store's; outages fail clearly."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import bson
import pymongo
import pandas as pd
import pytest

from hive_assets.defs import build_defs
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.simulator import simulate
from hive_assets.data.kafka import produce_audit_events
from hive_assets.data.store import SQLiteStore
from hive_assets.data._audit_mirror import AuditMirror
from hive_assets.data.store.mongo import MongoStore

pytestmark = pytest.mark.services
NOW = datetime(2026, 9, 1, tzinfo=timezone.utc)


def _collect(resources: dict, specialist: str = "business"):
    defs = build_defs()
    result = dg.materialize(
        list(defs.assets), selection=["raw_production_data"], partition_key=specialist,
        resources={"mlflow": MlflowResource(), **resources}, instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"raw_production_data": {"config": {"as_of": NOW.isoformat(), "min_samples": 10}}}},
        raise_on_error=False,
    )
    return result


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.drop(columns=["plan"]).copy()
    out["plan_json"] = [repr(sorted((k, repr(v)) for k, v in json.loads(p).items() if k != "created_at"))
                        for p in frame["plan"]]
    return out.sort_values("opinion_id").reset_index(drop=True)


def test_mongodb_and_kafka_give_the_same_raw_production_data(hive_home, ferretdb_uri, kafka_bootstrap, monkeypatch):
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())  # the platform's clock: the mirror keeps 120 days of it
    embedded = SQLiteStore(hive_home / "store.sqlite")
    simulate(embedded, plans=250, days=30, seed=77, now=NOW, malformed_rate=0.03)
    database = f"parity_{uuid.uuid4().hex[:8]}"
    with MongoStore(ferretdb_uri, database) as mongo:
        simulate(mongo, plans=250, days=30, seed=77, now=NOW, malformed_rate=0.03)
        events = list(mongo.find("intentions_audit"))
    # the audit events live in the topic only: the Kafka path must not read them from the store
    client = pymongo.MongoClient(ferretdb_uri)
    client[database]["intentions_audit"].drop()
    client.close()
    assert produce_audit_events(kafka_bootstrap, events) == len(events) > 200

    local = _collect({"document_store": DocumentStoreResource(), "platform": PlatformSettings()})
    remote = _collect({"document_store": DocumentStoreResource(mongodb_uri=ferretdb_uri, database=database),
                       "platform": PlatformSettings(kafka_bootstrap_servers=kafka_bootstrap)})
    assert local.success and remote.success
    a, b = local.output_for_node("raw_production_data"), remote.output_for_node("raw_production_data")
    assert len(a.frame) > 150 and a.counts["quarantined"] > 0
    pd.testing.assert_frame_equal(_comparable(a.frame), _comparable(b.frame))
    assert a.quarantined_by_reason == b.quarantined_by_reason
    for key in ("rows", "labelled", "filtered_low_intent_confidence", "filtered_no_audit_event", "feedback_dropped"):
        assert a.counts[key] == b.counts[key], key
    # read from the topic's mirror in the document store (issue 23), which a second collection only tops up
    said = remote.asset_materializations_for_node("raw_production_data")[0].metadata["audit_source"].data
    assert said["source"] == "kafka topic intentions.audit, mirrored" and said["new_messages_read"] >= len(events)
    assert said["mirror_covers_since"] == (NOW - timedelta(days=91)).isoformat()
    assert local.asset_materializations_for_node("raw_production_data")[0].metadata["audit_source"].data == {
        "source": "intentions_audit collection"}
    with MongoStore(ferretdb_uri, database) as mongo:
        mirror = AuditMirror(mongo, kafka_bootstrap)
        assert mirror.covered_since() == NOW - timedelta(days=91)
        assert mongo.count("intentions_audit_mirror") >= len(events)
        assert mirror.sync(since=NOW, now=NOW).messages_read < len(events)  # another test may be producing


def test_mongodb_down_is_a_clear_error_and_a_retry(hive_home, monkeypatch):
    from hive_assets.defs import resources
    from hive_assets_tests.conftest import free_port

    monkeypatch.setattr(resources, "STORE_DOWN_RETRY_WAITS", (1, 1, 1))  # the waits' own test: test_store_down.py
    port = free_port()  # nothing listens there
    uri = f"mongodb://hive:topsecret@127.0.0.1:{port}/?serverSelectionTimeoutMS=500"
    result = _collect({"document_store": DocumentStoreResource(mongodb_uri=uri), "platform": PlatformSettings()})
    assert not result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 3  # a store down: the step's retries after STORE_DOWN_RETRY_WAITS, whatever its policy
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.error)
    assert f"127.0.0.1:{port}" in message and "topsecret" not in message and "(attempt 4 of 4)" in message
    text = "\n".join(str(e) for e in result.all_events)
    assert "topsecret" not in text


def test_kafka_down_is_a_clear_error_not_a_hang(hive_home):
    from hive_assets_tests.conftest import free_port

    embedded = SQLiteStore(hive_home / "store.sqlite")
    simulate(embedded, plans=30, days=10, seed=3, now=NOW)
    bootstrap = f"127.0.0.1:{free_port()}"
    started = datetime.now(timezone.utc)
    result = _collect({"document_store": DocumentStoreResource(),
                       "platform": PlatformSettings(kafka_bootstrap_servers=bootstrap, kafka_timeout_s=3.0)})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert bootstrap in str(failure.step_failure_data.error)
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2
    # three attempts of a 3 s deadline plus the 5 s + 15 s retry delays: bounded, no hang
    assert (datetime.now(timezone.utc) - started).total_seconds() < 90



def _secured_platform(kafka_secured, password_variable: str) -> PlatformSettings:
    return PlatformSettings(kafka_bootstrap_servers=kafka_secured["sasl_ssl"], kafka_timeout_s=60.0,
                            kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                            kafka_sasl_username=kafka_secured["user"], kafka_sasl_password=dg.EnvVar(password_variable),
                            kafka_ssl_ca_location=f"{kafka_secured['tls_dir']}/ca.crt")


def test_collection_reads_a_secured_kafka_and_a_refusal_is_not_retried(hive_home, kafka_secured, monkeypatch):
    """SASL over TLS, the password bound from the environment: the same rows as the audit collection gives. A
    wrong password fails the step once, naming the variables (librdkafka retried the refused login for the whole
    deadline, then the step's policy retried that twice more), and the password is nowhere in the run."""
    from hive_assets.config import KafkaSecurity

    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=60, days=10, seed=5, now=NOW)
    events = list(store.find("intentions_audit"))
    security = KafkaSecurity.from_values(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                                         sasl_username=kafka_secured["user"], sasl_password=kafka_secured["password"],
                                         ssl_ca_location=f"{kafka_secured['tls_dir']}/ca.crt")
    assert produce_audit_events(kafka_secured["sasl_ssl"], events, security=security) == len(events) > 40
    monkeypatch.setenv("HIVE_TEST_KAFKA_SASL_PASSWORD", kafka_secured["password"])
    from_store = _collect({"document_store": DocumentStoreResource(), "platform": PlatformSettings()})
    from_kafka = _collect({"document_store": DocumentStoreResource(),
                           "platform": _secured_platform(kafka_secured, "HIVE_TEST_KAFKA_SASL_PASSWORD")})
    assert from_store.success and from_kafka.success
    a, b = (r.output_for_node("raw_production_data") for r in (from_store, from_kafka))
    assert a.counts["rows"] == b.counts["rows"] > 20
    assert sorted(a.frame["opinion_id"]) == sorted(b.frame["opinion_id"])

    wrong = "wrong-password-51c9"
    monkeypatch.setenv("HIVE_TEST_KAFKA_SASL_PASSWORD", wrong)
    refused = _collect({"document_store": DocumentStoreResource(),
                        "platform": _secured_platform(kafka_secured, "HIVE_TEST_KAFKA_SASL_PASSWORD")})
    assert not refused.success
    assert [e for e in refused.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"] == []
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "authentication failed (SASL_SSL, SCRAM-SHA-512 as 'hive')" in message, message
    assert "KAFKA_SASL_PASSWORD" in message and message.rstrip().endswith("nothing was written")
    assert wrong not in "\n".join(str(e) for e in refused.all_events)

def test_the_production_corpus_and_a_large_plan_collect_alike_on_mongodb(hive_home, ferretdb_uri):
    """Encrypted intents, approval-service feedback and an oversized plan: FerretDB gives the rows and the
    quarantine the embedded store gives, and keeps the whole large document. (FerretDB 1.x refuses NaN
    on the wire, so non-finite numbers are covered on the embedded store and by the validation tests.)"""
    from hive_assets.data import TrustPolicy, collect, persist_quarantine
    from hive_assets.data import _documents as d
    from hive_assets_tests.data.production_corpus import write_production_corpus

    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    tasks = [{"task_id": f"x{k}", "description": "d" * 40} for k in range(d.MAX_TASKS + 1)]
    results = {}
    with MongoStore(ferretdb_uri, f"shapes_{uuid.uuid4().hex[:8]}") as mongo:
        for name, store in (("sqlite", SQLiteStore(hive_home / "store.sqlite")), ("mongodb", mongo)):
            corpus = write_production_corpus(store, now)  # the same documents (fresh Fernet tokens)
            big = store.find_one("cognitive_ledger", sort=[("plan_id", 1)])
            big["plan_data"]["tasks"] = tasks
            store.upsert_many("cognitive_ledger", [big])
            results[name] = collect(store, "business", now=now, trust=TrustPolicy(min_feedback_quality=0.5))
            assert persist_quarantine(store, results[name], "run-1") == 2, name
            kept = store.find_one("quarantine", {"reason": "oversized_plan"})
            assert kept["document"]["plan_data"]["tasks"] == tasks, name
    a, b = results["sqlite"], results["mongodb"]
    assert a.quarantined_by_reason == b.quarantined_by_reason == {"oversized_plan": 1, "invalid_plan": 1}
    assert a.counts["labelled"] == b.counts["labelled"] == corpus.opinions - 1
    pd.testing.assert_frame_equal(_comparable(a.frame), _comparable(b.frame))
    for key in ("intent_from_plan", "intent_from_opinion", "quality_filter_dropped_by_class", "feedback_dropped"):
        assert a.counts[key] == b.counts[key], key


def test_a_plan_holding_bytes_is_quarantined_and_the_rows_can_be_stored(ferretdb_uri):
    """MongoDB holds values JSON cannot carry (BSON binary reads back as `bytes`). Such a plan is quarantined
    at collection, its neighbours kept; it used to pass collection and fail the run when its rows were
    written (as JSON text) to the asset storage."""
    from hive_assets import storage
    from hive_assets.data import _documents as d
    from hive_assets.data import collect, persist_quarantine

    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    database = f"bytes_{uuid.uuid4().hex[:8]}"
    with MongoStore(ferretdb_uri, database) as mongo:
        simulate(mongo, plans=60, days=5, seed=3, now=now)
        before = collect(mongo, "business", now=now, window_days=30)
        victim = before.frame["plan_id"].iloc[0]
        client = pymongo.MongoClient(ferretdb_uri)
        try:
            changed = 0
            for name, field in (("cognitive_ledger", "plan_data.signature"), ("cognitive_plans", "signature")):
                changed += client[database][name].update_one(
                    {"plan_id": victim}, {"$set": {field: bson.Binary(b"\x00\x01")}}).modified_count
        finally:
            client.close()
        assert changed == 1
        after = collect(mongo, "business", now=now, window_days=30)
        assert persist_quarantine(mongo, after, "run-1") == len(after.quarantine)  # kept, as text
        kept = mongo.find_one("quarantine", {"source_id": victim})
        assert "signature" in kept["document"] and kept["document_chars"] == len(kept["document"])
    plans = after.quarantine[after.quarantine["source_id"] == victim]
    assert plans["reason"].tolist() == [d.WRONG_TYPE] and "JSON text cannot carry (bytes" in plans["detail"].iloc[0]
    lost = set(before.frame["opinion_id"]) - set(after.frame["opinion_id"])
    assert lost == set(before.frame.loc[before.frame["plan_id"] == victim, "opinion_id"]) and lost
    invalid = before.quarantined_by_reason.get(d.INVALID_PLAN, 0)
    assert after.quarantined_by_reason.get(d.INVALID_PLAN, 0) == invalid + len(lost)
    stored = storage.frame_from_parquet(storage.frame_to_parquet(after.frame))
    assert stored["plan"].tolist() == after.frame["plan"].tolist()
    assert len(storage.frame_from_parquet(storage.frame_to_parquet(after.quarantine))) == len(after.quarantine)


def test_the_mirror_is_kept_as_long_as_the_longest_window_asked(hive_home, kafka_bootstrap, monkeypatch):
    """A run whose `window_days` is longer than DATA_COLLECTION_DAYS keeps the topic's mirror that long (and a
    month); the platform's window alone prunes it to 120 days, and the longer window then reads the topic."""
    from hive_assets.defs.data.assets import audit_reader_for

    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    intent = f"intent-{uuid.uuid4().hex[:8]}"
    produce_audit_events(kafka_bootstrap, [{"id": intent, "confidence": 0.8, "timestamp": NOW - timedelta(days=150)}])
    start = NOW - timedelta(days=201)
    with SQLiteStore(hive_home / "mirror.sqlite") as store:
        platform = PlatformSettings(kafka_bootstrap_servers=kafka_bootstrap)
        long = audit_reader_for(platform, store, window_days=200)
        assert long([intent], start, NOW) == {intent: 0.8}
        assert long.last["source"] == "kafka topic intentions.audit, mirrored" and long.last["pruned"] == 0
        default = audit_reader_for(platform, store)
        assert default([intent], start, NOW) == {intent: 0.8}
        assert default.last["source"] == "kafka topic intentions.audit: the window starts before the mirror"
        assert default.last["mirror_covers_since"] == (NOW - timedelta(days=120)).isoformat()

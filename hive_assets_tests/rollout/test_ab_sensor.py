"""ab_test_check_sensor, evaluated the Dagster way (build_sensor_context with the instance and definitions)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.rollout.sensors import ab_test_check_sensor, check_interval_seconds, run_key
from hive_assets.rollout import open_test

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def tick(defs, instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor, resources=defs.resources)
    # the wall clock around the tick: the run key's hour is one of these two
    before = datetime.now(timezone.utc)
    result = ab_test_check_sensor.evaluate_tick(context)
    return result, before, datetime.now(timezone.utc)


def test_one_request_per_running_test_and_hour(hive_home):
    store = SQLiteStore(hive_home / "store.sqlite")
    business, _ = open_test(store, "business", "1", "2", 10, now=OPENED)
    technical, _ = open_test(store, "technical", "4", "5", 10, now=OPENED)
    closed, _ = open_test(store, "behavior", "1", "2", 10, now=OPENED)
    store.update_one("ab_tests", {"test_id": closed["test_id"]}, {"status": "rolled_back"})
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result, before, after = tick(defs, instance)
        requests = sorted(result.run_requests, key=lambda r: r.partition_key)
        assert [r.partition_key for r in requests] == ["business", "technical"]  # the closed test is not checked
        for request, test in zip(requests, (business, technical)):
            assert request.job_name in (None, "ab_test_check")
            assert request.run_key in {run_key(request.partition_key, test["test_id"], t) for t in (before, after)}
            assert request.run_key.startswith(f"{request.partition_key}:{test['test_id']}:")
            assert request.tags["hive/ab_test_id"] == test["test_id"]
        assert json.loads(result.cursor) == {r.partition_key: r.run_key for r in requests}

        # the next tick within the same hour requests nothing (unless the hour turned meanwhile)
        again, _, after2 = tick(defs, instance, cursor=result.cursor)
        if after2.strftime("%Y%m%dT%H") == after.strftime("%Y%m%dT%H") == before.strftime("%Y%m%dT%H"):
            assert again.run_requests == [] and again.skip_message
            assert again.cursor == result.cursor

        # a test that ends is no longer checked; a new one is, under its own key
        store.update_one("ab_tests", {"test_id": business["test_id"]}, {"status": "promoted"})
        newer, _ = open_test(store, "technical", "4", "6", 10, now=OPENED.replace(hour=12))
        third, _, _ = tick(defs, instance, cursor=result.cursor)
        assert [(r.partition_key, r.tags["hive/ab_test_id"]) for r in third.run_requests] == \
            [("technical", newer["test_id"])]
        assert list(json.loads(third.cursor)) == ["technical"]


def test_no_running_test_skips(hive_home):
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result, _, _ = tick(defs, instance)
        assert result.run_requests == [] and "no running A/B test" in result.skip_message


def test_an_unreachable_store_skips_in_one_line_without_the_credential(hive_home):
    # (audit, stop 51: a SensorExecutionError traceback, where the feedback and drift sensors skip)
    from hive_assets.defs.resources import DocumentStoreResource

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=build_defs(), cursor='{"business": "k"}',
                                          resources={"document_store": DocumentStoreResource(
                                              mongodb_uri="mongodb://hive:s3cret-pw@127.0.0.1:9/"
                                                          "?serverSelectionTimeoutMS=300")})
        result = ab_test_check_sensor.evaluate_tick(context)
    assert result.run_requests == [] and result.skip_message.startswith("document store unavailable")
    assert "127.0.0.1:9" in result.skip_message and "s3cret" not in result.skip_message
    assert result.cursor == '{"business": "k"}'  # the requests already made stay known


def test_the_sensor_targets_the_check_job_at_the_configured_interval(monkeypatch):
    assert ab_test_check_sensor.job_name == "ab_test_check"
    assert ab_test_check_sensor.minimum_interval_seconds == check_interval_seconds() == 3600
    monkeypatch.setenv("AB_TEST_CHECK_INTERVAL_MINUTES", "15")
    assert check_interval_seconds() == 900
    for minutes, seconds in (("0.01", 1), ("0.5", 30), ("0.999", 60)):  # int() made 0.01 minutes a 0-s interval
        monkeypatch.setenv("AB_TEST_CHECK_INTERVAL_MINUTES", minutes)
        assert check_interval_seconds() == seconds
    job = build_defs().resolve_job_def("ab_test_check")
    assert [str(k.to_user_string()) for k in job.asset_layer.executable_asset_keys] == ["ab_test_outcome"]


@pytest.mark.parametrize("hour", [0, 13, 23])
def test_run_keys_encode_specialist_test_and_utc_hour(hour):
    now = datetime(2026, 3, 2, hour, 59, 59, tzinfo=timezone.utc)
    assert run_key("business", "business_v2_x", now) == f"business:business_v2_x:20260302T{hour:02d}"


def test_no_look_until_the_platform_clock_has_moved_an_interval(hive_home, monkeypatch):
    """A simulated home whose clock stands still: however often the daemon ticks, the test is not looked at
    again until the clock has moved AB_TEST_CHECK_INTERVAL_MINUTES (less a tenth) past its last look."""
    from datetime import timedelta

    store = SQLiteStore(hive_home / "store.sqlite")
    test, _ = open_test(store, "business", "1", "2", 10, now=OPENED)
    looked = OPENED + timedelta(hours=6)
    store.update_one("ab_tests", {"test_id": test["test_id"]}, {"last_check_at": looked})
    defs = build_defs()
    with dg.instance_for_test() as instance:
        for at, expected in ((looked, 0), (looked + timedelta(minutes=50), 0), (looked + timedelta(minutes=54), 1)):
            monkeypatch.setenv("HIVE_SIMULATED_NOW", at.isoformat())
            result, _, _ = tick(defs, instance)
            assert len(result.run_requests) == expected, (at, result.skip_message)
            if not expected:
                assert "business: next look at 2026-03-02 15:54 UTC" in result.skip_message
        # a test just opened waits an interval too (a look with no labels yet decides nothing)
        open_test(store, "technical", "4", "5", 10, now=looked)
        monkeypatch.setenv("HIVE_SIMULATED_NOW", looked.isoformat())
        assert tick(defs, instance)[0].run_requests == []


def test_a_look_whose_run_failed_is_requested_again_within_its_hour(hive_home, monkeypatch):
    """A loop interrupted inside an A/B look left its run FAILURE: the hour's key was spent and the look lost
    until the next one (the replayed hour skipped it). A failed look gets the triggers' next attempts; a canceled
    one (an operator meant it) does not."""
    from dagster._core.storage.dagster_run import DagsterRun

    now = OPENED.replace(hour=10, minute=30)  # due: an interval (60 min) after the opening
    monkeypatch.setenv("HIVE_SIMULATED_NOW", now.isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    test, _ = open_test(store, "business", "1", "2", 10, now=OPENED)
    hour = run_key("business", test["test_id"], now)
    defs = build_defs()
    with dg.instance_for_test() as instance:
        def launched(key, status):
            instance.add_run(DagsterRun(job_name="ab_test_check", run_id=str(uuid.uuid4()), status=status,
                                        tags={"dagster/partition": "business", "dagster/run_key": key}))

        first, _, _ = tick(defs, instance)
        assert [r.run_key for r in first.run_requests] == [hour]
        launched(hour, dg.DagsterRunStatus.FAILURE)
        second, _, _ = tick(defs, instance, cursor=first.cursor)
        assert [r.run_key for r in second.run_requests] == [f"{hour}:retry-1"]
        launched(f"{hour}:retry-1", dg.DagsterRunStatus.CANCELED)
        third, _, _ = tick(defs, instance, cursor=second.cursor)
        assert third.run_requests == [] and json.loads(third.cursor) == {"business": f"{hour}:retry-1"}

"""Feedback trigger rule, run keys and sensor cursor (hive_assets.monitoring._triggers)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from hive_assets.monitoring._triggers import (
    SpecialistCursor,
    UntrainableData,
    attempt_to_request,
    decode_cursor,
    drift_run_key,
    drift_trigger,
    encode_cursor,
    feedback_run_key,
    feedback_trigger,
    time_bucket,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)


def decide(count, *, trained=T0 - 5 * DAY, requested=None, now=T0, cooldown=DAY, threshold=100, **kw):
    return feedback_trigger("business", count, threshold, trained, requested, now, cooldown, **kw)


# -- rule ---------------------------------------------------------------------------------------------
def test_fires_at_the_threshold_not_below():
    assert decide(99).action == "below_threshold"
    assert decide(99).run_key is None
    fired = decide(100)
    assert fired.action == "fire" and fired.fire and fired.run_key
    assert decide(250).action == "fire"


def test_data_found_untrainable_holds_until_a_threshold_of_feedback_came_after_it():
    """A collection since the last training that could not train (too few labels) holds the trigger until
    `threshold` more trusted feedback was submitted after its window: the same labels fail the same check."""
    def untrainable(after: int) -> UntrainableData:
        return UntrainableData(T0 - timedelta(hours=30), ("180 labelled rows < min_training_samples 300",), after)

    held = decide(180, untrainable=untrainable(99))
    assert (held.action, held.fire, held.run_key) == ("untrainable", False, None)
    assert held.reason == (
        "180 >= 100 trusted feedback since the last training, but the data collected up to 2026-02-28 06:00 UTC "
        "could not train (180 labelled rows < min_training_samples 300): asked again once 100 more trusted "
        "feedback came after it (99 so far)")
    assert decide(280, untrainable=untrainable(100)).action == "fire"
    # below the threshold and the cooldown are said as before: the hold is only what it adds
    assert decide(99, untrainable=untrainable(0)).action == "below_threshold"
    assert decide(180, requested=T0 - timedelta(hours=3), untrainable=untrainable(100)).action == "cooldown"
    assert untrainable(5).holds(5) is None and "(4 so far)" in untrainable(4).holds(5)


def test_cooldown_edges_after_a_request():
    assert decide(150, requested=T0 - DAY + timedelta(seconds=1)).action == "cooldown"
    assert decide(150, requested=T0 - DAY).action == "fire"  # exactly the cooldown has passed
    blocked = decide(150, requested=T0 - timedelta(hours=3))
    assert blocked.cooldown_until == T0 + timedelta(hours=21)
    assert "cooldown" in blocked.reason and blocked.run_key is None
    # configurable
    assert decide(150, requested=T0 - timedelta(hours=3), cooldown=timedelta(hours=2)).action == "fire"


def test_a_recent_training_also_holds_the_trigger():
    assert decide(150, trained=T0 - timedelta(hours=1)).action == "cooldown"
    assert decide(150, trained=None, requested=None).action == "fire"  # never trained, never requested


def test_future_timestamps_count_as_within_the_cooldown():
    assert decide(150, requested=T0 + timedelta(minutes=5)).action == "cooldown"


def test_naive_datetimes_are_utc():
    naive = decide(150, requested=(T0 - timedelta(hours=3)).replace(tzinfo=None), now=T0.replace(tzinfo=None))
    assert naive.action == "cooldown"
    other_zone = timezone(timedelta(hours=-5))
    assert decide(150, requested=(T0 - DAY).astimezone(other_zone)).action == "fire"


# -- run keys -----------------------------------------------------------------------------------------
def test_repeated_ticks_of_one_trigger_give_one_key():
    first = decide(120, now=T0)
    keys = {decide(c, now=T0 + timedelta(minutes=m)).run_key for c, m in [(120, 0), (121, 1), (130, 30), (180, 90)]}
    assert keys == {first.run_key}


def test_a_failed_run_does_not_swallow_the_next_trigger():
    first = decide(120, now=T0)
    # the run failed: no new training, and no new feedback either; after the cooldown it fires again
    assert decide(120, requested=T0, now=T0 + DAY - timedelta(seconds=1)).action == "cooldown"
    again = decide(120, requested=T0, now=T0 + DAY)
    assert again.action == "fire" and again.run_key != first.run_key


def test_keys_differ_for_any_two_requests_the_cooldown_allows():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        cooldown = timedelta(seconds=float(rng.uniform(60, 7 * 86400)))
        t1 = T0 + timedelta(seconds=float(rng.uniform(0, 1e8)))
        t2 = t1 + cooldown + timedelta(seconds=float(rng.exponential(cooldown.total_seconds())))
        k1 = feedback_run_key("technical", 7, 1, time_bucket(t1, cooldown))
        k2 = feedback_run_key("technical", 7, 1, time_bucket(t2, cooldown))
        assert k1 != k2


def test_keys_differ_by_training_specialist_and_bucket():
    base = feedback_run_key("business", 41, 1, 100)
    assert len({base, feedback_run_key("business", 42, 1, 100), feedback_run_key("technical", 41, 1, 100),
                feedback_run_key("business", 41, 2, 100), feedback_run_key("business", 41, 1, 101)}) == 5
    new_training = decide(120, trained=T0 - 2 * DAY, now=T0).run_key
    assert new_training != decide(120, trained=T0 - 3 * DAY, now=T0).run_key
    assert decide(120, last_training_marker=12345).run_key.startswith("feedback:business:trained-12345:")


def test_drift_run_key():
    hour = timedelta(minutes=60)
    k = drift_run_key("behavior", 3, time_bucket(T0, hour))
    assert k == drift_run_key("behavior", 3, time_bucket(T0 + timedelta(minutes=59), hour))
    assert k != drift_run_key("behavior", 3, time_bucket(T0 + hour, hour))
    assert k != drift_run_key("behavior", 4, time_bucket(T0, hour))
    assert k != drift_run_key("evolution", 3, time_bucket(T0, hour))


def test_a_trigger_requests_its_first_attempt_whose_run_did_not_fail():
    key = drift_run_key("business", 1, 7)
    assert attempt_to_request(key, lambda k: False) == key
    assert attempt_to_request(key, {key}.__contains__) == f"{key}:retry-1"
    assert attempt_to_request(key, {key, f"{key}:retry-1"}.__contains__) == f"{key}:retry-2"
    asked = []
    every = attempt_to_request(key, lambda k: asked.append(k) or True)  # all failed: the last, which Dagster skips
    assert every == f"{key}:retry-2" and asked == [key, f"{key}:retry-1", f"{key}:retry-2"]


def test_drift_rule_holds_in_order_and_gives_a_run_key_only_when_firing():
    key = drift_run_key("business", 3, time_bucket(T0, timedelta(hours=1)))

    def rule(**kw):
        return drift_trigger("business", key, T0, DAY, **kw)

    fired = rule(last_training_at=T0 - DAY, last_request_at=T0 - 2 * DAY)
    assert fired.fire and fired.run_key == key
    for held, action, words in [
        (rule(run_in_flight="r-1", running_test_id="t-1", last_request_at=T0), "in_flight", "run r-1 in flight"),
        (rule(running_test_id="t-1", last_request_at=T0), "ab_test", "A/B test t-1 running"),
        (rule(last_request_at=T0 - timedelta(hours=3)), "cooldown", "run requested at"),
        (rule(last_training_at=T0 - DAY + timedelta(seconds=1)), "cooldown", "training at"),
        (rule(last_request_at=T0 + timedelta(minutes=5)), "cooldown", "cooldown"),  # clock skew: within
    ]:
        assert (held.action, held.fire, held.run_key) == (action, False, None)
        assert words in held.reason
    assert "until 2026-03-02T09:00:00+00:00" in rule(last_request_at=T0 - timedelta(hours=3)).reason


def test_time_bucket():
    hour = timedelta(hours=1)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert time_bucket(epoch, hour) == 0
    assert time_bucket(epoch + hour - timedelta(microseconds=1), hour) == 0
    assert time_bucket(epoch - timedelta(microseconds=1), hour) == -1
    with pytest.raises(ValueError):
        time_bucket(T0, timedelta(0))


# -- cursor -------------------------------------------------------------------------------------------
def test_cursor_round_trip():
    state = {
        "business": SpecialistCursor(last_count=130, last_request_at=T0, last_run_key="feedback:business:x",
                                     last_check_at=T0 + timedelta(hours=1), extra={"model_version": 3}),
        "technical": SpecialistCursor(),
    }
    text = encode_cursor(state)
    assert decode_cursor(text) == state
    assert json.loads(text)["v"] == 1
    assert encode_cursor(decode_cursor(text)) == text


@pytest.mark.parametrize("garbage", [
    None, "", "not json", b"\xff\xfe", "[1, 2]", "42", "null", '{"v": 0, "specialists": {}}',
    '{"specialists": {"business": {"last_count": 3}}}', '{"v": 1, "specialists": [1, 2]}',
    '{"v": 1}', "[" * 100_000,
])
def test_garbage_or_old_cursor_is_an_empty_state(garbage):
    assert decode_cursor(garbage) == {}


def test_bad_fields_fall_back_to_defaults():
    text = json.dumps({"v": 1, "specialists": {
        "business": {"last_count": -4, "last_request_at": "yesterday", "last_run_key": 5, "extra": []},
        "technical": {"last_count": True, "last_request_at": 12},
        "behavior": "oops",
        "evolution": {"last_count": 7, "last_request_at": "2026-03-01T12:00:00"},
    }})
    state = decode_cursor(text)
    assert state["business"] == SpecialistCursor()
    assert state["technical"] == SpecialistCursor()
    assert state["behavior"] == SpecialistCursor()
    assert state["evolution"] == SpecialistCursor(last_count=7, last_request_at=T0)

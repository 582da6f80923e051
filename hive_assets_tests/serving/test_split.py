"""Which versions and split serving reads from the registered model's aliases and tags (no MLflow)."""

from __future__ import annotations

import pytest

from hive_assets.serving import Split, serving_from

RUNNING_TAGS = {"ab_test_id": "business_v2_20260302_090000", "ab_salt": "abc", "ab_challenger_traffic_percent": "25.0",
                "ab_challenger_version": "2", "ab_test_status": "running"}
ALIASES = {"champion": "1", "challenger": "2", "ab-test-v2": "2"}


def test_a_running_test_is_served_with_its_split():
    serving = serving_from(ALIASES, RUNNING_TAGS)
    assert serving.champion_version == "1"
    assert serving.split == Split("business_v2_20260302_090000", "abc", 25.0, "2")


@pytest.mark.parametrize("change, reason", [
    ({"tags": {"ab_test_status": "rolled_back", "ab_challenger_traffic_percent": "0.0"}}, "rolled_back"),
    ({"tags": {"ab_test_status": "stopped"}}, "stopped"),
    ({"tags": {"ab_challenger_traffic_percent": "0.0"}}, "0 % traffic"),
    ({"tags": {"ab_challenger_traffic_percent": "ten"}}, "unreadable"),
    # settle removes the challenger alias before it writes the closed status: that alone ends routing
    ({"aliases": {"champion": "1"}}, "not on v2"),
    # a newer registration moved the alias: the old test is being superseded
    ({"aliases": {"champion": "1", "challenger": "3"}}, "not on v2"),
    # a promotion moves champion first
    ({"aliases": {"champion": "2", "challenger": "2"}}, "is the champion"),
    ({"tags": {"ab_salt": ""}}, "missing"),
    # the champion alias deleted by hand during a test: not a promotion
    ({"aliases": {"challenger": "2"}}, "alias champion is not set"),
])
def test_any_sign_of_a_closed_test_ends_the_split(change, reason):
    serving = serving_from(change.get("aliases", ALIASES), {**RUNNING_TAGS, **change.get("tags", {})})
    assert serving.split is None and reason in serving.reason
    assert ("promoted" in serving.reason) == (serving.champion_version == "2")


def test_no_test_and_no_champion():
    assert serving_from({"champion": "4"}, {}) == serving_from({"champion": "4"}, {"other": "x"})
    assert serving_from({"champion": "4"}, {}).split is None
    assert serving_from({}, {}).champion_version is None


@pytest.mark.parametrize("traffic", ["150", "100", "100.0", "1e3", "inf", "nan", "-5", "ten", "30%", ""])
def test_a_share_outside_0_to_100_is_unreadable_not_all_or_no_traffic(traffic):
    """The controller writes shares in (0, 100) and 0 when it closes a test: "150" sent every unit to the
    untested challenger and "nan" or "-5" ended the test's routing, each reported healthy."""
    serving = serving_from(ALIASES, {**RUNNING_TAGS, "ab_challenger_traffic_percent": traffic})
    assert serving.split is None and serving.unreadable == serving.reason
    assert serving.unreadable.startswith(f"unreadable ab_challenger_traffic_percent={traffic!r}")
    assert serving.champion_version == "1"


def test_an_unreadable_share_keeps_the_last_split_of_the_same_test_only():
    served = serving_from(ALIASES, RUNNING_TAGS).split
    unreadable = {**RUNNING_TAGS, "ab_challenger_traffic_percent": "abc"}
    assert serving_from(ALIASES, unreadable, last=served).split == served
    # another test's split (a new test id, salt or challenger since) is not this one's
    for other in ({"test_id": "business_v3_x"}, {"salt": "zzz"}, {"challenger_version": "3"}):
        last = Split(**{**served.__dict__, **other})
        assert serving_from(ALIASES, unreadable, last=last).split is None
    # the tag of the test id changed while the share is unreadable: the last split is the old test's
    assert serving_from(ALIASES, {**unreadable, "ab_test_id": "business_v2_later"}, last=served).split is None


@pytest.mark.parametrize("change, reason", [
    ({"aliases": {"champion": "1", "ab-test-v2": "2"}}, "not on v2"),   # a rollback or stop removes the alias
    ({"aliases": {"champion": "2", "challenger": "2"}}, "is the champion"),  # a promotion
    ({"tags": {"ab_test_status": "rolled_back"}}, "rolled_back"),
])
def test_a_closure_ends_the_routing_even_with_an_unreadable_share(change, reason):
    """With the share unreadable, the last split kept serving after the challenger alias was removed."""
    served = serving_from(ALIASES, RUNNING_TAGS).split
    tags = {**RUNNING_TAGS, "ab_challenger_traffic_percent": "abc", **change.get("tags", {})}
    serving = serving_from(change.get("aliases", ALIASES), tags, last=served)
    assert serving.split is None and serving.unreadable is None and reason in serving.reason


def test_the_routing_unit_is_the_intent_id_collection_reads():
    """The router took any truthy `intent_id` (True, an encrypted `enc:...`) and skipped 0, where collection
    (`clear_id`) does the opposite: a unit routed in a test was not the unit its opinion was counted under."""
    from hive_assets.serving._opinion import routing_unit

    # the plan's intent_id -> its unit (collection's reading: an id, or none)
    # an object, a list or NaN is no id: str() of an object changes with its key order, and every NaN was one
    # unit "nan", all such plans routed to one arm
    for own, unit in (("intent-1", "intent-1"), (0, "0"), (7, "7"), (True, None), ("enc:AbCd", None), ("", None),
                      (None, None), ({"id": "intent-1"}, None), (["intent-1"], None), (float("nan"), None),
                      (float("inf"), None), (b"intent-1", None)):
        plan = {"intent_id": own, "tasks": []}
        entry = {"intent_id": "entry-intent", "plan_data": plan}
        assert routing_unit(plan, plan) == unit  # a plan alone: its own, or no unit
        assert routing_unit(entry, plan) == (unit or "entry-intent")  # an entry: the entry's as fallback
    assert routing_unit({"intent_id": "enc:x", "plan_data": {}}, {}) is None

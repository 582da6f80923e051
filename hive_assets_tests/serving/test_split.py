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


def test_traffic_above_100_is_capped():
    assert serving_from(ALIASES, {**RUNNING_TAGS, "ab_challenger_traffic_percent": "150"}).split.traffic_percent == 100.0

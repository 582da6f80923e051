"""What a specialist serves, read from its registered model: the versions behind the aliases and the
A/B split the controller mirrors to registered-model tags (`hive_assets.rollout.settle`).

A pure function of (aliases, tags), so the rule is tested without MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hive_assets.routing import CHALLENGER, CHAMPION

# the registered-model tags `settle` writes (`registry.mirror_ab_split` + the status tag)
TEST_ID_TAG = "ab_test_id"
SALT_TAG = "ab_salt"
TRAFFIC_TAG = "ab_challenger_traffic_percent"
CHALLENGER_VERSION_TAG = "ab_challenger_version"
STATUS_TAG = "ab_test_status"
RUNNING = "running"


@dataclass(frozen=True)
class Split:
    """The running test as serving sees it: units whose bucket is under `traffic_percent` go to
    `challenger_version`."""

    test_id: str
    salt: str
    traffic_percent: float
    challenger_version: str


@dataclass(frozen=True)
class Serving:
    champion_version: str | None
    split: Split | None
    reason: str  # why there is no split (or "running"), for health()
    unreadable: str | None = None  # a tag of a running test that cannot be read: not "no test", a fault


def serving_from(aliases: Mapping[str, str], tags: Mapping[str, str]) -> Serving:
    """Champion from the `champion` alias; a split only while every sign says the test runs.

    The split needs the status tag `running`, a traffic share above 0, and the `challenger` alias on the
    tagged challenger version that is not the champion. `settle` closes a test by removing the challenger
    alias, then writing traffic 0 and the closed status, and a promotion moves `champion` onto the
    challenger first: whichever of these a refresh sees first ends the routing, so a half-applied
    closure (a crash between two writes) never sends units to a version that left its test.
    """
    champion = aliases.get(CHAMPION)
    champion = str(champion) if champion is not None else None
    status = tags.get(STATUS_TAG)
    if tags.get(TEST_ID_TAG) is None:
        return Serving(champion, None, "no A/B test")
    if status != RUNNING:
        return Serving(champion, None, f"test {tags[TEST_ID_TAG]} is {status or 'without status'}")
    try:
        traffic = float(tags.get(TRAFFIC_TAG, ""))
    except ValueError:
        why = f"unreadable {TRAFFIC_TAG}={tags.get(TRAFFIC_TAG)!r}"
        return Serving(champion, None, why, unreadable=why)
    version = tags.get(CHALLENGER_VERSION_TAG)
    salt = tags.get(SALT_TAG)
    if not traffic > 0:
        return Serving(champion, None, f"test {tags[TEST_ID_TAG]} at 0 % traffic")
    if not version or not salt:
        return Serving(champion, None, f"test {tags[TEST_ID_TAG]}: {CHALLENGER_VERSION_TAG} or {SALT_TAG} missing")
    if str(aliases.get(CHALLENGER)) != str(version):
        return Serving(champion, None, f"alias {CHALLENGER} is not on v{version} (test closing or superseded)")
    if champion is None:  # deleted by hand: no champion arm to compare with (the router keeps its last good one)
        return Serving(None, None, f"test {tags[TEST_ID_TAG]}: alias {CHAMPION} is not set")
    if champion == str(version):
        return Serving(champion, None, f"v{version} is the champion (test promoted)")
    return Serving(champion, Split(tags[TEST_ID_TAG], salt, min(traffic, 100.0), str(version)), RUNNING)

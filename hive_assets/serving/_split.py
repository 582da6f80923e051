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


def serving_from(aliases: Mapping[str, str], tags: Mapping[str, str], last: Split | None = None) -> Serving:
    """Champion from the `champion` alias; a split only while every sign says the test runs.

    The split needs the status tag `running`, the `challenger` alias on the tagged challenger version that
    is not the champion, and a traffic share above 0. `settle` closes a test by removing the challenger
    alias, then writing traffic 0 and the closed status, and a promotion moves `champion` onto the
    challenger first: whichever of these a refresh sees first ends the routing, so a half-applied
    closure (a crash between two writes) never sends units to a version that left its test.

    A traffic share that is not a number in [0, 100) is unreadable, not a share: the controller writes
    none (a test at 100 % has no champion arm; only a promotion goes there), so "150" or "nan" is a fault,
    never all traffic to an untested challenger nor the end of the test. Then `last` (the split served
    until now) is kept when it is this test's (same id, salt and challenger), else no split is served;
    the signs of a closure above are read first, so they end the routing whatever the share says.
    """
    champion = aliases.get(CHAMPION)
    champion = str(champion) if champion is not None else None
    status = tags.get(STATUS_TAG)
    test_id = tags.get(TEST_ID_TAG)
    if test_id is None:
        return Serving(champion, None, "no A/B test")
    if status != RUNNING:
        return Serving(champion, None, f"test {test_id} is {status or 'without status'}")
    version = tags.get(CHALLENGER_VERSION_TAG)
    salt = tags.get(SALT_TAG)
    if not version or not salt:
        return Serving(champion, None, f"test {test_id}: {CHALLENGER_VERSION_TAG} or {SALT_TAG} missing")
    if str(aliases.get(CHALLENGER)) != str(version):
        return Serving(champion, None, f"alias {CHALLENGER} is not on v{version} (test closing or superseded)")
    if champion is None:  # deleted by hand: no champion arm to compare with (the router keeps its last good one)
        return Serving(None, None, f"test {test_id}: alias {CHAMPION} is not set")
    if champion == str(version):
        return Serving(champion, None, f"v{version} is the champion (test promoted)")
    traffic = _traffic(tags.get(TRAFFIC_TAG))
    if traffic is None:
        why = f"unreadable {TRAFFIC_TAG}={tags.get(TRAFFIC_TAG)!r} (a share in [0, 100) is expected)"
        same_test = last is not None and \
            (last.test_id, last.salt, last.challenger_version) == (test_id, salt, str(version))
        return Serving(champion, last if same_test else None, why, unreadable=why)
    if traffic == 0:
        return Serving(champion, None, f"test {test_id} at 0 % traffic")
    return Serving(champion, Split(test_id, salt, traffic, str(version)), RUNNING)


def _traffic(text: str | None) -> float | None:
    """The tagged share as a float in [0, 100), else None."""
    try:
        traffic = float(text if text is not None else "")
    except ValueError:
        return None
    return traffic if 0.0 <= traffic < 100.0 else None  # nan fails both comparisons

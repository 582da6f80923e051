"""Which alias a new version gets: the decision, without Dagster or MLflow."""

import pytest

from hive_assets.registry import CHALLENGER, CHAMPION, alias_for_new_version

BETTER = {"better": True, "macro_f1_improvement": 0.05, "regressions": {}}
NOT_BETTER = {"better": False, "macro_f1_improvement": 0.01, "regressions": {}}


def decide(champion, ab=True, promote=False, comparison=None, version="7"):
    return alias_for_new_version(version, champion, ab_testing_enabled=ab, promote_if_better=promote,
                                 comparison=comparison)


def test_the_first_version_becomes_champion_whatever_the_flags():
    for ab in (True, False):
        assert decide(None, ab=ab)[0] == CHAMPION


def test_the_current_champion_stays_champion():
    assert decide("7", ab=True) == (CHAMPION, "already champion")


def test_with_ab_testing_a_new_version_is_challenger_even_when_better():
    assert decide("3", ab=True, promote=True, comparison=BETTER)[0] == CHALLENGER


@pytest.mark.parametrize("promote, comparison, expected", [
    (True, BETTER, CHAMPION),
    (True, NOT_BETTER, None),
    (True, None, None),  # champion not comparable (other feature schema): never promoted blindly
    (False, BETTER, None),
])
def test_without_ab_testing_promote_if_better_decides(promote, comparison, expected):
    alias, reason = decide("3", ab=False, promote=promote, comparison=comparison)
    assert alias == expected
    assert reason


def test_with_ab_testing_disabled_promote_if_better_is_on_unless_turned_off():
    assert decide("3", ab=False, promote=None, comparison=BETTER)[0] == CHAMPION
    assert decide("3", ab=False, promote=None, comparison=NOT_BETTER)[0] is None
    assert decide("3", ab=False, promote=False, comparison=BETTER)[0] is None
    assert decide("3", ab=True, promote=None, comparison=BETTER)[0] == CHALLENGER

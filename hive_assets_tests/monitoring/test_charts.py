"""What a drift check shows in the UI: when it is worth an observation, and its PSI chart."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from hive_assets.features import FEATURE_NAMES
from hive_assets.figures import png_markdown
from hive_assets.monitoring import drift_changed, psi_chart_png
from hive_assets_tests.test_figures import decode_embedded_png


@pytest.mark.parametrize("previous, decision, score, changed", [
    (None, "no_drift", 0.05, True),                                       # nothing shown yet
    ({"decision": "no_drift", "drift_score": 0.05}, "no_drift", 0.05, False),
    ({"decision": "no_drift", "drift_score": 0.05}, "no_drift", 0.0649, False),  # within 0.02
    ({"decision": "no_drift", "drift_score": 0.05}, "no_drift", 0.0301, False),
    ({"decision": "no_drift", "drift_score": 0.05}, "no_drift", 0.0701, True),
    ({"decision": "no_drift", "drift_score": 0.05}, "no_drift", 0.0299, True),
    ({"decision": "no_drift", "drift_score": 0.19}, "drift", 0.19, True),    # the decision changed
    ({"decision": "insufficient_data", "drift_score": None}, "insufficient_data", None, False),
    ({"decision": "insufficient_data", "drift_score": None}, "insufficient_data", 0.1, True),
])
def test_a_check_is_shown_when_its_decision_or_score_moves(previous, decision, score, changed):
    assert drift_changed(previous, decision, score) is changed


@pytest.mark.parametrize("shown, version, changed", [
    ("3", "3", False),
    ("3", 3, False),      # the document's version may be a number, the metadata's is text
    ("3", "4", True),     # a promotion with the same decision and score: the new champion is shown
    (None, "4", False),   # an observation from before versions were compared: the score decides
])
def test_another_champion_is_shown_even_with_the_same_decision_and_score(shown, version, changed):
    previous = {"decision": "no_drift", "drift_score": 0.05, "model_version": shown}
    assert drift_changed(previous, "no_drift", 0.05, model_version=version) is changed


def test_the_psi_chart_is_a_small_png_that_grows_with_the_features():
    few = {name: {"psi": 0.01 * i, "drift": False} for i, name in enumerate(FEATURE_NAMES[:5])}
    every = {name: {"psi": 0.01 * i, "drift": i == 20} for i, name in enumerate(FEATURE_NAMES)}
    every["domain"] = {"psi": None, "drift": False}  # not scored: left out, no error
    sizes = []
    for features in (few, every):
        png = psi_chart_png(features, 0.2, "business v1: PSI by feature")
        _, decoded = decode_embedded_png(png_markdown(png, "psi"))
        with Image.open(io.BytesIO(decoded)) as image:
            assert image.format == "PNG"
            sizes.append(image.size)
        assert len(png) < 40_000
    assert sizes[1][1] > sizes[0][1] and 150 < sizes[1][1] < 600


@pytest.mark.parametrize("shown, now, changed", [
    ("held: A/B test t1 running", "held: A/B test t1 running", False),
    ("held: A/B test t1 running", "held: A/B test t3 running", True),  # t1 closed, another test holds it now
    ("held: A/B test t1 running", None, True),                         # nothing holds it any more
    (None, None, False),
])
def test_another_retraining_outcome_is_shown_even_with_the_same_decision_and_score(shown, now, changed):
    """The drift asset showed "held: A/B test ... running" naming a test rolled back a day before."""
    previous = {"decision": "drift", "drift_score": 0.3, "model_version": "3", "retraining": shown}
    assert drift_changed(previous, "drift", 0.3, model_version="3", retraining=now) is changed

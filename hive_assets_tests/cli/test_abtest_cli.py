"""`hive ab-test`'s text for a person: each arm's labels counted as the controller's reasons count them."""

from __future__ import annotations

from hive_assets.cli._abtest import state_text
from hive_assets.rollout._controller import decide
from hive_assets_tests.rollout.test_controller import at, state, young_test


def test_each_arm_shows_its_matured_and_its_known_labels_as_the_reason_counts_them():
    """`challenger served 1586, labelled 15` above "24 labelled units in the smaller arm": the table counted the
    matured labels, the reason every label known now."""
    d = decide(state((10, 0)), young_test(), at(30))
    text = state_text("technical", {
        "test_id": "technical_v2", "status": "running", "challenger_version": 2, "champion_version": 1,
        "traffic_percent": 10.0, "verdict": d.action, "reason": d.reason,
        "champion": d.statistics["champion"], "challenger": d.statistics["challenger"]})
    assert "  challenger served 150, labelled 15 matured, 24 known, agreement 0.800\n" in text, text
    assert "  champion   served 1350, labelled 1000 matured, 1060 known, agreement 0.800\n" in text, text
    assert text.endswith("  24 labelled units known in the smaller arm (15 matured), need 50 known before any "
                         "decision"), text

"""REVIEW_QUEUE_DAILY_BUDGET: one number for every specialist, or per-specialist pairs; bad values refused."""

import pytest

from hive_assets.defs.review.sensors import daily_budget


@pytest.mark.parametrize("text, expected", [
    ("", {"business": 100, "technical": 100}),
    ("0", {"business": 0, "technical": 0}),
    ("business=40", {"business": 40, "technical": 100}),
    ("25, technical=0", {"business": 25, "technical": 0}),
])
def test_budget_per_specialist(monkeypatch, text, expected):
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", text)
    assert {s: daily_budget(s) for s in expected} == expected


@pytest.mark.parametrize("text", ["-1", "ten", "nobody=5", "business=1.5"])
def test_bad_budget_is_refused(monkeypatch, text):
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", text)
    with pytest.raises(ValueError, match="REVIEW_QUEUE_DAILY_BUDGET"):
        daily_budget("business")

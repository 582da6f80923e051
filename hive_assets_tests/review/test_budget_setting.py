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


@pytest.mark.parametrize("text", ["-1", "ten", "nobody=5", "business=1.5", "tech=10", "\u00b2",
                                  "business=10,business=20", "5,7"])
def test_bad_budget_is_refused(monkeypatch, text):
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", text)
    with pytest.raises(ValueError, match="REVIEW_QUEUE_DAILY_BUDGET"):
        daily_budget("business")


def test_a_bad_budget_is_said_when_a_verb_reads_the_settings_not_at_the_sensor_s_tick(hive_home, monkeypatch,
                                                                                       capsys):
    """`hive status` and the other verbs took 'technical=abc' (only the sensor's tick failed, for every
    specialist); it is now a setting like the others: one line, exit 2."""
    from hive_assets.cli._main import main
    from hive_assets.config import ConfigError, Settings

    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", "business=40,technical=abc")
    with pytest.raises(ConfigError, match="REVIEW_QUEUE_DAILY_BUDGET"):
        Settings.from_env()
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "REVIEW_QUEUE_DAILY_BUDGET must be a number of requests per day" in err and "Traceback" not in err

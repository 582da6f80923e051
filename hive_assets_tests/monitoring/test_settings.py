"""MonitoringSettings reads its variables through the checked parsers: a malformed value names itself."""

from datetime import timedelta

import pytest

from hive_assets.config import ConfigError
from hive_assets.monitoring import MonitoringSettings


@pytest.mark.parametrize("name, value, message", [
    ("RETRAINING_COOLDOWN_HOURS", "a day", "RETRAINING_COOLDOWN_HOURS must be a number, got 'a day'"),
    ("RETRAINING_COOLDOWN_HOURS", "0", "RETRAINING_COOLDOWN_HOURS must be > 0, got '0'"),
    ("DRIFT_WINDOW_HOURS", "-6", "DRIFT_WINDOW_HOURS must be > 0, got '-6'"),
    ("DRIFT_MIN_ROWS", "2.5", "DRIFT_MIN_ROWS must be an integer, got '2.5'"),
    ("DRIFT_ALPHA", "2", "DRIFT_ALPHA must be > 0 and <= 1, got '2'"),
    ("DRIFT_PREDICTION_THRESHOLD", "0", "DRIFT_PREDICTION_THRESHOLD must be > 0, got '0'"),
    ("HIVE_FEEDBACK_SENSOR_INTERVAL_SECONDS", "0", "HIVE_FEEDBACK_SENSOR_INTERVAL_SECONDS must be >= 1, got '0'"),
])
def test_a_malformed_value_is_a_config_error_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        MonitoringSettings.from_env()


def test_values_and_defaults(monkeypatch):
    for name in ("RETRAINING_COOLDOWN_HOURS", "DRIFT_WINDOW_HOURS", "DRIFT_MIN_ROWS", "DRIFT_ALPHA",
                 "DRIFT_PREDICTION_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DRIFT_WINDOW_HOURS", " 6 ")
    monkeypatch.setenv("RETRAINING_COOLDOWN_HOURS", "0.5")
    settings = MonitoringSettings.from_env()
    assert settings.drift_window == timedelta(hours=6) and settings.cooldown == timedelta(minutes=30)
    assert (settings.drift_min_rows, settings.drift_alpha, settings.drift_prediction_threshold) == (200, 0.001, 0.15)
    monkeypatch.setenv("DRIFT_PREDICTION_THRESHOLD", "0.25")
    assert MonitoringSettings.from_env().drift_prediction_threshold == 0.25

"""The trigger settings (SPEC sections 8 and 9), read from the environment.

SPEC names: RETRAINING_FEEDBACK_THRESHOLD (100), DRIFT_THRESHOLD (0.2), DRIFT_CHECK_INTERVAL_MINUTES
(60). Added here: RETRAINING_COOLDOWN_HOURS (24; may be fractional), DRIFT_WINDOW_HOURS (24: the recent
window a drift check compares), DRIFT_PREDICTION_THRESHOLD (0.15: the class-mix PSI of the champion's
predictions that counts as drift), DRIFT_MIN_ROWS (200), DRIFT_ALPHA (0.001), and the sensors' tick
intervals HIVE_FEEDBACK_SENSOR_INTERVAL_SECONDS (60), HIVE_DRIFT_SENSOR_INTERVAL_SECONDS (default
DRIFT_CHECK_INTERVAL_MINUTES * 60) and HIVE_RUN_STATUS_SENSOR_INTERVAL_SECONDS (30), which tests lower.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hive_assets.config import Settings, env_float, env_int
from hive_assets.monitoring._drift import DEFAULT_ALPHA, DEFAULT_MIN_ROWS, DEFAULT_PREDICTION_THRESHOLD

__all__ = ["MonitoringSettings"]


@dataclass(frozen=True)
class MonitoringSettings:
    feedback_threshold: int = 100
    cooldown: timedelta = timedelta(hours=24)
    drift_threshold: float = 0.2
    drift_prediction_threshold: float = DEFAULT_PREDICTION_THRESHOLD
    drift_check_interval: timedelta = timedelta(minutes=60)
    drift_window: timedelta = timedelta(hours=24)
    drift_min_rows: int = DEFAULT_MIN_ROWS
    drift_alpha: float = DEFAULT_ALPHA
    feedback_sensor_interval_s: int = 60
    drift_sensor_interval_s: int = 3600
    run_status_sensor_interval_s: int = 30

    def __post_init__(self):
        if self.feedback_threshold <= 0:
            raise ValueError("RETRAINING_FEEDBACK_THRESHOLD must be positive")
        for name in ("cooldown", "drift_check_interval", "drift_window"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")

    @classmethod
    def from_env(cls) -> "MonitoringSettings":
        base = Settings.from_env()
        interval_min = base.drift_check_interval_minutes
        return cls(
            feedback_threshold=base.retraining_feedback_threshold,
            cooldown=timedelta(hours=env_float("RETRAINING_COOLDOWN_HOURS", 24.0, low=0, low_open=True)),
            drift_threshold=base.drift_threshold,
            drift_prediction_threshold=env_float("DRIFT_PREDICTION_THRESHOLD", DEFAULT_PREDICTION_THRESHOLD, low=0,
                                                 low_open=True),
            drift_check_interval=timedelta(minutes=interval_min),
            drift_window=timedelta(hours=env_float("DRIFT_WINDOW_HOURS", 24.0, low=0, low_open=True)),
            drift_min_rows=env_int("DRIFT_MIN_ROWS", DEFAULT_MIN_ROWS, low=1),
            drift_alpha=env_float("DRIFT_ALPHA", DEFAULT_ALPHA, low=0, high=1, low_open=True),
            feedback_sensor_interval_s=env_int("HIVE_FEEDBACK_SENSOR_INTERVAL_SECONDS", 60, low=1),
            drift_sensor_interval_s=env_int("HIVE_DRIFT_SENSOR_INTERVAL_SECONDS", int(interval_min * 60), low=1),
            run_status_sensor_interval_s=env_int("HIVE_RUN_STATUS_SENSOR_INTERVAL_SECONDS", 30, low=1),
        )

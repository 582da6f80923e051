"""REVIEW_QUEUE_DAILY_BUDGET: one number for every specialist, or per-specialist pairs; bad values refused."""

import pytest

from hive_assets.config import review_queue_daily_budgets


@pytest.mark.parametrize("text, expected", [
    ("", {"business": 100, "technical": 100}),
    ("0", {"business": 0, "technical": 0}),
    ("business=40", {"business": 40, "technical": 100}),
    ("25, technical=0", {"business": 25, "technical": 0}),
])
def test_budget_per_specialist(monkeypatch, text, expected):
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", text)
    budgets = review_queue_daily_budgets()
    assert {s: budgets[s] for s in expected} == expected


@pytest.mark.parametrize("text", ["-1", "ten", "nobody=5", "business=1.5", "tech=10", "\u00b2",
                                  "business=10,business=20", "5,7"])
def test_bad_budget_is_refused(monkeypatch, text):
    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", text)
    with pytest.raises(ValueError, match="REVIEW_QUEUE_DAILY_BUDGET"):
        review_queue_daily_budgets()


def test_a_bad_budget_is_said_by_hive_status_and_stops_nothing_else(hive_home, monkeypatch, capsys):
    """`hive status` took 'technical=abc' silently (only the sensor's tick failed); it now warns, and the
    other settings, the definitions and every other run still load."""
    from hive_assets.cli._main import main
    from hive_assets.config import Settings

    monkeypatch.setenv("REVIEW_QUEUE_DAILY_BUDGET", "business=40,technical=abc")
    assert Settings.from_env().lease_wait_seconds == 60  # a run's start reads these: not stopped by the budget
    assert main(["status"]) == 0
    err = capsys.readouterr().err
    assert ("hive status: warning: REVIEW_QUEUE_DAILY_BUDGET must be a number of requests per day" in err
            and "the review queue sensor requests nothing until it is fixed" in err and "Traceback" not in err), err
    # the sensor's tick says it in one line (it failed with a SensorExecutionError, the cause under its stack)
    import dagster as dg

    from hive_assets.defs.resources import MlflowResource
    from hive_assets.defs.review.sensors import review_queue_sensor

    with dg.instance_for_test() as instance:
        tick = review_queue_sensor(dg.build_sensor_context(instance=instance, resources={"mlflow": MlflowResource()}))
    assert tick.skip_message.startswith("REVIEW_QUEUE_DAILY_BUDGET must be a number of requests per day")
    assert tick.skip_message.endswith(": no review queue refresh is requested until it is fixed")


def test_an_expiry_or_window_no_reader_can_hold_is_refused_before_anything_is_written():
    """`expiry_hours: 1e7` wrote requests expiring in 3167, which every reader then called malformed (the
    budget spent on requests no reviewer sees); `1e300` and `candidate_days: 1e9` failed on a timedelta
    overflow after answers were linked. Both are now out of range, refused when the run sets up."""
    from hive_assets.defs.review.assets import ReviewQueueConfig  # registers the step's bounds
    from hive_assets.defs.runs.run_config import out_of_bounds

    assert ReviewQueueConfig(expiry_hours=87_600, candidate_days=36_500)
    assert out_of_bounds({"ops": {"review_queue": {"config": {"expiry_hours": 1e7, "candidate_days": 10**9}}}}) == [
        "ops.review_queue.config.expiry_hours must be less than or equal to 87600 (got 10000000.0)",
        "ops.review_queue.config.candidate_days must be less than or equal to 36500 (got 1000000000)",
    ]

"""`hive loop --retrain-days`: the scenario's operator launches `retrain_specialist` for every specialist at
the end of the given simulated days, and at no other hour; a day outside the loop is refused up front."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets.cli._main import main as hive
from hive_assets.config import SPECIALISTS
from hive_assets.defs.simulator.loop import OPERATOR, _operator_retrains
from hive_assets.simulator import default_scenario

START = datetime(2026, 1, 5, tzinfo=timezone.utc)


class RecordingLauncher:
    """The one method of InProcessDaemon the operator calls, recording its requests instead of running them."""

    def __init__(self):
        self.requests: list[tuple[int, str, dg.RunRequest]] = []

    def launch(self, now, job_name, request, *, sensor=None):
        self.requests.append((int((now - START) / timedelta(hours=1)), job_name, request))
        return None  # as for a run key that already ran: nothing to add to the loop's runs


def test_the_operator_retrains_every_specialist_at_the_end_of_the_given_days_only():
    scenario = replace(default_scenario(days=6), retrain_days=(1, 6))
    launcher = RecordingLauncher()
    for hour in range(1, scenario.hours + 1):
        _operator_retrains(launcher, scenario, hour, START + timedelta(hours=hour))
    assert [(h, job, r.partition_key) for h, job, r in launcher.requests] == \
        [(24, "retrain_specialist", s) for s in SPECIALISTS] + [(144, "retrain_specialist", s) for s in SPECIALISTS]
    assert all(r.tags == {"hive/actor": OPERATOR} and r.run_key is None for _, _, r in launcher.requests)


def test_no_retrain_days_no_operator_retrains():
    launcher = RecordingLauncher()
    for hour in range(1, 49):
        _operator_retrains(launcher, default_scenario(days=2), hour, START + timedelta(hours=hour))
    assert launcher.requests == []


@pytest.mark.parametrize("days", [(0,), (7,), (1, 7)])
def test_a_retrain_day_outside_the_loop_is_refused(days):
    with pytest.raises(ValueError, match=r"retrain_days must be within the 6 simulated days"):
        replace(default_scenario(days=6), retrain_days=days)


def test_hive_loop_refuses_a_retrain_day_beyond_its_days_before_playing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIVE_HOME", str(tmp_path / "hive"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "hive" / "dagster"))
    assert hive(["loop", "--days", "2", "--retrain-days", "3"]) == 2
    assert "retrain_days must be within the 2 simulated days" in capsys.readouterr().err
    assert not (tmp_path / "hive" / "store.sqlite").exists()  # nothing played, nothing written

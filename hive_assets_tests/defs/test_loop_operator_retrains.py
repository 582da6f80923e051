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


def test_the_operator_retrains_every_specialist_at_the_end_of_the_given_days_only(hive_home):
    """Through the loop's real in-process daemon and the code location's `retrain_specialist`: on an
    empty home each run fails at collection, which is beside the point; the runs launched are."""
    from hive_assets.defs import build_defs
    from hive_assets.defs.simulator.daemon import InProcessDaemon

    scenario = replace(default_scenario(days=2), retrain_days=(1,))
    with dg.instance_for_test() as instance:
        daemon = InProcessDaemon(instance, build_defs())
        launched = {hour: _operator_retrains(daemon, scenario, hour, START + timedelta(hours=hour))
                    for hour in range(1, scenario.hours + 1)}
        assert {hour for hour, runs in launched.items() if runs} == {24}
        assert [(r.job, r.partition) for r in launched[24]] == [("retrain_specialist", s) for s in SPECIALISTS]
        stored = instance.get_runs(dg.RunsFilter(job_name="retrain_specialist"))
        assert sorted(r.tags["dagster/partition"] for r in stored) == sorted(SPECIALISTS)
        assert all(r.tags["hive/actor"] == OPERATOR and "dagster/sensor_name" not in r.tags for r in stored)
        # the daemon's run-status sensors follow them as manual retrains (failed here: an empty home)
        from hive_assets.data import SQLiteStore

        with SQLiteStore(hive_home / "store.sqlite") as store:
            docs = store.find("retraining_triggers", {})
        assert sorted((d["trigger_id"], d["specialist_type"], d["reason"], d["status"]) for d in docs) == sorted(
            (f"manual:{r.run_id}", r.tags["dagster/partition"], "manual", "failed") for r in stored)


def test_no_retrain_days_no_operator_retrains():
    """Without retrain days the operator launches nothing (the daemon is never reached)."""
    scenario = default_scenario(days=2)
    assert all(_operator_retrains(None, scenario, hour, START + timedelta(hours=hour)) == []
               for hour in range(1, scenario.hours + 1))


@pytest.mark.parametrize("days", [(0,), (7,), (1, 7)])
def test_a_retrain_day_outside_the_loop_is_refused(days):
    with pytest.raises(ValueError, match=r"retrain_days must be within the 6 simulated days"):
        replace(default_scenario(days=6), retrain_days=days)


def test_hive_loop_refuses_a_retrain_day_beyond_its_days_before_playing(hive_home, capsys):
    assert hive(["loop", "--days", "2", "--retrain-days", "3"]) == 2
    assert "retrain_days must be within the 2 simulated days" in capsys.readouterr().err
    assert not (hive_home / "store.sqlite").exists()  # nothing played, nothing written

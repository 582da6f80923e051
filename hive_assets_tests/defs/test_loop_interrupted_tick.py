"""A `hive loop` killed inside an hour's sensor tick: the hour's documents were stored and the hour recorded as
complete before the tick, so the next loop went on from the next hour and that hour's looks and checks were
never made (an A/B look and drift checks an hour late), while the home's clock still said the hour before."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.simulator.daemon import InProcessDaemon
from hive_assets.defs.simulator.loop import _play
from hive_assets.simulator import ServingLoop, default_scenario, interrupted_hour, resume_start

START = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)


def test_a_loop_killed_inside_the_hour_s_tick_plays_that_hour_again(hive_home, monkeypatch):
    store = SQLiteStore(hive_home / "store.sqlite")
    scenario = replace(default_scenario(days=1, plans_per_hour=5), drift=())
    world = ServingLoop(store, f"sqlite:///{hive_home / 'mlflow.db'}", seed=scenario.seed, feedback_rate=0.5)
    ticked: list[datetime] = []
    with dg.instance_for_test() as instance:
        daemon = InProcessDaemon(instance, build_defs())

        def killed_inside(now):  # Ctrl-C while the hour's sensors run
            ticked.append(now)
            if len(ticked) == 2:
                raise KeyboardInterrupt
            return []

        monkeypatch.setattr(daemon, "tick", killed_inside)
        with pytest.raises(KeyboardInterrupt):
            _play(daemon, world, store, None, scenario, START, {}, lambda line: None)
    hour = START.replace(hour=2)
    assert ticked == [START.replace(hour=1), hour]
    # the documents of hour 1 (ending at 02:00) are stored, its tick was cut short: the hour is played again,
    # from its start, by the next loop (the home's clock still says 01:00)
    assert interrupted_hour(store, scenario.seed) == (1, START.replace(hour=1))
    assert resume_start(interrupted_hour(store, scenario.seed), None, START.replace(hour=1))[0] == START.replace(hour=1)
    assert ServingLoop(store, f"sqlite:///{hive_home / 'mlflow.db'}", seed=scenario.seed).hours_served == 1

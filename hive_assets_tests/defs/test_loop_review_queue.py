"""`hive loop --review-queue N`: the review queue sensor runs for that loop with budget N, then is as it was.

It stayed started after the loop: later loops (and the daemon) went on requesting the default 100 a day per
specialist, which the simulated reviewers never answer without the flag."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg

from hive_assets.defs import build_defs
from hive_assets.defs.review.sensors import BUDGET_ENV, SENSOR_NAME
from hive_assets.defs.simulator.daemon import InProcessDaemon
from hive_assets.defs.simulator.loop import review_queue_of
from hive_assets.simulator import default_scenario


def test_the_flag_runs_the_sensor_for_its_loop_only(hive_home):
    with dg.instance_for_test() as instance:
        daemon, said = InProcessDaemon(instance, build_defs()), []
        assert not daemon.running(SENSOR_NAME)  # stopped by default
        settings: dict[str, str] = {}
        with review_queue_of(daemon, replace(default_scenario(days=1), review_queue_budget=40), settings, said.append):
            assert daemon.running(SENSOR_NAME) and settings[BUDGET_ENV] == "40"
        assert not daemon.running(SENSOR_NAME) and said == []
        # a loop without the flag leaves it stopped, and plays no queue
        with review_queue_of(daemon, default_scenario(days=1), settings := {}, said.append):
            assert not daemon.running(SENSOR_NAME) and BUDGET_ENV not in settings
        # an operator started it in the UI: a loop with the flag leaves it running; one without says so
        daemon.start(SENSOR_NAME)
        with review_queue_of(daemon, replace(default_scenario(days=1), review_queue_budget=40), {}, said.append):
            pass
        assert daemon.running(SENSOR_NAME) and said == []
        with review_queue_of(daemon, default_scenario(days=1), {}, said.append):
            pass
        assert daemon.running(SENSOR_NAME)
        assert said == [f"{SENSOR_NAME} runs in this home's instance (started in the UI): its requests are made, "
                        "but the simulated reviewers answer a queue only with --review-queue N"]


def test_the_sensor_is_stopped_again_when_the_loop_fails(hive_home):
    with dg.instance_for_test() as instance:
        daemon = InProcessDaemon(instance, build_defs())
        try:
            with review_queue_of(daemon, replace(default_scenario(days=1), review_queue_budget=40), {}, print):
                raise KeyboardInterrupt  # Ctrl-C inside the loop
        except KeyboardInterrupt:
            pass
        assert not daemon.running(SENSOR_NAME)

"""`hive loop --review-queue N`: the review queue sensor runs for that loop with budget N, then is as it was.

It stayed started after the loop: later loops (and the daemon) went on requesting the default 100 a day per
specialist, which the simulated reviewers never answer without the flag."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg

from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.config import REVIEW_QUEUE_BUDGET_ENV as BUDGET_ENV
from hive_assets.defs.review.sensors import SENSOR_NAME
from hive_assets.defs.simulator.daemon import InProcessDaemon
from hive_assets.defs.simulator.loop import REVIEW_SENSOR_STATE, review_queue_of
from hive_assets.simulator import default_scenario


def test_the_flag_runs_the_sensor_for_its_loop_only(hive_home):
    with dg.instance_for_test() as instance:
        daemon, said = InProcessDaemon(instance, build_defs()), []
        store = SQLiteStore(hive_home / "store.sqlite")
        assert not daemon.running(SENSOR_NAME)  # stopped by default
        settings: dict[str, str] = {}
        flagged = replace(default_scenario(days=1), review_queue_budget=40)
        with review_queue_of(daemon, store, flagged, settings, said.append):
            assert daemon.running(SENSOR_NAME) and settings[BUDGET_ENV] == "40"
        assert not daemon.running(SENSOR_NAME) and said == []
        # a loop without the flag leaves it stopped, and plays no queue
        with review_queue_of(daemon, store, default_scenario(days=1), settings := {}, said.append):
            assert not daemon.running(SENSOR_NAME) and BUDGET_ENV not in settings
        # an operator started it in the UI: a loop with the flag leaves it running; one without says so
        daemon.start(SENSOR_NAME)
        with review_queue_of(daemon, store, replace(default_scenario(days=1), review_queue_budget=40), {}, said.append):
            pass
        assert daemon.running(SENSOR_NAME) and said == []
        with review_queue_of(daemon, store, default_scenario(days=1), {}, said.append):
            pass
        assert daemon.running(SENSOR_NAME)
        assert said == [f"{SENSOR_NAME} runs in this home's instance (started in the UI): its requests are made, "
                        "but the simulated reviewers answer a queue only with --review-queue N"]


def test_the_sensor_is_stopped_again_when_the_loop_fails(hive_home):
    with dg.instance_for_test() as instance:
        daemon = InProcessDaemon(instance, build_defs())
        store = SQLiteStore(hive_home / "store.sqlite")
        try:
            with review_queue_of(daemon, store, replace(default_scenario(days=1), review_queue_budget=40), {}, print):
                raise KeyboardInterrupt  # Ctrl-C inside the loop
        except KeyboardInterrupt:
            pass
        assert not daemon.running(SENSOR_NAME)


def test_a_loop_killed_with_the_flag_leaves_a_mark_the_next_loop_follows(hive_home):
    """SIGKILL skips the loop's `finally`: the sensor stayed running, and the next loop took it for one an
    operator had started in the UI (never stopping it). The mark written before the first hour says otherwise."""
    def left_by_a_killed_loop(daemon, store) -> None:
        """What a flagged loop leaves when it is killed inside its hours: the sensor running, the mark on."""
        with review_queue_of(daemon, store, flagged, {}, said.append):
            marked = store.find_one("simulator_state", {"state_id": REVIEW_SENSOR_STATE})
            assert marked["started_by_loop"] is True and daemon.running(SENSOR_NAME)
            daemon.stop = lambda name: None  # SIGKILL: its `finally` never runs
            store.upsert_many = lambda *args: 0
        del daemon.stop, store.upsert_many

    with dg.instance_for_test() as instance:
        daemon, said = InProcessDaemon(instance, build_defs()), []
        store = SQLiteStore(hive_home / "store.sqlite")
        flagged = replace(default_scenario(days=1), review_queue_budget=40)
        left_by_a_killed_loop(daemon, store)
        with review_queue_of(daemon, store, flagged, {}, said.append):  # the next loop, flag again
            assert daemon.running(SENSOR_NAME)
        assert not daemon.running(SENSOR_NAME) and said == []  # it stopped it: it was a loop's
        assert store.find_one("simulator_state", {"state_id": REVIEW_SENSOR_STATE})["started_by_loop"] is False
        left_by_a_killed_loop(daemon, store)
        with review_queue_of(daemon, store, default_scenario(days=1), {}, said.append):  # no flag
            assert not daemon.running(SENSOR_NAME)
        assert said == [f"{SENSOR_NAME} was left running by a loop that did not end: stopped"]

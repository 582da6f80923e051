"""What a trigger sensor's tick leaves after a UI preview of the same cursor, and what it leaves alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs


def preview_then_tick_and_tick_alone(
        hive_home, monkeypatch, at: datetime, gap: timedelta, fill: Callable[[SQLiteStore], None],
        evaluate: Callable[[dg.DagsterInstance, dg.Definitions], Any],
        outcome: Callable[[Any, SQLiteStore], dict]) -> tuple[dict, dict]:
    """(previewed, alone): `outcome` of the tick at `at` in a fresh home filled by `fill`, after an evaluation
    `gap` earlier whose result is dropped (a preview: it requests one run), and without it. `evaluate`
    evaluates the sensor from the same cursor each time."""
    outcomes = []
    for name, preview in (("previewed", True), ("alone", False)):
        home = hive_home / name
        home.mkdir()
        monkeypatch.setenv("HIVE_HOME", str(home))
        store = SQLiteStore(home / "store.sqlite")
        fill(store)
        with dg.instance_for_test() as instance:
            defs = build_defs()
            if preview:
                monkeypatch.setenv("HIVE_SIMULATED_NOW", (at - gap).isoformat())
                assert len(evaluate(instance, defs).run_requests) == 1  # dropped, as a preview's
            monkeypatch.setenv("HIVE_SIMULATED_NOW", at.isoformat())
            outcomes.append(outcome(evaluate(instance, defs), store))
    return outcomes[0], outcomes[1]

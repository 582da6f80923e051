"""Where `hive loop` begins without --start (`default_start`): the home's clock, or the end of the stored history
when that is later, never an opinion dated past the platform's now (an imported one dated 2200 sent the loop and
the home's clock there, silently)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from hive_assets.data import SQLiteStore
from hive_assets.defs.simulator.loop import default_start

T = datetime(2026, 1, 13, 18, 0, tzinfo=timezone.utc)
FAR = datetime(2200, 1, 1, tzinfo=timezone.utc)


def opinions(store, *times: datetime) -> None:
    store.upsert_many("specialist_opinions", [{"opinion_id": f"op-{at.isoformat()}", "plan_id": "p-1",
                                               "specialist_type": "business", "evaluated_at": at} for at in times])


@pytest.fixture
def env(hive_home, monkeypatch):
    monkeypatch.delenv("HIVE_SIMULATED_NOW", raising=False)
    with dg.instance_for_test() as instance:
        yield SQLiteStore(hive_home / "store.sqlite"), instance


def test_a_simulated_home_starts_at_its_clock_and_notes_opinions_dated_far_ahead(env):
    store, instance = env
    opinions(store, T - timedelta(hours=30), T - timedelta(minutes=20))
    assert default_start(store, instance, T) == (T, None)
    opinions(store, FAR)  # `hive store import` of one opinion dated 2200
    start, note = default_start(store, instance, T)
    assert start == T
    assert note.startswith("note: the store holds opinions evaluated up to 2200-01-01 00:00 UTC, after the "
                           "platform's clock: played from 2026-01-13 18:00 UTC")


def test_the_history_of_the_clock_s_hour_is_played_after(env):
    """A loop ends inside the hour its clock shows: the next one starts after that history, as it always did."""
    store, instance = env
    opinions(store, T + timedelta(minutes=30))
    assert default_start(store, instance, T) == (T + timedelta(hours=1), None)
    opinions(store, T + timedelta(hours=1, minutes=1))  # beyond the hour: not played to
    assert default_start(store, instance, T) == (T + timedelta(hours=1),
        "note: the store holds opinions evaluated up to 2026-01-13 19:01 UTC, after the platform's clock: played "
        "from 2026-01-13 19:00 UTC (what is dated later counts once the clock gets there); --start or `hive clock "
        "pin` plays from another instant",)


def test_a_wall_clock_home_starts_where_the_history_ends_up_to_now(env, monkeypatch):
    store, instance = env
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (T + timedelta(days=10)).isoformat())  # the platform's now
    opinions(store, T - timedelta(minutes=20), FAR)
    start, note = default_start(store, instance, None)
    assert start == T and "up to 2200-01-01 00:00 UTC" in note
    assert default_start(SQLiteStore(store.path.with_name("empty.sqlite")), instance, None) == (None, None)

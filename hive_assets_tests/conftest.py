"""Shared fixtures. Real services only: an `mlflow server` process, FerretDB, Kafka (services.py)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import settings

# Before anything imports hive_assets: the tests' default home is an empty temporary one, never `./.hive` or
# the developer's HIVE_HOME, whose clock.json (a pinned clock, the demo's scenario settings) would otherwise
# set the time and the thresholds of every test that does not make its own home (hive_assets.clock).
# Only in the pytest process: a test's child process that imports a test module (and so this one) keeps the
# HIVE_HOME the test gave it, and leaves no temporary home behind when the test kills it (atexit never runs).
if not os.environ.get("HIVE_TESTS_SUITE"):
    os.environ["HIVE_HOME"] = tempfile.mkdtemp(prefix="hive-tests-home-")
    os.environ["HIVE_TESTS_SUITE"] = "1"  # inherited by the suite's child processes
    atexit.register(shutil.rmtree, os.environ["HIVE_HOME"], ignore_errors=True)  # one per worker, every run

from hive_assets_tests.services import *  # noqa: E402,F401,F403  (ferretdb_uri, kafka_bootstrap, require_service)
from hive_assets_tests.services import require_service, services_required  # noqa: E402
from hive_assets_tests.basic_auth_mlflow import BasicAuthMlflow  # noqa: E402

# CI (CI=true, or HIVE_REQUIRE_SERVICES=1 as .ci/run sets): the same examples on every run, so a red build
# is reproducible and a green one is not luck; locally, random exploration finds new cases.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes") or services_required():
    settings.load_profile("ci")


# What the product sets for the rest of its process: `mlflow.set_tracking_uri` (registry.log_model,
# load_model, register_version) exports MLFLOW_TRACKING_URI, `registry.tracking_target` MLflow's basic-auth
# variables. One command per process makes that harmless in the CLI; in a test worker a stopped server's URI
# leaked into later files (`hive loop` then refused on MLflow instead of its arguments, by the file order).
MLFLOW_PROCESS_SETTINGS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


TRACKING_UTILS = "mlflow.tracking._tracking_service.utils"  # holds MLflow's process-wide `_tracking_uri`


@contextlib.contextmanager
def _mlflow_settings_kept() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in MLFLOW_PROCESS_SETTINGS}
    loaded = sys.modules.get(TRACKING_UTILS)
    saved_uri = loaded._tracking_uri if loaded is not None else None
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if (tracking_utils := sys.modules.get(TRACKING_UTILS)) is not None:
        tracking_utils._tracking_uri = saved_uri


@pytest.fixture(autouse=True)
def mlflow_settings_restored() -> Iterator[None]:
    """Each test ends with MLflow's process-wide tracking URI and credentials as it found them (MLflow is not
    imported for it: a test that never loads MLflow has nothing of it to restore)."""
    with _mlflow_settings_kept():
        yield


@pytest.fixture(scope="module", autouse=True)
def mlflow_settings_restored_per_module() -> Iterator[None]:
    """The same for a whole file, torn down after its module fixtures: one that used MLflow in this process
    (its tests' server, stopped since) leaked that URI into the next files of the worker, where an in-process
    `hive loop` refused on MLflow instead of its arguments (CI, 2026-12-07)."""
    with _mlflow_settings_kept():
        yield


def pytest_collection_modifyitems(session, config, items):
    """Tests that need S3 run last: `make services` builds SeaweedFS in the background meanwhile."""
    items.sort(key=lambda item: "s3_endpoint" in getattr(item, "fixturenames", ()))  # stable: order kept


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(root: Path, port: int | None = None, *, app_name: str | None = None,
                        env: Mapping[str, str] | None = None, uvicorn_opts: str = "",
                        client_cert: Path | None = None) -> tuple[subprocess.Popen, str]:
    """A real `mlflow server` process on `port` (default: a free one) with its SQLite backend and
    artifacts under `root`; starting it again on the same root reopens the same registry. `app_name`: MLflow's
    `--app-name` (basic-auth), `env`: variables the server gets on top of the test process's. `uvicorn_opts`
    with `--ssl-certfile` serves HTTPS (the URL then says https): readiness is probed without checking the
    server's certificate, with `client_cert` when the server asks for one."""
    port = port or free_port()
    scheme = "https" if "--ssl-certfile" in uvicorn_opts else "http"
    probe_tls = ssl._create_unverified_context() if scheme == "https" else None
    if client_cert is not None:
        probe_tls.load_cert_chain(client_cert)
    exe = Path(sys.executable).with_name("mlflow")
    if not exe.exists():
        require_service("mlflow server", f"{exe} not installed")
    with (root / "server.log").open("a") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [str(exe), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", (root / "artifacts").as_uri(), *(["--app-name", app_name] if app_name else []),
             *(["--uvicorn-opts", uvicorn_opts] if uvicorn_opts else [])],
            # MLflow's job execution (GenAI jobs, unused here) starts a job runner and 7 huey consumer processes
            # per server (counted, MLflow 3.17): off, a server answers /health in 22-31 s instead of 38-55 s
            # (three starts each, load 7-10 on 2 cores) and idles without them; its usage telemetry is off, as the
            # platform's processes have it (config.set_mlflow_process_defaults)
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_URI": "", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                 "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})},
            start_new_session=True,  # its own process group: the server and its workers stop together
        )
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2, context=probe_tls) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
    if proc.poll() is not None:
        require_service("mlflow server", f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
    return proc, url


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal the process's whole group (an `mlflow server` serves from worker processes), then reap it
    (SIGKILL to the group after `timeout` seconds)."""
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def served_registry(root: Path) -> Iterator[str]:
    """A fixture's `mlflow server` on `root`: its URL for the fixture's scope, then the server stopped. A
    module whose tests count versions from v1 overrides `mlflow_server` with one of its own (module scope):
    `make test`'s workers take the modules in no fixed order, so the shared one may hold others' versions."""
    proc, url = start_mlflow_server(root)
    yield url
    stop_process(proc)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """A real `mlflow server` on a free loopback port (SQLite backend, proxied artifacts)."""
    yield from served_registry(tmp_path_factory.mktemp("mlflow-server"))


@pytest.fixture
def own_mlflow_server(tmp_path) -> Iterator[str]:
    """A real `mlflow server` with a registry of its own, for tests that count versions from v1 (the
    session's shared server holds other tests' versions of the same models)."""
    root = tmp_path / "own-mlflow"
    root.mkdir()
    yield from served_registry(root)


@pytest.fixture(scope="session")
def basic_auth_mlflow(tmp_path_factory) -> Iterator[BasicAuthMlflow]:
    """A real `mlflow server --app-name basic-auth` (hive_assets_tests/basic_auth_mlflow.py): /health open, every
    API request without its user's credentials refused."""
    server = BasicAuthMlflow(tmp_path_factory.mktemp("basic-auth-mlflow"))
    yield server
    server.close()


@pytest.fixture
def hive_home(tmp_path, monkeypatch) -> Path:
    """An isolated HIVE_HOME with every service variable cleared (the embedded defaults)."""
    home = tmp_path / "hive"
    home.mkdir()
    monkeypatch.setenv("HIVE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    (home / "dagster").mkdir()
    for name in ("MONGODB_URI", "MLFLOW_TRACKING_URI", "KAFKA_BOOTSTRAP_SERVERS", "MLFLOW_EXPERIMENT_NAME",
                 "HIVE_ENV", "HIVE_ASSET_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    return home

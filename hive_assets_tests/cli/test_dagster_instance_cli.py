"""The deployment's Dagster instance (deploy/dagster.yaml: storage in PostgreSQL from DAGSTER_PG_*) when a
variable it reads is unset or malformed, or its PostgreSQL does not answer: one line naming the variable or
the address, never the password, no traceback, and no 15 s of Dagster's connection retries (audit: 54-194
lines of traceback). A refused port is a real refused connection: no PostgreSQL is needed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from hive_assets_tests.cli.test_cli import hive, shell  # noqa: F401  (fixture)
from hive_assets_tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY_INSTANCE = REPO / "deploy" / "dagster.yaml"
SECRET = "pg-s3cret-pw"


@pytest.fixture
def deployment(shell, tmp_path):  # noqa: F811  (the imported fixture)
    """A working directory and an environment whose DAGSTER_HOME holds deploy/dagster.yaml as shipped, its
    PostgreSQL at a refused loopback port."""
    cwd, env = shell
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    shutil.copy(DEPLOY_INSTANCE, dagster_home / "dagster.yaml")
    return cwd, dagster_home, {**env, "DAGSTER_HOME": str(dagster_home), "DAGSTER_PG_HOST": "127.0.0.1",
                               "DAGSTER_PG_PORT": str(free_port()), "DAGSTER_PG_DB": "hive",
                               "DAGSTER_PG_USERNAME": "hive", "DAGSTER_PG_PASSWORD": SECRET}


def _errors(out) -> list[str]:
    return [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]


@pytest.mark.parametrize("verb", ["doctor", "status"])
def test_an_unset_or_malformed_instance_variable_is_one_line_naming_it(deployment, verb):
    cwd, dagster_home, env = deployment
    unset = {k: v for k, v in env.items() if k != "DAGSTER_PG_PASSWORD"}
    out = hive(verb, cwd=cwd, env=unset, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr + out.stdout, out.stderr
    assert _errors(out) == [f"hive {verb}: error: DAGSTER_PG_PASSWORD is not set: {dagster_home}/dagster.yaml "
                            "(DAGSTER_HOME's instance settings) reads it"], out.stderr
    malformed = hive(verb, cwd=cwd, env={**env, "DAGSTER_PG_PORT": "abc"}, timeout=120)
    assert malformed.returncode == 2 and "Traceback" not in malformed.stderr, malformed.stderr
    assert _errors(malformed) == [f"hive {verb}: error: DAGSTER_PG_PORT is not a whole number: "
                                  f"{dagster_home}/dagster.yaml (DAGSTER_HOME's instance settings) reads it"]
    assert SECRET not in out.stderr + out.stdout + malformed.stderr + malformed.stdout


@pytest.mark.parametrize("verb", ["doctor", "status"])
def test_a_postgresql_that_does_not_answer_is_one_line_at_once_without_the_password(deployment, verb):
    cwd, _, env = deployment
    port = env["DAGSTER_PG_PORT"]
    out = hive(verb, cwd=cwd, env=env, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout, out.stderr
    assert _errors(out) == [f"hive {verb}: error: Dagster's PostgreSQL at 127.0.0.1:{port} does not answer "
                            "(Connection refused); run the command again when it answers (every step is safe to "
                            "repeat)"], out.stderr
    # one connection, not Dagster's retries of each storage (15 s of these warnings, then the traceback)
    assert "Retrying failed database connection" not in out.stderr
    assert SECRET not in out.stderr + out.stdout


POSTGRES_URL_INSTANCE = """
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
"""


@pytest.mark.parametrize("url, said", [
    # `postgresql://` means a driver (psycopg) that is not installed: it was a 32-line traceback
    ("postgresql://hive:pgUrlXYZ@127.0.0.1:{port}/hive",
     "names a PostgreSQL URL whose driver is not installed (No module named 'psycopg'): write it "
     "postgresql+psycopg2://"),
    # an '@' of the password left unescaped: the error quoted the password's tail as the host
    ("postgresql+psycopg2://hive:pgUrl@XYZ@127.0.0.1:{port}/hive", "names a PostgreSQL URL whose user name or "
                                                                   "password is not escaped"),
])
def test_a_postgres_url_it_cannot_use_is_one_line_without_the_password(deployment, url, said):
    cwd, dagster_home, env = deployment
    (dagster_home / "dagster.yaml").write_text(POSTGRES_URL_INSTANCE)
    out = hive("status", cwd=cwd, env={**env, "DAGSTER_PG_URL": url.format(port=free_port())}, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr + out.stdout, out.stderr
    [error] = _errors(out)
    assert error.startswith(f"hive status: error: {dagster_home}/dagster.yaml {said}"), error
    assert "XYZ" not in out.stderr + out.stdout


def test_commands_started_together_on_a_new_home_each_open_its_instance(shell):  # noqa: F811
    """Five `hive collect` started together on a new home each made the SQLite instance's tables, and one failed
    on "table backfill_tags already exists" (a traceback). The instance is opened by one process at a time: a
    holder of its lock keeps another waiting; five at once all open it."""
    import fcntl
    import subprocess
    import time

    cwd, env = shell
    env = {**env, "HIVE_HOME": "home"}
    assert hive("env", cwd=cwd, env=env).returncode == 0  # the home and its instance directory
    dagster_home = cwd / "home" / "dagster"
    opener = [sys.executable, "-c", "from hive_assets.cli._dagster import instance; instance(); print('opened')"]
    env = {**env, "DAGSTER_HOME": str(dagster_home)}
    with open(dagster_home / ".hive-open.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = subprocess.Popen(opener, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(3)
        assert waiting.poll() is None  # waits for the lock
    assert waiting.communicate(timeout=60)[0].strip() == "opened" and waiting.returncode == 0
    for attempt in range(2):
        fresh = cwd / f"fresh-{attempt}"
        (fresh / "dagster").mkdir(parents=True)
        (fresh / "dagster" / "dagster.yaml").write_text((dagster_home / "dagster.yaml").read_text())
        together = [subprocess.Popen(opener, cwd=cwd, env={**env, "DAGSTER_HOME": str(fresh / "dagster")},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)]
        said = [p.communicate(timeout=120) for p in together]
        assert [p.returncode for p in together] == [0] * 5, [err.splitlines()[-1:] for _out, err in said]


def test_the_dagster_cli_without_dagster_home_in_the_repository_root_uses_its_temporary_instance(shell):  # noqa: F811
    """Dagster's CLI without DAGSTER_HOME makes a temporary instance from the working directory's dagster.yaml:
    the root's named DAGSTER_HOME for its SQLite storage, so `dagster definitions validate -w workspace.yaml`
    run where the README runs it was a traceback ("DAGSTER_HOME which is not set"), not Dagster's notice."""
    import subprocess

    cwd, env = shell
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(REPO / name, cwd / name)
    out = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w",
                          "workspace.yaml"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    said = out.stdout + out.stderr
    assert out.returncode == 0, said[-3000:]
    assert "Traceback" not in said
    assert "Using temporary directory" in said and "All code locations passed validation" in said
    assert not [p.name for p in cwd.iterdir() if p.name.startswith(".tmp_dagster_home_")]  # Dagster removed it

"""HIVE_ENV=production: the code location refuses to load without its production services, as the Helm
chart's code server (`dagster api grpc`) and `dagster definitions validate` run it, and writes nothing.

Each required variable is left out in turn; the others are set to well-formed values of services that do
not exist (nothing may be contacted before the check). The six processes run side by side: each is
mostly Python start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hive_assets_tests.conftest import free_port

BIN = Path(sys.executable).parent
PRODUCTION = {"MONGODB_URI": "mongodb://hive:s3cret@127.0.0.1:9/", "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
              "HIVE_ASSET_STORAGE": "s3://hive-assets/prod"}
COMMANDS = {
    "validate": ["definitions", "validate", "-m", "hive_assets.definitions"],
    "grpc": ["api", "grpc", "-m", "hive_assets.definitions", "--host", "127.0.0.1"],
}


def _env(home: Path, missing: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION and not k.startswith(("DAGSTER_", "HIVE_"))}
    env.update({k: v for k, v in PRODUCTION.items() if k != missing})
    env.update({"HIVE_ENV": "production", "HIVE_HOME": str(home / "hive"), "DAGSTER_HOME": str(home / "dagster")})
    return env


def test_each_missing_variable_stops_validate_and_the_grpc_server_with_one_line(tmp_path):
    procs = {}
    for missing in PRODUCTION:
        for name, args in COMMANDS.items():
            home = tmp_path / f"{name}-{missing}"
            (home / "dagster").mkdir(parents=True)
            (home / "dagster" / "dagster.yaml").write_text("")
            (home / "cwd").mkdir()
            extra = ["--port", str(free_port())] if name == "grpc" else []
            procs[missing, name] = (home, subprocess.Popen(
                [str(BIN / "dagster"), *args, *extra], cwd=home / "cwd", env=_env(home, missing),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True))
    try:
        outputs = {key: proc.communicate(timeout=240)[0] for key, (_, proc) in procs.items()}
    finally:
        for _, proc in procs.values():
            if proc.poll() is None:  # a server that came up despite the missing variable: fail, but stop it
                proc.kill()
                proc.wait()
    for (missing, name), (home, proc) in procs.items():
        output = outputs[missing, name]
        assert proc.returncode != 0, f"{name} without {missing} succeeded:\n{output[-2000:]}"
        [line] = [line for line in output.splitlines() if line.startswith("hive_assets.config.ConfigError: ")]
        assert line.endswith(f"HIVE_ENV=production refuses the embedded defaults: {missing} is not set"), line
        assert "s3cret" not in output
        # nothing of the embedded stores: no SQLite store, no MLflow database, no asset directory
        assert not (home / "hive").exists(), sorted(p.name for p in (home / "hive").rglob("*"))
        assert not list((home / "cwd").iterdir())


@pytest.mark.parametrize("variable", ["HIVE_ASSET_STORAGE"])
def test_the_cli_refuses_too(tmp_path, variable):
    env = _env(tmp_path, variable)
    out = subprocess.run([str(BIN / "hive"), "report"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].endswith(f"{variable} is not set"), out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "hive").exists()


# the Helm chart's instance ConfigMap names each storage by class (helpers/instance/_storage.tpl)
HELM_STORAGE = "\n".join(f"{key}:\n  module: dagster_postgres.{key}\n  class: Postgres{cls}\n  config:\n"
                         f"    postgres_db: {{hostname: db, username: dagster, password: {{env: DAGSTER_PG_PASSWORD}},"
                         f" db_name: dagster, port: 5432}}"
                         for key, cls in (("run_storage", "RunStorage"), ("event_log_storage", "EventLogStorage"),
                                          ("schedule_storage", "ScheduleStorage")))
SQLITE_CLASSES = HELM_STORAGE.replace("dagster_postgres", "dagster._core.storage.sqlite").replace("Postgres", "Sqlite")
REPOSITORY_INSTANCE = Path(__file__).resolve().parents[2] / "dagster.yaml"
DEPLOY_INSTANCE = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"


@pytest.fixture
def production_cli(tmp_path, monkeypatch):
    """The CLI's environment in production mode with well-formed settings of services that are not there."""
    for name in [n for n in os.environ if n.startswith(("DAGSTER_", "HIVE_"))]:
        monkeypatch.delenv(name)
    for name, value in {**PRODUCTION, "HIVE_ENV": "production", "HIVE_HOME": str(tmp_path / "hive")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("instance, reason", [
    (None, "DAGSTER_HOME is not set"),
    ("", "has no dagster.yaml"),
    (REPOSITORY_INSTANCE.read_text(), "keeps runs on this disk (SQLite, as no storage is set)"),
    ("telemetry: {enabled: false}\n", "keeps runs on this disk (SQLite, as no storage is set)"),
    (SQLITE_CLASSES, "keeps runs on this disk (SQLite)"),
    # PostgreSQL runs, but the event log and schedules left to Dagster's default: SQLite on this disk
    (HELM_STORAGE.split("event_log_storage:")[0],
     "keeps runs on this disk (SQLite, as event_log_storage and schedule_storage are not set)"),
])
def test_the_cli_refuses_a_local_dagster_instance(production_cli, monkeypatch, capsys, instance, reason):
    # it wrote the embedded instance's dagster.yaml (SQLite) into any DAGSTER_HOME without one, and used it: runs
    # launched from a pod's shell went to that pod's disk, where the deployment's UI, daemon and sensors never look
    from hive_assets.cli import main

    dagster_home = production_cli / "dagster"
    if instance is not None:
        monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
        if instance:
            dagster_home.mkdir()
            (dagster_home / "dagster.yaml").write_text(instance)
    before = sorted(production_cli.rglob("*"))
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    [line] = err.strip().splitlines()
    assert line.startswith("hive report: error: HIVE_ENV=production refuses a local Dagster instance: ")
    assert reason in line
    assert "s3cret" not in err
    assert sorted(production_cli.rglob("*")) == before  # no instance written, no HIVE_HOME made


# the last: a database whose name says sqlite is still PostgreSQL (the storage's kind decides, not its text)
@pytest.mark.parametrize("instance", [DEPLOY_INSTANCE.read_text(), HELM_STORAGE,
                                      HELM_STORAGE.replace("db_name: dagster", "db_name: sqlite_era")])
def test_the_cli_takes_the_deployment_s_instance_and_leaves_it_as_it_is(production_cli, monkeypatch, capsys, instance):
    from hive_assets.cli import main

    dagster_home = production_cli / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(instance)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.delenv("HIVE_HOME")  # a production pod needs none: its state is in the services
    assert main(["env", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["DAGSTER_HOME"] == str(dagster_home)
    assert (dagster_home / "dagster.yaml").read_text() == instance
    # nothing else on this disk: no `.hive` made in the working directory (it was, empty, on every command)
    assert sorted(production_cli.rglob("*")) == [dagster_home, dagster_home / "dagster.yaml"]


@pytest.mark.parametrize("argv", [["simulate", "--plans", "10"], ["loop", "--days", "1"]])
def test_simulation_is_refused_in_production_before_any_store_is_opened(production_cli, monkeypatch, capsys, argv):
    # `hive simulate` wrote simulated plans, opinions and feedback into production's store, for collection to
    # train on as people's: the MongoDB here does not answer, so reaching it would end in exit 1, "unavailable"
    from hive_assets.cli import main

    (production_cli / "dagster").mkdir()
    (production_cli / "dagster" / "dagster.yaml").write_text(DEPLOY_INSTANCE.read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(production_cli / "dagster"))
    assert main(argv) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"hive {argv[0]}: error: HIVE_ENV=production: hive {argv[0]} ")
    assert "nothing was written" in line and "unavailable" not in line
    assert not (production_cli / "hive").exists()


@pytest.mark.parametrize("resource, config, said", [
    ("document_store", {"mongodb_uri": ""}, "the document_store resource's mongodb_uri is not set"),
    ("document_store", {"mongodb_uri": "localhost"},
     "the document_store resource's mongodb_uri must be a mongodb:// or mongodb+srv:// URI, got 'localhost'"),
    ("mlflow", {"tracking_uri": "sqlite:////tmp/pod-local-mlflow.db"},
     "the mlflow resource's tracking_uri must be an http(s):// URL, got 'sqlite:////tmp/pod-local-mlflow.db'"),
])
def test_a_run_s_resource_config_naming_no_production_service_is_refused_before_anything(
        production_cli, resource, config, said):
    """A run's config that left the store's URI empty ran on the embedded SQLite store on the pod's disk (its
    run lease taken there too) and overwrote the partition's outputs in the asset storage with 0 rows; a `sqlite:`
    tracking URI trained into a registry on the pod's disk. Both are refused as the resource sets up."""
    import dagster as dg

    from hive_assets.defs.resources import DocumentStoreResource, MlflowResource

    touched = []

    @dg.asset(required_resource_keys={resource})
    def reads_it(context) -> None:
        touched.append(getattr(context.resources, resource))

    resources = {"document_store": DocumentStoreResource(mongodb_uri=dg.EnvVar("MONGODB_URI")),
                 "mlflow": MlflowResource(tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"))}
    with dg.instance_for_test() as instance:
        result = dg.materialize([reads_it], resources=resources, instance=instance, raise_on_error=False,
                                run_config={"resources": {resource: {"config": config}}})
    assert not result.success and touched == []
    [failure] = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"] or \
        result.get_step_failure_events()
    error = failure.event_specific_data.error
    while error.cause is not None:
        error = error.cause
    assert said in error.message and "nothing was read or written" in error.message, error.message
    assert not (production_cli / "hive" / "store.sqlite").exists()
    # the same resources as the environment binds them: accepted
    assert DocumentStoreResource(mongodb_uri=PRODUCTION["MONGODB_URI"]).settings().mongodb_uri == \
        PRODUCTION["MONGODB_URI"]
    assert MlflowResource(tracking_uri=PRODUCTION["MLFLOW_TRACKING_URI"]).uri == PRODUCTION["MLFLOW_TRACKING_URI"]

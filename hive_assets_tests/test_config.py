"""SPEC section 9 settings: every malformed value is a ConfigError naming the variable, booleans take exactly
true/false, 1/0, yes/no in any case, and the homes resolve against the working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hive_assets.config import ConfigError, Settings, dagster_home, env_bool, hive_home, optional_extension

SETTINGS_VARIABLES = ("AB_TESTING_ENABLED", "AB_TEST_DEFAULT_TRAFFIC", "DRIFT_THRESHOLD",
                      "DRIFT_CHECK_INTERVAL_MINUTES", "DATA_COLLECTION_DAYS", "MIN_CONFIDENCE",
                      "RETRAINING_FEEDBACK_THRESHOLD", "HIVE_HOME", "DAGSTER_HOME", "AB_TEST_LABEL_MATURITY_HOURS",
                      "AB_TEST_MAX_DURATION_DAYS", "AB_TEST_CHECK_INTERVAL_MINUTES", "HIVE_ENV", "HIVE_ASSET_STORAGE",
                      "MONGODB_URI", "MLFLOW_TRACKING_URI")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_unset_and_blank_mean_the_spec_defaults(monkeypatch):
    monkeypatch.setenv("MIN_CONFIDENCE", "  ")
    s = Settings.from_env()
    assert (s.ab_testing_enabled, s.ab_test_default_traffic, s.drift_threshold, s.drift_check_interval_minutes,
            s.data_collection_days, s.min_confidence, s.retraining_feedback_threshold) == (True, 10.0, 0.2, 60, 90, 0.7, 100)


def test_well_formed_values_are_read(monkeypatch):
    for name, value in [("AB_TESTING_ENABLED", "No"), ("AB_TEST_DEFAULT_TRAFFIC", "25"), ("DRIFT_THRESHOLD", "0.35"),
                        ("DRIFT_CHECK_INTERVAL_MINUTES", "15"), ("DATA_COLLECTION_DAYS", " 30 "),
                        ("MIN_CONFIDENCE", "0"), ("RETRAINING_FEEDBACK_THRESHOLD", "1")]:
        monkeypatch.setenv(name, value)
    s = Settings.from_env()
    assert (s.ab_testing_enabled, s.ab_test_default_traffic, s.drift_threshold, s.drift_check_interval_minutes,
            s.data_collection_days, s.min_confidence, s.retraining_feedback_threshold) == (False, 25.0, 0.35, 15, 30, 0.0, 1)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("AB_TEST_DEFAULT_TRAFFIC", "10%", "AB_TEST_DEFAULT_TRAFFIC must be a number, got '10%'"),
    ("AB_TEST_DEFAULT_TRAFFIC", "0", "AB_TEST_DEFAULT_TRAFFIC must be >= 0.0001 and < 100, got '0'"),
    ("AB_TEST_DEFAULT_TRAFFIC", "150", "AB_TEST_DEFAULT_TRAFFIC must be >= 0.0001 and < 100, got '150'"),
    # every test would open with no champion arm to compare with
    ("AB_TEST_DEFAULT_TRAFFIC", "100", "AB_TEST_DEFAULT_TRAFFIC must be >= 0.0001 and < 100, got '100'"),
    ("DRIFT_THRESHOLD", "inf", "DRIFT_THRESHOLD must be a finite number, got 'inf'"),
    ("DRIFT_THRESHOLD", "nan", "DRIFT_THRESHOLD must be a finite number, got 'nan'"),
    ("DRIFT_THRESHOLD", "-0.1", "DRIFT_THRESHOLD must be > 0, got '-0.1'"),
    ("MIN_CONFIDENCE", "1.2", "MIN_CONFIDENCE must be >= 0 and <= 1, got '1.2'"),
    ("MIN_CONFIDENCE", "0,7", "MIN_CONFIDENCE must be a number, got '0,7'"),
    ("DATA_COLLECTION_DAYS", "90d", "DATA_COLLECTION_DAYS must be an integer, got '90d'"),
    ("DATA_COLLECTION_DAYS", "7.5", "DATA_COLLECTION_DAYS must be an integer, got '7.5'"),
    ("DRIFT_CHECK_INTERVAL_MINUTES", "0", "DRIFT_CHECK_INTERVAL_MINUTES must be >= 1, got '0'"),
    ("RETRAINING_FEEDBACK_THRESHOLD", "-5", "RETRAINING_FEEDBACK_THRESHOLD must be >= 1, got '-5'"),
    ("AB_TESTING_ENABLED", "on", "AB_TESTING_ENABLED must be one of true/false, 1/0, yes/no, got 'on'"),
    ("AB_TESTING_ENABLED", "2", "AB_TESTING_ENABLED must be one of true/false, 1/0, yes/no, got '2'"),
    ("AB_TEST_LABEL_MATURITY_HOURS", "2d", "AB_TEST_LABEL_MATURITY_HOURS must be a number, got '2d'"),
    ("AB_TEST_MAX_DURATION_DAYS", "0", "AB_TEST_MAX_DURATION_DAYS must be > 0, got '0'"),
    # a window of 0 h freezes every label at its serving instant: every test ran to its maximum, no verdict
    ("AB_TEST_LABEL_MATURITY_HOURS", "0", "AB_TEST_LABEL_MATURITY_HOURS must be > 0, got '0'"),
    ("AB_TEST_CHECK_INTERVAL_MINUTES", "hourly", "AB_TEST_CHECK_INTERVAL_MINUTES must be a number, got 'hourly'"),
])
def test_a_malformed_value_is_a_config_error_naming_the_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("TRUE", True), ("True", True), ("1", True), ("yes", True), ("YES", True), (" yes ", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("No", False),
])
def test_booleans_accept_exactly_three_spellings_each_in_any_case(monkeypatch, raw, expected):
    monkeypatch.setenv("AB_TESTING_ENABLED", raw)
    assert env_bool("AB_TESTING_ENABLED", not expected) is expected


@pytest.mark.parametrize("raw", ["on", "off", "y", "n", "t", "enabled", "2", "-1", "truthy", "nein"])
def test_booleans_refuse_anything_else(monkeypatch, raw):
    monkeypatch.setenv("AB_TESTING_ENABLED", raw)
    with pytest.raises(ConfigError, match="^AB_TESTING_ENABLED must be one of"):
        env_bool("AB_TESTING_ENABLED", True)


def test_relative_homes_resolve_against_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert hive_home() == tmp_path / ".hive"
    assert dagster_home() == tmp_path / ".hive" / "dagster"
    monkeypatch.setenv("HIVE_HOME", "state/../here")
    assert hive_home() == tmp_path / "here"
    assert dagster_home() == tmp_path / "here" / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", "inst")  # set: it wins, resolved the same way
    assert dagster_home() == tmp_path / "inst"
    assert dagster_home(Path("/elsewhere")) == tmp_path / "inst"


def test_dagster_home_alone_of_another_home_is_refused_not_a_new_empty_home(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HIVE_HOME", raising=False)
    (tmp_path / "demo" / "dagster").mkdir(parents=True)
    monkeypatch.setenv("DAGSTER_HOME", "demo/dagster")
    assert hive_home() == tmp_path / ".hive"  # an instance directory with no home around it: nothing to guess
    (tmp_path / "demo" / "store.sqlite").touch()  # a home: Dagster's habit would run on ./.hive instead
    with pytest.raises(ConfigError, match=rf"DAGSTER_HOME={tmp_path}/demo/dagster is the instance of the home "
                                          rf"{tmp_path}/demo, but HIVE_HOME is not set.*set HIVE_HOME={tmp_path}/demo"):
        hive_home()
    monkeypatch.setenv("HIVE_HOME", "demo")
    assert hive_home() == tmp_path / "demo" and dagster_home() == tmp_path / "demo" / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", ".hive/dagster")  # the default home's own instance: fine
    monkeypatch.delenv("HIVE_HOME")
    (tmp_path / ".hive").mkdir()
    (tmp_path / ".hive" / "mlflow.db").touch()
    assert hive_home() == tmp_path / ".hive"


def test_dagster_resources_surface_the_same_message(monkeypatch):
    """The definitions build their resources from Settings.from_env(): loading the code location fails
    with the ConfigError itself, so the Dagster UI/CLI shows the same one-line message."""
    from hive_assets.defs import build_defs

    monkeypatch.setenv("AB_TEST_DEFAULT_TRAFFIC", "10%")
    with pytest.raises(ConfigError, match=r"^AB_TEST_DEFAULT_TRAFFIC must be a number, got '10%'$"):
        build_defs()


def test_the_rollout_policy_reads_the_checked_settings(monkeypatch):
    from datetime import timedelta

    from hive_assets.rollout import policy_from_env

    monkeypatch.setenv("AB_TEST_LABEL_MATURITY_HOURS", "6")
    monkeypatch.setenv("AB_TEST_MAX_DURATION_DAYS", "3")
    monkeypatch.setenv("AB_TEST_DEFAULT_TRAFFIC", "20")
    policy = policy_from_env()
    assert (policy.label_maturity, policy.max_duration, policy.start_traffic) == (timedelta(hours=6), timedelta(days=3), 20.0)
    monkeypatch.setenv("AB_TEST_LABEL_MATURITY_HOURS", "x")
    with pytest.raises(ConfigError, match="AB_TEST_LABEL_MATURITY_HOURS"):
        policy_from_env()


# ------------------------------------------------------------------------- HIVE_ENV=production, asset storage

PRODUCTION = {"MONGODB_URI": "mongodb://hive:s3cret@mongo:27017/", "MLFLOW_TRACKING_URI": "https://mlflow.internal",
              "HIVE_ASSET_STORAGE": "s3://hive-assets/prod"}


def test_asset_storage_defaults_to_the_home_and_resolves_a_relative_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIVE_HOME", "h")
    assert Settings.from_env().asset_storage == str(tmp_path / "h" / "assets")
    monkeypatch.setenv("HIVE_ASSET_STORAGE", "elsewhere/assets")
    assert Settings.from_env().asset_storage == str(tmp_path / "elsewhere" / "assets")
    monkeypatch.setenv("HIVE_ASSET_STORAGE", "s3://bucket/prefix")
    assert Settings.from_env().asset_storage == "s3://bucket/prefix"


@pytest.mark.parametrize("value", ["s3:/bucket/prefix", "S3://bucket", "gs://", "s3://a b/c", "memory://x"])
def test_asset_storage_that_looks_like_a_url_and_is_not_one_we_write_is_refused(monkeypatch, tmp_path, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIVE_ASSET_STORAGE", value)
    with pytest.raises(ConfigError, match=r"HIVE_ASSET_STORAGE must be s3://BUCKET\[/PREFIX\] or gs://BUCKET"):
        Settings.from_env()
    monkeypatch.setenv("HIVE_ASSET_STORAGE", "runs:2024/assets")  # a directory with a colon in its name is one
    assert Settings.from_env().asset_storage == str(tmp_path / "runs:2024" / "assets")


def test_production_with_every_service_set_loads(monkeypatch):
    monkeypatch.setenv("HIVE_ENV", "Production")
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().asset_storage == "s3://hive-assets/prod"


@pytest.mark.parametrize("missing", sorted(PRODUCTION))
def test_production_names_each_missing_service_in_one_line(monkeypatch, missing):
    monkeypatch.setenv("HIVE_ENV", "production")
    for name, value in PRODUCTION.items():
        if name != missing:
            monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    message = str(err.value)
    assert "\n" not in message and f"{missing} is not set" in message
    assert [name for name in PRODUCTION if name in message] == [missing]
    assert "s3cret" not in message


@pytest.mark.parametrize("variable, value, expected", [
    ("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db", "MLFLOW_TRACKING_URI must be an http(s):// URL, got 'sqlite:///mlflow.db'"),
    ("MLFLOW_TRACKING_URI", "mlruns", "MLFLOW_TRACKING_URI must be an http(s):// URL"),
    ("HIVE_ASSET_STORAGE", "/var/hive/assets", "HIVE_ASSET_STORAGE must be an s3:// or gs:// URL, got '/var/hive/assets'"),
    ("HIVE_ASSET_STORAGE", "file:///var/hive", "HIVE_ASSET_STORAGE must be an s3:// or gs:// URL"),
    # an object-storage URL that fsspec would not write where it says (one slash was a local directory)
    ("HIVE_ASSET_STORAGE", "s3:/hive-assets/prod", "HIVE_ASSET_STORAGE must be s3://BUCKET[/PREFIX] or gs://BUCKET"),
    ("HIVE_ASSET_STORAGE", "S3://hive-assets/prod", "HIVE_ASSET_STORAGE must be s3://BUCKET[/PREFIX] or gs://BUCKET"),
    ("HIVE_ASSET_STORAGE", "s3://", "HIVE_ASSET_STORAGE must be s3://BUCKET[/PREFIX] or gs://BUCKET"),
    ("HIVE_ASSET_STORAGE", "s3://Hive_Assets!/x", "HIVE_ASSET_STORAGE must be s3://BUCKET[/PREFIX] or gs://BUCKET"),
])
def test_production_refuses_embedded_values_too(monkeypatch, variable, value, expected):
    monkeypatch.setenv("HIVE_ENV", "production")
    for name, v in {**PRODUCTION, variable: value}.items():
        monkeypatch.setenv(name, v)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Settings.from_env()


def test_every_problem_is_named_at_once_and_a_password_is_redacted(monkeypatch):
    monkeypatch.setenv("HIVE_ENV", "production")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite://user:pw123@host/db")
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    message = str(err.value)
    assert "MONGODB_URI is not set" in message and "HIVE_ASSET_STORAGE is not set" in message
    assert "MLFLOW_TRACKING_URI must be" in message and "pw123" not in message and "user:***@" in message


def test_production_names_every_unfit_value_at_once_the_store_s_scheme_and_the_registry_s_host_included(monkeypatch):
    """MONGODB_URI=foo passed (pymongo takes it for a host name: the code location loaded and every run failed
    later), and an http URL without a host was refused alone, after the other problems had been fixed."""
    monkeypatch.setenv("HIVE_ENV", "production")
    for name, value in {"MONGODB_URI": "foo", "MLFLOW_TRACKING_URI": f"http://hive:{SECRET}@",
                        "HIVE_ASSET_STORAGE": "s3:/x"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    message = str(err.value)
    assert message.startswith("HIVE_ENV=production refuses the embedded defaults: MONGODB_URI must be a mongodb:// "
                              "or mongodb+srv:// URI, got 'foo'; MLFLOW_TRACKING_URI is not a usable URL (no host, ")
    assert "HIVE_ASSET_STORAGE must be s3://BUCKET[/PREFIX]" in message
    assert SECRET not in message and "\n" not in message
    for good in ("mongodb://hive:pw@mongo:27017/", "mongodb+srv://cluster.example/", "mongodb://a:1,b:2/db?x=1",
                 "mongodb://[::1]:27017/", "mongodb://hive:s3%3Acret%40x@db/", "mongodb://hive@db/"):
        monkeypatch.setenv("MONGODB_URI", good)
        assert "MONGODB_URI" not in str(pytest.raises(ConfigError, Settings.from_env).value)
    # what pymongo refuses in every run: a scheme in capitals, no host, a port that is no number
    for bad, said in (("MONGODB://db:27017", "must be a mongodb://"), ("Mongodb+SRV://x", "must be a mongodb://"),
                      ("mongodb://", "has no host"), (f"mongodb://hive:{SECRET}@db:notaport/", "has no host"),
                      ("mongodb://db:/x", "has no host"),
                      # pymongo's "must be escaped" in every run and sensor tick, after a clean load
                      (f"mongodb://hive:s3:{SECRET}@db/", "'s user name or password is not escaped"),
                      (f"mongodb://hive:{SECRET}%zz@db/", "'s user name or password is not escaped"),
                      (f"mongodb://hive@x:{SECRET}@db/", "'s user name or password is not escaped")):
        monkeypatch.setenv("MONGODB_URI", bad)
        message = str(pytest.raises(ConfigError, Settings.from_env).value)
        assert f"MONGODB_URI{said}" in message if said.startswith("'") else f"MONGODB_URI {said}" in message, message
        assert SECRET not in message, message


def test_a_store_uri_with_spaces_around_it_is_stripped_as_every_setting_is(monkeypatch):
    # the production check stripped it, the store did not: pymongo took " " for the database name
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, f" {value} ")
    monkeypatch.setenv("HIVE_ENV", "production")
    assert Settings.from_env().mongodb_uri == PRODUCTION["MONGODB_URI"]
    from hive_assets.defs.resources import DocumentStoreResource

    resource = DocumentStoreResource(mongodb_uri=f" {PRODUCTION['MONGODB_URI']} ")
    assert resource.settings().mongodb_uri == PRODUCTION["MONGODB_URI"]


@pytest.mark.parametrize("raw", ["prod", "staging", "1"])
def test_an_unknown_hive_env_is_refused_rather_than_taken_for_local(monkeypatch, raw):
    monkeypatch.setenv("HIVE_ENV", raw)
    with pytest.raises(ConfigError, match=f"HIVE_ENV must be one of local, production, got '{raw}'"):
        Settings.from_env()


def test_local_mode_keeps_the_embedded_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HIVE_HOME", str(tmp_path))
    for raw in ("", "local"):
        monkeypatch.setenv("HIVE_ENV", raw)
        s = Settings.from_env()
        assert (s.mlflow_uri, s.store_path, s.asset_storage) == (
            f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "store.sqlite", str(tmp_path / "assets"))


# --- MLflow's usage telemetry -------------------------------------------------------------------------------

# what a process reports after importing `module` and then mlflow: the variable, and whether mlflow would send
TELEMETRY_PROBE = ("import os, {module}, mlflow; from mlflow.telemetry import get_telemetry_client; "
                   "from mlflow.telemetry.utils import is_telemetry_disabled; "
                   "from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as bar; "
                   "print(os.environ.get('MLFLOW_DISABLE_TELEMETRY'), is_telemetry_disabled(), get_telemetry_client() is None, "
                   "bar.get())")


def probe(tmp_path, code: str, **extra: str) -> str:
    """`code` in a fresh interpreter with a user's bare environment: no CI or pytest variable, which MLflow
    reads as "do not send"."""
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HIVE_HOME": str(tmp_path / "home"), **extra}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize("module", ["hive_assets.definitions", "hive_assets.cli"])
def test_the_platform_processes_turn_mlflow_telemetry_and_progress_bars_off(tmp_path, module):
    """The code location (its server and run workers load it) and the `hive` CLI, as Dagster's telemetry is off
    in dagster.yaml; mlflow decides at import, so the setting must come first."""
    assert probe(tmp_path, TELEMETRY_PROBE.format(module=module)) == ["true", "True", "True", "False"]


def test_a_user_who_opts_in_to_mlflow_telemetry_keeps_it_and_a_service_keeps_its_own_choice(tmp_path):
    # mlflow is not imported here: the probes would send usage data if they did
    code = "import os, {module}; print(os.environ.get('MLFLOW_DISABLE_TELEMETRY'))"
    assert probe(tmp_path, code.format(module="hive_assets.cli"), MLFLOW_DISABLE_TELEMETRY="false") == ["false"]
    # a specialist service importing the serving client: its environment is not ours to change
    assert probe(tmp_path, code.format(module="hive_assets.serving")) == ["None"]


@pytest.mark.parametrize("uri", ["mlruns", "./mlruns", "file:///srv/mlruns"])
def test_a_file_store_tracking_uri_is_refused_as_mlflow_3_would_unless_allowed(monkeypatch, uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert str(err.value).startswith(f"MLFLOW_TRACKING_URI={uri!r} is a file store, which MLflow 3 refuses")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert Settings.from_env().mlflow_uri == uri


def test_a_database_tracking_uri_needs_its_driver_installed(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mysql://hive:s3cret@db.internal/mlflow")  # mysqlclient: not installed
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert str(err.value).startswith("MLFLOW_TRACKING_URI='mysql://hive:***@db.internal/mlflow' cannot be opened "
                                     "here (No module named 'MySQLdb')")
    assert "s3cret" not in str(err.value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg2://hive:s3cret@db.internal/mlflow")  # installed
    assert Settings.from_env().mlflow_uri == "postgresql+psycopg2://hive:s3cret@db.internal/mlflow"


# ------------------------------------------------------------------------- credentials never shown

SECRET = "S3cr3tPW-audit"


@pytest.mark.parametrize("uri", [
    f"mongodb://hive:{SECRET}?x@db:27017/",  # an unescaped '?': pymongo's error quoted the URI whole
    f"mongodb://hive:{SECRET}@db:27017/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:{SECRET}",
    f"mongodb://hive:{SECRET}@db:27017/?tls=true&tlsCertificateKeyFilePassword={SECRET}",
    f"postgresql://hive@db/ferretdb?sslmode=require&password={SECRET}",
    f"host=db port=5432 user=hive password={SECRET} dbname=ferretdb",
    f"host=db port=5432 user=hive password='{SECRET} x' dbname=ferretdb",  # libpq's quoted value
    f"MlflowHostCreds(host='https://mlflow.internal', token='{SECRET}')",  # a repr in an exception's text
    f"https://mlflow.internal/?token={SECRET}",
])
def test_a_password_is_redacted_wherever_the_uri_carries_it(uri):
    from hive_assets.config import redact_secrets, redact_uri

    for text in (redact_uri(uri), redact_secrets(f"error: {uri!r} refused")):
        assert SECRET not in text and "***" in text, text
    # SQLAlchemy reads user `db`, password `27017/?appName=a` (pymongo an appName): masked, too much rather than
    # a password; with no port there can be no password, and a database URI's bare user is a name
    assert redact_uri("mongodb://db:27017/?appName=a@b") == "mongodb://db:***@b"
    assert redact_uri("mongodb://db/?appName=a@b") == "mongodb://db/?appName=a@b"


@pytest.mark.parametrize("uri, redacted", [
    # pymongo cuts the userinfo at the '?', SQLAlchemy at the first '@', libpq at the '/': all of it is masked
    ("mongodb://user:pa/ss?word@host:27017/db?authSource=admin", "mongodb://user:***@host:27017/db?authSource=admin"),
    ("postgresql://u:a?b/c@h/db", "postgresql://u:***@h/db"),
    ("postgresql+psycopg2://u:a/b?c@d@h:5432/db", "postgresql+psycopg2://u:***@h:5432/db"),
    ("mongodb+srv://u:#a/b?c@cluster0.example.net/?retryWrites=true", "mongodb+srv://u:***@cluster0.example.net/"
                                                                    "?retryWrites=true"),
])
def test_a_password_with_unescaped_delimiters_is_masked_whole_and_the_host_kept(uri, redacted):
    from hive_assets.config import redact_secrets, redact_uri

    assert redact_uri(uri) == redacted
    assert redact_secrets(f"could not connect to {uri}: refused") == f"could not connect to {redacted}: refused"
    assert redact_secrets(f"error: {uri!r}") == f"error: {redacted!r}"


@pytest.mark.parametrize("text, redacted", [
    ("could not connect to postgresql://hive:pa/ss@db:5432/x: refused",
     "could not connect to postgresql://hive:***@db:5432/x: refused"),
    ("connect to 'mongodb://hive:pa?ss@db:27017/' failed", "connect to 'mongodb://hive:***@db:27017/' failed"),
    ("connect to mysql://hive:p@ss@db/x failed", "connect to mysql://hive:***@db/x failed"),
    ('connect to "redis://:it\'s@cache:6379/0" failed', 'connect to "redis://:***@cache:6379/0" failed'),
])
def test_free_text_masks_a_password_with_a_slash_question_mark_at_or_quote(text, redacted):
    from hive_assets.config import redact_secrets

    assert redact_secrets(text) == redacted


@pytest.mark.parametrize("text", [
    "MLflow at http://host:5000/api/2.0/mlflow unreachable",
    "GET https://mlflow.internal:443/api/2.0/mlflow/runs/get?run_id=abc: 404, ask admin@example.com",
    "MLflow's database at sqlite:///tmp/me@corp/.hive/mlflow.db is locked",
    "mongodb://db1:27017,db2:27017/neural_hive?replicaSet=rs0 (no primary)",
])
def test_free_text_with_no_userinfo_is_left_as_it_is(text):
    from hive_assets.config import redact_secrets, redact_uri

    assert redact_secrets(text) == text
    uri = re.search(r"\S+://\S+", text)[0]
    assert redact_uri(uri) == uri


@pytest.mark.parametrize("uri, redacted", [
    # a bare userinfo of an http(s), git or redis URL is a token (GitHub's `https://TOKEN@github.com/...`)
    ("https://ghp_T0kenAudit@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
    ("http://T0ken/with?delims@mlflow.internal:5000", "http://***@mlflow.internal:5000"),
    ("redis://T0kenAudit@cache:6379/0", "redis://***@cache:6379/0"),
    ("https://sk_T0kenAudit:@api.example.com/v1", "https://***@api.example.com/v1"),  # curl -u TOKEN:
    # a database URI's user with no password is a name: X.509's subject, a Kerberos principal, a .pgpass role
    ("mongodb://CN=hive,OU=ops@db:27017/?authMechanism=MONGODB-X509",
     "mongodb://CN=hive,OU=ops@db:27017/?authMechanism=MONGODB-X509"),
    ("mongodb+srv://hive%40EXAMPLE.COM@cluster0.example.net/?authMechanism=GSSAPI",
     "mongodb+srv://hive%40EXAMPLE.COM@cluster0.example.net/?authMechanism=GSSAPI"),
    ("postgresql+psycopg2://hive@db:5432/mlflow", "postgresql+psycopg2://hive@db:5432/mlflow"),
])
def test_a_bare_userinfo_is_masked_as_a_token_unless_a_database_names_its_user(uri, redacted):
    from hive_assets.config import redact_secrets, redact_uri

    assert redact_uri(uri) == redacted
    assert redact_secrets(f"cannot reach {uri}: timed out") == f"cannot reach {redacted}: timed out"


@pytest.mark.parametrize("uri, redacted", [
    # GitHub's basic auth: the token is the user, the password a fixed word
    ("https://T0kenAudit:x-oauth-basic@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
    ("git+https://T0kenAudit:X-OAuth-Basic@github.com/org/repo", "git+https://***@github.com/org/repo"),
    # a user with a token's prefix, whatever the password
    ("https://ghp_T0kenAudit:anything@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
    ("https://glpat-T0kenAudit:x@gitlab.example.com/g/p.git", "https://***@gitlab.example.com/g/p.git"),
    ("http://AKIAT0KENAUDIT:secretpart@minio:9000/bucket", "http://***@minio:9000/bucket"),
    ("http://ASIAT0KENAUDIT:secretpart@minio:9000/bucket", "http://***@minio:9000/bucket"),  # STS keys
    ("https://ghs_T0kenAudit:x@github.com/o/r", "https://***@github.com/o/r"),  # every GitHub token kind
    ("https://ghr_T0kenAudit:x@github.com/o/r", "https://***@github.com/o/r"),
    ("https://github_pat_T0kenAudit:x@github.com/o/r", "https://***@github.com/o/r"),
    ("https://xoxb-T0kenAudit:x@hooks.slack.example/x", "https://***@hooks.slack.example/x"),
    ("https://sk_live_T0kenAudit:x@api.example/v1", "https://***@api.example/v1"),
    # pip's pinned requirement: an '@' after the host, so the password runs to it
    ("git+https://T0kenAudit:x-oauth-basic@github.com/org/repo.git@v1.0", "git+https://***@v1.0"),
    ("https://0123456789abcdef0123456789abcdef01234567:pw-T0kenAudit@github.com/o/r",  # a classic token
     "https://***@github.com/o/r"),
    ("https://0123456789ABCDEF0123456789ABCDEF01234567:pw-T0kenAudit@github.com/o/r", "https://***@github.com/o/r"),
    ("http://0123456789abcdef0123456789abcdef01234567cafe:pw-T0kenAudit@mlflow:5000",  # 44 hex digits: a user
     "http://0123456789abcdef0123456789abcdef01234567cafe:***@mlflow:5000"),
    # an ordinary user stays readable, and a database's user always does
    ("http://hive:pw-T0kenAudit@mlflow.internal:5000", "http://hive:***@mlflow.internal:5000"),
    ("postgresql://ghp_role:pw-T0kenAudit@db:5432/x", "postgresql://ghp_role:***@db:5432/x"),
    ("http://asia-team:pw-T0kenAudit@mlflow:5000", "http://asia-team:***@mlflow:5000"),  # prefixes as issued
    ("http://sk_admin:pw-T0kenAudit@mlflow:5000", "http://sk_admin:***@mlflow:5000"),
])
def test_a_user_that_is_the_token_is_masked_with_the_password(uri, redacted):
    from hive_assets.config import redact_secrets, redact_uri

    assert redact_uri(uri) == redacted
    assert redact_secrets(f"fatal: could not read from {uri}: 403") == f"fatal: could not read from {redacted}: 403"
    assert "t0ken" not in redact_uri(uri).lower()


def test_a_database_tracking_uri_sqlalchemy_cannot_read_is_refused_without_a_piece_of_its_password(monkeypatch):
    # SQLAlchemy's password ends at the first '@': the rest of `Xy@z:9Qw7@db` made the port "9Qw7@db", and
    # its "invalid literal for int() with base 10: '9Qw7@db'" was quoted under an "install the driver" hint
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg2://hive:Xy@z:9Qw7@db.internal/mlflow")
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert str(err.value).startswith("MLFLOW_TRACKING_URI='postgresql+psycopg2://hive:***@db.internal/mlflow' is "
                                     "not a URL SQLAlchemy reads")
    assert "9Qw7" not in str(err.value) and "driver" not in str(err.value)


def test_an_http_tracking_uri_with_an_at_after_its_host_is_refused(monkeypatch):
    # urlsplit reads host `hive`, port 2024: accepted, and MLflow's errors quoted the URI whole
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://hive:2024/{SECRET}@mlflow.internal:5000")
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert str(err.value).startswith("MLFLOW_TRACKING_URI is not a usable URL (an '@' after its host): a '/', '@'")
    assert SECRET not in str(err.value) and "2024" not in str(err.value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://hive:2024%2Fpw%40x@mlflow.internal:5000")  # encoded: fine
    assert Settings.from_env().mlflow_tracking_uri == "http://hive:2024%2Fpw%40x@mlflow.internal:5000"


@pytest.mark.parametrize("uri", [f"postgresql+psycopg2://hive:{SECRET}@[::1/mlflow", "http://[::1:5000"])
def test_a_tracking_uri_urlsplit_cannot_read_is_a_config_error(monkeypatch, uri):
    # urlsplit's "Invalid IPv6 URL" was a traceback from every verb (`hive status`)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert str(err.value).startswith("MLFLOW_TRACKING_URI is not a usable URL (Invalid IPv6 URL: ")
    assert SECRET not in str(err.value) and "::1" not in str(err.value)


def test_production_lists_a_url_urlsplit_cannot_read_among_its_problems(monkeypatch):
    monkeypatch.setenv("HIVE_ENV", "production")
    for name, value in {**PRODUCTION, "HIVE_ASSET_STORAGE": "s3://[hive-assets/prod",
                        "MLFLOW_TRACKING_URI": f"http://hive:{SECRET}@[mlflow.internal:5000"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    message = str(err.value)
    assert "MLFLOW_TRACKING_URI is not a usable URL (Invalid IPv6 URL" in message
    assert "HIVE_ASSET_STORAGE is not a usable URL (Invalid IPv6 URL" in message
    assert SECRET not in message and "\n" not in message


@pytest.mark.parametrize("scheme", ["postgres", "ftp", "redis"])
def test_a_tracking_uri_scheme_mlflow_cannot_open_is_refused_without_its_password(monkeypatch, scheme):
    # MLflow's UnsupportedModelRegistryStoreURIException quoted the URI, password included, into a traceback
    # on the CLI's stderr and into the Dagster run's step failure
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"{scheme}://hive:{SECRET}@db.internal:5432/mlflow")
    with pytest.raises(ConfigError) as err:
        Settings.from_env()
    assert SECRET not in str(err.value)
    assert str(err.value).startswith(f"MLFLOW_TRACKING_URI='{scheme}://hive:***@db.internal:5432/mlflow' has a "
                                     "scheme MLflow does not know")
    for uri in ("sqlite:///x/mlflow.db", "http://127.0.0.1:5000", "databricks://prof", "postgresql+psycopg2://h/m"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert Settings.from_env().mlflow_tracking_uri == uri



def test_third_party_exception_texts_are_redacted_on_their_way_to_logs_and_metadata():
    # an ArtifactError's text (validation metadata, drift documents), the serving router's health and log, and
    # the warning of a run that could not be marked FAILED (Dagster's event log) quoted the exception whole
    from hive_assets.registry import _mlflow, _tracking
    from hive_assets.serving import _router

    exc = RuntimeError(f"API request to https://{SECRET}@mlflow.internal/api failed; postgresql://hive:{SECRET}@db/x")
    for text in (_mlflow._one_line(exc), _router._one_line(exc)):
        assert SECRET not in text and "https://***@mlflow.internal/api" in text and "hive:***@db/x" in text, text

    class Client:
        def update_run(self, run_id, status):
            pass

        def set_terminated(self, run_id, status):
            raise exc

    warned: list[str] = []
    with pytest.raises(ZeroDivisionError), _tracking.run_status(Client(), "run-1", warned.append):
        raise ZeroDivisionError
    assert len(warned) == 1 and SECRET not in warned[0] and "hive:***@db/x" in warned[0], warned

# any printable character but whitespace (which ends a URI in free text), 6 or more so that the password is no
# accident of the template (a password the redacted template holds anyway, e.g. `ternal`, is skipped)
PASSWORDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=6, max_size=24)
URI_TEMPLATES = (
    "mongodb://hive:{}@db.internal:27017/neural_hive?authSource=admin",
    "mongodb+srv://hive:{}@cluster0.example.net/?retryWrites=true&appName=hive",
    "postgresql+psycopg2://hive:{}@db.internal:5432/mlflow",
    "redis://:{}@cache:6379/0",
    "https://{}@mlflow.internal/api/2.0/mlflow",  # a token as the user name
)


@given(password=PASSWORDS, template=st.sampled_from(URI_TEMPLATES))
def test_no_printable_password_survives_redaction(password, template):
    from hive_assets.config import redact_secrets, redact_uri

    # a password the redacted text holds anyway (in the template, or the message around it: `failed`) is skipped
    assume(all(password not in text for text in (template.format("***"), "could not connect to : refused",
                                                 "error: MongoClient('') failed")))
    assume(not template.startswith("https://{}") or ":" not in password)  # a token's ':' starts its password
    uri = template.format(password)
    for text in (redact_uri(uri), redact_secrets(f"could not connect to {uri}: refused"),
                 redact_secrets(f"error: MongoClient({uri!r}) failed")):
        assert password not in text, text


def test_production_with_a_simulated_now_warns_when_the_code_location_loads(monkeypatch, caplog):
    """A stray HIVE_SIMULATED_NOW in production froze every "now" without a word (only `hive clock show` said)."""
    from hive_assets.config import check_production

    for name, value in {"HIVE_ENV": "production", "MONGODB_URI": "mongodb://db.internal:27017",
                        "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
                        "HIVE_ASSET_STORAGE": "s3://hive-outputs/hive"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HIVE_SIMULATED_NOW", raising=False)
    check_production()
    assert "HIVE_SIMULATED_NOW" not in caplog.text
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-03-01T00:00:00+00:00")
    check_production()
    assert "HIVE_ENV=production with HIVE_SIMULATED_NOW=2026-03-01T00:00:00+00:00: every 'now'" in caplog.text


def test_an_s3_answer_refuses_only_what_no_retry_changes():
    from hive_assets.config import ABSENT_BUCKET, REFUSED_CREDENTIALS, s3_credential_settings, s3_refusal

    assert s3_refusal("NoSuchBucket", 404) == ABSENT_BUCKET
    for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
        assert s3_refusal(code, 403) == REFUSED_CREDENTIALS
    assert s3_credential_settings("SignatureDoesNotMatch").startswith("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    assert s3_credential_settings("ExpiredToken").startswith("AWS_SESSION_TOKEN")
    assert s3_refusal("Unauthorized", 401) == REFUSED_CREDENTIALS  # a proxy in front of the store
    # credentials that may not list may still write; a HEAD's bodiless 403 says no more; throttling and the
    # store's own errors pass: the write's answer, and the step's retries, decide
    for code, status in (("AccessDenied", 403), ("403", 403), ("SlowDown", 503), ("InternalError", 500), (None, None)):
        assert s3_refusal(code, status) is None


@pytest.mark.parametrize("value, pure", [(None, False), ("", False), ("0", False), (" False ", False), ("no", False),
                                         ("1", True), ("yes", True), ("true", True), ("ture", True)])
def test_an_optional_extension_loads_unless_its_switch_asks_for_pure_python(monkeypatch, value, pure):
    if value is None:
        monkeypatch.delenv("HIVE_TEST_PURE_PYTHON", raising=False)
    else:
        monkeypatch.setenv("HIVE_TEST_PURE_PYTHON", value)
    import json

    assert optional_extension("json", "HIVE_TEST_PURE_PYTHON") is (None if pure else json)
    assert optional_extension("hive_assets.no_such_extension", "HIVE_TEST_PURE_PYTHON") is None  # not built

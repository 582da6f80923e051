"""Links into the MLflow UI: built from the tracking URI without its credentials, none without a UI."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from hive_assets.registry import model_version_url, run_url, ui_base


@pytest.mark.parametrize("uri, base", [
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
    ("http://hiveuser:s3cr3t-token@mlflow.internal:5000", "http://mlflow.internal:5000"),
    ("https://token-only@mlflow.example.org/mlflow/?auth=s3cr3t-token#frag", "https://mlflow.example.org/mlflow"),
    ("HTTPS://user:pw@[::1]:8443/x", "https://[::1]:8443/x"),
    ("sqlite:////home/hive/mlflow.db", None),
    ("file:///home/hive/mlruns", None),
    ("databricks://profile", None),
    ("http://[::1:5000", None),  # urlsplit: "Invalid IPv6 URL"; the traceback reached every linked page
    ("http://mlflow.internal:50x0", None),  # a port that is no number: ValueError at `.port`
    ("", None),
    (None, None),
])
def test_the_ui_base_drops_userinfo_query_and_fragment(uri, base):
    assert ui_base(uri) == base


def test_run_and_model_version_links():
    uri = "http://hiveuser:s3cr3t-token@127.0.0.1:5000/?token=s3cr3t-token"
    run = run_url(uri, "7", "0a1b2c")
    version = model_version_url(uri, "business-evaluator", "3")
    assert run == "http://127.0.0.1:5000/#/experiments/7/runs/0a1b2c"
    assert version == "http://127.0.0.1:5000/#/models/business-evaluator/versions/3"
    for link in (run, version):
        parts = urlsplit(link)
        assert parts.username is None and parts.password is None and not parts.query and "s3cr3t" not in link
    # a name that is not URL-safe stays inside its path segment
    assert model_version_url("http://h:1", "a b/c", "1") == "http://h:1/#/models/a%20b%2Fc/versions/1"
    assert run_url("sqlite:///x.db", "1", "r") is None and model_version_url("file:///m", "n", "1") is None


def test_the_tracking_target_moves_userinfo_to_mlflows_basic_auth_variables(monkeypatch):
    from hive_assets.registry._mlflow import tracking_target

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    assert tracking_target("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    assert tracking_target("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    assert tracking_target("https://hive%20user:p%40ss@mlflow.example.org:8443/ml") == "https://mlflow.example.org:8443/ml"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("hive user", "p@ss")
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
    # variables an operator set win over the URI's userinfo
    assert tracking_target("http://other:pw2@h:1") == "http://h:1" and os.environ["MLFLOW_TRACKING_PASSWORD"] == "p@ss"


def test_mlflow_ui_url_gives_links_for_a_local_store_and_dagster_url_links_back(monkeypatch):
    """`mlflow ui` on the embedded sqlite store has an address the tracking URI does not say: MLFLOW_UI_URL
    gives it (credentials dropped as for a tracking URI); DAGSTER_WEBSERVER_URL gives the way back."""
    from hive_assets.registry import dagster_run_url

    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    monkeypatch.delenv("DAGSTER_WEBSERVER_URL", raising=False)
    assert run_url("sqlite:////home/hive/mlflow.db", "1", "r") is None and dagster_run_url("abc") is None
    monkeypatch.setenv("MLFLOW_UI_URL", "http://u:s3cr3t@127.0.0.1:5000/")
    assert run_url("sqlite:////home/hive/mlflow.db", "1", "r") == "http://127.0.0.1:5000/#/experiments/1/runs/r"
    # it also wins over an http tracking URI (a UI behind a proxy, the API elsewhere)
    assert model_version_url("http://mlflow-api:5000", "m", "2") == "http://127.0.0.1:5000/#/models/m/versions/2"
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "http://dagster.internal:3000/")
    assert dagster_run_url("1f2e-3d") == "http://dagster.internal:3000/runs/1f2e-3d"
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "not a url")
    assert dagster_run_url("1f2e-3d") is None

"""Links into the MLflow UI: built from the tracking URI without its credentials, none without a UI."""

from __future__ import annotations

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

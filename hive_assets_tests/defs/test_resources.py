from __future__ import annotations

import dagster as dg

from hive_assets.config import redact_uri
from hive_assets.defs.resources import DocumentStoreResource, default_resources


def test_credentials_are_bound_as_env_vars_not_values(monkeypatch):
    monkeypatch.setenv("MONGODB_URI", "mongodb://hive:s3cr3t@db.internal:27017/")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ml:t0ken@mlflow.internal:5000")
    resources = default_resources()
    # a bound EnvVar shows its name in the UI, never the value
    assert resources["document_store"].mongodb_uri == dg.EnvVar("MONGODB_URI")
    assert resources["mlflow"].tracking_uri == dg.EnvVar("MLFLOW_TRACKING_URI")


def test_unset_means_embedded_defaults(monkeypatch, hive_home):
    resources = default_resources()
    assert resources["document_store"].mongodb_uri == ""
    assert resources["document_store"].describe() == f"sqlite:{hive_home / 'store.sqlite'}"
    assert resources["mlflow"].uri == f"sqlite:///{hive_home / 'mlflow.db'}"


def test_store_description_never_shows_a_password():
    uri = "mongodb://hive:s3cr3t@db.internal:27017/?authSource=admin"
    text = DocumentStoreResource(mongodb_uri=uri).describe()
    assert "s3cr3t" not in text and "db.internal:27017" in text and "hive:***@" in text
    assert redact_uri("mongodb://db:27017/") == "mongodb://db:27017/"

from __future__ import annotations

import dagster as dg
import pytest

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


@pytest.mark.services
@pytest.mark.parametrize("scheme", ["http", "HTTP", "Http"])
def test_a_tracking_server_keeps_its_own_artifact_root_whatever_the_scheme_s_case(mlflow_server, hive_home, scheme):
    """Production mode accepts `HTTPS://...` (a scheme is case-insensitive, and MLflow's client takes it), but
    the experiment was created with `file://$HIVE_HOME/mlartifacts`: the models then went to the run pod's
    disk, lost with it. A real server, reached with the scheme in each case."""
    from hive_assets import registry
    from hive_assets.defs.resources import MlflowResource

    uri = f"{scheme}://{mlflow_server.split('://', 1)[1]}"
    resource = MlflowResource(tracking_uri=uri, experiment_name=f"scheme-case-{scheme}")
    client = registry.client_for(uri)
    location = client.get_experiment(resource.experiment_id(client)).artifact_location
    assert location.startswith("mlflow-artifacts:"), location  # the server's proxied root, as for `http`


def test_a_database_tracking_store_gets_the_home_s_artifact_root(hive_home):
    from hive_assets import registry
    from hive_assets.defs.resources import MlflowResource

    uri = f"sqlite:///{hive_home / 'mlflow.db'}"
    client = registry.client_for(uri)
    location = client.get_experiment(MlflowResource(tracking_uri=uri).experiment_id(client)).artifact_location
    assert location == (hive_home / "mlartifacts").as_uri()

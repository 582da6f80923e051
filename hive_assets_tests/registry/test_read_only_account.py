"""A read-only MLflow account (the usual one for a dashboard or a specialist service) on a real basic-auth
`mlflow server`: MLflow answers such a user 403, not "not found", when it reads an alias or a version of a model
that is not registered yet, so `hive status` read a fresh registry as a refusal; now as no model, as an admin."""

from __future__ import annotations

import pytest
import requests

from hive_assets import registry
from hive_assets_tests.basic_auth_mlflow import PASSWORD, USERNAME, BasicAuthMlflow

VIEWER, VIEWER_PASSWORD = "viewer", "viewer-password-1"  # MLflow's default permission for a new user: READ


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    """A basic-auth server of this module's own (registrations are counted from none) with a viewer user; the
    admin's and the viewer's clients."""
    from mlflow import MlflowClient

    server = BasicAuthMlflow(tmp_path_factory.mktemp("read-only-mlflow"))
    created = requests.post(f"{server.url}/api/2.0/mlflow/users/create", auth=(USERNAME, PASSWORD), timeout=30,
                            json={"username": VIEWER, "password": VIEWER_PASSWORD})
    assert created.status_code == 200, created.text
    clients = {name: MlflowClient(tracking_uri=uri, registry_uri=uri) for name, uri in
               (("admin", server.with_credentials(USERNAME, PASSWORD)),
                ("viewer", server.with_credentials(VIEWER, VIEWER_PASSWORD)))}
    yield server, clients
    server.close()


def test_a_model_not_registered_yet_is_none_for_a_reader_as_for_an_admin(accounts, monkeypatch):
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    _, clients = accounts
    viewer, admin = clients["viewer"], clients["admin"]
    name = registry.model_name("architecture")
    # the fault itself, from MLflow: the reader is refused where the admin is told "not found"
    with pytest.raises(MlflowException, match="403"):
        viewer.get_model_version_by_alias(name, "champion")

    for client in (viewer, admin):
        assert registry.alias_version(client, "architecture", "champion") is None
        assert registry.model_version(client, "architecture", 1) is None
        assert registry.registered_model(client, "architecture") is None

    # registered: the reader sees what the admin sees, and an alias not set is still none
    admin.create_registered_model(name)
    run = admin.create_run(admin.create_experiment("read-only-account"))
    version = admin.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    admin.set_registered_model_alias(name, "champion", version.version)
    for client in (viewer, admin):
        assert registry.alias_version(client, "architecture", "champion").version == version.version
        assert registry.alias_version(client, "architecture", "challenger") is None
        assert registry.model_version(client, "architecture", version.version).version == version.version
        assert dict(registry.registered_model(client, "architecture").aliases) == {"champion": version.version}


def test_a_model_hidden_from_the_reader_is_none_and_a_write_still_a_refusal(accounts, monkeypatch):
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server, clients = accounts
    name = registry.model_name("evolution")
    clients["admin"].create_registered_model(name)
    # the admin denies the viewer this model: MLflow's search hides it, a read is refused 403
    denied = requests.post(f"{server.url}/api/3.0/mlflow/users/permissions/grant", auth=(USERNAME, PASSWORD),
                           timeout=30, json={"username": VIEWER, "resource_type": "registered_model",
                                             "resource_id": name, "permission": "DENY"})
    assert denied.status_code == 200, denied.text
    assert clients["viewer"].search_registered_models(filter_string=f"name = '{name}'") == []
    # as MLflow shows it to this user, the model does not exist: none, never a version read from elsewhere
    assert registry.alias_version(clients["viewer"], "evolution", "champion") is None

    # a refusal that is not a read of a hidden model (a write by a reader) stays MLflow's refusal
    with pytest.raises(MlflowException, match="403"):
        clients["viewer"].set_registered_model_alias(registry.model_name("architecture"), "challenger", "1")


def test_the_router_serves_no_model_yet_to_a_read_only_service(accounts):
    from hive_assets.serving import SpecialistRouter

    server, _ = accounts
    router = SpecialistRouter("business", server.with_credentials(VIEWER, VIEWER_PASSWORD), refresh_interval=None,
                              wait=60)
    router.refresh()
    health = router.health()
    # (MLflow answers this read "not found", unlike the alias and version reads, which it refuses 403)
    assert health["registry_reachable"] is True and health["registry_error"] is None, health
    assert health["champion_version"] is None and health["ready"] is False, health
    router.close()

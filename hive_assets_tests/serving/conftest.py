"""Real model versions for the serving client: small random forests (each learns another specialist's policy,
so two versions disagree on some plans) logged and registered as `trained_model` and
`registered_model_version` do, on a real `mlflow server` whose files these tests can reach."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hive_assets import registry
from hive_assets.features import features_frame
from hive_assets.simulator import make_plans, policy_label
from hive_assets.training import SpecialistModel, encode, encode_labels
from hive_assets_tests.conftest import start_mlflow_server, stop_process

EXPERIMENT = "serving-client"
POLICIES = ("business", "technical", "behavior")


def small_model(policy: str, seed: int, plans: list[dict], schema_version: str | None = None) -> SpecialistModel:
    """A 30-tree forest on the feature contract (seconds to fit; no calibration needed here)."""
    from sklearn.ensemble import RandomForestClassifier

    frame = features_frame(plans)
    labels = encode_labels([policy_label(policy, p) for p in plans])
    forest = RandomForestClassifier(n_estimators=30, min_samples_leaf=3, random_state=seed).fit(encode(frame), labels)
    extra = {"feature_schema_version": schema_version} if schema_version else {}
    return SpecialistModel("business", "random_forest", forest, **extra)


@pytest.fixture(scope="session")
def models():
    """Three fitted models (business, technical and behavior policies) and a model trained on another
    feature schema version."""
    plans = make_plans(600, seed=31)
    fitted = [small_model(p, i, plans) for i, p in enumerate(POLICIES)]
    return {"v": fitted, "old_schema": small_model("business", 9, plans, schema_version="0.9.0")}


class Server:
    """A real `mlflow server` on a fixed port and root, which a test may stop and start again."""

    def __init__(self, root: Path):
        self.root = root
        self.proc, self.url = start_mlflow_server(root)
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def start(self) -> None:
        if self.proc is None:
            self.proc, _ = start_mlflow_server(self.root, self.port)


@pytest.fixture(scope="session")
def serving_server(tmp_path_factory):
    """This package's own `mlflow server` (tests reach its artifact files, and one stops and restarts it)."""
    server = Server(tmp_path_factory.mktemp("serving-mlflow"))
    yield server
    server.stop()


@pytest.fixture
def server(serving_server) -> tuple[str, Path]:
    """(url, root) of the serving tests' `mlflow server`, up."""
    serving_server.start()  # a test that stopped it and failed before restarting it
    return serving_server.url, serving_server.root


@dataclass(frozen=True)
class Logged:
    run_id: str
    uri: str
    model_id: str | None


def log(tracking_uri: str, model: SpecialistModel) -> Logged:
    """A training run holding `model`, logged as `trained_model` logs it (pyfunc from code)."""
    client = registry.client_for(tracking_uri)
    run_id = client.create_run(registry.ensure_experiment(client, EXPERIMENT)).info.run_id
    uri = registry.log_model(model, tracking_uri, run_id)
    client.set_terminated(run_id)
    return Logged(run_id, uri, uri.removeprefix("models:/") if uri.startswith("models:/m-") else None)


@pytest.fixture(scope="session")
def logged(serving_server, models) -> dict[str, Logged]:
    """Each model logged once on the serving server: "business", "technical", "behavior"."""
    return {policy: log(serving_server.url, m) for policy, m in zip(POLICIES, models["v"])}


def register(client, specialist: str, run: Logged, tags: dict[str, str] | None = None) -> str:
    """A registry version of `<specialist>-evaluator` for a logged run."""
    version, _ = registry.register_version(client, specialist, run.run_id, run.uri, tags or {}, model_id=run.model_id)
    return str(version.version)


def fresh(client, specialist: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model(registry.model_name(specialist))
    except MlflowException:
        pass  # nothing to delete


def artifact_files(root: Path, model_id: str) -> list[Path]:
    """The stored files of a logged model (the proxied artifact store lives under the server's root)."""
    return [p for p in (root / "artifacts").rglob("*") if p.is_file() and model_id in p.parts]

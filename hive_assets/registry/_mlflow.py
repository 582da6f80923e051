"""MLflow tracking and registry operations (SPEC section 6).

Aliases are the truth: `champion` (production), `challenger` (in A/B), `ab-test-v<N>`.
Every write is idempotent so a retry after a failure never leaves a second version or a lost alias.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hive_assets.config import SPECIALISTS

MODEL_CODE = Path(__file__).with_name("_pyfunc_model.py")
PIP_REQUIREMENTS = ["hive-assets", "mlflow>=3.17,<3.18", "scikit-learn>=1.6", "xgboost-cpu>=3.0", "skops>=0.11",
                    "pandas<3"]


def model_name(specialist: str) -> str:
    return f"{specialist}-evaluator"


def tracking_target(tracking_uri: str) -> str:
    """`tracking_uri` as MLflow is given it: an http(s) URI's user:password@ moves to MLflow's own
    basic-auth variables MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (unless they are set) and
    leaves the URI. Same requests, same Basic auth; but MLflow writes the URI into its error messages
    ("API request to <uri>/api/... failed") and printed links, which reach step failures, sensor ticks
    and captured stdout in the Dagster UI. It also turns off those printed "View run at" links
    (MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT, unless set): the assets link to the run themselves. A URL
    whose password has an unescaped '/', '?' or '#' (`config.http_url_problem`) is a ValueError."""
    import os
    from urllib.parse import unquote, urlsplit, urlunsplit

    from hive_assets.config import UNESCAPED_USERINFO, http_url_problem

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    parts = urlsplit(tracking_uri or "")
    if parts.scheme.lower() not in ("http", "https"):
        return tracking_uri
    if problem := http_url_problem(tracking_uri):  # MLflow would quote what follows the host: the password
        raise ValueError(f"the MLflow tracking URI is not a usable URL ({problem}): {UNESCAPED_USERINFO}; the "
                         "value is not shown, it may hold a password")
    if "@" not in parts.netloc:
        return tracking_uri
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username or ""))
    if parts.password is not None:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password))
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def client_for(tracking_uri: str):
    """An MlflowClient on `tracking_uri` (tracking and registry), credentials moved out of the URI
    (`tracking_target`)."""
    from mlflow import MlflowClient

    target = tracking_target(tracking_uri)
    return MlflowClient(tracking_uri=target, registry_uri=target)


_REFUSED = {
    401: "the credentials are wrong or missing (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, or "
         "user:password in the URI, or MLFLOW_TRACKING_TOKEN)",
    403: "these credentials may not do this (the MLflow user's permissions)",
    404: "no MLflow API at this address (check the URI's path)",
}


def http_refusal_words(code: int) -> str | None:
    """An HTTP refusal (401, 403, 404) in words an operator can act on, else None."""
    return f"HTTP {code}: {_REFUSED[code]}" if code in _REFUSED else None


def http_refusal(exc: BaseException) -> str | None:
    """Why MLflow's server refused a request, when it answered with 401, 403 or 404 (an MLflow exception
    "... failed with error code 401 != 200"), in words an operator can act on; None for anything else."""
    from mlflow.exceptions import MlflowException

    seen = exc
    for _ in range(20):
        if seen is None:
            return None
        if isinstance(seen, MlflowException):
            match = re.search(r"failed with error code (\d{3}) != 200", str(seen))
            if match and (words := http_refusal_words(int(match.group(1)))):
                return words
        seen = seen.__cause__ or seen.__context__
    return None


def ab_test_alias(version: str) -> str:
    return f"ab-test-v{version}"


def ensure_experiment(client, name: str, artifact_location: str | None = None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except Exception:  # created concurrently by another partition's run: use that one
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


INPUT_EXAMPLE_ROWS = 5


def dataset_schema(frame):
    """The MLflow schema `mlflow.data.from_pandas(frame)` would infer, without testing every cell in Python.

    MLflow types a numeric column by its dtype but decides `required` (no missing value) cell by cell, and
    types a text column cell by cell, so its inference cost 0.1-0.2 s of CPU per retrain at 3,000-6,000
    rows, growing with the labels (BENCHMARKS.md, issue 23). Here pandas answers both in one vectorized
    pass per column: missing numbers, and text columns holding nothing but `str` (the label, the split).
    Any other column goes through MLflow's own inference."""
    import pandas as pd
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.utils import _infer_schema  # what PandasDataset.schema runs

    numeric = [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
    specs = {spec.name: spec for spec in _infer_schema(frame[numeric].head(1)).inputs} if numeric else {}
    missing = frame[numeric].isna().any()
    specs.update({c: ColSpec(specs[c].type, c, required=not bool(missing[c])) for c in numeric})
    text = [c for c in frame.columns if frame[c].dtype == object and len(frame)
            and pd.api.types.infer_dtype(frame[c], skipna=False) == "string"]  # every value a str, none missing
    specs.update({c: ColSpec(DataType.string, c) for c in text})
    others = [c for c in frame.columns if c not in specs]
    if others:
        specs.update({spec.name: spec for spec in _infer_schema(frame[others]).inputs})
    return Schema([specs[c] for c in frame.columns])


def log_model(model, tracking_uri: str, run_id: str, training_frame=None, snapshot_hash: str = "") -> str:
    """Log a SpecialistModel into an existing MLflow run as a pyfunc model from code; returns its URI.

    With `training_frame` (the enhanced features), also the training data as an `mlflow.data` dataset input
    (digest = the data snapshot hash) and the model's signature and input example. The run's status is
    left to the caller (`run_status`): resuming a run here must not mark it FINISHED."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from hive_assets.features import FEATURE_NAMES

    mlflow.set_tracking_uri(tracking_target(tracking_uri))
    signature = example = dataset = None
    if training_frame is not None:
        columns = [c for c in (*FEATURE_NAMES, "label", "split") if c in training_frame.columns]
        logged = training_frame[columns].reset_index(drop=True)
        dataset = mlflow.data.from_pandas(logged, targets="label", name=f"{model.specialist}-enhanced-features",
                                          digest=snapshot_hash or None)
        dataset.schema = dataset_schema(logged)  # a cached property: MLflow's own would test every cell
        example = training_frame[list(FEATURE_NAMES)].head(INPUT_EXAMPLE_ROWS).reset_index(drop=True)
        proba = model.predict_proba(example)
        output = pd.DataFrame(proba, columns=[f"p_{c}" for c in model.classes_])
        output["recommendation"] = list(model.classes_[proba.argmax(axis=1)])
        output["confidence"] = proba.max(axis=1)
        signature = infer_signature(example, output)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / "specialist_model")
        with mlflow.start_run(run_id=run_id):
            if dataset is not None:
                mlflow.log_input(dataset, context="training", tags={"data_snapshot_hash": snapshot_hash})
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE),
                artifacts={"specialist_model": str(model_dir)},
                pip_requirements=PIP_REQUIREMENTS,
                signature=signature,
                input_example=example,
                metadata={"feature_schema_version": model.feature_schema_version,
                          "feature_names": list(model.feature_names_in_), "model_type": model.model_type,
                          "data_snapshot_hash": snapshot_hash},
            )
    return info.model_uri


def load_model(tracking_uri: str, model_uri: str):
    """The SpecialistModel behind a model URI (`models:/m-...`, `models:/<name>/<version>`, `...@alias`).

    Goes through `mlflow.pyfunc.load_model`, as serving does, so the stored schema is checked on load
    (SchemaMismatch) and nothing but the stored files is trusted. The files go to a directory removed once
    loaded: without `dst_path` MLflow leaves each download (7.2 MB for a random forest) in the system's
    temporary directory for good, one per validation run.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_target(tracking_uri))
    with tempfile.TemporaryDirectory() as tmp:
        return mlflow.pyfunc.load_model(model_uri, dst_path=tmp).unwrap_python_model().model


# -- artifact integrity ------------------------------------------------------------------------------
ARTIFACT_CHECKSUM_TAG = "artifact_sha256"
# written by MLflow into a download of a registered version (its name and version), not the model's
_NOT_MODEL_FILES = frozenset({"registered_model_meta"})


class ArtifactError(RuntimeError):
    """A registered version that cannot be served, in one line naming it: `<name> v<N>: artifact
    checksum mismatch` or `<name> v<N> cannot be loaded: <cause>` (never a library's stack).
    `downloading`: it failed before any file was read (the registry or the artifact store did not hand
    the files over: an outage may be over at the next try), not on the files themselves."""

    def __init__(self, message: str, *, downloading: bool = False):
        super().__init__(message)
        self.downloading = downloading


def artifact_checksum(directory: str | Path) -> str:
    """SHA-256 over a model's files: each relative path, its size and its bytes, in path order."""
    import hashlib

    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in _NOT_MODEL_FILES):
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _download(tracking_uri: str, artifact_uri: str, dst: str) -> Path:
    """The files at `artifact_uri` (a run's or logged model's artifact location, never `models:/`, whose
    resolution reads the process-wide registry URI: a process serving several registries, or a test
    suite, must not depend on which one was set last)."""
    import mlflow

    target = tracking_target(tracking_uri)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=dst, tracking_uri=target))


def run_json_artifact(client, run_id: str, path: str) -> Any:
    """The JSON file a run logged at `path`, decoded; None when it has none (or it cannot be read or parsed)."""
    import json

    from mlflow.exceptions import MlflowException

    try:
        with tempfile.TemporaryDirectory() as tmp:
            return json.loads(Path(client.download_artifacts(run_id, path, tmp)).read_text())
    except (MlflowException, OSError, ValueError):
        return None


def model_checksum(tracking_uri: str, artifact_uri: str) -> str:
    """`artifact_checksum` of the files at a model's artifact location as the artifact store holds them now."""
    with tempfile.TemporaryDirectory() as tmp:
        return artifact_checksum(_download(tracking_uri, artifact_uri, tmp))


def _one_line(exc: BaseException) -> str:
    """An exception as one short line: xgboost's and MLflow's messages carry a C++ or HTTP stack after it.
    Redacted (`redact_secrets`): it becomes an ArtifactError's text, which Dagster metadata and drift
    documents keep."""
    from hive_assets.config import redact_secrets

    first = next((line.strip() for line in redact_secrets(str(exc)).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 240 else text[:240] + "..."


_VERSION_MODELS: dict[tuple, object] = {}
_VERSION_MODELS_LOCK = threading.Lock()
# least recently used first out: a champion and a challenger per specialist; a long-lived process (a code
# server, a serving pod) kept up to 32 versions it no longer used, one more at each promotion
_VERSION_MODELS_MAX = 2 * len(SPECIALISTS)


def load_version_model(client, version):
    """The SpecialistModel of a registry version, loaded once per process: a version's files never
    change (the key includes its source, so a version number reused after a model was deleted is
    another entry). The hourly drift checks and the simulator's serving reuse it.

    The files are downloaded, checked against the version's `artifact_sha256` tag (recorded at
    registration) and loaded from there; a mismatch or any load failure raises `ArtifactError` naming
    the version. A version registered before the tag existed has no checksum: it loads unverified."""
    key = (client.tracking_uri, version.name, str(version.version), getattr(version, "source", None),
           getattr(version, "run_id", None))
    with _VERSION_MODELS_LOCK:  # the routers of several specialists refresh in their own threads
        if (cached := _VERSION_MODELS.pop(key, None)) is not None:
            _VERSION_MODELS[key] = cached  # now the most recently used
            return cached
    model = _load_verified(client.tracking_uri, version)
    with _VERSION_MODELS_LOCK:
        while len(_VERSION_MODELS) >= _VERSION_MODELS_MAX:
            _VERSION_MODELS.pop(next(iter(_VERSION_MODELS)))
        _VERSION_MODELS[key] = model
    return model


def release_version_models(tracking_uri: str, name: str, keep: Iterable[str]) -> None:
    """Drop the loaded versions of registered model `name` other than `keep` from the process's cache (a
    serving router that no longer serves them: their memory is freed once nothing else holds them)."""
    kept = {str(v) for v in keep}
    with _VERSION_MODELS_LOCK:
        for key in [k for k in _VERSION_MODELS if k[0] == tracking_uri and k[1] == name and k[2] not in kept]:
            del _VERSION_MODELS[key]


def _load_verified(tracking_uri: str, version):
    import mlflow

    from hive_assets.training import SchemaMismatch

    label = f"{version.name} v{version.version}"
    expected = (getattr(version, "tags", None) or {}).get(ARTIFACT_CHECKSUM_TAG)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            from mlflow import MlflowClient

            target = tracking_target(tracking_uri)
            location = MlflowClient(tracking_uri=target, registry_uri=target).get_model_version_download_uri(
                version.name, version.version)
            local = _download(tracking_uri, location, tmp)
        except Exception as exc:  # noqa: BLE001 - any failure is this version's, said in one line
            raise ArtifactError(f"{label} cannot be loaded: {_one_line(exc)}", downloading=True) from exc
        if expected and artifact_checksum(local) != expected:
            raise ArtifactError(f"{label}: artifact checksum mismatch")
        try:
            return mlflow.pyfunc.load_model(str(local)).unwrap_python_model().model
        except SchemaMismatch:  # sound files of another feature schema: the callers' own decision
            raise
        except Exception as exc:  # noqa: BLE001 - XGBoostError, skops, a missing file, ...
            raise ArtifactError(f"{label} cannot be loaded: {_one_line(exc)}") from exc


def _missing(exc) -> bool:
    """MLflow's answer for a model, version or alias that does not exist (its code, or the file store's text);
    not a 404 page from a server that is no MLflow API at that path (`http_refusal`: "champion none" was read
    from a wrong URI)."""
    if http_refusal(exc) is not None:
        return False
    return "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower()


def hidden_model(client, specialist: str, exc: BaseException) -> bool:
    """Whether `exc` is MLflow's basic-auth app refusing (403) a user who is not an admin a read of the
    specialist's model that this user cannot see: it answers 403, not "not found", for a model that does not
    exist (a fresh registry read by a read-only account: `hive status`, the serving router). One search, which
    lists only the models the user may read, tells: a model missing there is none for this user, as MLflow's
    own listing shows it; a 403 on a model it lists stays a refusal."""
    if http_refusal(exc) != http_refusal_words(403):
        return False
    name = model_name(specialist)
    return not client.search_registered_models(filter_string=f"name = '{name}'", max_results=1)


def registered_model(client, specialist: str):
    """The specialist's registered model (aliases and tags), or None when it does not exist (for this user)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(model_name(specialist))
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or hidden_model(client, specialist, exc):
            return None
        raise


def alias_version(client, specialist: str, alias: str):
    """The model version behind an alias, or None (no model, or no such alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name(specialist), alias)
    except MlflowException as exc:
        if _missing(exc) or hidden_model(client, specialist, exc):
            return None
        raise


def model_version(client, specialist: str, number: str | int):
    """Version `number` of the specialist's model, or None (no model, or no such version: deleted)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model_name(specialist), str(number))
    except MlflowException as exc:
        if _missing(exc) or hidden_model(client, specialist, exc):
            return None
        raise


def register_version(client, specialist: str, run_id: str, source: str, tags: dict[str, Any],
                     model_id: str | None = None) -> tuple[Any, bool]:
    """Create the version for `run_id`, or return the one that exists (no duplicates on retry)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name = model_name(specialist)
    try:
        client.create_registered_model(name, description=f"{specialist} specialist evaluator (hive-assets)")
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    existing = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if existing:
        version = sorted(existing, key=lambda v: int(v.version))[0]
        created = False
    else:
        # the checksum of the files as logged, taken once with the version (the tag is part of its
        # creation): a retry never re-hashes, which would bless files corrupted since. A version
        # registered before checksums existed keeps none and loads unverified.
        location = client.get_logged_model(model_id).artifact_location if model_id else source
        tags = {**tags, ARTIFACT_CHECKSUM_TAG: model_checksum(client.tracking_uri, location)}
        # MLflow's SQL registry store resolves a `models:/m-...` source with a default MlflowClient(), i.e. the
        # global tracking URI: in a process that did not train (a registration-only run) it is ./mlflow.db
        mlflow.set_tracking_uri(tracking_target(client.tracking_uri))
        version = client.create_model_version(name, source=source, run_id=run_id, model_id=model_id,
                                              tags={k: str(v) for k, v in tags.items()})
        created = True
    for key, value in tags.items():  # a retry completes tags a failure may have left out
        if version.tags.get(key) != str(value):
            client.set_model_version_tag(name, version.version, key, str(value))
    return client.get_model_version(name, version.version), created


def training_run_of(client, experiment_id: str, dagster_run_id: str, specialist: str) -> str | None:
    """The MLflow run a Dagster run created for a specialist partition (`trained_model`'s), or None."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`dagster.run_id` = '{dagster_run_id}' and tags.`dagster.partition` = '{specialist}'",
        max_results=1,
    )
    return found[0].info.run_id if found else None


def training_run_for(client, experiment_id: str, dagster_run_id: str, specialist: str, tags: dict[str, str]) -> str:
    """One MLflow run per specialist partition and Dagster run: a retried step finds and reuses it."""
    found = training_run_of(client, experiment_id, dagster_run_id, specialist)
    if found:
        return found
    run = client.create_run(experiment_id, run_name=f"{specialist}-{dagster_run_id[:8]}", tags=tags)
    return run.info.run_id


def ab_split_tags(test: dict[str, Any]) -> dict[str, str]:
    """The registered-model tags that carry an A/B test's split to serving pods (SPEC section 7)."""
    return {key: str(value) for key, value in (
        ("ab_test_id", test["test_id"]), ("ab_salt", test["salt"]),
        ("ab_challenger_traffic_percent", test["traffic_percent"]),
        ("ab_challenger_version", test["challenger_version"]))}


def mirror_ab_split(client, specialist: str, test: dict[str, Any]) -> None:
    """Mirror an A/B test's split to registered-model tags, where serving pods read it (SPEC section 7).
    Written whenever it differs (idempotent), so a retry completes what a failure interrupted."""
    name = model_name(specialist)
    current = client.get_registered_model(name).tags
    for key, value in ab_split_tags(test).items():
        if current.get(key) != value:
            client.set_registered_model_tag(name, key, value)

"""The Kubernetes side of deploy/, proven offline with the real libraries.

No cluster runs here. What is real: dagster-k8s's config schema and K8sRunLauncher, the Kubernetes
Python client serializing the Job exactly as it would send it, and the Kubernetes OpenAPI schemas shipped
by kubernetes-validate. What stands in for the cluster: a loopback HTTP endpoint that accepts the
`create Job` call and records its body (the launcher's only call when it launches a run).

The chart's rendering of values.yaml into the instance's `run_launcher` block is reproduced by
`launcher_config_from_values`, from the chart's own template `helpers/instance/_run-launcher.tpl`
(dagster-io/dagster, stored copy read for this work; `helm` itself is not available here).
"""

from __future__ import annotations

import copy
import functools
import dataclasses
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.launcher import LaunchRunContext
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import instance_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import UserDefinedDagsterK8sConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

from hive_assets.config import OBJECT_STORAGE_URL, Settings, retrain_max_runtime_seconds
from hive_assets.defs import build_defs
from hive_assets.defs.k8s import SMALL_RESOURCES, TRAINING_POD_TAGS, TRAINING_RESOURCES
from hive_assets_tests.deploy import pod_security

REPO = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
RELEASE, NAMESPACE = "dagster", "hive"  # `helm install dagster dagster/dagster -n hive`
# The oldest and newest Kubernetes API versions kubernetes-validate 1.37 ships schemas for.
K8S_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
# ConfigMap keys that are the deployment's, not SPEC section 9's Settings
DEPLOYMENT_SETTINGS = ("HIVE_ENV", "HIVE_ASSET_STORAGE", "HIVE_RETRAIN_MAX_RUNTIME_SECONDS")


@functools.cache
def hive_defs() -> dg.Definitions:
    """The code location's definitions, built once for this module (building them takes seconds)."""
    return build_defs()


def user_deployment() -> dict:
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    return deployment


def user_code_image() -> str:
    """The image reference the chart gives the code server (`repository:tag`), which it reports to runs."""
    image = user_deployment()["image"]
    return f"{image['repository']}:{image['tag']}"


def launcher_config_from_values(values: dict) -> dict:
    """The `run_launcher.config` the chart renders for K8sRunLauncher (template `dagsterYaml.runLauncher.k8s`).

    Release `dagster` in namespace `hive`: the chart's fullname is then `dagster`, its default service
    account `dagster`, the instance ConfigMap `dagster-instance`.
    """
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": RELEASE,
        **({"image_pull_secrets": values["imagePullSecrets"]} if values.get("imagePullSecrets") else {}),
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": f"{RELEASE}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if k8s.get("kubeconfigFile"):
        config["kubeconfig_file"] = k8s["kubeconfigFile"]
    if "image" in k8s:
        config["job_image"] = f"{k8s['image']['repository']}:{k8s['image']['tag']}"
    for key, name in (("envConfigMaps", "env_config_maps"), ("envSecrets", "env_secrets")):
        names = [ref["name"] for ref in k8s.get(key) or [] if "name" in ref]
        if names:
            config[name] = names
    for key, name in (("envVars", "env_vars"), ("volumeMounts", "volume_mounts"), ("volumes", "volumes"),
                      ("labels", "labels"), ("resources", "resources"), ("securityContext", "security_context")):
        if k8s.get(key):
            config[name] = k8s[key]
    if k8s.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    if k8s.get("schedulerName"):
        config["scheduler_name"] = k8s["schedulerName"]
    run_k8s = k8s.get("runK8sConfig") or {}
    rendered = {snake: run_k8s[camel] for camel, snake in (
        ("containerConfig", "container_config"), ("podSpecConfig", "pod_spec_config"),
        ("podTemplateSpecMetadata", "pod_template_spec_metadata"), ("jobSpecConfig", "job_spec_config"),
        ("jobMetadata", "job_metadata")) if run_k8s.get(camel)}
    if rendered:
        config["run_k8s_config"] = rendered
    return config


def check_launcher_config(config: dict):
    """dagster-k8s's own schema, as the instance applies it when it loads `run_launcher`."""
    return process_config(resolve_to_config_type(K8sRunLauncher.config_type()), config)


def test_the_rendered_launcher_config_passes_dagster_k8s_schema():
    config = launcher_config_from_values(VALUES)
    result = check_launcher_config(config)
    assert result.success, [e.message for e in result.errors]
    # the launcher's default pod is the small one: each job's tag sizes its own pod
    assert result.value["run_k8s_config"]["container_config"]["resources"] == SMALL_RESOURCES
    # the schema is strict enough to catch a mistake in the values
    typo = {**config, "run_k8s_config": {"containerConfig": {"resources": TRAINING_RESOURCES}}}
    assert not check_launcher_config(typo).success
    assert not check_launcher_config({**config, "image_pull_policy": 3}).success


def test_training_tags_pass_dagster_k8s_schema():
    # the op tag as Dagster stores it (a JSON string), parsed by dagster-k8s's tag schema
    stored = hive_defs().get_assets_def("trained_model").op.tags
    parsed = get_user_defined_k8s_config(stored)
    assert parsed.container_config == {"resources": TRAINING_RESOURCES}
    assert json.loads(stored["dagster-k8s/config"]) == TRAINING_POD_TAGS["dagster-k8s/config"]
    with pytest.raises(dg.DagsterInvalidConfigError):
        get_user_defined_k8s_config({"dagster-k8s/config": json.dumps({"container": {"resources": {}}})})


class _KubernetesApiStandIn(BaseHTTPRequestHandler):
    """Accepts `POST /apis/batch/v1/namespaces/NS/jobs` and records the body; anything else is a 404."""

    created: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:3] != ["apis", "batch", "v1"] or parts[3] != "namespaces" or parts[5:] != ["jobs"]:
            self.send_error(404)
            return
        self.created.append((parts[4], body))
        payload = json.dumps(body).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def kube_api_server(tmp_path_factory):
    """A kubeconfig pointing at the loopback stand-in, and the list of Jobs it receives."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KubernetesApiStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path_factory.mktemp("kube") / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
        "clusters": [{"name": "stand-in", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "stand-in", "user": {}}],
        "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}],
    }))
    yield kubeconfig
    server.shutdown()
    server.server_close()


@pytest.fixture
def kube_api(kube_api_server):
    """(kubeconfig, the Jobs created during this test)."""
    _KubernetesApiStandIn.created = []
    return kube_api_server, _KubernetesApiStandIn.created


@pytest.fixture(scope="module")
def k8s_instance(kube_api_server):
    """An instance whose run launcher is the chart's K8sRunLauncher config, out of cluster (kubeconfig)."""
    config = {**launcher_config_from_values(VALUES), "load_incluster_config": False,
              "kubeconfig_file": str(kube_api_server)}
    with instance_for_test(overrides={"run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher",
                                                        "config": config}}) as instance:
        assert isinstance(instance.run_launcher, K8sRunLauncher)
        yield instance


@pytest.fixture(scope="module")
def hive_workspace(k8s_instance):
    """The code location as a code server of this image reports it (module, image, interpreter)."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="hive_assets.definitions", executable_path="/opt/venv/bin/python"),
        container_image=user_code_image(), location_name="hive-assets",
    )
    with WorkspaceProcessContext(k8s_instance, InProcessWorkspaceLoadTarget(origin)) as process_context:
        yield process_context.create_request_context()


def create_run(instance, workspace, job_name: str, partition: str):
    """A run of `job_name` for one partition, tagged as the daemon tags a sensor's or the Launchpad's run:
    the job's run tags, then its tags for the partition."""
    [repository] = workspace.get_code_location("hive-assets").get_repositories().values()
    remote_job = repository.get_full_job(job_name)
    job_def = hive_defs().resolve_job_def(job_name)
    request = dg.RunRequest(partition_key=partition).with_resolved_tags_and_config(job_def, [], None)
    return instance.create_run_for_job(
        job_def, tags={**job_def.run_tags, **request.tags}, remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )


@pytest.fixture
def retrain_run(k8s_instance, hive_workspace):
    """A fresh run of `retrain_specialist` for one partition, with its code origin."""
    return create_run(k8s_instance, hive_workspace, "retrain_specialist", "business"), hive_workspace


def _validate(manifest: dict) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def _container(job: dict) -> dict:
    [container] = job["spec"]["template"]["spec"]["containers"]
    return container


def test_the_run_pod_job_dagster_k8s_launches_is_a_valid_kubernetes_job(k8s_instance, retrain_run, kube_api):
    run, workspace = retrain_run
    k8s_instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=workspace))
    _, created = kube_api
    [(namespace, job)] = created
    assert namespace == NAMESPACE
    _validate(job)

    spec = job["spec"]["template"]["spec"]
    container = _container(job)
    assert job["metadata"]["name"] == f"dagster-run-{run.run_id}"
    assert job["metadata"]["labels"]["dagster/run-id"] == run.run_id
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    assert spec["restartPolicy"] == "Never"
    # the run pod never calls the Kubernetes API (in-process executor): an account with no Role, no token
    assert spec["serviceAccountName"] == "hive-run-worker" and spec["automountServiceAccountToken"] is False
    assert spec["imagePullSecrets"] == VALUES["imagePullSecrets"]
    # the code server's immutable image, running this run and nothing else
    assert container["image"] == user_code_image() and "@sha256:" in container["image"]
    assert k8s_instance.get_run_by_id(run.run_id).tags["dagster/image"] == user_code_image()
    assert container["args"][:3] == ["dagster", "api", "execute_run"]
    # sized for training by the job's tag: the run pod hosts trained_model (in-process executor)
    assert container["resources"] == TRAINING_RESOURCES
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["runAsUser"] == 10001
    # admitted under the restricted Pod Security Standard, writing only to its emptyDirs
    assert pod_security.violations(job["spec"]["template"]) == []
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod_security.writable_paths(job["spec"]["template"]) == {
        "containers dagster": {"/tmp", VALUES["global"]["dagsterHome"]}}
    # a timeout, and the tag the run queue limits to one training run per specialist
    tags = k8s_instance.get_run_by_id(run.run_id).tags
    assert tags["dagster/max_runtime"] == "14400" and tags["hive/retrain"] == "business"
    # settings and credentials by reference only
    assert {"configMapRef": {"name": "hive-assets-config"}} in container["envFrom"]
    assert {"secretRef": {"name": "hive-assets-secrets"}} in container["envFrom"]
    assert {"secretRef": {"name": "hive-object-storage"}} in container["envFrom"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DAGSTER_PG_PASSWORD"] == {"name": "DAGSTER_PG_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": VALUES["global"]["postgresqlSecretName"], "key": "postgresql-password"}}}
    assert env["DAGSTER_HOME"]["value"] == VALUES["global"]["dagsterHome"]
    assert all("value" not in e or e["name"] in ("DAGSTER_HOME", "DAGSTER_RUN_JOB_NAME") for e in container["env"])

    # the validator does reject what the API server would
    broken = copy.deepcopy(job)
    _container(broken)["resources"]["limits"]["memory"] = {"value": "8Gi"}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)
    unknown = copy.deepcopy(job)
    unknown["spec"]["template"]["spec"]["restartPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(unknown)


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("250m", "2", "0.5") in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "4Gi", "1G", "1000") in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    for suffix in sorted(units, key=len, reverse=True):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * units[suffix])
    return int(quantity)


def test_quantity_parsing():
    assert cpu_cores("250m") == 0.25 and cpu_cores("2") == 2 and cpu_cores("0.5") == 0.5
    assert memory_bytes("512Mi") == 512 * 2**20 and memory_bytes("1G") == 10**9 and memory_bytes("4Gi") == 4 * 2**30


def test_the_ab_test_check_run_pod_is_small_restricted_and_never_queued_behind_training(
        k8s_instance, hive_workspace, kube_api):
    run = create_run(k8s_instance, hive_workspace, "ab_test_check", "business")
    k8s_instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=hive_workspace))
    [(namespace, job)] = kube_api[1]
    assert namespace == NAMESPACE
    _validate(job)
    assert pod_security.violations(job["spec"]["template"]) == []
    container = _container(job)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    requests = container["resources"]["requests"]
    assert cpu_cores(requests["cpu"]) <= 0.25 and memory_bytes(requests["memory"]) <= 512 * 2**20
    limits = container["resources"]["limits"]
    assert memory_bytes(limits["memory"]) >= memory_bytes(requests["memory"])
    assert container["image"] == user_code_image()
    tags = k8s_instance.get_run_by_id(run.run_id).tags
    # a short timeout of its own, and no training tag: the per-specialist training limit never holds it
    assert tags["dagster/max_runtime"] == "1800" and "hive/retrain" not in tags
    assert tags["dagster/partition"] == "business"


def test_every_job_sizes_its_run_pod_and_has_a_timeout():
    """No job falls back to the launcher's default silently: each one says how big its pod is."""
    jobs = [job for job in hive_defs().resolve_all_job_defs() if not job.name.startswith("__")]
    assert {job.name for job in jobs} >= {"retrain_specialist", "ab_test_check", "ab_test_start",
                                          "register_model_version", "promote_model_version"}
    for job in jobs:
        parsed = get_user_defined_k8s_config(job.run_tags)
        expected = TRAINING_RESOURCES if job.name == "retrain_specialist" else SMALL_RESOURCES
        assert parsed.container_config == {"resources": expected}, job.name
        assert int(job.run_tags["dagster/max_runtime"]) > 0, job.name


def test_the_restricted_check_sees_each_planted_violation(k8s_instance, retrain_run, kube_api):
    run, workspace = retrain_run
    k8s_instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=workspace))
    [(_, job)] = kube_api[1]
    pod = job["spec"]["template"]
    assert pod_security.violations(pod) == []

    def broken(change) -> list[str]:
        copied = copy.deepcopy(pod)
        change(copied["spec"], copied["spec"]["containers"][0].setdefault("securityContext", {}))
        return pod_security.violations(copied)

    plants = {
        "hostNetwork": lambda spec, ctx: spec.update(hostNetwork=True),
        "hostPath": lambda spec, ctx: spec["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "privileged": lambda spec, ctx: ctx.update(privileged=True),
        "allowPrivilegeEscalation": lambda spec, ctx: ctx.update(allowPrivilegeEscalation=True),
        "runAsNonRoot": lambda spec, ctx: (ctx.pop("runAsNonRoot"), spec["securityContext"].pop("runAsNonRoot")),
        "runAsUser": lambda spec, ctx: ctx.update(runAsUser=0),
        "seccompProfile": lambda spec, ctx: (ctx.pop("seccompProfile"), spec["securityContext"].pop("seccompProfile")),
        "Unconfined": lambda spec, ctx: ctx.update(seccompProfile={"type": "Unconfined"}),
        "drop ALL": lambda spec, ctx: ctx.update(capabilities={"drop": ["NET_RAW"]}),
        "NET_BIND_SERVICE": lambda spec, ctx: ctx.update(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        "hostPort": lambda spec, ctx: spec["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
        "nfs": lambda spec, ctx: spec["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
    }
    for name, plant in plants.items():
        assert broken(plant), name
    # the run pod as the launcher built it before this issue's values: no seccomp, root filesystem writable
    before = copy.deepcopy(pod)
    before["spec"].pop("securityContext")
    for container in before["spec"]["containers"]:
        container["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]}}
    assert [v for v in pod_security.violations(before) if "seccompProfile" in v]


def test_a_run_tagged_for_training_overrides_the_launcher_default(k8s_instance, retrain_run, kube_api):
    """Run tags are what reach a run pod: a job or sensor may carry TRAINING_POD_TAGS as run tags."""
    run, workspace = retrain_run
    bigger = {"container_config": {"resources": {"requests": {"cpu": "6", "memory": "24Gi"},
                                                 "limits": {"cpu": "8", "memory": "32Gi"}}}}
    k8s_instance.add_run_tags(run.run_id, {"dagster-k8s/config": json.dumps(bigger)})
    k8s_instance.run_launcher.launch_run(
        LaunchRunContext(dagster_run=k8s_instance.get_run_by_id(run.run_id), workspace=workspace))
    [(_, job)] = kube_api[1]
    _validate(job)
    assert _container(job)["resources"] == bigger["container_config"]["resources"]


def test_the_training_step_pod_gets_the_asset_tags(k8s_instance, retrain_run, kube_api):
    """Under `k8s_job_executor`, the step pod for trained_model, built as K8sStepHandler builds it.

    The container context is assembled with the calls of dagster_k8s.executor.K8sStepHandler
    (`_get_container_context`, `launch_step`, dagster-k8s 0.29.27): the launcher's config for the run
    without run tags, then the step's op tags. Only the step's arguments are
    placeholders.
    """
    run, _ = retrain_run
    launcher = k8s_instance.run_launcher
    step_tags = hive_defs().get_assets_def("trained_model").op.tags
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False).merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(step_tags)))
    job_config = context.get_k8s_job_config(None, launcher).with_image(run.job_code_origin.repository_origin.container_image)
    job = construct_dagster_k8s_job(
        job_config=job_config, args=["dagster", "api", "execute_step"], job_name="dagster-step-trained-model",
        component="step_worker", user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/op": "trained_model", "dagster/run-id": run.run_id},
    )
    # sent with the launcher's client, as launch_step sends it: the stand-in records the wire format
    launcher._api_client.create_namespaced_job_with_retries(body=job, namespace=context.namespace)
    [(namespace, manifest)] = kube_api[1]
    assert namespace == NAMESPACE
    _validate(manifest)
    assert _container(manifest)["resources"] == TRAINING_RESOURCES
    assert _container(manifest)["image"] == user_code_image()
    # a step without the tag gets the launcher's default, so the tag is what sizes training
    plain = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False).merge(
        K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig()))
    assert plain.run_k8s_config.container_config["resources"] == VALUES["runLauncher"]["config"]["k8sRunLauncher"][
        "runK8sConfig"]["containerConfig"]["resources"]


def test_the_config_map_manifest_is_valid(monkeypatch):
    manifest = yaml.safe_load((REPO / "deploy" / "helm" / "hive-assets-config.yaml").read_text())
    _validate(manifest)
    named = {ref["name"] for section in (user_deployment(), VALUES["runLauncher"]["config"]["k8sRunLauncher"])
             for ref in section["envConfigMaps"]}
    assert named == {manifest["metadata"]["name"]}
    # production mode with outputs in object storage, for every pod that loads the definitions
    deployment = {key: manifest["data"].pop(key) for key in DEPLOYMENT_SETTINGS}
    assert deployment["HIVE_ENV"] == "production"
    assert OBJECT_STORAGE_URL.fullmatch(deployment["HIVE_ASSET_STORAGE"])
    monkeypatch.setenv("HIVE_RETRAIN_MAX_RUNTIME_SECONDS", deployment["HIVE_RETRAIN_MAX_RUNTIME_SECONDS"])
    assert retrain_max_runtime_seconds() == 14400
    # every other key is a setting the platform reads (SPEC section 9), none is a credential
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert {key.lower() for key in manifest["data"]} <= fields
    assert not set(manifest["data"]) & {"MONGODB_URI", "MLFLOW_TRACKING_URI", "KAFKA_BOOTSTRAP_SERVERS"}
    for key in manifest["data"]:
        monkeypatch.delenv(key, raising=False)
    defaults = Settings.from_env()
    for key, value in manifest["data"].items():
        monkeypatch.setenv(key, value)
    from_config_map = Settings.from_env()
    # the shipped values are the documented defaults, and each one parses
    assert from_config_map == defaults


def instance_config_from_values(values: dict) -> dict:
    """The instance dagster.yaml the chart renders into its `-instance` ConfigMap, for the parts we set.

    Templates: configmap-instance.yaml, helpers/instance/_run-coordinator.tpl (`dagsterYaml.runCoordinator.queued`),
    the postgres block `dagsterYaml.postgresql.config`, and `launcher_config_from_values` above.
    """
    pg = values["postgresql"]
    postgres = {"postgres_db": {
        "username": pg["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"], "db_name": pg["postgresqlDatabase"], "port": pg["service"]["port"],
        "params": pg["postgresqlParams"], "scheme": pg["postgresqlScheme"]}}
    daemon = values["dagsterDaemon"]
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    monitoring, retries, sensors = daemon["runMonitoring"], daemon["runRetries"], daemon["sensors"]
    config = {
        "schedule_storage": {"module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage",
                             "config": postgres},
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": postgres},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage",
                              "config": postgres},
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher_config_from_values(values)},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator", "config": {
            "max_concurrent_runs": queue["maxConcurrentRuns"], "tag_concurrency_limits": queue["tagConcurrencyLimits"]}},
        "compute_logs": compute_logs_from_values(values),
        "sensors": {"use_threads": sensors["useThreads"], "num_workers": sensors["numWorkers"]},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    # helpers/instance: these two blocks only when enabled, and only these keys
    if monitoring["enabled"]:
        config["run_monitoring"] = {"enabled": True, "start_timeout_seconds": monitoring["startTimeoutSeconds"],
                                    "poll_interval_seconds": monitoring["pollIntervalSeconds"]}
    if retries["enabled"]:
        config["run_retries"] = {"enabled": True, "max_retries": retries["maxRetries"]}
    # additionalInstanceConfig is appended verbatim: a block the chart already wrote would appear twice
    # in dagster.yaml, and YAML keeps the last one silently, so refuse it here
    for key, block in (values.get("additionalInstanceConfig") or {}).items():
        assert key not in config, f"additionalInstanceConfig repeats the chart's `{key}` block"
        config[key] = block
    return config


def compute_logs_from_values(values: dict) -> dict:
    """`compute_logs` as `dagsterYaml.computeLogManager.s3` renders it (helpers/instance/_compute-log-manager.tpl)."""
    manager = values["computeLogManager"]
    assert manager["type"] == "S3ComputeLogManager"
    s3 = manager["config"]["s3ComputeLogManager"]
    keys = {"bucket": "bucket", "localDir": "local_dir", "prefix": "prefix", "useSsl": "use_ssl", "verify": "verify",
            "verifyCertPath": "verify_cert_path", "endpointUrl": "endpoint_url", "skipEmptyFiles": "skip_empty_files",
            "uploadInterval": "upload_interval", "region": "region"}
    assert set(s3) <= set(keys), set(s3) - set(keys)
    config = {keys[key]: value for key, value in s3.items()}
    config["verify"] = s3.get("verify") is not False  # `verify: {{ ne .verify false }}`, always written
    return {"module": "dagster_aws.s3.compute_log_manager", "class": "S3ComputeLogManager", "config": config}


def test_the_rendered_instance_passes_dagster_schemas(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import ConfigurableClassData
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "only-for-schema-validation")
    config = instance_config_from_values(VALUES)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    loaded, _ = dagster_instance_config(str(tmp_path))  # the instance-level schema
    assert loaded["run_monitoring"]["max_resume_run_attempts"] == 1
    # run monitoring terminates runs past their max runtime (14400 s without a dagster/max_runtime tag)
    assert loaded["run_monitoring"]["enabled"] is True and loaded["run_monitoring"]["max_runtime_seconds"] == 14400
    assert loaded["run_retries"]["retry_on_asset_or_op_failure"] is False
    # step logs go to the S3 bucket (dagster-aws's own schema)
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    logs = config["compute_logs"]
    assert (logs["module"], logs["class"]) == (S3ComputeLogManager.__module__, S3ComputeLogManager.__name__)
    result = process_config(resolve_to_config_type(S3ComputeLogManager.config_type()), logs["config"])
    assert result.success, [e.message for e in result.errors]
    assert result.value["bucket"] and result.value["upload_interval"] == 60 and result.value["verify"] is True
    for cls, key in ((PostgresRunStorage, "run_storage"), (PostgresEventLogStorage, "event_log_storage"),
                     (PostgresScheduleStorage, "schedule_storage")):
        result = process_config(resolve_to_config_type(cls.config_type()), config[key]["config"])
        assert result.success, (key, [e.message for e in result.errors])
    block = config["run_coordinator"]
    coordinator = ConfigurableClassData(block["module"], block["class"], yaml.safe_dump(block["config"])).rehydrate()
    assert coordinator.get_run_queue_config().tag_concurrency_limits == [
        {"key": "hive/retrain", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert coordinator.get_run_queue_config().max_concurrent_runs == 12


def test_deploy_dagster_yaml_passes_dagster_schema_offline(tmp_path, monkeypatch):
    """The non-Helm instance file (exercised against a real PostgreSQL in test_postgres_instance.py)."""
    from dagster._core.instance.config import dagster_instance_config
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config

    for name in ("HOST", "PORT", "DB", "USERNAME", "PASSWORD"):
        monkeypatch.setenv(f"DAGSTER_PG_{name}", "5432" if name == "PORT" else f"schema-check-{name.lower()}")
    (tmp_path / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
    loaded, _ = dagster_instance_config(str(tmp_path))
    storage = loaded["storage"]["postgres"]
    # what dagster-postgres does with it when the instance loads: environment variables resolved
    storage_schema = resolve_to_config_type(DagsterPostgresStorage.config_type())
    resolved = process_config(storage_schema, storage)
    assert resolved.success, [e.message for e in resolved.errors]
    assert resolved.value["postgres_db"]["password"] == "schema-check-password"
    assert resolved.value["postgres_db"]["port"] == 5432
    assert pg_url_from_config(resolved.value).startswith("postgresql+psycopg2://schema-check-username:")
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    assert not process_config(storage_schema, storage).success  # a missing credential fails, never defaults


def chart_pods_from_values(values: dict) -> dict[str, dict]:
    """The chart's own workloads, for the fields the Pod Security Standard and the API schema look at.

    Reproduced from the chart's templates (helpers/_deployment-webserver.tpl, deployment-daemon.yaml,
    charts/dagster-user-deployments/templates/deployment-user.yaml, job-instance-migrate.yaml): pod and
    container security contexts, init containers (check-db-ready, init-user-deployment-*, which take the
    component's container context), volumes and mounts. Images are the chart's defaults' shape.
    """
    home = values["global"]["dagsterHome"]
    instance_mount = {"name": "dagster-instance", "mountPath": f"{home}/dagster.yaml", "subPath": "dagster.yaml"}
    instance_volume = {"name": "dagster-instance", "configMap": {"name": f"{RELEASE}-instance"}}
    workspace = ({"name": "dagster-workspace-yaml", "mountPath": "/dagster-workspace/"},
                 {"name": "dagster-workspace-yaml", "configMap": {"name": f"{RELEASE}-workspace-yaml"}})
    user = values["dagster-user-deployments"]
    [deployment] = user["deployments"]

    def init_containers(component: dict, db_ready: bool = True) -> list[dict]:
        ready = [{"name": "check-db-ready", "image": "docker.io/library/postgres:14.6",
                  "command": ["sh", "-c", "until pg_isready -h $HOST -p 5432 -U dagster; do sleep 2; done"],
                  "securityContext": component.get("securityContext") or {}}] if db_ready else []
        return ready + [{"name": f"init-user-deployment-{deployment['name']}",
                         "image": "docker.io/library/busybox:1.28",
                         "command": ["sh", "-c", f"until nslookup {deployment['name']}; do sleep 2; done"],
                         "securityContext": component.get("securityContext") or {}}]

    def dagster_pod(component: dict, name: str, command: list[str], mounts: list, volumes: list,
                    init: list) -> dict:
        return {"metadata": {"labels": {"component": name}}, "spec": {
            "imagePullSecrets": values.get("imagePullSecrets") or [],
            "serviceAccountName": RELEASE,
            "securityContext": component.get("podSecurityContext") or {},
            "initContainers": init,
            "containers": [{"name": "dagster", "image": "docker.io/dagster/dagster-celery-k8s:1.13.27",
                            "command": command, "securityContext": component.get("securityContext") or {},
                            "volumeMounts": mounts, "resources": component.get("resources") or {}}],
            "volumes": volumes,
        }}

    def deployment_of(name: str, pod: dict) -> dict:
        labels = {"app.kubernetes.io/name": "dagster", "component": name}
        pod["metadata"]["labels"] = labels
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{RELEASE}-{name}"},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": pod}}

    web, daemon = values["dagsterWebserver"], values["dagsterDaemon"]
    web_mounts = [instance_mount, workspace[0], *(web.get("volumeMounts") or [])]
    web_volumes = [instance_volume, workspace[1], *(web.get("volumes") or [])]
    manifests = {
        "webserver": deployment_of("dagster-webserver", dagster_pod(
            web, "dagster-webserver",
            ["/bin/bash", "-c", "dagster-webserver -h 0.0.0.0 -p 80 -w /dagster-workspace/workspace.yaml"],
            web_mounts, web_volumes, init_containers(web))),
        "daemon": deployment_of("dagster-daemon", dagster_pod(
            daemon, "dagster-daemon", ["/bin/bash", "-c", "dagster-daemon run"],
            [instance_mount, workspace[0], *(daemon.get("volumeMounts") or [])],
            [instance_volume, workspace[1], *(daemon.get("volumes") or [])], init_containers(daemon))),
    }
    image = deployment["image"]
    code_pod = {"metadata": {}, "spec": {
        "imagePullSecrets": user.get("imagePullSecrets") or [],
        "serviceAccountName": f"{RELEASE}-dagster-user-deployments-user-deployments",
        "securityContext": deployment["podSecurityContext"],
        "containers": [{"name": "dagster-user-deployments", "image": f"{image['repository']}:{image['tag']}",
                        "args": ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(deployment["port"]),
                                 *deployment["dagsterApiGrpcArgs"]],
                        "securityContext": deployment["securityContext"], "resources": deployment["resources"],
                        "volumeMounts": deployment.get("volumeMounts") or []}],
        "volumes": deployment.get("volumes") or [],
    }}
    manifests["user-code"] = deployment_of(deployment["name"], code_pod)
    # `migrate.enabled` (the upgrade procedure in deploy/README.md): the webserver's contexts and volumes
    migrate_pod = dagster_pod(web, "migrate", ["dagster", "instance", "migrate"],
                              [instance_mount, *(web.get("volumeMounts") or [])],
                              [instance_volume, *(web.get("volumes") or [])], [])
    migrate_pod["spec"]["restartPolicy"] = "Never"
    manifests["migrate"] = {"apiVersion": "batch/v1", "kind": "Job",
                            "metadata": {"name": f"{RELEASE}-instance-migrate"},
                            "spec": {"template": migrate_pod}}
    return manifests


def test_every_pod_the_chart_renders_is_restricted():
    manifests = chart_pods_from_values(VALUES)
    assert set(manifests) == {"webserver", "daemon", "user-code", "migrate"}
    for name, manifest in manifests.items():
        _validate(manifest)
        pod = manifest["spec"]["template"]
        assert pod_security.violations(pod) == [], name
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, (name, container["name"])
        # the main container writes only to emptyDirs: /tmp (HIVE_HOME=/tmp/hive) and DAGSTER_HOME
        main = [where for where in pod_security.writable_paths(pod) if where.startswith("containers")]
        for where in main:
            assert pod_security.writable_paths(pod)[where] == {"/tmp", VALUES["global"]["dagsterHome"]}, (name, where)
        assert pod["spec"]["imagePullSecrets"] == [{"name": "hive-registry"}], name
    # resources are set for the long-running pods, the daemon included
    for name in ("webserver", "daemon", "user-code"):
        resources = manifests[name]["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"] and resources["limits"]["memory"], name
    # and the values before this issue (root webserver and daemon, no seccomp) would have been refused
    before = copy.deepcopy(VALUES)
    for component in (before["dagsterWebserver"], before["dagsterDaemon"]):
        component.pop("podSecurityContext"), component.pop("securityContext")
    assert pod_security.violations(chart_pods_from_values(before)["daemon"]["spec"]["template"])


def test_the_run_worker_service_account_has_no_token_and_no_role():
    manifest = yaml.safe_load((REPO / "deploy" / "helm" / "hive-run-worker.yaml").read_text())
    _validate(manifest)
    assert manifest["kind"] == "ServiceAccount" and manifest["automountServiceAccountToken"] is False
    run_pod = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    assert run_pod["serviceAccountName"] == manifest["metadata"]["name"]
    # nothing in deploy/ binds a Role to it
    texts = [p.read_text() for p in (REPO / "deploy").rglob("*.yaml")]
    assert not any(re.search(r"kind:\s*(Cluster)?RoleBinding", text) for text in texts)


def test_the_code_server_mounts_the_instance_so_hive_doctor_runs_there():
    """The chart mounts the instance's dagster.yaml in its own pods and the launcher in run pods, not in code
    servers: `hive doctor` in the code server refused ("DAGSTER_HOME ... has no dagster.yaml"). The code
    server mounts the launcher's own ConfigMap at $DAGSTER_HOME/dagster.yaml, beside the shared volumes."""
    deployment = user_deployment()
    instance_config_map = launcher_config_from_values(VALUES)["instance_config_map"]
    volumes = {v["name"]: v for v in deployment["volumes"]}
    mounts = {m["name"]: m for m in deployment["volumeMounts"]}
    instance = [name for name, v in volumes.items() if v.get("configMap", {}).get("name") == instance_config_map]
    assert len(instance) == 1
    assert mounts[instance[0]] == {"name": instance[0], "mountPath": "/opt/dagster/dagster_home/dagster.yaml",
                                   "subPath": "dagster.yaml", "readOnly": True}
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in dockerfile  # where `hive` looks for it
    shared = {v["name"] for v in VALUES["dagsterDaemon"]["volumes"]}
    assert set(volumes) == shared | {instance[0]}
    daemon = VALUES["dagsterDaemon"]
    assert [m for m in deployment["volumeMounts"] if m["name"] != instance[0]] == daemon["volumeMounts"]
    assert [v for v in deployment["volumes"] if v["name"] != instance[0]] == daemon["volumes"]


def test_kafka_s_certificates_reach_the_pods_that_read_kafka_and_are_optional():
    """Kafka over TLS with a private CA needs its files where KAFKA_SSL_*_LOCATION point, in the run pods (which
    collect) and the code server (`hive collect` checks the broker there); a deployment without a secured Kafka
    has no such Secret, and Kubernetes would not start a pod whose volume names a missing one."""
    config_map = (REPO / "deploy" / "helm" / "hive-assets-config.yaml").read_text()
    ca_path = re.search(r"KAFKA_SSL_CA_LOCATION: (\S+)", config_map)[1]
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    for pod, volumes, mounts in (("run pods", launcher["volumes"], launcher["volumeMounts"]),
                                 ("code server", user_deployment()["volumes"], user_deployment()["volumeMounts"])):
        [volume] = [v for v in volumes if v.get("secret", {}).get("secretName") == "hive-kafka-tls"]
        assert volume["secret"]["optional"] is True, pod
        [mount] = [m for m in mounts if m["name"] == volume["name"]]
        assert ca_path.startswith(mount["mountPath"] + "/") and mount["readOnly"], pod
    assert "create secret generic hive-kafka-tls" in (REPO / "deploy" / "README.md").read_text()

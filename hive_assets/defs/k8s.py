"""Run-pod sizing and run limits per job, as run tags the K8sRunLauncher and the daemon read.

Where the `dagster-k8s/config` tag acts (dagster-k8s 0.29.27):
  * as a job's (run's) tag, on the run pod the K8sRunLauncher starts: merged (deep) over the launcher's
    `runK8sConfig` (deploy/helm/values.yaml), which is a small default. With the in-process executor
    used here every step runs inside that pod, so the job's tag is what sizes training;
  * as an op tag, on the step pod `k8s_job_executor` would start (kept on `trained_model`, so switching
    executors keeps training sized).

Requests are what the scheduler reserves; the memory limit is what the kernel enforces (OOM kill),
the CPU limit throttles. xgboost/sklearn training of one specialist fits in TRAINING_RESOURCES with the
default `DATA_COLLECTION_DAYS`; the A/B check and the operator jobs read documents and move MLflow
aliases, so they get a small pod. Nothing here is secret.

`dagster/max_runtime` (seconds) is enforced by the daemon's run monitoring (`run_monitoring.enabled`
in the instance): a hung training run is terminated instead of holding its specialist's slot.
`hive/retrain=<specialist>` marks training runs: the run queue limits it to one per specialist
(dagster.yaml, deploy/), so an A/B check or an operator job never waits behind a training run.
"""

from hive_assets.config import retrain_max_runtime_seconds

TRAINING_RESOURCES = {
    "requests": {"cpu": "2", "memory": "4Gi"},
    "limits": {"cpu": "4", "memory": "8Gi"},
}
# A run pod imports the whole code location (dagster, mlflow, sklearn, xgboost, pandas): 252 MiB resident
# before any work (measured: `import hive_assets.definitions`, max RSS); the limit leaves room for an MLflow
# client call and a batch of documents.
SMALL_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}

K8S_CONFIG_TAG = "dagster-k8s/config"
MAX_RUNTIME_TAG = "dagster/max_runtime"
RETRAIN_TAG = "hive/retrain"
# An A/B check or an operator action that has not finished in half an hour is hung (they take seconds).
SHORT_JOB_MAX_RUNTIME_SECONDS = 1800


def pod_tags(resources: dict) -> dict:
    """The `dagster-k8s/config` tag giving a pod these container resources."""
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}}}


# op tags of `trained_model` (step pods under k8s_job_executor)
TRAINING_POD_TAGS = pod_tags(TRAINING_RESOURCES)


def training_run_tags() -> dict:
    """Tags of `retrain_specialist` runs: the training pod and the run timeout (HIVE_RETRAIN_MAX_RUNTIME_SECONDS)."""
    return {**TRAINING_POD_TAGS, MAX_RUNTIME_TAG: str(retrain_max_runtime_seconds())}


# Tags of the A/B check and of the operator jobs (registry and A/B start/expand/stop).
SHORT_JOB_RUN_TAGS = {**pod_tags(SMALL_RESOURCES), MAX_RUNTIME_TAG: str(SHORT_JOB_MAX_RUNTIME_SECONDS)}


def retrain_tags_for_partition(specialist: str) -> dict[str, str]:
    """The per-specialist tag of a training run, keyed by the run queue's concurrency limit."""
    return {RETRAIN_TAG: specialist}

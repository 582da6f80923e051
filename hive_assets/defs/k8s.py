"""Kubernetes pod sizing for the training assets (dagster-k8s's `dagster-k8s/config` tag).

Where this tag acts (dagster-k8s 0.29.27):
  * as an op tag, on the step pod that `k8s_job_executor` starts for that asset's step;
  * NOT on the run pod of the K8sRunLauncher: that pod takes its config from the launcher
    (`runK8sConfig` in deploy/helm/values.yaml) and from run tags, and op tags never become run
    tags. With the in-process executor used here the training step runs inside the run pod, so the
    Helm values give run pods the same resources (hive_assets_tests/deploy checks they agree).

Requests are what the scheduler reserves; the memory limit is what the kernel enforces (OOM kill),
the CPU limit throttles. xgboost/sklearn training of one specialist fits in the request with the
default `DATA_COLLECTION_DAYS`; nothing here is secret.
"""

TRAINING_RESOURCES = {
    "requests": {"cpu": "2", "memory": "4Gi"},
    "limits": {"cpu": "4", "memory": "8Gi"},
}

TRAINING_POD_TAGS = {"dagster-k8s/config": {"container_config": {"resources": TRAINING_RESOURCES}}}

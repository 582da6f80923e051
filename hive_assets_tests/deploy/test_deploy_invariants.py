"""Invariants over every file in deploy/: immutable images, the right module, external Postgres, no secret
values, concurrency in one place. Each scanner is also shown a planted violation, so it can fail."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
INSTANCE = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
ROOT_INSTANCE = yaml.safe_load((REPO / "dagster.yaml").read_text())

# python:3.11.<patch>-slim[-<debian>], optionally @sha256:<digest>: one exact interpreter, never `3.11-slim`
EXACT_PYTHON = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")
IMMUTABLE_TAG = re.compile(r"^[0-9A-Za-z_.-]+@sha256:[0-9a-f]{64}$")


def deploy_files() -> list[Path]:
    files = sorted(p for p in DEPLOY.rglob("*") if p.is_file())
    assert {p.relative_to(DEPLOY).as_posix() for p in files} >= {
        "Dockerfile", "README.md", "dagster.yaml", "helm/values.yaml", "helm/hive-assets-config.yaml"}
    return files


def dockerfile_stages(text: str) -> list[tuple[str, list[str]]]:
    """[(FROM argument, instruction lines)] per stage; continuation lines joined."""
    lines = re.sub(r"\\\n", " ", text).splitlines()
    stages: list[tuple[str, list[str]]] = []
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line.split()[1], []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def dockerfile_args(text: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))


# ------------------------------------------------------------------------------------ images


def test_the_base_image_is_an_exact_python_311():
    args = dockerfile_args(DOCKERFILE)
    stages = dockerfile_stages(DOCKERFILE)
    assert [ref for ref, _ in stages] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert EXACT_PYTHON.match(args["PYTHON_IMAGE"]), args["PYTHON_IMAGE"]
    for floating in ("python:3.11-slim", "python:latest", "python:3.11.9-slim@sha256:abc"):
        assert not EXACT_PYTHON.match(floating)


def images_in(node, path="") -> list[tuple[str, dict]]:
    """Every `image: {repository, tag}` mapping in a values tree."""
    found = []
    if isinstance(node, dict):
        if "repository" in node and "tag" in node:
            found.append((path, node))
        for key, value in node.items():
            found += images_in(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += images_in(value, f"{path}[{i}]")
    return found


def test_every_image_we_set_in_the_values_is_pinned_by_digest():
    images = images_in(VALUES)
    assert [path for path, _ in images] == [".dagster-user-deployments.deployments[0].image"]
    for path, image in images:
        assert IMMUTABLE_TAG.match(str(image["tag"])), (path, image)
        assert image["pullPolicy"] == "IfNotPresent"  # an immutable reference never needs re-pulling
    assert not IMMUTABLE_TAG.match("latest") and not IMMUTABLE_TAG.match("0.1.0")


# ------------------------------------------------------------------------------------ code location


def test_the_served_module_is_the_package_definitions():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package = pyproject["tool"]["setuptools"]["packages"]["find"]["include"][0].rstrip("*")
    expected = ["-m", f"{package}.definitions"]
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, flags=re.M).group(1)
    assert yaml.safe_load(cmd)[:5] == ["dagster", "api", "grpc", *expected]
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == expected
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == expected[1]
    import importlib

    import dagster as dg

    assert isinstance(importlib.import_module(expected[1]).defs, dg.Definitions)


def test_the_image_builds_from_the_lock_and_runs_unprivileged_without_compilers():
    (_, builder), (_, runtime) = dockerfile_stages(DOCKERFILE)
    assert any("-c constraints.txt" in line for line in builder if line.startswith("RUN"))
    assert any("gcc" in line for line in builder)  # the C extension is built...
    assert any("import hive_assets.features._flatten" in line for line in builder)  # ...and must import
    assert not [line for line in runtime if re.search(r"\b(gcc|cc|build-essential|libc6-dev|apt-get install)\b", line)]
    assert not [line for line in runtime if re.match(r"COPY (?!--from=builder)", line)]  # no source tree
    [user] = [line.split()[1] for line in runtime if line.startswith("USER ")]
    uid = int(user.split(":")[0])
    assert uid >= 1000
    pod = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["securityContext"]
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    assert pod["runAsUser"] == deployment["podSecurityContext"]["runAsUser"] == uid
    assert pod["runAsNonRoot"] and deployment["podSecurityContext"]["runAsNonRoot"]


# ------------------------------------------------------------------------------------ instance storage


def test_postgres_is_external_and_reached_through_a_secret():
    pg = VALUES["postgresql"]
    assert pg["enabled"] is False and VALUES["generatePostgresqlPasswordSecret"] is False
    assert pg["postgresqlHost"] and pg["postgresqlHost"] not in ("localhost", "127.0.0.1")
    assert pg["postgresqlPassword"] == "" and VALUES["global"]["postgresqlSecretName"]
    assert pg["postgresqlScheme"] == INSTANCE["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    db = INSTANCE["storage"]["postgres"]["postgres_db"]
    # everything but the driver comes from the environment
    assert {k: v for k, v in db.items() if k != "scheme"} == {
        k: {"env": f"DAGSTER_PG_{n}"} for k, n in (("hostname", "HOST"), ("port", "PORT"), ("db_name", "DB"),
                                                    ("username", "USERNAME"), ("password", "PASSWORD"))}
    assert INSTANCE["telemetry"] == {"enabled": False} and VALUES["telemetry"] == {"enabled": False}


# ------------------------------------------------------------------------------------ secrets

SECRET_PATTERNS = {
    "password value": re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)\b\s*[:=]\s*['\"]?(?!['\"]?\s*$)"
                                 r"(?![{$<])(?!(\"\"|''))(?!(true|false|null)\b)[^\s'\"#,}]{4,}"),
    "credentials in a URI": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?![*<$])[^/\s@]+@"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Secret manifest": re.compile(r"^kind:\s*Secret\s*$", re.M),
}


def secret_findings(text: str) -> list[str]:
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


@pytest.mark.parametrize("planted", [
    "postgresqlPassword: hunter22", "password: s3cr3t-value", "apiKey: falsehood-is-a-value", 'MONGODB_URI="mongodb://hive:pa55word@mongo:27017/"',
    "-----BEGIN RSA PRIVATE KEY-----", "aws: AKIAABCDEFGHIJKLMNOP", "kind: Secret",
])
def test_the_secret_scanner_sees_a_planted_secret(planted):
    assert secret_findings(planted)


def test_no_file_in_deploy_holds_a_secret_value():
    allowed = ["password: {env: DAGSTER_PG_PASSWORD}", 'postgresqlPassword: ""',
               "mongodb://USER:***@mongo:27017/", "--from-literal=MONGODB_URI=\"$MONGODB_URI\""]
    assert not [secret_findings(text) for text in allowed if secret_findings(text)]
    for path in deploy_files():
        assert secret_findings(path.read_text()) == [], path


# ------------------------------------------------------------------------------------ concurrency

PARTITION_RULE = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def test_concurrency_is_configured_in_one_place_per_deployment_and_agrees():
    # Helm: only the run coordinator's queue config; the chart's newer `concurrency:` section stays off
    assert "concurrency" not in VALUES and "additionalInstanceConfig" not in VALUES
    queue = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert VALUES["dagsterDaemon"]["runCoordinator"]["enabled"] is True
    assert queue["tagConcurrencyLimits"] == [PARTITION_RULE] and queue["maxConcurrentRuns"] == 5
    # deploy/dagster.yaml: only the `concurrency:` block, no run_coordinator section to contradict it
    assert "run_coordinator" not in INSTANCE
    assert INSTANCE["concurrency"]["runs"] == {"max_concurrent_runs": 5, "tag_concurrency_limits": [PARTITION_RULE]}
    # and the same rule as the repository's embedded instance
    assert ROOT_INSTANCE["concurrency"]["runs"] == INSTANCE["concurrency"]["runs"]
    text = "\n".join(p.read_text() for p in deploy_files() if p.suffix in (".yaml", ".yml"))
    assert text.count("key: dagster/partition") == 2  # values.yaml and dagster.yaml, once each

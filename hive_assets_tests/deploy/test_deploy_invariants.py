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
        "Dockerfile", "README.md", "dagster.yaml", "helm/values.yaml", "helm/hive-assets-config.yaml",
        "helm/hive-run-worker.yaml"}
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
    assert any("gcc" in line for line in builder)  # the C extensions are built...
    extensions = re.findall(r'Extension\("([\w.]+)"', (REPO / "setup.py").read_text())
    assert len(extensions) == 2
    for extension in extensions:  # ...and each must import
        assert any(re.search(rf"import [\w., ]*\b{re.escape(extension)}\b", line) for line in builder), extension
    assert not [line for line in runtime if re.search(r"\b(gcc|cc|build-essential|libc6-dev|apt-get install)\b", line)]
    assert not [line for line in runtime if re.match(r"COPY (?!--from=builder)", line)]  # no source tree
    [user] = [line.split()[1] for line in runtime if line.startswith("USER ")]
    uid = int(user.split(":")[0])
    assert uid >= 1000
    # every security context in the values runs as that user (the chart's images run as it too)
    contexts = security_contexts(VALUES)
    assert len(contexts) == 8, [path for path, _ in contexts]  # pod + container of 3 chart pods + run pods
    for path, context in contexts:
        assert context["runAsUser"] == uid and context["runAsNonRoot"] is True, path


def security_contexts(node, path="") -> list[tuple[str, dict]]:
    """Every `securityContext`/`podSecurityContext` mapping in a values tree."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("securityContext", "podSecurityContext") and isinstance(value, dict):
                found.append((f"{path}.{key}", value))
            else:
                found += security_contexts(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += security_contexts(value, f"{path}[{i}]")
    return found


def test_the_runtime_image_has_neither_the_webserver_nor_test_packages():
    (_, builder), (_, runtime) = dockerfile_stages(DOCKERFILE)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    base = {re.split(r"[=<>!~\[ ]", dep)[0] for dep in pyproject["project"]["dependencies"]}
    extras = pyproject["project"]["optional-dependencies"]
    # the webserver is an extra (workstations), not a dependency of the code location
    assert "dagster-webserver" not in base and any("dagster-webserver" in dep for dep in extras["ui"])
    assert any("dagster-aws" in dep for dep in extras["deploy"])
    [install] = [line for line in builder if "pip install -c constraints.txt" in line]
    installed_extras = set(re.findall(r"\.whl\)?\[([a-z,]+)\]", install)[0].split(","))
    assert installed_extras == {"deploy"}
    # and the build refuses an image where they slipped in through a dependency
    assert "! python -c \"import dagster_webserver\"" in install and "! python -c \"import pytest\"" in install
    # the runtime stage installs nothing: it copies the builder's venv
    assert not [line for line in runtime if re.search(r"\bpip\b", line)]


def test_build_dependencies_are_pinned():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    # the isolated build (pip wheel ., pip install -e .) gets exactly this setuptools
    [setuptools] = pyproject["build-system"]["requires"]
    assert re.fullmatch(r"setuptools==\d+(\.\d+)+", setuptools), setuptools
    (_, builder), _ = dockerfile_stages(DOCKERFILE)
    assert any(re.fullmatch(r"RUN pip install pip==\d+(\.\d+)+", line) for line in builder)
    constraints = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().split() if "==" in line)
    for extra in ("deploy", "ui"):
        for dep in pyproject["project"]["optional-dependencies"][extra]:
            name = re.split(r"[=<>!~ ]", dep)[0]
            assert name in constraints, dep


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves `path` out of the build context (moby/patternmatcher rules: the last
    matching pattern wins; a pattern matches a path or any of its parent directories; `**` is any number
    of directories, `*` and `?` never cross `/`)."""
    def regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i:end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + "$")

    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        compiled = regex(raw.lstrip("!").strip("/"))
        if any(compiled.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_the_build_context_holds_only_the_build_inputs():
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    left_out = [".venv/bin/python", ".hive/store.sqlite", ".git/HEAD", ".hive/dagster/dagster.yaml",
                "hive_assets/features/_flatten.cpython-311-x86_64-linux-gnu.so",
                "hive_assets/data/_structure.cpython-311-x86_64-linux-gnu.so",
                "hive_assets/__pycache__/config.cpython-311.pyc",
                "hive_assets/features/__pycache__/x.pyc", ".pytest_cache/v/cache", "hive_assets_tests/test_layout.py",
                "benchmarks/bench_demo.py", "hive_assets.egg-info/PKG-INFO", "deploy/helm/values.yaml"]
    assert [path for path in left_out if not dockerignore_excludes(patterns, path)] == []
    # everything the Dockerfile copies from the context, and every source file of the package, goes in
    (_, builder), _ = dockerfile_stages(DOCKERFILE)
    copied = [arg for line in builder if line.startswith("COPY ") for arg in line.split()[1:-1]]
    assert set(copied) == {"constraints.txt", "pyproject.toml", "setup.py", "hive_assets", "dagster.yaml"}
    sources = [p.relative_to(REPO).as_posix() for p in (REPO / "hive_assets").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".so"]
    kept = [path for path in copied + sources if not dockerignore_excludes(patterns, path)]
    assert kept == copied + sources and len(sources) > 50
    # a link in the package must point at something the build copies (the wheel carries its content)
    for link in (p for p in (REPO / "hive_assets").rglob("*") if p.is_symlink()):
        target = link.resolve().relative_to(REPO).as_posix()
        assert target in copied or target.startswith("hive_assets/"), (link, target)
    # the matcher itself: re-inclusion and the last match winning
    assert dockerignore_excludes(["*", "!a"], "b/c") and not dockerignore_excludes(["*", "!a"], "a/c")
    assert dockerignore_excludes(["*", "!a", "a/**/*.so"], "a/x.so")


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


def _env_sources() -> dict[str, set[str]]:
    """{Secret or ConfigMap name: the components whose pods read it as environment variables}."""
    user = VALUES["dagster-user-deployments"]["deployments"][0]
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    components = {"webserver": VALUES["dagsterWebserver"], "daemon": VALUES["dagsterDaemon"],
                  "code server": user, "run pods": launcher}
    sources: dict[str, set[str]] = {VALUES["global"]["postgresqlSecretName"]: set(components)}
    for component, section in components.items():
        for ref in (section.get("envSecrets") or []) + (section.get("envConfigMaps") or []):
            sources.setdefault(ref["name"], set()).add(component)
    return sources


def _restart_table_names() -> set[str]:
    """The first column of deploy/README.md's table of which pods restart after a change."""
    lines = (DEPLOY / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**Rotating a credential"))
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| Secret"))
    names = set()
    for row in lines[header + 2:]:
        if not row.startswith("|"):
            return names
        names.update(re.findall(r"^\| `([^`]+)`", row))
    return names


def test_every_secret_and_config_map_the_pods_read_says_which_pods_restart():
    # a pod reads them only when it starts: a changed ConfigMap reached new run pods while the code server's
    # sensors and job tags kept the old values, and the table said nothing about it
    sources = _env_sources()
    assert {"hive-assets-config", "hive-assets-secrets", "hive-object-storage"} <= set(sources)
    assert set(sources) <= _restart_table_names()


def test_workload_identity_names_every_service_account_that_reads_the_object_store():
    # the run pods run as their own account, which the chart does not annotate: with only the Secret entries
    # deleted, every run failed its first step with `no credentials`
    readers = _env_sources()["hive-object-storage"]
    assert readers == {"webserver", "daemon", "code server", "run pods"}
    run_account = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"][
        "serviceAccountName"]
    text = (DEPLOY / "README.md").read_text()
    paragraph = text[text.index("**Workload identity.**"):].split("\n\n")[0]
    for account in (f"`{run_account}`", "`dagster`", "dagster-user-deployments.serviceAccount.annotations"):
        assert account in paragraph, account


# ------------------------------------------------------------------------------------ concurrency

RETRAIN_RULE = {"key": "hive/retrain", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def test_concurrency_is_configured_in_one_place_per_deployment_and_agrees():
    # Helm: only the run coordinator's queue config; the chart's newer `concurrency:` section stays off,
    # and additionalInstanceConfig carries no concurrency block
    assert "concurrency" not in VALUES
    assert set(VALUES["additionalInstanceConfig"]) == {"run_monitoring", "run_retries"}
    queue = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert VALUES["dagsterDaemon"]["runCoordinator"]["enabled"] is True
    assert queue["tagConcurrencyLimits"] == [RETRAIN_RULE] and queue["maxConcurrentRuns"] == 12
    # deploy/dagster.yaml: only the `concurrency:` block, no run_coordinator section to contradict it
    assert "run_coordinator" not in INSTANCE
    assert INSTANCE["concurrency"]["runs"] == {"max_concurrent_runs": 12, "tag_concurrency_limits": [RETRAIN_RULE]}
    # and the same rule as the repository's embedded instance
    assert ROOT_INSTANCE["concurrency"]["runs"] == INSTANCE["concurrency"]["runs"]
    text = "\n".join(p.read_text() for p in deploy_files() if p.suffix in (".yaml", ".yml"))
    assert text.count("key: hive/retrain") == 2  # values.yaml and dagster.yaml, once each
    # the tag the rule keys on is the one training runs carry
    from hive_assets.defs.k8s import RETRAIN_TAG

    assert RETRAIN_RULE["key"] == RETRAIN_TAG


def test_every_instance_config_has_a_max_runtime():
    helm = VALUES["additionalInstanceConfig"]["run_monitoring"]
    for name, monitoring in (("root", ROOT_INSTANCE["run_monitoring"]), ("deploy", INSTANCE["run_monitoring"]),
                             ("helm", helm)):
        assert monitoring["enabled"] is True and monitoring["max_runtime_seconds"] == 14400, name


def test_every_instance_config_puts_mlflow_s_client_retries_in_the_run_log():
    """MLflow's client retries a registry that stopped answering with urllib3's warnings: the three instance
    configs route that logger into the run's event log (behaviour: defs/test_mlflow_down.py)."""
    for name, loggers in (("root", ROOT_INSTANCE["python_logs"]["managed_python_loggers"]),
                          ("deploy", INSTANCE["python_logs"]["managed_python_loggers"]),
                          ("helm", VALUES["pythonLogs"]["managedPythonLoggers"])):
        assert loggers == ["urllib3.connectionpool"], name

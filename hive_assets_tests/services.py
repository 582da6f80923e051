"""Session fixtures for the real external services: FerretDB (MongoDB wire protocol), Kafka and SeaweedFS (S3).

Imported into conftest.py with `from hive_assets_tests.services import *`.

Where the endpoint comes from, in order:
  1. HIVE_TEST_MONGODB_URI / HIVE_TEST_KAFKA_BOOTSTRAP / HIVE_TEST_S3_ENDPOINT, when set: an already running service (a real
     MongoDB 6+, a `scripts/services.sh up` instance, CI's own...). Used as is, never stopped.
  2. Otherwise `scripts/services.sh up <service>` with a private run directory under pytest's
     basetemp, so a developer's own `services.sh up` instance is left alone; `services.sh down` at
     session end stops exactly the processes this session started.

The binaries are installed by `scripts/services.sh install` (`make services`), never by the fixtures.
If a service is not installed or does not come up: the tests that need it are skipped locally, and
fail when HIVE_REQUIRE_SERVICES=1 (CI), via `require_service`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["ferretdb_uri", "kafka_bootstrap", "kafka_secured", "require_service", "s3_endpoint", "seaweedfs_filer",
           "services_required", "services_run_dir"]

REPO = Path(__file__).resolve().parents[1]
SERVICES_SH = REPO / "scripts" / "services.sh"
UP_TIMEOUT_S = 240
# `up seaweedfs` may first wait for the cold build `make services` started in the background (niced; the
# last cold build here took 21 min on 2 shared cores, by the cache's file times); the tests that need S3 run
# last (conftest), so it is usually done by then
UP_TIMEOUT_S_BY_SERVICE = {"seaweedfs": 850}


def services_required() -> bool:
    """True when a missing service must fail the run (HIVE_REQUIRE_SERVICES=1), not skip it."""
    return os.environ.get("HIVE_REQUIRE_SERVICES", "").strip().lower() in ("1", "true", "yes", "on")


def require_service(what: str, reason: str) -> None:
    """A service the current test needs is unavailable: skip locally, fail under HIVE_REQUIRE_SERVICES=1.

    Never returns.
    """
    if services_required():
        pytest.fail(f"{what} is required (HIVE_REQUIRE_SERVICES=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"{what} unavailable: {reason} (run `bash scripts/services.sh install`, or set HIVE_REQUIRE_SERVICES=1 to fail instead)")


def _tail(text: str, n: int = 1500) -> str:
    text = (text or "").strip()
    return text if len(text) <= n else "..." + text[-n:]


def _read_env(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip():
                out[name.strip()] = value.strip()
    return out


@pytest.fixture(scope="session")
def services_run_dir(tmp_path_factory) -> Path:
    """Private HIVE_SERVICES_RUN_DIR for the services this pytest session starts."""
    return tmp_path_factory.mktemp("hive-services-run")


class _ManagedService:
    """`services.sh up NAME` now, `services.sh down NAME` at the end of the session."""

    def __init__(self, name: str, run_dir: Path):
        self.name = name
        self.run_dir = run_dir
        # the services stop by themselves if this pytest process dies without running the finalizers
        self.env = {**os.environ, "HIVE_SERVICES_RUN_DIR": str(run_dir), "HIVE_SERVICES_WATCH_PID": str(os.getpid())}

    def up(self, what: str) -> dict[str, str]:
        if shutil.which("bash") is None:
            require_service(what, "bash not found")
        timeout = UP_TIMEOUT_S_BY_SERVICE.get(self.name, UP_TIMEOUT_S)
        try:
            proc = subprocess.run(
                ["bash", str(SERVICES_SH), "up", self.name],
                env=self.env, capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            self.down()
            require_service(what, f"`services.sh up {self.name}` did not finish in {timeout}s: {_tail(str(exc.stderr or ''))}")
        if proc.returncode != 0:
            self.down()
            require_service(what, f"`services.sh up {self.name}` failed: {_tail(proc.stderr)}")
        return _read_env(self.run_dir / "env")

    def down(self) -> None:
        subprocess.run(
            ["bash", str(SERVICES_SH), "down", self.name],
            env=self.env, capture_output=True, text=True, timeout=120, check=False,
        )


def _check_mongo(uri: str) -> str | None:
    """None if a MongoDB-protocol server answers ping at `uri`, else why not (password-free)."""
    try:
        import pymongo
    except ImportError as exc:  # pragma: no cover - pymongo is a dependency
        return f"pymongo not importable: {exc}"
    from hive_assets.config import redact_uri

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)
    try:
        client.admin.command("ping")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return f"{redact_uri(uri)} does not answer ping: {type(exc).__name__}"
    finally:
        client.close()


def _check_kafka(bootstrap: str) -> str | None:
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError as exc:  # pragma: no cover - confluent-kafka is a dependency
        return f"confluent_kafka not importable: {exc}"
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000, "log_level": 0})
    try:
        md = admin.list_topics(timeout=10)
        return None if md.brokers else f"no broker listed by {bootstrap}"
    except Exception as exc:  # noqa: BLE001
        return f"{bootstrap} does not answer metadata requests: {exc}"


def _check_s3(endpoint: str) -> str | None:
    """None if an S3 endpoint answers ListBuckets at `endpoint` (http://HOST:PORT), else why not."""
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/", timeout=5) as resp:
            body = resp.read()
    except OSError as exc:
        return f"{endpoint} does not answer ListBuckets: {exc}"
    return None if b"ListAllMyBucketsResult" in body else f"{endpoint} answered ListBuckets with no bucket list"


def _endpoint(name: str, what: str, env_key: str, check, run_dir: Path) -> Iterator[str]:
    """An external endpoint from `env_key` when set (never stopped), else one this session starts."""
    external = os.environ.get(env_key, "").strip()
    if external:
        problem = check(external)
        if problem:
            require_service(what, f"{env_key} is set but {problem}")
        yield external
        return
    service = _ManagedService(name, run_dir)
    env = service.up(what)
    try:
        endpoint = env.get(env_key)
        if not endpoint:
            require_service(what, f"services.sh up wrote no {env_key} into {run_dir / 'env'}")
        problem = check(endpoint)
        if problem:
            require_service(what, problem)
        yield endpoint
    finally:
        service.down()


@pytest.fixture(scope="session")
def ferretdb_uri(services_run_dir) -> Iterator[str]:
    """`mongodb://127.0.0.1:PORT/` of a real FerretDB 1.x (SQLite backend), or HIVE_TEST_MONGODB_URI."""
    yield from _endpoint("ferretdb", "FerretDB (MongoDB wire protocol)", "HIVE_TEST_MONGODB_URI", _check_mongo,
                         services_run_dir)


@pytest.fixture(scope="session")
def kafka_bootstrap(services_run_dir) -> Iterator[str]:
    """`127.0.0.1:PORT` of a real single-node KRaft Kafka broker, or HIVE_TEST_KAFKA_BOOTSTRAP."""
    yield from _endpoint("kafka", "Kafka broker", "HIVE_TEST_KAFKA_BOOTSTRAP", _check_kafka, services_run_dir)


KAFKA_SECURED_KEYS = ("HIVE_TEST_KAFKA_SASL_SSL_BOOTSTRAP", "HIVE_TEST_KAFKA_SSL_BOOTSTRAP", "HIVE_TEST_KAFKA_TLS_DIR",
                      "HIVE_TEST_KAFKA_USER", "HIVE_TEST_KAFKA_PASSWORD")


@pytest.fixture(scope="session")
def kafka_secured(kafka_bootstrap, services_run_dir) -> dict[str, str]:
    """The secured listeners of the broker behind `kafka_bootstrap`: `sasl_ssl` (SCRAM-SHA-512 and PLAIN over TLS)
    and `ssl` (TLS, a client certificate required) bootstrap addresses, `tls_dir` (ca.crt, client.crt,
    client.key), `user` and `password`. Beside an external HIVE_TEST_KAFKA_BOOTSTRAP, from the same variables
    in the environment (`scripts/services.sh env` prints them after `up kafka`)."""
    external = bool(os.environ.get("HIVE_TEST_KAFKA_BOOTSTRAP", "").strip())
    env = os.environ if external else _read_env(services_run_dir / "env")
    values = {key: env.get(key, "").strip() for key in KAFKA_SECURED_KEYS}
    if missing := [key for key, value in values.items() if not value]:
        require_service("Kafka's secured listeners", f"{', '.join(missing)} not set" + (
            " beside HIVE_TEST_KAFKA_BOOTSTRAP" if external else f" by services.sh up in {services_run_dir}"))
    return {"sasl_ssl": values["HIVE_TEST_KAFKA_SASL_SSL_BOOTSTRAP"], "ssl": values["HIVE_TEST_KAFKA_SSL_BOOTSTRAP"],
            "tls_dir": values["HIVE_TEST_KAFKA_TLS_DIR"], "user": values["HIVE_TEST_KAFKA_USER"],
            "password": values["HIVE_TEST_KAFKA_PASSWORD"]}


@pytest.fixture(scope="session")
def s3_endpoint(services_run_dir) -> Iterator[str]:
    """`http://127.0.0.1:PORT` of a real SeaweedFS S3 gateway (anonymous access, empty at start), or
    HIVE_TEST_S3_ENDPOINT."""
    yield from _endpoint("seaweedfs", "SeaweedFS (S3 API)", "HIVE_TEST_S3_ENDPOINT", _check_s3, services_run_dir)


@pytest.fixture(scope="session")
def seaweedfs_filer(s3_endpoint, services_run_dir) -> tuple[str, str]:
    """(`weed` binary, filer address HOST:PORT.GRPC) of the SeaweedFS behind `s3_endpoint`, for a test that
    starts its own `weed s3` gateway with credentials over the same data: HIVE_TEST_S3_FILER and
    HIVE_TEST_SEAWEEDFS_BIN beside an external HIVE_TEST_S3_ENDPOINT, else what this session's `up` wrote."""
    external = bool(os.environ.get("HIVE_TEST_S3_ENDPOINT", "").strip())
    env = os.environ if external else _read_env(services_run_dir / "env")
    binary, filer = env.get("HIVE_TEST_SEAWEEDFS_BIN", "").strip(), env.get("HIVE_TEST_S3_FILER", "").strip()
    if not (binary and filer and Path(binary).is_file()):
        require_service("SeaweedFS filer (a gateway with credentials)",
                        "HIVE_TEST_SEAWEEDFS_BIN / HIVE_TEST_S3_FILER are not set beside HIVE_TEST_S3_ENDPOINT "
                        "(`scripts/services.sh env` prints them after `up seaweedfs`)" if external else
                        f"services.sh up wrote no HIVE_TEST_S3_FILER / HIVE_TEST_SEAWEEDFS_BIN into {services_run_dir}")
    return binary, filer

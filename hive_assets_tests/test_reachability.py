"""`reachability` against a real `mlflow server` behind TLS: the check trusts (and authenticates to) a server
exactly when MLflow's own client does, under the variables MLflow's client reads.

The server asks every client for a certificate signed by the tests' CA (uvicorn's `--ssl-cert-reqs 2`), so one
server shows both sides of TLS: whom the check trusts, and what it presents."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive_assets.reachability import Refusal, reachable
from hive_assets_tests.conftest import start_mlflow_server, stop_process

TLS_VARIABLES = ("MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
                 "MLFLOW_TRACKING_CLIENT_CERT_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _issue(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, as PEM files: `ca`, `server`
    and `server_key`, and `client` (one file with the certificate and its key, as MLflow's client takes it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key, issuer_name, issuer_key, *extensions):
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key or key, hashes.SHA256())

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = certificate("hive tests CA", ca_key, None, None, (x509.BasicConstraints(ca=True, path_length=None), True))
    server = certificate("127.0.0.1", server_key, ca.subject, ca_key,
                         (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
                         (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False))
    client = certificate("hive", client_key, ca.subject, ca_key,
                         (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False))
    files = {"ca": ca.public_bytes(serialization.Encoding.PEM),
             "server": server.public_bytes(serialization.Encoding.PEM), "server_key": pem_key(server_key),
             "client": client.public_bytes(serialization.Encoding.PEM) + pem_key(client_key)}
    for name, content in files.items():
        (directory / f"{name}.pem").write_bytes(content)
    return {name: directory / f"{name}.pem" for name in files}


@pytest.fixture(scope="module")
def tls_mlflow(tmp_path_factory) -> Iterator[tuple[str, dict[str, Path]]]:
    """A real `mlflow server` on HTTPS that requires a client certificate; its URL and the PEM files."""
    root = tmp_path_factory.mktemp("tls-mlflow")
    pems = _issue(root)
    proc, url = start_mlflow_server(
        root, uvicorn_opts=f"--ssl-keyfile {pems['server_key']} --ssl-certfile {pems['server']} "
                           f"--ssl-ca-certs {pems['ca']} --ssl-cert-reqs 2", client_cert=pems["client"])
    yield url, pems
    stop_process(proc)


@pytest.fixture
def tls_settings(monkeypatch):
    """Set exactly the given TLS variables (the others cleared), as a user's shell would."""
    def apply(**values: str) -> None:
        for name in TLS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return apply


def mlflow_client_answers(url: str) -> bool:
    """Whether MLflow's own client, under the process's variables, reads the registry at `url` (no retries)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(tracking_uri=url, registry_uri=url).search_registered_models(max_results=1)
    except MlflowException:
        return False
    return True


# each: the variables set (a name of `_issue`'s files: its path), and the words of the check's answer when it refuses
TRUST_CASES = {
    "nothing set": ({}, "its TLS certificate is not trusted"),
    # a refusal when the server's alert arrives, else a hang-up that names the variable (TLS 1.3)
    "its CA, no client certificate": ({"MLFLOW_TRACKING_SERVER_CERT_PATH": "ca"}, "MLFLOW_TRACKING_CLIENT_CERT_PATH"),
    "its CA and a client certificate": ({"MLFLOW_TRACKING_SERVER_CERT_PATH": "ca",
                                         "MLFLOW_TRACKING_CLIENT_CERT_PATH": "client"}, None),
    "no check, a client certificate": ({"MLFLOW_TRACKING_INSECURE_TLS": "true",
                                        "MLFLOW_TRACKING_CLIENT_CERT_PATH": "client"}, None),
    "requests' CA bundle, a client certificate": ({"REQUESTS_CA_BUNDLE": "ca",
                                                   "MLFLOW_TRACKING_CLIENT_CERT_PATH": "client"}, None),
    "a client certificate only": ({"MLFLOW_TRACKING_CLIENT_CERT_PATH": "client"}, "its TLS certificate is not trusted"),
}


@pytest.mark.parametrize("case", TRUST_CASES)
def test_the_check_trusts_a_tls_server_when_mlflow_s_client_does(tls_mlflow, tls_settings, monkeypatch, case):
    url, pems = tls_mlflow
    settings, refused_words = TRUST_CASES[case]
    tls_settings(**{name: str(pems[value]) if value in pems else value for name, value in settings.items()})
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    verdict = reachable(url)

    # MLflow's client is the independent judge: the check must neither refuse a server it uses (before: urllib's
    # own trust, no client certificate, so every verb refused a working registry) nor pass one it cannot use
    assert (verdict is None) == mlflow_client_answers(url), verdict
    if refused_words is None:
        assert verdict is None
    else:
        assert verdict is not None and refused_words in verdict, verdict
        assert verdict.startswith(f"MLflow at {url}") and "\n" not in verdict


def test_a_tls_file_that_cannot_be_loaded_is_named_with_its_variable(tls_mlflow, tls_settings, tmp_path):
    url, pems = tls_mlflow
    tls_settings(MLFLOW_TRACKING_SERVER_CERT_PATH=str(pems["ca"]),
                 MLFLOW_TRACKING_CLIENT_CERT_PATH=str(tmp_path / "absent.pem"))
    verdict = reachable(url)
    assert isinstance(verdict, Refusal), verdict
    assert verdict == f"MLflow at {url} cannot be asked: MLFLOW_TRACKING_CLIENT_CERT_PATH is unusable (No such file " \
                      "or directory)"
    assert verdict.remedy == "fix MLFLOW_TRACKING_CLIENT_CERT_PATH"

    (not_pem := tmp_path / "not.pem").write_text("not a certificate")
    tls_settings(MLFLOW_TRACKING_SERVER_CERT_PATH=str(not_pem))
    verdict = reachable(url)
    assert isinstance(verdict, Refusal) and verdict.startswith(
        f"MLflow at {url} cannot be asked: MLFLOW_TRACKING_SERVER_CERT_PATH is unusable ("), verdict


def test_https_to_a_server_without_tls_is_a_refusal_naming_the_uri(mlflow_server, tls_settings):
    tls_settings()
    https = mlflow_server.replace("http://", "https://hive:s3cret-pw@")
    verdict = reachable(https)
    assert isinstance(verdict, Refusal), verdict
    assert verdict == f"MLflow at {https.replace('s3cret-pw', '***')} does not speak TLS on that port"
    assert verdict.remedy.startswith("fix MLFLOW_TRACKING_URI")
    assert reachable(mlflow_server) is None  # the same server over http


def test_plain_http_ignores_the_tls_variables(mlflow_server, tls_settings, tmp_path):
    # MLflow's client sends no certificate over http: a stale variable must not refuse a working registry
    tls_settings(MLFLOW_TRACKING_CLIENT_CERT_PATH=str(tmp_path / "absent.pem"))
    assert reachable(mlflow_server) is None
    assert os.environ["MLFLOW_TRACKING_CLIENT_CERT_PATH"].endswith("absent.pem")

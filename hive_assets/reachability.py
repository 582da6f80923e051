"""Whether the MLflow server (or its database) can be used now, in one line without credentials: the CLI asks
before it acts, and the drift sensor before its checks (MLflow's own client retries for minutes, then raises a
traceback; in a sensor evaluation, the UI's preview, that is a minute of waiting and a stack)."""

from __future__ import annotations


REFUSED = "refused the request"
#: seconds before each retry of a step whose MLflow did not answer at its start: about the training step's own
#: policy (5 + 15 s), so a restart of a few seconds is survived, and an outage fails the step in ~21 s, 33 s when
#: each probe times out (MLflow's client retried each request with backoff: 4 minutes per attempt of a step).
#: The io_manager's bucket check waits as long between its requests (`defs/storage.py`)
UNREACHABLE_RETRY_WAITS = (3, 6, 12)


class Refusal(str):
    """The reason of an MLflow that answered but refused its API: no API at the URI's path (404), or the
    credentials MLflow's client would send refused (401, 403): an answer, not an outage (no wait fixes it). A
    string, as every other reason, so callers that only print it need nothing new; `remedy` says what to fix."""

    remedy = "fix MLFLOW_TRACKING_URI"


# what fixes each refusal (the reason itself names the variables: `registry.http_refusal_words`)
REFUSAL_REMEDIES = {401: "fix the credentials", 403: "fix the credentials or the MLflow user's permissions",
                    404: "fix MLFLOW_TRACKING_URI"}


def one_line(text: str, limit: int = 400) -> str:
    """An error message as one line, any URI's password replaced by ***, at most `limit` characters."""
    from hive_assets.config import redact_secrets

    flat = redact_secrets(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def reachable(uri: str, timeout: float = 3.0) -> str | None:
    """None when the MLflow server answers its health check and its API takes the credentials MLflow's client
    would send (or the URI is a local database), else why not, in one line without credentials."""
    import os
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    from hive_assets.config import MLFLOW_DATABASE_SCHEMES, absent_sqlite_database, redact_uri

    if (absent := absent_sqlite_database(uri)) is not None:
        return f"no MLflow database at {absent} yet"

    scheme = urlsplit(uri).scheme.lower()  # schemes are case-insensitive (RFC 3986): HTTP:// is checked too
    if (port := MLFLOW_DATABASE_SCHEMES.get(scheme.partition("+")[0])) is not None:
        return _database_down(uri, port, timeout)
    if scheme not in ("http", "https"):
        return None

    try:
        tls = _client_tls(scheme)
    except _UnusableTlsFile as exc:
        return _refusal(f"MLflow at {redact_uri(uri)} cannot be asked: {exc}", f"fix {exc.variable}")
    try:
        parts = urlsplit(uri)
        # user:password@ is MLflow's basic auth, not part of the host: urllib would look the whole up in DNS
        health = parts._replace(netloc=parts.netloc.rpartition("@")[2], path=parts.path.rstrip("/") + "/health",
                                query="", fragment="")
        with urllib.request.urlopen(health.geturl(), timeout=timeout, context=tls):
            health_status = 200
    except urllib.error.HTTPError as exc:  # an answer (401 behind an auth proxy): it is up
        health_status = exc.code
    except (OSError, ValueError) as exc:  # refused, timed out, unresolvable, malformed: never the URI's text
        cause = getattr(exc, "reason", None)  # urllib's URLError wraps the socket's or TLS's error
        if (tls_refusal := _tls_refusal(uri, cause or exc)) is not None:
            return tls_refusal
        reason = cause or (exc.strerror if isinstance(exc, OSError) else None)
        hint = ""
        if scheme == "https" and not os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") and \
                any(isinstance(e, ConnectionResetError) for e in (exc, cause)):
            # TLS 1.3: a server that wants a client certificate checks it after the handshake, then hangs up
            hint = "; a server that wants a TLS client certificate hangs up so: MLFLOW_TRACKING_CLIENT_CERT_PATH"
        return one_line(f"MLflow at {redact_uri(uri)} unreachable ({reason or type(exc).__name__}{hint})")

    # it answered: one request to its API as MLflow's client sends it. /health needs no login (MLflow's
    # basic-auth app leaves it open), so wrong credentials passed, and every verb then failed on the registry's
    # 401 with a traceback (`hive train` after a minute of a run); a mistyped path answers 404 on both (`hive
    # train` ran a run that rewrote the outputs, then failed on the registry's 404)
    search = health._replace(path=parts.path.rstrip("/") + "/api/2.0/mlflow/registered-models/search",
                             query="max_results=1")
    api_status = _api_status(search, parts, timeout, tls)
    if api_status in (401, 403) or (api_status == 404 and health_status == 404):
        from hive_assets.registry import http_refusal_words

        return _refusal(f"MLflow at {redact_uri(uri)} {REFUSED} ({http_refusal_words(api_status)})",
                        REFUSAL_REMEDIES[api_status])
    return None


def _refusal(reason: str, remedy: str) -> Refusal:
    refusal = Refusal(one_line(reason))
    refusal.remedy = remedy
    return refusal


def _tls_refusal(uri: str, reason: object) -> Refusal | None:
    """The refusal a failed TLS handshake is (no wait fixes it: the trust or the URI is wrong), else None."""
    import ssl

    from hive_assets.config import redact_uri

    if isinstance(reason, ssl.SSLCertVerificationError):
        return _refusal(f"MLflow at {redact_uri(uri)}: its TLS certificate is not trusted ({reason.verify_message})",
                        "set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA bundle that signed it "
                        "(MLFLOW_TRACKING_INSECURE_TLS=true skips the check)")
    if isinstance(reason, ssl.SSLError) and "CERTIFICATE_REQUIRED" in str(reason).upper():
        return _refusal(f"MLflow at {redact_uri(uri)} asks for a TLS client certificate and none was sent",
                        "set MLFLOW_TRACKING_CLIENT_CERT_PATH to one .pem with the certificate and its key")
    if isinstance(reason, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(reason).upper():
        return _refusal(f"MLflow at {redact_uri(uri)} does not speak TLS on that port",
                        "fix MLFLOW_TRACKING_URI (http:// for a server without TLS)")
    return None


def _api_status(url, parts, timeout: float, tls) -> int | None:
    """The HTTP status `url` (a SplitResult) answers with the credentials of `parts` (the tracking URI's), None
    when the request failed (it answered /health: the verb's own call says what is wrong) or MLflow's client
    authenticates by a plugin this request cannot make (MLFLOW_TRACKING_AUTH, MLFLOW_TRACKING_AWS_SIGV4)."""
    import urllib.error
    import urllib.request

    authorization = _client_authorization(parts)
    if authorization is _PLUGIN_AUTH:
        return None
    request = urllib.request.Request(url.geturl(), headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=tls) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def _client_tls(scheme: str):
    """The TLS settings MLflow's client (requests) uses for an https tracking URI, as an ssl context: no checks
    with MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH's CA bundle, else requests' own
    (REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, else certifi's), plus MLFLOW_TRACKING_CLIENT_CERT_PATH's client
    certificate (mlflow.utils.rest_utils.MlflowHostCreds.verify). urllib's defaults (the system's CAs, no client
    certificate) called a server MLflow's client uses unreachable, and every verb refused to start."""
    import os
    import ssl

    if scheme != "https":
        return None
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in ("true", "1"):
        context = ssl._create_unverified_context()
    else:
        variable = next((name for name in ("MLFLOW_TRACKING_SERVER_CERT_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
                         if os.environ.get(name)), None)
        cafile = os.environ[variable] if variable else _certifi_bundle()
        directory = cafile is not None and os.path.isdir(cafile)
        try:
            context = ssl.create_default_context(cafile=None if directory else cafile,
                                                 capath=cafile if directory else None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise _UnusableTlsFile(variable or "certifi's CA bundle", exc) from None
    if client_cert := os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        try:
            context.load_cert_chain(client_cert)  # one .pem with the certificate and its key, as requests takes it
        except (OSError, ValueError) as exc:
            raise _UnusableTlsFile("MLFLOW_TRACKING_CLIENT_CERT_PATH", exc) from None
    return context


class _UnusableTlsFile(Exception):
    """A TLS file named by a variable that cannot be loaded (missing, not PEM, a key that does not match)."""

    def __init__(self, variable: str, exc: Exception):
        self.variable = variable
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        super().__init__(f"{variable} is unusable ({reason})")


def _certifi_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # requests needs certifi; without it, the system's CAs
        return None
    return certifi.where()


_PLUGIN_AUTH = "plugin"  # a request that only MLflow's client (and its auth plugin) can authenticate


def _client_authorization(parts) -> str | None:
    """The Authorization header MLflow's client sends to the tracking URI `parts`, without importing MLflow (a
    second of imports in every sensor tick and CLI verb): basic auth from MLFLOW_TRACKING_USERNAME /
    MLFLOW_TRACKING_PASSWORD, which the URI's user:password@ fills when they are unset (`registry.tracking_target`),
    else from ~/.mlflow/credentials; else a bearer MLFLOW_TRACKING_TOKEN (mlflow.utils.credentials,
    mlflow.utils.rest_utils); `_PLUGIN_AUTH` when an auth plugin or AWS SigV4 signs the requests instead."""
    import base64
    import os
    from urllib.parse import unquote

    if os.environ.get("MLFLOW_TRACKING_AUTH") or \
            os.environ.get("MLFLOW_TRACKING_AWS_SIGV4", "").strip().lower() in ("true", "1"):
        return _PLUGIN_AUTH
    from_uri = {"MLFLOW_TRACKING_USERNAME": unquote(parts.username) if parts.username is not None else None,
                "MLFLOW_TRACKING_PASSWORD": unquote(parts.password) if parts.password is not None else None}
    from_file = _credentials_file()
    username, password = (os.environ.get(name, from_uri[name]) or from_file.get(name.lower())
                          for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"))
    if username and password:
        return "Basic " + base64.standard_b64encode(f"{username}:{password}".encode()).decode()
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return f"Bearer {token}"
    return None


def _credentials_file() -> dict[str, str]:
    """The [mlflow] section of ~/.mlflow/credentials (MLflow's client reads it when the variables are unset)."""
    import configparser
    import os

    path = os.path.expanduser("~/.mlflow/credentials")
    if not os.path.exists(path):
        return {}
    config = configparser.ConfigParser()
    try:
        config.read(path)
    except (OSError, configparser.Error):  # MLflow's client fails on it its own way
        return {}
    return dict(config["mlflow"]) if "mlflow" in config else {}


def _database_down(uri: str, default_port: int, timeout: float) -> str | None:
    """Whether MLflow's database server accepts a connection (MLflow itself retries for minutes, then prints
    a traceback); None when it does."""
    import socket
    from urllib.parse import urlsplit

    from hive_assets.config import redact_uri

    try:
        parts = urlsplit(uri)
        with socket.create_connection((parts.hostname or "localhost", parts.port or default_port), timeout=timeout):
            return None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return one_line(f"MLflow's database at {redact_uri(uri)} unreachable ({reason})")


def registry_down(uri: str) -> str | None:
    """Why the MLflow server or database at `uri` cannot be used now (one line, no credentials), or None;
    the embedded registry is a local file, never "down" (a database not created yet is not an outage)."""
    return None if uri.startswith("sqlite:") else reachable(uri)

"""Whether the MLflow server (or its database) can be used now, in one line without credentials: the CLI asks
before it acts, and the drift sensor before its checks (MLflow's own client retries for minutes, then raises a
traceback; in a sensor evaluation, the UI's preview, that is a minute of waiting and a stack)."""

from __future__ import annotations


REFUSED = "refused the request"


class Refusal(str):
    """The reason of an MLflow that answered but has no API at the URI's path: an answer, not an outage (no
    wait fixes it). A string, as every other reason, so callers that only print it need nothing new."""


def one_line(text: str, limit: int = 400) -> str:
    """An error message as one line, any URI's password replaced by ***, at most `limit` characters."""
    from hive_assets.config import redact_secrets

    flat = redact_secrets(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def reachable(uri: str, timeout: float = 3.0) -> str | None:
    """None when the MLflow server answers its health check (or the URI is a local database), else why not,
    in one line without credentials."""
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
        parts = urlsplit(uri)
        # user:password@ is MLflow's basic auth, not part of the host: urllib would look the whole up in DNS
        health = parts._replace(netloc=parts.netloc.rpartition("@")[2], path=parts.path.rstrip("/") + "/health",
                                query="", fragment="")
        with urllib.request.urlopen(health.geturl(), timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:  # an answer (401 behind an auth proxy): it is up, unless nothing
        # at this path is MLflow (a mistyped path: `hive train` ran a run that rewrote the outputs, then
        # failed on the registry's 404)
        if exc.code == 404 and _answers_404(health._replace(
                path=parts.path.rstrip("/") + "/api/2.0/mlflow/registered-models/search", query="max_results=1"),
                timeout):
            from hive_assets.registry import http_refusal_words

            return Refusal(one_line(f"MLflow at {redact_uri(uri)} {REFUSED} ({http_refusal_words(404)})"))
        return None
    except (OSError, ValueError) as exc:  # refused, timed out, unresolvable, malformed: never the URI's text
        reason = getattr(exc, "reason", None) or (exc.strerror if isinstance(exc, OSError) else None)
        return one_line(f"MLflow at {redact_uri(uri)} unreachable ({reason or type(exc).__name__})")


def _answers_404(url, timeout: float) -> bool:
    """Whether `url` (a SplitResult) is answered with HTTP 404; any other answer or failure is not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url.geturl(), timeout=timeout):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    except (OSError, ValueError):  # it answered /health: the run's own call says what is wrong
        return False


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

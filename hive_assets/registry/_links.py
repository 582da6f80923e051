"""Links into the MLflow UI built from the tracking URI.

Only an http(s) tracking URI has a UI to link to; a sqlite or file store has none, so every function
returns None there (the caller shows no link rather than a broken one). The base keeps scheme, host,
port and path, and drops user:password@, the query string and the fragment: a link must never carry a
credential into metadata, logs or a browser history.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def ui_base(tracking_uri: str | None) -> str | None:
    """The MLflow UI's base URL for `tracking_uri`, without credentials or query; None without a UI."""
    if not tracking_uri:
        return None
    parts = urlsplit(tracking_uri.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"  # IPv6 literal
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def run_url(tracking_uri: str | None, experiment_id: str, run_id: str) -> str | None:
    """`<base>/#/experiments/<experiment_id>/runs/<run_id>`, or None without a UI."""
    base = ui_base(tracking_uri)
    if base is None:
        return None
    return f"{base}/#/experiments/{quote(str(experiment_id), safe='')}/runs/{quote(str(run_id), safe='')}"


def model_version_url(tracking_uri: str | None, name: str, version: str) -> str | None:
    """`<base>/#/models/<name>/versions/<version>`, or None without a UI."""
    base = ui_base(tracking_uri)
    if base is None:
        return None
    return f"{base}/#/models/{quote(str(name), safe='')}/versions/{quote(str(version), safe='')}"

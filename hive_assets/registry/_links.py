"""Links into the MLflow UI, and from MLflow back to the Dagster UI.

The MLflow UI's address is `MLFLOW_UI_URL` when set (e.g. `http://127.0.0.1:5000` for `mlflow ui` on a
local sqlite store, or a proxy in front of the tracking server), else the tracking URI itself when it is
http(s). A sqlite or file store without MLFLOW_UI_URL has no known UI, so every function returns None
there (the caller shows no link rather than a broken one). The base keeps scheme, host, port and path,
and drops user:password@, the query string and the fragment: a link must never carry a credential into
metadata, logs or a browser history. `DAGSTER_WEBSERVER_URL` (the Dagster UI's address) gives the link
from an MLflow run back to the Dagster run that made it.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit, urlunsplit

MLFLOW_UI_URL = "MLFLOW_UI_URL"
DAGSTER_WEBSERVER_URL = "DAGSTER_WEBSERVER_URL"


def ui_base(tracking_uri: str | None) -> str | None:
    """The MLflow UI's base URL (MLFLOW_UI_URL, else an http(s) `tracking_uri`), without credentials or
    query; None without a known UI."""
    return _http_base(os.environ.get(MLFLOW_UI_URL) or tracking_uri)


def dagster_run_url(dagster_run_id: str) -> str | None:
    """`<DAGSTER_WEBSERVER_URL>/runs/<id>`, or None when the Dagster UI's address is not set."""
    base = _http_base(os.environ.get(DAGSTER_WEBSERVER_URL))
    return f"{base}/runs/{quote(str(dagster_run_id), safe='')}" if base else None


def _http_base(url: str | None) -> str | None:
    if not url:
        return None
    try:  # a URL urlsplit cannot read (an unclosed IPv6 '[', a port that is no number): no link, no traceback
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"  # IPv6 literal
    netloc = host if port is None else f"{host}:{port}"
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

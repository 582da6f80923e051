"""A real `mlflow server --app-name basic-auth` (mlflow[auth], the `test` extra), for the faults only credentials
show: /health answers without a login, every API request without its user's credentials answers 401.

The server imports this module for its authorization function (`authenticate_basic_or_token`), so the module
imports only the standard library at its top: the test helpers (pytest among them) are imported where used."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

# the server's admin, its only user: the platform's account (a user with MLflow's default READ permission is
# refused, 403, the alias lookup `hive status` makes of a model not registered yet); MLflow wants 12 characters
USERNAME, PASSWORD = "hive", "right-password"
TOKEN = "hive-test-token"  # a bearer token the server takes as USERNAME's (`authenticate_basic_or_token`)
# an API request in the server's access log (uvicorn's): `"GET /api/2.0/... HTTP/1.1" 401`
ACCESS_LOG_API_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>/api/\S*) HTTP/[\d.]+" (?P<status>\d{3})')


def authenticate_basic_or_token():
    """The server's `authorization_function` (MLflow's hook for custom authentication): MLflow's own basic auth,
    and a bearer TOKEN as USERNAME. MLflow's client sends MLFLOW_TRACKING_TOKEN as a bearer token, which the
    basic-auth app alone refuses whatever it is: only a server that takes one shows that it was sent."""
    from flask import request
    from mlflow.server.auth import authenticate_request_basic_auth, make_basic_auth_response
    from werkzeug.datastructures import Authorization

    sent = request.authorization
    if sent is not None and sent.type == "bearer":
        return Authorization("bearer", {"username": USERNAME}) if sent.token == TOKEN else make_basic_auth_response()
    return authenticate_request_basic_auth()


class BasicAuthMlflow:
    """A real basic-auth `mlflow server` on a free loopback port, its backend store, artifacts, user store and
    log under `root`. `url` holds no credentials; `close()` stops the server (its process group)."""

    def __init__(self, root: Path):
        import importlib.util

        from hive_assets_tests.conftest import start_mlflow_server
        from hive_assets_tests.services import require_service

        if importlib.util.find_spec("flask_wtf") is None:  # else the server exits with an ImportError in its log
            require_service("mlflow basic-auth server", "mlflow[auth] not installed (Flask-WTF): `make install`")
        config = root / "basic_auth.ini"
        config.write_text(f"""[mlflow]
default_permission = READ
database_uri = sqlite:///{root / 'basic_auth.db'}
admin_username = {USERNAME}
admin_password = {PASSWORD}
authorization_function = {__name__}:{authenticate_basic_or_token.__name__}
""")
        self._proc, self.url = start_mlflow_server(
            root, app_name="basic-auth",
            # the app refuses to start without a secret key (CSRF of its sign-up form); any one does for one server
            env={"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)})
        self.port = int(self.url.rsplit(":", 1)[1])
        self._log = root / "server.log"

    def with_credentials(self, username: str, password: str) -> str:
        """The server's URL with `username:password@` (MLflow's basic auth in the tracking URI)."""
        return self.url.replace("http://", f"http://{username}:{password}@")

    def api_requests(self) -> list[tuple[str, str, int]]:
        """(method, path with query, status) of every API request the server answered so far, in order."""
        return [(m["method"], m["path"], int(m["status"]))
                for m in ACCESS_LOG_API_REQUEST.finditer(self._log.read_text(errors="replace"))]

    def close(self) -> None:
        from hive_assets_tests.conftest import stop_process

        stop_process(self._proc)

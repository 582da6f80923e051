"""An MLflow stand-in with the shape of MLflow's basic-auth app, for one fault a real server cannot show here:
wrong credentials. `mlflow server --app-name basic-auth` needs Flask-WTF (`mlflow[auth]`), which the project
does not install; its behaviour this stands in for: /health answers 200 without a login, every API request
without the accepted credentials answers 401 with MLflow's UNAUTHENTICATED body."""

from __future__ import annotations

import base64
import http.server
import threading

from hive_assets_tests.conftest import free_port


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.standard_b64encode(f"{username}:{password}".encode()).decode()


class BasicAuthMlflow:
    """A loopback HTTP server in a thread of the test process: /health is 200; an API request whose
    Authorization header is `accepted` is 200 with an empty search result, any other 401. `authorizations`:
    the Authorization header of each API request, in order ("" when none was sent)."""

    def __init__(self, accepted: str):
        self.accepted, self.authorizations = accepted, []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handler(self):
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                if self.path.startswith("/health"):
                    return self._send(200, b"OK", "text/plain")
                authorization = self.headers.get("Authorization", "")
                stand_in.authorizations.append(authorization)
                if authorization == stand_in.accepted:
                    return self._send(200, b"{}", "application/json")
                self._send(401, b'{"error_code": "UNAUTHENTICATED", "message": "You are not authenticated."}',
                           "application/json", {"WWW-Authenticate": 'Basic realm="mlflow"'})

            def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
                self.send_response(status)
                for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)),
                                    **(headers or {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):  # the test's output is the verb's, not the stand-in's access log
                pass

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

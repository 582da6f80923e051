"""A loopback port in front of a real server, for faults the server does not produce on demand."""

from __future__ import annotations

import socket
import threading

from hive_assets_tests.conftest import free_port


class TcpForwarder:
    """A real loopback port that forwards each connection to `target_port` (an `mlflow server`, FerretDB).

    `listening=False`: the port refuses connections until `open()` (MLflow coming back at a known moment,
    without restarting it, which takes 20-50 s). `hold()`: from then on, whatever is sent either way is held,
    not forwarded, until `release()` (an MLflow that keeps the connection and never answers: a hung server, a
    black-holed network). `cut()`: every open connection dropped and new ones refused until `open()` (a server
    that stopped, then came back on the same port)."""

    def __init__(self, target_port: int, *, listening: bool = True):
        self.port, self.target_port, self._server = free_port(), target_port, None
        self._flowing = threading.Event()
        self._flowing.set()
        self._relayed: list[socket.socket] = []
        if listening:
            self.open()

    def open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        self.close()
        for sock in list(self._relayed):
            self._shut(sock)
        self._relayed.clear()

    def close(self) -> None:
        self.release()
        if self._server is not None:
            # shut down first: close() alone does not wake the thread blocked in accept(), which then took one
            # more connection after a cut (a client reconnecting at once reached the "stopped" server)
            self._shut(self._server)
            self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._relayed += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:  # the other side closed: this relay ends with it
            pass
        finally:
            for sock in (source, sink):
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

"""The heartbeat of a held lease: a daemon thread that renews it every third of its TTL, so a long step
keeps its lease and a killed process loses it within one TTL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hive_assets.data.store.base import DocumentStore
from hive_assets.runs._leases import Lease, renew


class Heartbeat:
    """Renews `lease` until `stop()`. `on_lost(message)` is called once if the lease was taken over (this
    process was considered gone) or the store could not be reached for a whole TTL."""

    def __init__(self, open_store: Callable[[], DocumentStore], lease: Lease,
                 on_lost: Callable[[str], None] | None = None, interval_seconds: float | None = None):
        self._open_store, self.lease = open_store, lease
        self._on_lost = on_lost or (lambda _message: None)
        self.interval = interval_seconds or max(1.0, lease.ttl_seconds / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-heartbeat-{lease.lease_id}", daemon=True)
        self.lost: str | None = None

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failures = 0
        with self._open_store() as store:
            while not self._stop.wait(self.interval):
                try:
                    if renew(store, self.lease):
                        failures = 0
                        continue
                    self._lose(f"{self.lease.describe()} was taken over by another run")
                    return
                except Exception as exc:  # the store is unreachable: keep trying until the TTL is spent
                    failures += 1
                    if failures * self.interval >= self.lease.ttl_seconds:
                        self._lose(f"{self.lease.describe()} could not be renewed for a whole TTL: {exc}")
                        return

    def _lose(self, message: str) -> None:
        self.lost = message
        self._on_lost(message)

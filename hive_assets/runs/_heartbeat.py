"""The heartbeat of a held lease: a daemon thread that renews it every third of its TTL, so a long step
keeps its lease and a killed process loses it within one TTL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hive_assets.data.store.base import DocumentStore
from hive_assets.runs._leases import Lease, renew

#: seconds between renewals while the store does not answer: the lease is renewed soon after it is back
RETRY_SECONDS = 5.0


class Heartbeat:
    """Renews `lease` until `stop()`. `on_lost(message)` is called once, when a renewal finds the lease taken over
    (this process was considered gone, or another run took the lease once it went stale).

    A store that does not answer is retried every few seconds for as long as it takes: nobody else can take the
    lease while the store is down, and once it is back, a renewal (a compare-and-swap on the token) either keeps
    the lease or finds it taken over. Giving up after a TTL failed a run hours into training for a store
    failover of two minutes, at the registration's check. `overdue` says the last renewal is a TTL old, when
    another run may take the lease: a write as the holder confirms first (`confirm`)."""

    def __init__(self, open_store: Callable[[], DocumentStore], lease: Lease,
                 on_lost: Callable[[str], None] | None = None, interval_seconds: float | None = None):
        self._open_store, self.lease = open_store, lease
        self._on_lost = on_lost or (lambda _message: None)
        self.interval = interval_seconds or max(1.0, lease.ttl_seconds / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-heartbeat-{lease.lease_id}", daemon=True)
        self._lock = threading.Lock()
        self._renewed = time.monotonic()  # acquired just now
        self.lost: str | None = None

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    @property
    def overdue(self) -> bool:
        """Whether the last renewal is a whole TTL old: the lease may look stale to other runs."""
        return time.monotonic() - self._renewed >= self.lease.ttl_seconds

    def confirm(self) -> bool:
        """Renew now, from the caller's thread: True when the lease is still this holder's (it is renewed),
        False when it was taken over (`lost` says so). The store's error, when it does not answer, is raised."""
        if self.lost:
            return False
        with self._open_store() as store:
            return self._renew(store)

    def _renew(self, store: DocumentStore) -> bool:
        if renew(store, self.lease):
            self._renewed = time.monotonic()
            return True
        self._lose(f"{self.lease.describe()} was taken over by another run")
        return False

    def _run(self) -> None:
        wait = self.interval
        with self._open_store() as store:
            while not self._stop.wait(wait):
                try:
                    if not self._renew(store):
                        return
                    wait = self.interval
                except Exception:  # the store does not answer: again soon, for as long as it takes
                    wait = min(self.interval, RETRY_SECONDS)

    def _lose(self, message: str) -> None:
        with self._lock:
            if self.lost:
                return
            self.lost = message
        self._on_lost(message)

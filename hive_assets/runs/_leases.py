"""Run leases: one writer per (job kind, specialist), whatever launched the run.

A lease is one document in `run_leases` with the deterministic id `<kind>:<specialist>`: its owner (a
Dagster run id), a random `token` that changes with every acquisition, the holder's host and pid, the
last heartbeat and the expiry. Who holds it is decided by the unique key index alone, on every store:

* every acquisition is an `insert_new` (the unique key index lets exactly one writer in): taking over a
  released or stale lease first deletes that document (filtered on its `token`, as read), then inserts
  its own. Not an update in place: FerretDB 1.x runs an update as a read and then a write by `_id`, so two
  runs that read the same released document both "swapped" its token and both held the lease (13-19 of
  30 rounds in the production audit). Two deletes of one document are one; two inserts, one wins; a
  taker that dies between them leaves no document, which the next run simply inserts;
* renewing and releasing are updates filtered on `lease_id` and `token` by the holder alone; a renewal
  reads the lease back, so a holder whose lease was taken over (its heartbeats late by a whole TTL)
  learns it at its next heartbeat even where the update was not atomic.

A holder is stale when its lease expired (no heartbeat within the TTL), or, on the same host, when its
process is gone (a pid check needs no waiting). Times are the wall clock (`clock.wall_now`): a lease
measures whether a process is alive, which a simulated clock cannot tell.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hive_assets import clock
from hive_assets.data import to_utc
from hive_assets.data.store.base import DocumentStore

COLLECTION = "run_leases"
HELD = "held"
RELEASED = "released"

#: the kinds of work that must not overlap on one specialist: retraining writes the partition's outputs
#: and registers versions; operator work moves aliases and decides A/B tests; a review-queue refresh spends
#: the day's review budget (two at once could each see it unspent)
TRAINING = "training"
OPERATOR = "operator"
REVIEW = "review"
KINDS = (TRAINING, OPERATOR, REVIEW)


def lease_id(kind: str, specialist: str) -> str:
    return f"{kind}:{specialist}"


def this_host() -> str:
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 probes without signalling)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, ValueError, TypeError):
        return False
    return True


def stale_reason(doc: dict[str, Any], now: datetime, host: str | None = None) -> str | None:
    """Why the holder of a held lease is gone ("lease expired ...", "process ... is gone"), or None
    while it is alive. A released lease has no holder: None."""
    if doc.get("state") != HELD:
        return None
    expires = to_utc(doc.get("expires_at"))
    if expires is None or expires <= now:
        beat = to_utc(doc.get("heartbeat_at"))
        ago = f"{(now - beat).total_seconds():.0f} s ago" if beat else "never"
        return f"lease expired (last heartbeat {ago})"
    return process_gone(doc.get("host"), doc.get("pid"), host)


def process_gone(on_host: str | None, pid: int | str | None, host: str | None = None) -> str | None:
    """"process <pid> on <host> is gone" when `on_host` is this host (or `host`) and no process has that pid;
    None when it lives, or when it is another host's (a pid means nothing elsewhere)."""
    if on_host and on_host == (host or this_host()) and pid and not process_alive(pid):
        return f"process {pid} on {on_host} is gone"
    return None


@dataclass(frozen=True)
class Lease:
    """A lease this process holds (the token proves it)."""

    lease_id: str
    kind: str
    specialist: str
    owner_run_id: str
    token: str
    ttl_seconds: float

    def describe(self) -> str:
        return f"{self.kind} lease of {self.specialist} (run {self.owner_run_id})"


class LeaseHeld(RuntimeError):
    """Another live run holds the lease; the message names it."""

    def __init__(self, doc: dict[str, Any], waited_s: float):
        self.holder = doc
        beat = to_utc(doc.get("heartbeat_at"))
        super().__init__(
            f"another run of {doc['specialist_type']} holds it (run {doc['owner_run_id']}, {doc['kind']} "
            f"{doc.get('job_name') or 'run'}, on {doc.get('host')} pid {doc.get('pid')}, heartbeat "
            f"{beat.isoformat(timespec='seconds') if beat else 'never'}); waited {waited_s:.0f} s. Retry when it "
            "ends, or run `hive doctor` if that run is dead")


def _fields(kind: str, specialist: str, owner_run_id: str, ttl_seconds: float, now: datetime,
            job_name: str | None) -> dict[str, Any]:
    return {"lease_id": lease_id(kind, specialist), "kind": kind, "specialist_type": specialist,
            "owner_run_id": owner_run_id, "token": uuid.uuid4().hex, "state": HELD, "job_name": job_name,
            "host": this_host(), "pid": os.getpid(), "acquired_at": now, "heartbeat_at": now,
            "expires_at": now + timedelta(seconds=ttl_seconds), "released_at": None, "release_reason": None}


def try_acquire(store: DocumentStore, kind: str, specialist: str, owner_run_id: str, *, ttl_seconds: float,
                job_name: str | None = None) -> tuple[Lease | None, dict[str, Any] | None]:
    """One attempt: (lease, previous holder's document when a stale holder was displaced), or
    (None, the live holder's document). Re-entrant for the same owner run (a retried step)."""
    lid = lease_id(kind, specialist)
    for _ in range(5):  # a lost compare-and-swap means someone else moved: look again
        now = clock.wall_now()
        wanted = _fields(kind, specialist, owner_run_id, ttl_seconds, now, job_name)
        if store.insert_new(COLLECTION, wanted):
            return Lease(lid, kind, specialist, owner_run_id, wanted["token"], ttl_seconds), None
        current = store.find_one(COLLECTION, {"lease_id": lid})
        if current is None:
            continue  # deleted in between
        mine = current.get("state") == HELD and current.get("owner_run_id") == owner_run_id
        stale = stale_reason(current, now)
        if current.get("state") == HELD and not mine and stale is None:
            return None, current
        if mine:  # same run again (a retried step, a re-entrant setup): keep the token, refresh the rest
            wanted["token"] = current["token"]
            wanted["acquired_at"] = current.get("acquired_at") or now
            if store.update_one(COLLECTION, {"lease_id": lid, "token": current["token"]}, wanted):
                return Lease(lid, kind, specialist, owner_run_id, wanted["token"], ttl_seconds), None
            continue
        # released, or its holder gone: that document out (as read: a holder's renewal since keeps it on
        # SQLite), then the unique index decides between the runs that want it
        store.delete_many(COLLECTION, _as_read(current))
        if store.insert_new(COLLECTION, wanted):
            displaced = {**current, "stale_reason": stale} if stale else None
            return Lease(lid, kind, specialist, owner_run_id, wanted["token"], ttl_seconds), displaced
    current = store.find_one(COLLECTION, {"lease_id": lid}) or {"specialist_type": specialist, "kind": kind,
                                                                 "owner_run_id": "?"}
    return None, current


def _as_read(doc: dict[str, Any]) -> dict[str, Any]:
    """A filter matching `doc` only as it was read: its id, token and state, and its heartbeat when it had one."""
    match = {"lease_id": doc["lease_id"], "token": doc["token"], "state": doc.get("state")}
    if doc.get("heartbeat_at") is not None:
        match["heartbeat_at"] = doc["heartbeat_at"]
    return match


def acquire(store: DocumentStore, kind: str, specialist: str, owner_run_id: str, *, ttl_seconds: float,
            wait_seconds: float = 0.0, job_name: str | None = None, poll_seconds: float = 1.0,
            on_wait: Callable[[dict[str, Any]], None] | None = None) -> tuple[Lease, dict[str, Any] | None]:
    """The lease, waiting up to `wait_seconds` for a live holder to release it; LeaseHeld after that.
    Returns (lease, the displaced stale holder's document or None)."""
    started = time.monotonic()
    told = False
    while True:
        lease, other = try_acquire(store, kind, specialist, owner_run_id, ttl_seconds=ttl_seconds, job_name=job_name)
        if lease is not None:
            return lease, other
        waited = time.monotonic() - started
        if waited >= wait_seconds:
            raise LeaseHeld(other, waited)
        if on_wait and not told:
            on_wait(other)
            told = True
        time.sleep(min(poll_seconds, max(0.05, wait_seconds - waited)))


def renew(store: DocumentStore, lease: Lease) -> bool:
    """Push the expiry one TTL ahead (the heartbeat). False when the lease is no longer this holder's: taken
    over (another token), or released as stale by another run's start check (`release_stale` keeps the token)."""
    now = clock.wall_now()
    if not store.update_one(COLLECTION, {"lease_id": lease.lease_id, "token": lease.token, "state": HELD},
                            {"heartbeat_at": now, "expires_at": now + timedelta(seconds=lease.ttl_seconds)}):
        return False
    # read back: where an update is a read then a write (FerretDB 1.x), one racing a takeover "matched" a
    # document that another run had replaced by then
    current = store.find_one(COLLECTION, {"lease_id": lease.lease_id})
    return current is not None and current.get("token") == lease.token and current.get("state") == HELD


def release(store: DocumentStore, lease: Lease, reason: str = "run ended") -> bool:
    """Give the lease up. False when it was no longer this holder's (taken over meanwhile)."""
    now = clock.wall_now()
    return bool(store.update_one(COLLECTION, {"lease_id": lease.lease_id, "token": lease.token},
                                 {"state": RELEASED, "released_at": now, "expires_at": now,
                                  "release_reason": reason}))


def release_stale(store: DocumentStore, doc: dict[str, Any], reason: str) -> bool:
    """Release a lease whose holder is gone: compare-and-swap on its token and last heartbeat, as read,
    so a takeover or a heartbeat since then wins."""
    now = clock.wall_now()
    return bool(store.update_one(COLLECTION, {"lease_id": doc["lease_id"], "token": doc["token"], "state": HELD,
                                              "heartbeat_at": doc["heartbeat_at"]},
                                 {"state": RELEASED, "released_at": now, "expires_at": now,
                                  "release_reason": reason}))


def held_leases(store: DocumentStore, specialist: str | None = None) -> list[dict[str, Any]]:
    """Leases currently marked held (alive or stale), for one specialist or all."""
    query: dict[str, Any] = {"state": HELD}
    if specialist is not None:
        query["specialist_type"] = specialist
    return list(store.find(COLLECTION, query))


def leases_of_run(store: DocumentStore, run_id: str) -> list[dict[str, Any]]:
    return list(store.find(COLLECTION, {"owner_run_id": run_id}))

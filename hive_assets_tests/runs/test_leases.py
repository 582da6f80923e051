"""Run leases on both stores (SQLite, and MongoDB's protocol on the real FerretDB): one holder under
contention, waiting for a release, takeover of a stale holder, a lost lease noticed by its holder."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from hive_assets import clock, runs
from hive_assets_tests.data.store import any_store  # noqa: F401


def test_one_holder_among_racing_runs_and_the_loser_names_it(any_store):
    winners, losers, errors = [], [], []
    barrier = threading.Barrier(6)
    any_store.count(runs.COLLECTION)  # the collection and its unique index exist before the race

    def race(i: int) -> None:
        barrier.wait()
        try:
            lease, other = runs.try_acquire(any_store, runs.TRAINING, "evolution", f"run-{i}", ttl_seconds=60)
        except Exception as exc:  # collected: the assertion below shows it
            errors.append(repr(exc))
            return
        (winners if lease else losers).append((i, lease, other))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(winners) == 1 and len(losers) == 5, errors
    holder = f"run-{winners[0][0]}"
    assert {other["owner_run_id"] for _, _, other in losers} == {holder}
    with pytest.raises(runs.LeaseHeld, match=rf"another run of evolution holds it \(run {holder}, training"):
        runs.acquire(any_store, runs.TRAINING, "evolution", "late-run", ttl_seconds=60, wait_seconds=0)
    # another kind or another specialist is another lease
    assert runs.try_acquire(any_store, runs.OPERATOR, "evolution", "op-run", ttl_seconds=60)[0] is not None
    assert runs.try_acquire(any_store, runs.TRAINING, "business", "other-run", ttl_seconds=60)[0] is not None
    # the holder again (a retried step) keeps it
    again, _ = runs.try_acquire(any_store, runs.TRAINING, "evolution", holder, ttl_seconds=60)
    assert again is not None and again.token == winners[0][1].token


def test_one_holder_among_runs_racing_for_a_released_lease(any_store):
    """After a partition's first run its lease document exists, released: every later acquisition is a
    takeover. Taken by a compare-and-swap update, two runs both held it on FerretDB (an update there is a
    read, then a write by `_id`): 13-19 of 30 rounds of two runs in the production audit. 20 rounds of 4."""
    first, _ = runs.acquire(any_store, runs.TRAINING, "architecture", "first", ttl_seconds=60)
    runs.release(any_store, first)
    for round_ in range(20):
        barrier, got, errors = threading.Barrier(4), [], []

        def race(i: int) -> None:
            barrier.wait()
            try:
                got.append(runs.try_acquire(any_store, runs.TRAINING, "architecture", f"r{round_}-{i}",
                                            ttl_seconds=60)[0])
            except Exception as exc:  # collected: the assertion below shows it
                errors.append(repr(exc))

        threads = [threading.Thread(target=race, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        held = [lease for lease in got if lease is not None]
        assert not errors and len(held) == 1, (round_, errors, held)
        stored = any_store.find(runs.COLLECTION, {"lease_id": held[0].lease_id})
        assert [(d["owner_run_id"], d["token"]) for d in stored] == [(held[0].owner_run_id, held[0].token)]
        assert runs.renew(any_store, held[0]) and runs.release(any_store, held[0])


def test_a_waiting_run_gets_the_lease_when_the_holder_releases(any_store):
    first, _ = runs.acquire(any_store, runs.TRAINING, "technical", "first", ttl_seconds=60)
    timer = threading.Timer(0.5, lambda: runs.release(any_store, first))
    timer.start()
    waited = []
    second, displaced = runs.acquire(any_store, runs.TRAINING, "technical", "second", ttl_seconds=60, wait_seconds=20,
                                     poll_seconds=0.1, on_wait=waited.append)
    timer.join()
    assert second.owner_run_id == "second" and displaced is None
    assert [w["owner_run_id"] for w in waited] == ["first"]
    assert not runs.renew(any_store, first)  # the first holder's token is spent
    assert runs.renew(any_store, second)


def test_a_stale_holder_is_displaced_and_its_heartbeat_notices(any_store):
    old, _ = runs.acquire(any_store, runs.TRAINING, "behavior", "killed-run", ttl_seconds=60)
    # the holder stopped renewing: its expiry passed
    any_store.update_one(runs.COLLECTION, {"lease_id": old.lease_id},
                         {"expires_at": clock.wall_now() - timedelta(seconds=1)})
    doc = any_store.find_one(runs.COLLECTION, {"lease_id": old.lease_id})
    assert runs.stale_reason(doc, clock.wall_now()).startswith("lease expired")
    new, displaced = runs.acquire(any_store, runs.TRAINING, "behavior", "next-run", ttl_seconds=60)
    assert displaced["owner_run_id"] == "killed-run" and displaced["stale_reason"].startswith("lease expired")
    lost = []
    beat = runs.Heartbeat(lambda: _same(any_store), old, on_lost=lost.append, interval_seconds=0.1).start()
    for _ in range(50):
        if lost:
            break
        threading.Event().wait(0.1)
    beat.stop()
    assert lost and "taken over" in lost[0]


def test_a_lease_released_as_stale_is_not_renewed_by_its_late_heartbeat(any_store):
    """Another run's start check released the lease of a holder it found stale (its store was down): the holder's
    next renewal must say "lost", not push the expiry of a released lease and go on writing as the holder."""
    late, _ = runs.acquire(any_store, runs.TRAINING, "technical", "late-run", ttl_seconds=60)
    doc = any_store.find_one(runs.COLLECTION, {"lease_id": late.lease_id})
    assert runs.release_stale(any_store, doc, "lease expired (the start check of another run)")
    assert not runs.renew(any_store, late)
    assert any_store.find_one(runs.COLLECTION, {"lease_id": late.lease_id})["state"] == runs.RELEASED
    beat = runs.Heartbeat(lambda: _same(any_store), late)
    assert beat.confirm() is False and "taken over" in beat.lost


def test_a_dead_process_on_this_host_is_stale_at_once(any_store):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    lease, _ = runs.acquire(any_store, runs.OPERATOR, "architecture", "gone-run", ttl_seconds=3600)
    any_store.update_one(runs.COLLECTION, {"lease_id": lease.lease_id}, {"pid": dead_pid})
    doc = any_store.find_one(runs.COLLECTION, {"lease_id": lease.lease_id})
    assert runs.stale_reason(doc, clock.wall_now()) == f"process {dead_pid} on {runs.this_host()} is gone"
    assert runs.stale_reason(doc, clock.wall_now(), host="another-host") is None  # only expiry counts there
    assert runs.release_stale(any_store, doc, "test")
    assert not runs.release_stale(any_store, doc, "twice")  # compare-and-swap: the state moved on


class _same:
    """The test's store as a context manager that does not close it (the heartbeat opens its own)."""

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        return self.store

    def __exit__(self, *exc):
        return None

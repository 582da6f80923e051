"""A/B test records in the `ab_tests` collection (SPEC section 7).

State lives in the store, never in process memory or /tmp: the start time and the traffic history
survive restarts. The rollout controller (schedule, sequential statistics) builds on these records.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

from hive_assets import clock
from hive_assets.data.store.base import DocumentStore
from hive_assets.routing import MIN_TRAFFIC_PERCENT

RUNNING = "running"
SUPERSEDED = "superseded"


def next_look(test: dict[str, Any], interval: timedelta) -> datetime:
    """When a running test is due for its next look on the platform clock: its last look (or its opening)
    plus the check interval, less a tenth of it (the daemon's tick and the run's start are seconds apart).
    A simulated clock that stands still therefore never looks twice."""
    from hive_assets.data import to_utc

    last = to_utc(test.get("last_check_at") or test["started_at"])
    return last + interval - interval / 10


def test_id_for(specialist: str, challenger_version: str, started_at: datetime) -> str:
    return f"{specialist}_v{challenger_version}_{started_at.astimezone(timezone.utc):%Y%m%d_%H%M%S}"


def running_test(store: DocumentStore, specialist: str) -> dict[str, Any] | None:
    return store.find_one("ab_tests", {"specialist_type": specialist, "status": RUNNING}, sort=[("started_at", -1)])


def opening_traffic_refusal(traffic_percent: float) -> str | None:
    """Why a test cannot open at this challenger share, or None. 100 % leaves no champion arm (only a promotion
    takes traffic there); under the routing's resolution a share routes what MIN_TRAFFIC_PERCENT does."""
    if MIN_TRAFFIC_PERCENT <= traffic_percent < 100:
        return None
    return (f"a test opens with a challenger share in [{MIN_TRAFFIC_PERCENT:g}, 100) % (the routing's resolution is "
            f"one unit in a million, and at 100 % no champion arm is left), got {traffic_percent:g}")


def open_test(store: DocumentStore, specialist: str, champion_version: str, challenger_version: str,
              traffic_percent: float, now: datetime | None = None, dagster_run_id: str | None = None,
              ) -> tuple[dict[str, Any], bool]:
    """Start a test of `challenger_version` against the champion, or return the one already running.

    A running test of an older challenger is closed as superseded: one test per specialist at a time.
    """
    if refusal := opening_traffic_refusal(traffic_percent):
        raise ValueError(refusal)
    now = (now or clock.now()).astimezone(timezone.utc)
    current = running_test(store, specialist)
    if current is not None and str(current["challenger_version"]) == str(challenger_version):
        return current, False
    if current is not None:
        store.update_one("ab_tests", {"test_id": current["test_id"]},
                         {"status": SUPERSEDED, "ended_at": now, "end_reason": f"challenger v{challenger_version} registered"})
    test_id = base_id = test_id_for(specialist, challenger_version, now)
    # the same version reopened within the second (a simulated clock stands still for an hour): a new id, or the
    # upsert would overwrite the ended test's record and the ledger's `ab-open:`/`ab-closed:` rows would not repeat
    n = 1
    while store.find_one("ab_tests", {"test_id": test_id}) is not None:
        n += 1
        test_id = f"{base_id}_{n}"
    doc = {
        "test_id": test_id,
        "specialist_type": specialist,
        "champion_version": str(champion_version),
        "challenger_version": str(challenger_version),
        # the routing salt is fixed per test: units keep their bucket for the test's life
        "salt": hashlib.sha256(test_id.encode()).hexdigest()[:16],
        "status": RUNNING,
        "started_at": now,
        "traffic_percent": float(traffic_percent),
        "traffic_history": [{"at": now, "percent": float(traffic_percent), "reason": "test opened"}],
        "checks": [],
        "opened_by_run": dagster_run_id,
    }
    store.upsert_many("ab_tests", [doc])
    return doc, True

"""Feedback sensor: one tick over 1,000,000 feedback documents on the SQLite store (target < 1 s).

Compares, in the same run and on the same store, the sensor's count (`trusted_feedback_count`: two
index-range queries per specialist, documents read only when the policy's verdict is uncertain) with the
naive reference: read every feedback document of the window and ask `TrustPolicy.reason_to_drop` about
each (the results must be equal). Two windows:
* worst case, never trained: the window is the whole collection (200,000 documents per specialist);
* typical, trained a day ago: the window is the last day of a 90-day collection.
And the whole sensor tick (`feedback_retraining_sensor` through `build_sensor_context` on a test
instance: five instance queries, five counts, observations, cursor) in the worst case.

    .venv/bin/python benchmarks/bench_sensors.py [--docs 1000000] [--store-dir DIR (kept and reused)]

Feedback mimics the simulator: 4% auto_generated, 2% balanced_dataset, 2% from a denied source, 15% from
the approval service (`metadata.source`). Two policies: the default, and one that also denies the approval
service (`--deny-approval-service`: denied by `metadata.source`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from hive_assets.config import SPECIALISTS  # noqa: E402
from hive_assets.data import SQLiteStore, TrustPolicy  # noqa: E402
from hive_assets.monitoring import trusted_feedback_count  # noqa: E402
from hive_assets.monitoring._feedback import FEEDBACK, window_filter  # noqa: E402

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def fill(store: SQLiteStore, n: int, batch: int = 50_000) -> None:
    rng = np.random.default_rng(7)
    for start in range(0, n, batch):
        size = min(batch, n - start)
        u = rng.random(size)
        age = rng.uniform(0, 90 * 86400, size)
        docs = []
        for j in range(size):
            i = start + j
            meta = {"auto_generated": True} if u[j] < 0.04 else {"balanced_dataset": True} if u[j] < 0.06 else {}
            source = "synthetic_backfill" if u[j] < 0.08 and u[j] >= 0.06 else "human_expert"
            if u[j] > 0.85:  # the approval service marks itself only in metadata.source
                meta["source"] = "approval_service"
            docs.append({"feedback_id": f"fb-{i}", "opinion_id": f"op-{i}", "plan_id": f"plan-{i // 5}",
                         "specialist_type": SPECIALISTS[i % 5], "human_recommendation": "approve",
                         "human_rating": 0.9, "submitted_by": f"reviewer-{i % 40}",
                         "submitted_at": NOW - timedelta(seconds=float(age[j])), "feedback_source": source,
                         "metadata": meta})
        store.upsert_many(FEEDBACK, docs)


def naive(store, since, policy) -> dict[str, int]:
    return {s: sum(1 for fb in store.find(FEEDBACK, window_filter(s, since)) if policy.reason_to_drop(fb) is None)
            for s in SPECIALISTS}


def hive(store, since, policy) -> dict[str, int]:
    return {s: trusted_feedback_count(store, s, since, policy) for s in SPECIALISTS}


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def sensor_tick(store_dir: Path) -> float:
    import dagster as dg

    from hive_assets.defs import build_defs
    from hive_assets.defs.monitoring.sensors import feedback_retraining_sensor
    from hive_assets.defs.resources import DocumentStoreResource, MlflowResource

    os.environ["HIVE_HOME"] = str(store_dir)
    defs = build_defs()
    with dg.instance_for_test() as instance:
        def tick():
            ctx = dg.build_sensor_context(instance=instance, definitions=defs,
                                          resources={"document_store": DocumentStoreResource(),
                                                     "mlflow": MlflowResource()})
            return feedback_retraining_sensor.evaluate_tick(ctx)

        tick()  # warm: imports, first connection
        seconds, result = timed(tick, 5)
    assert len(result.run_requests) == 5
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--deny-approval-service", action="store_true")
    parser.add_argument("--store-dir", help="directory of the store.sqlite to keep and reuse (default: temporary)")
    args = parser.parse_args()
    tmp = None
    if args.store_dir:
        path = Path(args.store_dir) / "store.sqlite"
    else:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "store.sqlite"
    store = SQLiteStore(path)
    if store.count(FEEDBACK) != args.docs:
        t0 = time.perf_counter()
        fill(store, args.docs)
        print(f"wrote {args.docs:,} feedback documents in {time.perf_counter() - t0:.0f} s")
    policy = TrustPolicy()
    if args.deny_approval_service:
        policy = TrustPolicy(denied_sources=policy.denied_sources | {"approval_service"})
    print(f"policy: denied {sorted(policy.denied_sources)}")
    print(f"{platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, sqlite {__import__('sqlite3').sqlite_version}, {NOW:%Y-%m-%d}")
    print(f"{'window':<28}{'docs in window':>15}{'hive (s)':>10}{'naive (s)':>11}{'ratio':>8}")
    for label, since in (("never trained (all)", None), ("trained 1 day ago", NOW - timedelta(days=1))):
        in_window = sum(store.count(FEEDBACK, window_filter(s, since)) for s in SPECIALISTS)
        hive(store, since, policy)  # warm the page cache for both
        t_hive, got = timed(lambda: hive(store, since, policy), 5)
        t_naive, expected = timed(lambda: naive(store, since, policy), 1 if since is None else 3)
        assert got == expected, (got, expected)
        print(f"{label:<28}{in_window:>15,}{t_hive:>10.3f}{t_naive:>11.3f}{t_naive / t_hive:>8.1f}x")
    t_tick = sensor_tick(path.parent)
    print(f"whole sensor tick, never trained (median of 5): {t_tick:.3f} s")
    if tmp:
        store.close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

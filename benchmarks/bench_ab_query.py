"""One A/B look's read of the test's opinions on a store with ~100,000 opinions of the specialist.

A look (`hive_assets.rollout.arm_observations`) reads the specialist's opinions tagged with the test's
`metadata.ab_test_id`. That field has no index, so before the soak test's fix the query read every
opinion of the specialist (0.13-0.17 s a look at 69-100k, growing with history); now it is bounded by
the test's first traffic step on `evaluated_at` (`test_opinions_filter`), which the (specialist_type,
evaluated_at) index serves. The store: `--days` of history at `--per-hour` opinions of the specialist,
the test opened `--test-days` before the end, every opinion since then tagged with its id and an arm
(as the router tags both arms), a tenth of the opinions labelled. Both filters are timed on the same
store, alternating, and the look's decision and counts (`evaluate`) are compared: they must be equal.

    .venv/bin/python benchmarks/bench_ab_query.py [--days 28] [--per-hour 150] [--test-days 4] [--repeat 5]
        [--mongodb-uri mongodb://127.0.0.1:PORT/]   # the same on MongoDB / FerretDB (a fresh database)

On MongoDB the bound is served by the same (specialist_type, evaluated_at) index. FerretDB 1.x pushes only
top-level equality down to its backend (not the range, not the dotted `metadata.ab_test_id`): there both
filters read the specialist's opinions, and neither an index on the dotted field would help.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from hive_assets.cli._args import positive_int  # noqa: E402
from hive_assets.data import SQLiteStore  # noqa: E402
from hive_assets.rollout import RolloutPolicy, _apply, evaluate  # noqa: E402

END = datetime(2026, 3, 30, tzinfo=timezone.utc)


def fill(store, days: int, per_hour: int, test: dict, batch: int = 20_000) -> int:
    rng = np.random.default_rng(5)
    n = days * 24 * per_hour
    start = END - timedelta(days=days)
    opened = test["started_at"]
    opinions, feedback = [], []
    for i in range(n):
        served = start + timedelta(seconds=float(i) * 3600 / per_hour)
        meta = {}
        if served >= opened:
            meta = {"ab_test_id": test["test_id"], "ab_arm": "challenger" if rng.random() < 0.5 else "champion"}
        rec = "approve" if rng.random() < 0.8 else "reject"
        opinions.append({"opinion_id": f"op-{i}", "plan_id": f"plan-{i}", "intent_id": f"intent-{i}",
                         "specialist_type": test["specialist_type"], "specialist_version": "1",
                         "evaluated_at": served, "metadata": meta,
                         "opinion": {"recommendation": rec, "confidence_score": 0.8, "risk_score": 0.5,
                                     "reasoning_summary": "", "reasoning_factors": []}})
        if rng.random() < 0.1:
            feedback.append({"feedback_id": f"fb-{i}", "opinion_id": f"op-{i}",
                             "specialist_type": test["specialist_type"],
                             "human_recommendation": "approve", "human_rating": 0.9, "submitted_by": "reviewer",
                             "submitted_at": served + timedelta(hours=3), "feedback_source": "human_expert",
                             "metadata": {}})
        if len(opinions) >= batch:
            store.upsert_many("specialist_opinions", opinions)
            opinions = []
    store.upsert_many("specialist_opinions", opinions)
    store.upsert_many("specialist_feedback", feedback)
    return n


@contextmanager
def open_store(mongodb_uri: str):
    if not mongodb_uri:
        with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "s.sqlite") as store:
            yield store, "SQLite"
        return
    from hive_assets.data.store.mongo import MongoStore

    database = f"bench_ab_query_{uuid.uuid4().hex[:8]}"
    with MongoStore(mongodb_uri, database) as store:
        try:
            yield store, f"MongoDB wire protocol at {mongodb_uri} (database {database})"
        finally:
            store.client.drop_database(database)


def plan_of(store, where: dict) -> str:
    if not isinstance(store, SQLiteStore):
        return "(not asked)"
    sql, params = store._where("specialist_opinions", where)
    rows = store._conn.execute(f'EXPLAIN QUERY PLAN SELECT doc FROM "specialist_opinions" WHERE {sql}', params)
    return "; ".join(row[-1] for row in rows.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--per-hour", type=int, default=150)
    parser.add_argument("--test-days", type=float, default=4.0)
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--mongodb-uri", default="")
    args = parser.parse_args()
    opened = END - timedelta(days=args.test_days)
    test = {"test_id": "business_v2_bench", "specialist_type": "business", "status": "running",
            "started_at": opened, "traffic_percent": 50.0, "traffic_history": [{"at": opened, "percent": 50.0}]}
    unbounded = {"specialist_type": test["specialist_type"], "metadata.ab_test_id": test["test_id"]}
    filters = {"before (no time bound)": unbounded, "after (from the first step)": _apply.test_opinions_filter(test)}
    policy = RolloutPolicy()
    with open_store(args.mongodb_uri) as (store, kind):
        built = time.perf_counter()
        n = fill(store, args.days, args.per_hour, test)
        print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}; {kind}: {n:,} opinions "
              f"of one specialist ({args.days} days), test opened {args.test_days:g} days before the end "
              f"(built in {time.perf_counter() - built:.0f} s)")
        for name, where in filters.items():
            print(f"  {name}: {store.count('specialist_opinions', where):,} documents; plan: {plan_of(store, where)}")
        find_s = {name: [] for name in filters}
        look_s = {name: [] for name in filters}
        results = {}
        for _ in range(args.repeat):
            for name, where in filters.items():
                started = time.perf_counter()
                docs = list(store.find("specialist_opinions", where))
                find_s[name].append(time.perf_counter() - started)
                with mock.patch.object(_apply, "test_opinions_filter", lambda t, where=where: where):
                    started = time.perf_counter()
                    decision, counts = evaluate(store, test, END, policy)
                    look_s[name].append(time.perf_counter() - started)
                results[name] = (len(docs), decision.action, decision.rule, decision.reason, counts)
        same = len({repr(r) for r in results.values()}) == 1
        print(f"  the look's decision and per-step counts equal under both filters: {same}")
        for name in filters:
            print(f"  {name}: query {statistics.median(find_s[name]):.3f} s, whole look (`evaluate`) "
                  f"{statistics.median(look_s[name]):.3f} s (medians of {args.repeat})")
        if not same:
            raise SystemExit("the filters gave different looks")


if __name__ == "__main__":
    main()

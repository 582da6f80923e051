"""Collect + join throughput: opinions with plan, audit event and latest trusted feedback into a DataFrame.

Compares, in the same run and on the same data, `hive_assets.data.collect` (batched `$in` reads,
client-side joins) with a naive loop issuing one query per opinion for its plan, its audit event and its
feedback (the shape of the seed's collector). Rates are rows/s; the naive loop runs on a subsample.

    .venv/bin/python benchmarks/bench_collect.py [--plans 20000] [--mongodb-uri mongodb://127.0.0.1:PORT/]

20,000 plans give 100,000 opinions (five specialists). With --mongodb-uri the same documents are
loaded into that server (e.g. FerretDB from `scripts/services.sh up`) and measured there too.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from hive_assets import documents as docs  # noqa: E402
from hive_assets.data import collect  # noqa: E402
from hive_assets.config import SPECIALISTS  # noqa: E402
from hive_assets.simulator import simulate  # noqa: E402
from hive_assets.data.store import SQLiteStore  # noqa: E402
from hive_assets.data.store.base import KEY_CHUNK, DocumentStore  # noqa: E402

NOW = datetime(2026, 10, 1, tzinfo=timezone.utc)


def naive_rows(store, specialist: str, limit: int) -> int:
    """One query per opinion for each joined document (the seed collector's shape), with the same
    validation and the same DataFrame at the end, so the ratio measures the query strategy."""
    rows = []
    start = NOW.replace(year=NOW.year - 1)
    for op in store.find("specialist_opinions", {"specialist_type": specialist, "evaluated_at": {"$gte": start}},
                         limit=limit or None):
        plan = store.find_one("cognitive_ledger", {"plan_id": op.get("plan_id")}) or \
            store.find_one("cognitive_plans", {"plan_id": op.get("plan_id")})
        audit = store.find_one("intentions_audit", {"id": op.get("intent_id")})
        feedback = [f for f in store.find("specialist_feedback", {"opinion_id": op.get("opinion_id")})
                    if not docs.validate_feedback(f, NOW)]
        plan_data = docs.plan_of(plan) if plan is not None else None
        if plan_data is None or audit is None or docs.validate_opinion(op, NOW) or docs.validate_plan(plan_data, NOW):
            continue
        latest = max(feedback, key=lambda f: docs.to_utc(f["submitted_at"]), default=None)
        rows.append({"opinion_id": op["opinion_id"], "plan_id": op["plan_id"],
                     "evaluated_at": docs.to_utc(op["evaluated_at"]), "intent_confidence": audit.get("confidence"),
                     "label": latest["human_recommendation"] if latest else None, "plan": plan_data})
    return len(pd.DataFrame(rows))


def measure(store, label: str, naive_sample: int | None) -> dict:
    t0 = time.perf_counter()
    rows = sum(len(collect(store, s, now=NOW, window_days=365).frame) for s in SPECIALISTS)
    batched = time.perf_counter() - t0
    out = {"store": label, "rows": rows, "batched_s": batched, "batched_rate": rows / batched}
    if naive_sample is not None:
        t0 = time.perf_counter()
        naive = naive_rows(store, "business", naive_sample)
        out.update(naive_rows=naive, naive_rate=naive / (time.perf_counter() - t0))
    print(out, file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=20_000)
    parser.add_argument("--naive-sample", type=int, default=0, help="opinions for the naive loop; 0: the whole partition")
    # FerretDB's SQLite backend uses no index but _id: every naive query there is a full scan
    parser.add_argument("--naive-sample-mongodb", type=int, default=100)
    parser.add_argument("--mongodb-uri", default=os.environ.get("HIVE_TEST_MONGODB_URI", ""))
    parser.add_argument("--mongodb-label", default="", help="e.g. the FerretDB backend; default: the server's version")
    parser.add_argument("--in-chunks-too", action="store_true",
                        help="on FerretDB, also measure the `$in`-chunk reads MongoDB gets (FerretDB scans once)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteStore(Path(tmp) / "store.sqlite")
        simulate(sqlite, plans=args.plans, days=60, seed=1, now=NOW)
        opinions = sqlite.count("specialist_opinions")
        results.append(measure(sqlite, "SQLite (embedded)", args.naive_sample))
        if args.mongodb_uri:
            from hive_assets.data.store.mongo import MongoStore

            database = f"bench_{uuid.uuid4().hex[:8]}"
            with MongoStore(args.mongodb_uri, database) as mongo:
                t0 = time.perf_counter()
                # the same seed written natively (BSON dates), as production data would be
                simulate(mongo, plans=args.plans, days=60, seed=1, now=NOW)
                load_s = time.perf_counter() - t0
                print(f"loaded into {mongo.describe()} in {load_s:.0f} s", file=sys.stderr, flush=True)
                info = mongo.client.admin.command("buildInfo")
                server = (f"FerretDB {info['ferretdbVersion']}" if "ferretdbVersion" in info
                          else f"MongoDB {info.get('version', '?')}")
                label = f"{server} ({args.mongodb_label})" if args.mongodb_label else server
                try:
                    results.append({**measure(mongo, label, args.naive_sample_mongodb), "load_s": load_s})
                    if args.in_chunks_too:
                        mongo.find_by_keys = functools.partial(DocumentStore.find_by_keys, mongo)
                        results.append(measure(mongo, f"{label}, `$in` chunks of {KEY_CHUNK}", None))
                finally:
                    mongo.client.drop_database(database)
    print(f"# collect benchmark, {datetime.now(timezone.utc):%Y-%m-%d}, {platform.node()}, {os.cpu_count()} cores, "
          f"{args.plans} plans = {opinions} opinions")
    print("| store | rows joined | batched s | batched rows/s | naive rows/s (sample) | batched / naive |")
    print("|---|---|---|---|---|---|")
    naive_rate = None
    for r in results:
        # a row without its own naive loop compares with the one measured on the same store above it
        naive = f"{r['naive_rate']:,.2f} ({r['naive_rows']})" if "naive_rate" in r else "(as above)"
        naive_rate = r.get("naive_rate", naive_rate)
        print(f"| {r['store']} | {r['rows']} | {r['batched_s']:.1f} | {r['batched_rate']:,.0f} | "
              f"{naive} | {r['batched_rate'] / max(naive_rate, 1e-9):.1f}x |")


if __name__ == "__main__":
    main()

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

from hive_assets.cli._args import positive_int  # noqa: E402
from hive_assets.data import _documents as docs  # noqa: E402
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
    parser.add_argument("--scale", action="store_true",
                        help="issue 23: label-driven collection vs the previous collector on simulate_scale stores")
    parser.add_argument("--opinions", type=int, nargs="+", default=[2_000_000],
                        help="--scale: opinions in the window (all five specialists)")
    parser.add_argument("--label-rates", type=float, nargs="+", default=[0.01],
                        help="--scale: answered shares; one store per (opinions, rate)")
    parser.add_argument("--reference", choices=["yes", "no"], default="yes",
                        help="--scale: also run the previous collector (the reference) on each store")
    parser.add_argument("--new-repeats", type=positive_int, default=1, help="--scale: label-driven runs per store (median)")
    parser.add_argument("--mongodb-only", action="store_true", help="--scale: skip the SQLite store")
    parser.add_argument("--gin-only", action="store_true",
                        help="--scale with --postgresql-url: the label-driven collector only after the GIN lookup "
                             "indexes (not first with FerretDB's own indexes)")
    parser.add_argument("--postgresql-url", default=os.environ.get("HIVE_BENCH_FERRETDB_POSTGRESQL_URL", ""),
                        help="--scale with FerretDB on PostgreSQL: the database FerretDB runs on; the reference and "
                             "the label-driven collector run first as the store is loaded, then again after "
                             "`ensure_indexes(postgresql_url)` created the GIN lookup indexes")
    parser.add_argument("--existing-store", type=Path,
                        help="time the label-driven collection of business on this SQLite store (written by "
                             "simulate_scale with this script's NOW), --repeat times, with the load average")
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--paired-store", type=Path,
                        help="the previous and the label-driven collector on this SQLite store (built first with "
                             "simulate_scale, --opinions and --label-rates, if it does not exist), each run in a fresh "
                             "process, --pairs times in alternating order: no run inherits another's heap")
    parser.add_argument("--pairs", type=positive_int, default=3)
    parser.add_argument("--child", choices=["previous", "label-driven"], help=argparse.SUPPRESS)
    parser.add_argument("--evict", action="store_true",
                        help="--existing-store: drop the store file's pages from the page cache before each run "
                             "(posix_fadvise DONTNEED; this file only): a cold read")
    args = parser.parse_args()
    if args.child:
        child_collect(args.paired_store, args.child)
        return
    if args.paired_store:
        paired(args.paired_store, args.pairs, args.opinions[0], args.label_rates[0])
        return
    if args.existing_store:
        repeat_collect(args.existing_store, args.repeat, args.evict)
        return
    if args.scale:
        scale(args)
        return
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


def _evict(path: Path) -> None:
    """Drop the pages of `path` and its WAL from the page cache (other files stay cached)."""
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def repeat_collect(path: Path, repeat: int, evict: bool) -> None:
    """Issue 23's "under 2 s" on the 2,000,000-opinion store: `collect(store, "business")` `repeat` times in
    this process (a fresh store object each time: a new connection), wall and CPU seconds, bytes read from
    the device, involuntary context switches, the load average (1 min) before each run, and the nice value."""
    print(f"# collect on {path} ({path.stat().st_size / 2**30:.2f} GiB), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.node()}, {os.cpu_count()} cores, nice {os.nice(0)}, page cache {'evicted' if evict else 'as is'}",
          flush=True)
    print("| run | load avg (1 min) | rows | wall s | CPU s (user + sys) | read from disk MB | preempted |\n"
          "|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    import resource

    def disk_read() -> int:  # bytes this process made the kernel fetch from the device
        return int(dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())["read_bytes"])

    for i in range(1, repeat + 1):
        if evict:
            _evict(path)
        load = os.getloadavg()[0]
        r0, d0 = resource.getrusage(resource.RUSAGE_SELF), disk_read()
        t0 = time.perf_counter()
        with SQLiteStore(path) as store:
            rows = len(collect(store, "business", now=NOW, window_days=90).frame)
        wall = time.perf_counter() - t0
        r1, d1 = resource.getrusage(resource.RUSAGE_SELF), disk_read()
        user, sys_ = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
        # involuntary context switches: the scheduler gave the core to another process
        print(f"| {i} | {load:.1f} | {rows:,} | {wall:.2f} | {user + sys_:.2f} ({user:.2f} + {sys_:.2f}) | "
              f"{(d1 - d0) / 1e6:.0f} | {r1.ru_nivcsw - r0.ru_nivcsw:,} |", flush=True)


def child_collect(path: Path, which: str) -> None:
    """One collection of business in this (fresh) process; one JSON line: seconds, CPU, peak RSS, rows and a
    hash of the labelled rows (every column, the plans included), so the parent compares without holding
    two frames."""
    import json
    import resource

    from hive_assets_tests.data.reference_collect import reference_collect

    fn = reference_collect if which == "previous" else collect
    with SQLiteStore(path) as store:
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn(store, "business", now=NOW, window_days=90)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    labelled = result.frame[result.frame["label"].notna()].reset_index(drop=True)
    # the data snapshot hash: every field of the labelled rows, the same whether a plan is kept as its tree
    # (the previous collector) or its JSON text (`collect`)
    digest = result.snapshot_hash()
    print(json.dumps({"wall": wall, "cpu": cpu, "rows": len(labelled), "hash": digest,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


def paired(path: Path, pairs: int, opinions: int, label_rate: float) -> None:
    """Issue 23's "no slower than today" at the simulator's mix: the two collectors on one store, each run in
    its own process (in one process, a run after the other's 150,000-row frame ran 6-20 % slower), the
    order alternating per pair; the medians and their ratio, and whether every run produced the same rows."""
    import json
    import statistics
    import subprocess

    from hive_assets.simulator import simulate_scale

    if not path.exists():
        t0 = time.perf_counter()
        with SQLiteStore(path) as store:
            simulate_scale(store, opinions=opinions, label_rate=label_rate, now=NOW)
        print(f"built {path} ({opinions:,} opinions, {label_rate:.0%} answered) in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)
    print(f"# collect, previous vs label-driven, one process per run, {path} ({path.stat().st_size / 2**30:.2f} GiB), "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores", flush=True)
    print("| pair | collector | load avg (1 min) | labelled rows | wall s | CPU s | peak RSS MB | rows hash |\n"
          "|---:|---|---:|---:|---:|---:|---:|---|", flush=True)
    runs: dict[str, list[dict]] = {"previous": [], "label-driven": []}
    for i in range(1, pairs + 1):
        order = ["previous", "label-driven"] if i % 2 else ["label-driven", "previous"]
        for which in order:
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, __file__, "--paired-store", str(path), "--child", which],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            runs[which].append(r)
            print(f"| {i} | {which} | {load:.1f} | {r['rows']:,} | {r['wall']:.2f} | {r['cpu']:.2f} | "
                  f"{r['max_rss_mb']:,} | {r['hash']} |", flush=True)
    hashes = {r["hash"] for rs in runs.values() for r in rs}
    median = {k: (statistics.median(r["wall"] for r in rs), statistics.median(r["cpu"] for r in rs))
              for k, rs in runs.items()}
    print(f"\nmedian wall: previous {median['previous'][0]:.2f} s, label-driven {median['label-driven'][0]:.2f} s "
          f"(previous / label-driven {median['previous'][0] / median['label-driven'][0]:.2f}x); median CPU "
          f"{median['previous'][1]:.2f} s vs {median['label-driven'][1]:.2f} s "
          f"({median['previous'][1] / median['label-driven'][1]:.2f}x); same rows in every run: "
          f"{'yes' if len(hashes) == 1 else 'NO'}", flush=True)


def _insert_into(mongo):
    """A plain unordered bulk insert into an empty database (FerretDB's upserts scan the collection), in
    batches of 5,000 (1,000 ordered before: the same documents, fewer round trips), before the store's
    indexes exist (`scale` creates them after loading, timed apart)."""
    def write(collection: str, docs: list[dict]) -> None:
        coll = mongo.db[collection]
        for i in range(0, len(docs), 5000):
            coll.insert_many(docs[i : i + 5000], ordered=False)
    return write


def scale(args) -> None:
    """Issue 23: one specialist's collection, label-driven (`collect`) against the previous collector
    (`hive_assets_tests/data/reference_collect.py`, reading every opinion of the window), same store, same
    run. Prints one markdown row per (store, opinions, answered share)."""
    import resource

    from hive_assets.simulator import simulate_scale
    from hive_assets_tests.data.reference_collect import reference_collect

    if os.environ.get("HIVE_BENCH_MAX_GB"):  # a shared machine: fail this process, not the neighbours
        limit = int(float(os.environ["HIVE_BENCH_MAX_GB"]) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    print(f"# collect --scale, {datetime.now(timezone.utc):%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("| store | opinions (window) | answered | build s | labelled rows | new s | new ms/row | "
          "previous s | previous / new | same rows |", flush=True)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
    for n in args.opinions:
        for rate in args.label_rates:
            with tempfile.TemporaryDirectory(dir=os.environ.get("HIVE_BENCH_TMP")) as tmp:
                stores = ([] if args.mongodb_only else
                          [("SQLite (embedded)", SQLiteStore(Path(tmp) / "store.sqlite"), None)])
                if args.mongodb_uri:
                    from hive_assets.data.store.mongo import MongoStore

                    # FerretDB answers a `$in` over a large collection only after scanning it: long socket timeout
                    mongo = MongoStore(args.mongodb_uri, f"bench_{uuid.uuid4().hex[:8]}", timeout_ms=60_000)
                    info = mongo.client.admin.command("buildInfo")
                    label = f"FerretDB {info['ferretdbVersion']}" if "ferretdbVersion" in info else "MongoDB"
                    stores.append((f"{label} ({args.mongodb_label})" if args.mongodb_label else label, mongo,
                                   _insert_into(mongo)))
                for label, store, write in stores:
                    try:
                        t0 = time.perf_counter()
                        simulate_scale(store, opinions=n, label_rate=rate, now=NOW, write=write)
                        build = time.perf_counter() - t0
                        if write is not None:  # loaded without indexes: the store's own, before any collector
                            t0 = time.perf_counter()
                            store.ensure_indexes()
                            print(f"{label}: loaded in {build:.0f} s, the store's indexes in "
                                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                        old = old_s = None
                        if args.reference == "yes":  # first: today's code on the store as it is today
                            t0, c0 = time.perf_counter(), time.process_time()
                            old = reference_collect(store, "business", now=NOW, window_days=90)
                            old_s, old_cpu = time.perf_counter() - t0, time.process_time() - c0
                            print(f"{label} {n} {rate}: previous {old_s:.2f} s ({old_cpu:.2f} s CPU), "
                                  f"load {os.getloadavg()[0]:.1f}",
                                  file=sys.stderr, flush=True)
                        variants = [(label, None)]
                        if write is not None and args.postgresql_url:
                            variants = ([] if args.gin_only else variants) + [(f"{label}, GIN lookup indexes", args.postgresql_url)]
                        for variant, postgresql_url in variants:
                            if postgresql_url:
                                t0 = time.perf_counter()
                                names = store.ensure_indexes(postgresql_url)
                                print(f"{variant}: {len(names)} lookup indexes in {time.perf_counter() - t0:.1f} s",
                                      file=sys.stderr, flush=True)
                            times = []  # the table's "new s" is the median of --new-repeats runs
                            for _ in range(args.new_repeats):
                                new = None  # the previous run's frame is freed before the next is built
                                t0, c0 = time.perf_counter(), time.process_time()
                                new = collect(store, "business", now=NOW, window_days=90)
                                new_s, new_cpu = time.perf_counter() - t0, time.process_time() - c0
                                rows = len(new.frame)
                                times.append(new_s)
                                print(f"{variant} {n} {rate}: built in {build:.0f} s, label-driven {new_s:.2f} s "
                                      f"({new_cpu:.2f} s CPU) for {rows} rows, load {os.getloadavg()[0]:.1f}",
                                      file=sys.stderr, flush=True)
                            new_s = sorted(times)[len(times) // 2]
                            cells = ["", "", ""]
                            if old is not None:
                                same = old.snapshot_hash() == new.snapshot_hash()  # every field, plans as trees or text
                                cells = [f"{old_s:.2f}", f"{old_s / new_s:.1f}x", "yes" if same else "NO"]
                            print(f"| {variant} | {n:,} | {rate:.0%} | {build:.0f} | {rows:,} | {new_s:.2f} | "
                                  f"{1000 * new_s / max(rows, 1):.3f} | " + " | ".join(cells) + " |", flush=True)
                    finally:
                        if write is not None:
                            store.client.drop_database(store.database)
                        store.close()


if __name__ == "__main__":
    main()

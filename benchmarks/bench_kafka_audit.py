"""What collection pays for the intent audit events: the Kafka topic read for the window against the
`intentions_audit` collection read by the labelled opinions' intent ids (the path without Kafka), and the
memory the Kafka read holds: every envelope of the window (as before `keep`) or the wanted ones only; and the
topic's mirror in the document store (what collection reads with Kafka configured): its first fill, a day's
top-up, and a collection's read through it.

Collection reads the audit events of the opinions it keeps. From the collection it asks for those ids only (cost
follows the labels); from Kafka it must read every envelope of the window and keep the wanted ones (cost follows
the traffic), once per specialist per collection. Same envelopes, same wanted ids, same run:

    make bench-kafka [BENCH_KAFKA_ARGS="--events 1000000 --repeats 2"]     (a broker of its own, stopped after)
    .venv/bin/python benchmarks/bench_kafka_audit.py --bootstrap 127.0.0.1:PORT [--events 200000] [--answered 0.01]

`--concurrent-fills 5 --reference CHECKOUT` also starts five processes on one new mirror at once, as five
collections starting together do, with this code (one fills, the others wait: the fill's lease) and with the
checkout's (before the lease: each reads the whole window), and sums their CPU time.

(`bash scripts/services.sh up kafka` prints a broker; HIVE_TEST_KAFKA_BOOTSTRAP is read when --bootstrap is not
given.) The topic is new per run and left on the broker.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ["HIVE_SIMULATED_NOW"] = "2026-10-01T00:00:00+00:00"  # NOW: the mirror prunes against the platform clock
from hive_assets.data import audit_confidences_from_kafka, audit_confidences_from_store  # noqa: E402
from hive_assets.data._audit_mirror import AuditMirror  # noqa: E402
from hive_assets.data.kafka import produce_audit_events, read_audit_events  # noqa: E402
from hive_assets.data.store import SQLiteStore  # noqa: E402

NOW = datetime(2026, 10, 1, tzinfo=timezone.utc)
WINDOW_DAYS = 90


def envelopes(n: int, seed: int) -> list[dict]:
    """`n` envelopes spread over the window, shaped as the simulator writes them."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=WINDOW_DAYS)
    span = WINDOW_DAYS * 86400
    return [{"id": f"intent-{seed}-{i:08d}", "timestamp": int((start + timedelta(seconds=span * i / n)).timestamp()
                                                               * 1000),
             "confidence": round(rng.betavariate(9, 2), 4), "intent": {"text": f"intent {i}", "domain": "business"},
             "actor": {"id": f"user-{rng.randrange(500)}"}, "context": {"channel": "api"}} for i in range(n)]


def timed(read, ids, start, end, repeats: int) -> tuple[float, dict]:
    best, out = float("inf"), {}
    for _ in range(repeats):
        began = time.perf_counter()
        out = read(ids, start, end)
        best = min(best, time.perf_counter() - began)
    return best, out


def peak_mib(read, *args) -> float:
    """Python's peak allocation during one read (tracemalloc: slower, so timed apart)."""
    tracemalloc.start()
    read(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def read_everything(bootstrap: str, topic: str):
    """The reader as it was: every in-window envelope held, then the wanted ones picked."""
    def read(ids, start, end):
        wanted = set(ids)
        events = read_audit_events(bootstrap, start, end, topic=topic, timeout_s=600, end_inclusive=True)
        return {str(e["id"]): float(e["confidence"]) for e in events if str(e["id"]) in wanted}
    return read


FILL_CHILD = """
import sys, time
from datetime import datetime
sys.path.insert(0, sys.argv[1])
from hive_assets.data._audit_mirror import AuditMirror
from hive_assets.data.store import SQLiteStore
synced = AuditMirror(SQLiteStore(sys.argv[2]), sys.argv[3], sys.argv[4], timeout_s=600).sync(
    since=datetime.fromisoformat(sys.argv[5]), now=datetime.fromisoformat(sys.argv[6]))
print(synced.messages_read, time.process_time())
"""


def concurrent_fills(root: Path, n: int, bootstrap: str, topic: str, since: datetime, store_path: Path):
    """n processes syncing one new mirror at once with the code at `root`: (wall s, CPU s summed over them,
    messages each read)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    SQLiteStore(store_path).close()  # made first: before the reference's fix, processes making it at once raced
    began = time.perf_counter()
    children = [subprocess.Popen([sys.executable, "-c", FILL_CHILD, str(root), str(store_path), bootstrap, topic,
                                  since.isoformat(), NOW.isoformat()], stdout=subprocess.PIPE, text=True, env=env)
                for _ in range(n)]
    outputs = [child.communicate()[0].split() for child in children]
    wall = time.perf_counter() - began
    assert all(child.returncode == 0 for child in children), "a filling process failed"
    return wall, sum(float(cpu) for _read, cpu in outputs), [int(read) for read, _cpu in outputs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("HIVE_TEST_KAFKA_BOOTSTRAP", ""))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--answered", type=float, default=0.01, help="share of the intents collection asks for")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mirror-mongodb-uri", default="",
                        help="the mirror in this MongoDB/FerretDB (a new database per run) instead of the SQLite store")
    parser.add_argument("--mirror-postgresql-url", default="",
                        help="FerretDB's PostgreSQL: its lookup indexes are made after the fill (`hive store index`)")
    parser.add_argument("--concurrent-fills", type=int, default=0,
                        help="processes filling one new (SQLite) mirror at once, this code and --reference's")
    parser.add_argument("--reference", type=Path, help="a checkout before the fill's lease (e.g. 19e846e)")
    args = parser.parse_args()
    if args.concurrent_fills and not args.reference:
        parser.error("--concurrent-fills needs --reference CHECKOUT (a git worktree of the code to compare with)")
    if not args.bootstrap:
        parser.error("--bootstrap (or HIVE_TEST_KAFKA_BOOTSTRAP) is required: `bash scripts/services.sh up kafka`")
    events = envelopes(args.events, seed=7)
    wanted = sorted(e["id"] for e in random.Random(11).sample(events, max(1, int(args.events * args.answered))))
    start, end = NOW - timedelta(days=WINDOW_DAYS + 1), NOW
    topic = f"bench.audit.{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    produce_audit_events(args.bootstrap, events, topic, num_partitions=args.partitions,
                         topic_config={"retention.ms": "-1"}, timeout_s=600)
    produced = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "store.sqlite")
        store.upsert_many("intentions_audit", events)
        reader = audit_confidences_from_kafka(args.bootstrap, topic, timeout_s=600)
        kafka_s, from_kafka = timed(reader, wanted, start, end, args.repeats)
        before_s, from_before = timed(read_everything(args.bootstrap, topic), wanted, start, end, args.repeats)
        store_s, from_store = timed(audit_confidences_from_store(store), wanted, start, end, args.repeats)
        kafka_mib = peak_mib(reader, wanted, start, end)
        before_mib = peak_mib(read_everything(args.bootstrap, topic), wanted, start, end)
        store.close()
        # the mirror: filled once, topped up by a day of traffic, then read by id as collection reads it
        if args.mirror_mongodb_uri:
            from hive_assets.data.store.mongo import MongoStore

            mirror_store = MongoStore(args.mirror_mongodb_uri, f"bench_mirror_{uuid.uuid4().hex[:8]}")
        else:
            mirror_store = SQLiteStore(Path(tmp) / "mirror.sqlite")
        began = time.perf_counter()
        filled = AuditMirror(mirror_store, args.bootstrap, topic, timeout_s=600).sync(since=start, now=NOW)
        fill_s = time.perf_counter() - began
        if args.mirror_postgresql_url:
            from hive_assets.data.store._ferretdb_postgresql import ensure_lookup_indexes

            ensure_lookup_indexes(args.mirror_postgresql_url, mirror_store.database)
        day = [dict(e, id=e["id"] + "-d", timestamp=e["timestamp"] + 1)
               for e in events[: max(1, args.events // WINDOW_DAYS)]]
        produce_audit_events(args.bootstrap, day, topic, timeout_s=600)
        began = time.perf_counter()
        topped = AuditMirror(mirror_store, args.bootstrap, topic, timeout_s=600).sync(since=start, now=NOW)
        top_up_s = time.perf_counter() - began
        mirrored = audit_confidences_from_kafka(args.bootstrap, topic, timeout_s=600, mirror_store=mirror_store)
        mirror_s, from_mirror = timed(mirrored, wanted, start, end, args.repeats)
        mirror_mib = peak_mib(mirrored, wanted, start, end)
        mirror_store.close()
        together = {}
        for name, root in (("this code", ROOT), ("reference", args.reference))[: 2 if args.concurrent_fills else 0]:
            together[name] = concurrent_fills(root, args.concurrent_fills, args.bootstrap, topic, start,
                                              Path(tmp) / f"together-{name.replace(' ', '-')}.sqlite")
    assert from_kafka == from_store == from_before == from_mirror and len(from_kafka) == len(wanted), \
        "the readers disagree"
    assert filled.messages_read == args.events and topped.messages_read == len(day)
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"{args.events:,} envelopes over {WINDOW_DAYS} days on {args.partitions} partitions (produced in "
          f"{produced:.1f} s); collection asks for {len(wanted):,} intents ({args.answered:.0%})")
    print(f"kafka, wanted kept   (the window read): {kafka_s:8.3f} s  "
          f"({kafka_s / args.events * 1e6:.1f} us per envelope), peak {kafka_mib:7.1f} MiB")
    print(f"kafka, all kept      (before `keep`):   {before_s:8.3f} s, peak {before_mib:7.1f} MiB")
    print(f"store                (the wanted ids):  {store_s:8.3f} s")
    print(f"the mirror's store: {'MongoDB/FerretDB' if args.mirror_mongodb_uri else 'embedded SQLite'}")
    print(f"mirror, read by id   (sync + lookup):   {mirror_s:8.3f} s, peak {mirror_mib:7.1f} MiB")
    print(f"mirror, first fill   ({args.events:,} envelopes): {fill_s:8.3f} s "
          f"({fill_s / args.events * 1e6:.1f} us per envelope, once)")
    print(f"mirror, a day's top-up ({len(day):,} envelopes): {top_up_s:8.3f} s")
    print(f"time: kafka / store {kafka_s / store_s:.1f}x, kafka / before {kafka_s / before_s:.2f}x, "
          f"kafka / mirror {kafka_s / mirror_s:.1f}x, mirror / store {mirror_s / store_s:.1f}x; "
          f"memory: kafka / before {kafka_mib / before_mib:.3f}x (best of {args.repeats} for times)")
    for name, (wall, cpu, reads) in together.items():
        print(f"{args.concurrent_fills} fills of one new mirror at once, {name}: {wall:.1f} s wall, {cpu:.1f} CPU s "
              f"summed; messages read by each: {reads}")
    if together:
        print(f"concurrent first fills, CPU: reference / this code "
              f"{together['reference'][1] / together['this code'][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`hive review-queue`: a specialist's open review requests in queue order (hive_assets.review)."""

from __future__ import annotations

import argparse
import json
import sys

from hive_assets.cli._args import add_specialist, add_verb, positive_int


def _row(doc: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in doc.items()
            if k in ("request_id", "opinion_id", "plan_id", "specialist_type", "score", "reason", "selection", "rank",
                     "requested_at", "expires_at", "status", "model_version")}


def cmd_review_queue(args: argparse.Namespace) -> int:
    from hive_assets import clock, review
    from hive_assets.data import open_store

    now = clock.now()
    with open_store() as store:
        # the whole queue is read for its size: `--limit` shortens the list, never the count
        full = {s: review.read_open_queue(store, s, now) for s in args.specialist}
    queues = {s: q.requests[:args.limit] for s, q in full.items()}
    for specialist, read in full.items():  # left out of the queue, never a traceback; the documents stay as they are
        if read.malformed:
            print(f"hive review-queue: warning: {specialist}: {review.describe_malformed(read.malformed)}",
                  file=sys.stderr)
    if args.json:
        print(json.dumps({"now": now.isoformat(), "open": {s: len(q.requests) for s, q in full.items()},
                          "queues": {s: [_row(d) for d in q] for s, q in queues.items()},
                          "malformed": {s: [{"request_id": rid, "fields": fields} for rid, fields in q.malformed]
                                        for s, q in full.items()}}, indent=2))
        return 0
    for specialist, queue in queues.items():
        total = len(full[specialist].requests)
        print(f"{specialist}: {total} open review request{'s' * (total != 1)} at {now:%Y-%m-%d %H:%M} UTC"
              + (f" (the first {len(queue)} shown: --limit)" if len(queue) < total else "")
              + ("" if queue else " (refresh: materialize review_queue, or start review_queue_sensor)"))
        for d in queue:
            print(f"  {float(d['score']):.3f}  {d['selection']:<6}  {d['reason']:<12}  {d['opinion_id']}  "
                  f"(plan {d.get('plan_id')}, expires {str(d['expires_at'])[:16]})")
    return 0


def add_parsers(sub) -> None:
    p = add_verb(sub, "review-queue", help="the open review requests of a specialist, in the order reviewers should answer them",
                 description="The opinions whose human label should teach the champion the most (`review_requests` "
                             "documents written by the review_queue asset), open and not expired, in queue order "
                             "(oldest day first, then by priority); `random` marks the uniformly drawn share the metrics and A/B tests use. Reads "
                             "only.",
                 env=("HIVE_HOME", "MONGODB_URI"))
    add_specialist(p)
    p.add_argument("--limit", type=positive_int, default=50, help="at most this many requests per specialist")
    p.add_argument("--json", action="store_true", help="print the queues as JSON")
    p.set_defaults(func=cmd_review_queue)

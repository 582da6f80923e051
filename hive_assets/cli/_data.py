"""`hive collect` and `hive store import`: production data."""

from __future__ import annotations

import argparse
import json
import sys

from hive_assets.cli import _dagster
from hive_assets.cli._args import (
    UsageError, add_specialist, add_verb, existing_file, fraction, non_empty, positive_int, set_check, window_days,
)


def collection_name(text: str) -> str:
    """One of the SPEC collections (imported lazily: the store modules pull in the data package)."""
    from hive_assets.data.store import COLLECTIONS

    if text not in COLLECTIONS:
        raise argparse.ArgumentTypeError(f"unknown collection {text!r}; choose from {', '.join(COLLECTIONS)}")
    return text


def cmd_collect(args: argparse.Namespace) -> int:
    config = {"min_samples": args.min_samples}
    if args.days is not None:
        config["window_days"] = args.days
    if args.min_confidence is not None:
        config["min_confidence"] = args.min_confidence
    if args.min_feedback_quality:
        config["min_feedback_quality"] = args.min_feedback_quality
    if args.quality_exempt_source:
        config["quality_exempt_sources"] = args.quality_exempt_source
    status = 0
    for specialist in args.specialist:
        result = _dagster.materialize(["raw_production_data"], specialist,
                                      {"ops": {"raw_production_data": {"config": config}}}, args.log_level)
        if not result.success:
            error = _dagster.failure_message(result)
            if args.json:  # one object per specialist, as `train --json` has it: a script sees which failed
                print(json.dumps({"specialist": specialist, "run_id": result.run_id, "success": False,
                                  "error": error}), flush=True)
            else:
                print(f"hive collect: {specialist}: collection failed in run {result.run_id}: {error}",
                      file=sys.stderr)
            status = 1
            continue
        value = result.output_for_node("raw_production_data")
        counts = value.counts
        record = {"specialist": specialist, "run_id": result.run_id, "success": True, "rows": counts["rows"],
                  "labelled": counts["labelled"], "quarantined": value.quarantined_by_reason,
                  # opinions left out, not quarantined (SPEC section 2): no audit event, or a low intent confidence
                  "filtered": {reason: counts.get(f"filtered_{reason}", 0)
                               for reason in ("no_audit_event", "low_intent_confidence", "no_intent_id")},
                  "quality_filter_dropped_by_class": counts.get("quality_filter_dropped_by_class", {})}
        print(json.dumps(record) if args.json else
              f"{specialist:<13} rows={counts['rows']:<7} labelled={counts['labelled']:<7} "
              f"quarantined={counts['quarantined']} {value.quarantined_by_reason} run={result.run_id}", flush=True)
    return status


def cmd_store_import(args: argparse.Namespace) -> int:
    from hive_assets.data import open_store
    from hive_assets.data.store.importer import UnreadableFile, import_jsonl

    with open_store() as store:
        try:
            result = import_jsonl(store, args.collection, args.file)
        except UnreadableFile as exc:
            done = exc.result
            print(f"hive store import: error: {exc}; the {done['read']} line(s) before it were read and "
                  f"{done['written']} document(s) written (importing the mended file again adds nothing)",
                  file=sys.stderr)
            if args.json:  # a script reads stdout: what was done, and why it stopped
                print(json.dumps({**done, "unreadable": str(exc)}))
            return 1
    print(json.dumps(result) if args.json else
          f"{args.file}: " + ", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, (list, dict))))
    if not args.json and result["errors"]:  # which lines, so they can be mended (--json has them in the document)
        shown, bad = len(result["errors"]), result["bad_lines"]
        print("bad lines" + ("" if shown == bad else f" (the first {shown} of {bad})") + ":", file=sys.stderr)
        for error in result["errors"]:
            print(f"  line {error['line']}: {error['error']}", file=sys.stderr)
    return 0 if result.get("bad_lines", 0) == 0 else 1


FERRETDB_POSTGRESQL_URL = "FERRETDB_POSTGRESQL_URL"


def check_store_index(args: argparse.Namespace) -> None:
    """Said before the home and its embedded store are created."""
    from hive_assets.config import Settings

    if not Settings.from_env().mongodb_uri:
        raise UsageError("MONGODB_URI is not set: the embedded SQLite store creates its indexes when it opens")


def cmd_store_index(args: argparse.Namespace) -> int:
    import os

    from hive_assets.config import Settings
    from hive_assets.data import open_store

    postgresql_url = os.environ.get(FERRETDB_POSTGRESQL_URL, "").strip() or None
    settings = Settings.from_env()
    with open_store(settings) as store:
        try:
            names = store.ensure_indexes(postgresql_url)
        except ValueError as exc:
            print(f"hive store index: error: {exc}", file=sys.stderr)
            return 2
    print(f"{store.describe()}: collection indexes ensured" + (
        f"; {len(names)} PostgreSQL lookup indexes: {', '.join(names)}" if postgresql_url else
        f" (FerretDB on PostgreSQL: set {FERRETDB_POSTGRESQL_URL} for the lookup indexes)"))
    return 0


def add_parsers(sub) -> None:
    p = add_verb(sub, "collect", help="materialize raw_production_data (the seed's collector)",
                 description="Materialize `raw_production_data` for each specialist, one Dagster run per "
                             "specialist in the instance the UI and `hive report` read, and print the rows "
                             "kept and the quarantine counts per reason. Exit 1 if a run fails (its run id "
                             "and error are printed).",
                 env=("HIVE_HOME", "DAGSTER_HOME", "MONGODB_URI", "MONGODB_DATABASE", "KAFKA_BOOTSTRAP_SERVERS",
                      "KAFKA_SECURITY_PROTOCOL", "DATA_COLLECTION_DAYS", "MIN_CONFIDENCE", "HIVE_ASSET_STORAGE", "HIVE_ENV"))
    add_specialist(p)  # given twice it said nothing and collected the second only
    p.add_argument("--min-samples", type=positive_int, default=10_000,
                   help="rows under which the enough_samples check warns")
    p.add_argument("--days", type=window_days,
                   help="collection window in days (default: $DATA_COLLECTION_DAYS, else 90)")
    p.add_argument("--min-confidence", type=fraction,
                   help="0..1: NLU intent confidence under which an opinion is filtered "
                        "(default: $MIN_CONFIDENCE, else 0.7)")
    p.add_argument("--min-feedback-quality", type=fraction, default=0.0,
                   help="drop feedback rated below this, except from exempt sources; 0 is no filter")
    p.add_argument("--quality-exempt-source", action="append", metavar="SOURCE", type=non_empty,
                   help="a feedback origin the quality filter skips (feedback_source or metadata.source, any "
                        "case); repeatable; replaces the default (default: approval_service)")
    p.add_argument("--json", action="store_true", help="one JSON object per specialist (default: text)")
    # quiet by default, as train, deploy and ab-test: a failed step's event carries Dagster's stack trace, and
    # the line this verb prints says what failed (the instance keeps every event for the UI)
    p.add_argument("--log-level", type=str.upper, choices=_dagster.LOG_LEVELS, default=_dagster.QUIET,
                   help="the Dagster run log shown on stderr (WARNING and below show a failed step's stack "
                        "trace); the instance keeps every event for the UI")
    p.set_defaults(func=cmd_collect)

    store = sub.add_parser("store", help="document store utilities", description="Document store utilities.")
    verbs = store.add_subparsers(dest="store_command", required=True, metavar="{import,index}")
    p = add_verb(verbs, "import", help="load mongoexport JSON lines into the configured store",
                 description="Load a `mongoexport` JSON-lines file (extended JSON, optionally .gz) into a "
                             "collection of the configured store, upserting by the collection's key (importing "
                             "twice changes nothing). Prints a summary (--json: as JSON); exit 1 if some lines "
                             "were bad.",
                 env=("HIVE_HOME", "MONGODB_URI", "MONGODB_DATABASE"))
    p.add_argument("--collection", type=collection_name, required=True,
                   help="target collection, e.g. specialist_opinions, cognitive_plans, intentions_audit")
    p.add_argument("file", type=existing_file, help="the JSON-lines file (.jsonl or .jsonl.gz)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (default: one line of text)")
    p.set_defaults(func=cmd_store_import)
    p = add_verb(verbs, "index", help="create the store's indexes now; on FerretDB with PostgreSQL, also its lookup indexes",
                 description="Create every collection's indexes in the MongoDB/FerretDB store (otherwise created on "
                             "first use). With FERRETDB_POSTGRESQL_URL (the PostgreSQL database FerretDB 1.x runs on, "
                             "as a role owning its tables), also the GIN indexes through which PostgreSQL answers "
                             "collection's joins by id (FerretDB's own btree indexes cannot serve them). Idempotent. "
                             "Statements FerretDB prepared before keep their plans until its PostgreSQL connections "
                             "are renewed (hourly, or restart FerretDB); collection's own lookups do not wait for that.",
                 env=("MONGODB_URI", "MONGODB_DATABASE", FERRETDB_POSTGRESQL_URL))
    p.set_defaults(func=cmd_store_index)
    set_check(p, check_store_index)

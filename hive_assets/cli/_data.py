"""`hive collect` and `hive store import`: production data."""

from __future__ import annotations

import argparse
import json
import sys

from hive_assets.cli import _dagster
from hive_assets.cli._args import specialists


def cmd_collect(args: argparse.Namespace) -> int:
    config = {"min_samples": args.min_samples}
    if args.days is not None:
        config["window_days"] = args.days
    if args.min_confidence is not None:
        config["min_confidence"] = args.min_confidence
    if args.min_feedback_quality is not None:
        config["min_feedback_quality"] = args.min_feedback_quality
    if args.quality_exempt_source:
        config["quality_exempt_sources"] = args.quality_exempt_source
    status = 0
    for specialist in specialists(args.specialist):
        result = _dagster.materialize(["raw_production_data"], specialist,
                              {"ops": {"raw_production_data": {"config": config}}})
        if not result.success:
            print(f"{specialist}: collection failed (see the Dagster run log)", file=sys.stderr)
            status = 1
            continue
        value = result.output_for_node("raw_production_data")
        counts = value.counts
        record = {"specialist": specialist, "rows": counts["rows"], "labelled": counts["labelled"],
                  "quarantined": value.quarantined_by_reason,
                  "quality_filter_dropped_by_class": counts.get("quality_filter_dropped_by_class", {})}
        print(json.dumps(record) if args.json else
              f"{specialist:<13} rows={counts['rows']:<7} labelled={counts['labelled']:<7} "
              f"quarantined={counts['quarantined']} {value.quarantined_by_reason}")
    return status


def cmd_store_import(args: argparse.Namespace) -> int:
    from hive_assets.data import open_store
    from hive_assets.data.store.importer import import_jsonl

    with open_store() as store:
        result = import_jsonl(store, args.collection, args.file)
    print(json.dumps(result))
    return 0 if result.get("bad_lines", 0) == 0 else 1

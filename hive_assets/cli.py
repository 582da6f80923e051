"""`hive`: the platform from the shell (SPEC section 10).

Commands that change models or data run Dagster materializations or jobs against the configured
Dagster instance, so they leave the same run record as the UI and the sensors.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from hive_assets.config import SPECIALISTS, Settings


def _specialists(value: str) -> list[str]:
    if value == "all":
        return list(SPECIALISTS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in SPECIALISTS]
    if unknown:
        raise SystemExit(f"unknown specialist(s) {unknown}; choose from {', '.join(SPECIALISTS)} or 'all'")
    return names


def champion_opinions(tracking_uri: str, store):
    """Opinions served as production would: by each specialist's champion through the serving helper,
    and by the challenger for the units an open A/B test routes to it (with ab_test_id / ab_arm)."""
    from hive_assets import ab
    from hive_assets.routing import CHALLENGER, assign_arm
    from hive_assets.serving import load_evaluator
    from hive_assets.simulator import heuristic_opinion

    try:
        champions = {s: load_evaluator(tracking_uri, s) for s in SPECIALISTS}
        tests = {s: ab.running_test(store, s) for s in SPECIALISTS}
        challengers = {s: load_evaluator(tracking_uri, s, t["challenger_version"]) for s, t in tests.items() if t}
    except Exception as exc:  # no registry yet, or unreachable: the heuristic stands in, and we say so
        print(f"no models served ({type(exc).__name__}: {exc}); using the heuristic", file=sys.stderr)
        return None
    if not any(champions.values()):
        return None
    print("opinions served by champions: " + ", ".join(f"{s} v{e.version}" for s, e in champions.items() if e)
          + "".join(f"; A/B {t['test_id']} at {t['traffic_percent']:g}%" for t in tests.values() if t), file=sys.stderr)

    def serve(specialist: str, plans: list[dict]):
        champion = champions.get(specialist)
        if champion is None:
            return [(*heuristic_opinion(specialist, p), {}) for p in plans]
        out = [(e.recommendation, round(e.confidence, 4), e.model_version, {}) for e in champion.evaluate_many(plans)]
        test = tests.get(specialist)
        if test and specialist in challengers:
            by_challenger = challengers[specialist].evaluate_many(plans)
            for i, plan in enumerate(plans):
                arm = assign_arm(test["salt"], plan["intent_id"], test["traffic_percent"])
                rec, conf, version, _ = out[i]
                if arm == CHALLENGER:
                    e = by_challenger[i]
                    rec, conf, version = e.recommendation, round(e.confidence, 4), e.model_version
                out[i] = (rec, conf, version, {"ab_test_id": test["test_id"], "ab_arm": arm})
        return out

    return serve


def cmd_simulate(args: argparse.Namespace) -> int:
    from hive_assets.simulator import simulate
    from hive_assets.store import open_store

    now = datetime.fromisoformat(args.now) if args.now else None
    with open_store() as store:
        opinion_model = None if args.no_serve else champion_opinions(Settings.from_env().mlflow_uri, store)
        summary = simulate(store, plans=args.plans, days=args.days, seed=args.seed, now=now, drift=args.drift,
                           label_noise=args.label_noise, opinion_model=opinion_model)
        where = store.describe()
    info = summary.as_dict()
    print(json.dumps({"store": where, **info}, indent=2) if args.json else
          f"simulated {info['plans']} plans into {where}: " + ", ".join(f"{k}={v}" for k, v in info["written"].items())
          + f"; {info['malformed']} malformed on purpose")
    return 0


def cmd_store_import(args: argparse.Namespace) -> int:
    from hive_assets.store import open_store
    from hive_assets.store.importer import import_jsonl

    with open_store() as store:
        result = import_jsonl(store, args.collection, args.file)
    print(json.dumps(result))
    return 0 if result.get("bad_lines", 0) == 0 else 1


def _materialize(selection: list[str], specialist: str, run_config: dict | None = None):
    """Materialize `selection` for one partition in the configured Dagster instance (a real run)."""
    import dagster as dg

    from hive_assets.definitions import defs

    return dg.materialize(
        list(defs.assets), selection=selection, partition_key=specialist, resources=defs.resources,
        instance=dg.DagsterInstance.get(), run_config=run_config or {}, raise_on_error=False,
    )


def cmd_collect(args: argparse.Namespace) -> int:
    config = {"min_samples": args.min_samples}
    if args.days is not None:
        config["window_days"] = args.days
    if args.min_confidence is not None:
        config["min_confidence"] = args.min_confidence
    status = 0
    for specialist in _specialists(args.specialist):
        result = _materialize(["raw_production_data"], specialist,
                              {"ops": {"raw_production_data": {"config": config}}})
        if not result.success:
            print(f"{specialist}: collection failed (see the Dagster run log)", file=sys.stderr)
            status = 1
            continue
        value = result.output_for_node("raw_production_data")
        counts = value.counts
        record = {"specialist": specialist, "rows": counts["rows"], "labelled": counts["labelled"],
                  "quarantined": value.quarantined_by_reason}
        print(json.dumps(record) if args.json else
              f"{specialist:<13} rows={counts['rows']:<7} labelled={counts['labelled']:<7} "
              f"quarantined={counts['quarantined']} {value.quarantined_by_reason}")
    return status


def latest_partition_metadata(instance, asset: str, specialist: str) -> tuple[str | None, dict]:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[specialist]), limit=1).records
    if not records:
        return None, {}
    event = records[0].event_log_entry
    mat = event.asset_materialization
    return event.run_id, {k: v.value for k, v in (mat.metadata or {}).items()}


def cmd_report(args: argparse.Namespace) -> int:
    """What the last run of each specialist did: the table `make demo` prints."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    header = f"{'specialist':<13}{'rows':>7}{'quar.':>7}{'test':>6}  {'accuracy [95% CI]':<22}{'macro-F1 [95% CI]':<22}" \
             f"{'conf.':>6}  {'gate':<6}{'model version':<28}"
    print(header)
    print("-" * len(header))
    ok = True
    for specialist in SPECIALISTS:
        raw_run, raw = latest_partition_metadata(instance, "raw_production_data", specialist)
        val_run, val = latest_partition_metadata(instance, "validation_report", specialist)
        reg_run, reg = latest_partition_metadata(instance, "registered_model_version", specialist)
        if not val:
            print(f"{specialist:<13} not materialized")
            ok = False
            continue
        pm, ci = val.get("test_metrics", {}), val.get("intervals", {})

        def fmt(name: str) -> str:
            if name not in pm:
                return "-"
            return f"{pm[name]:.3f} [{ci[name][0]:.3f},{ci[name][1]:.3f}]"

        gate = "pass" if val.get("gate_passed") else "FAIL"
        if reg and reg_run == val_run:
            version = f"{reg['model']} v{reg['version']} @{reg['alias'] or '-'}"
        else:
            version = "blocked by gate" if not val.get("gate_passed") else "not registered"
            ok = False
        print(f"{specialist:<13}{raw.get('rows', 0):>7}{raw.get('quarantined', 0):>7}{val.get('n_test', 0):>6}  "
              f"{fmt('accuracy'):<22}{fmt('macro_f1'):<22}{pm.get('confidence_mean', 0):>6.3f}  {gate:<6}{version:<28}")
        if not val.get("gate_passed"):
            print(f"{'':<13}gate: {val.get('gate')}")
    return 0 if ok or not args.strict else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hive", description="hive-assets: the specialist retraining platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write simulated production data into the configured store")
    p.add_argument("--plans", type=int, default=4000)
    p.add_argument("--days", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--drift", type=float, default=0.0, help="0..1: shift plan risk and size distributions")
    p.add_argument("--label-noise", type=float, default=0.10)
    p.add_argument("--now", help="ISO-8601 end of the simulated period (default: now)")
    p.add_argument("--no-serve", action="store_true", help="do not serve opinions with the registered champions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("collect", help="materialize raw_production_data (the seed's collector)")
    p.add_argument("--specialist", default="all")
    p.add_argument("--min-samples", type=int, default=10_000)
    p.add_argument("--days", type=int)
    p.add_argument("--min-confidence", type=float)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("report", help="what the latest run of each specialist produced")
    p.add_argument("--strict", action="store_true", help="exit 1 unless every specialist has a registered version")
    p.set_defaults(func=cmd_report)

    store = sub.add_parser("store", help="document store utilities").add_subparsers(dest="store_command", required=True)
    p = store.add_parser("import", help="load mongoexport JSON lines into the configured store")
    p.add_argument("--collection", required=True)
    p.add_argument("file")
    p.set_defaults(func=cmd_store_import)

    args = parser.parse_args(argv)
    Settings.from_env().home.mkdir(parents=True, exist_ok=True)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

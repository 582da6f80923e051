"""`hive report`: what the latest run of each specialist produced, from the Dagster instance."""

from __future__ import annotations

import argparse
import json
import os
import sys

from hive_assets.cli import _dagster
from hive_assets.cli._args import add_specialist, add_verb


def cmd_report(args: argparse.Namespace) -> int:
    """What the last run of each specialist did: the table `make demo` prints. Exit 0 unless --strict and
    some specialist has no registered version from its latest validation."""
    instance = _dagster.instance()
    latest = {
        specialist: {asset: _dagster.latest_partition_metadata(instance, asset, specialist)
                     for asset in ("raw_production_data", "validation_report", "registered_model_version")}
        for specialist in args.specialist
    }
    if args.json:
        print(json.dumps({s: {asset: {"run_id": run, "metadata": _plain(meta)} for asset, (run, meta) in assets.items()}
                          for s, assets in latest.items()}, default=str))
        incomplete = [s for s, assets in latest.items()
                      if not (_registered_in_run(assets) or _registered_later(s, assets["validation_report"][0]))]
        return _strict_exit(args, incomplete)
    if not any(run for assets in latest.values() for run, _ in assets.values()):
        from hive_assets.config import hive_env

        # production refuses `make demo` and `hive simulate` (they write simulated data into its store)
        how = ("materialize `retrain_specialist` for each specialist (the Dagster UI, or `dagster job launch`), or "
               "let the feedback sensor do it" if hive_env() == "production" else
               "run `make demo`, or `hive simulate` then `hive collect` or `dagster asset materialize`")
        print(f"nothing materialized yet in the Dagster instance {os.environ.get('DAGSTER_HOME', '')}: {how}")
        return _strict_exit(args, list(args.specialist))
    champions = _champions()
    registered = {s: _version_label(*latest[s]["validation_report"], *latest[s]["registered_model_version"])
                  or _registered_later(s, latest[s]["validation_report"][0]) for s in args.specialist}
    versions = {s: registered[s] or _unregistered_label(latest[s]["validation_report"][1]) for s in args.specialist}
    # as wide as its longest value ("architecture-evaluator v12 (challenger)"), two spaces before the next
    width = max([len(VERSION_HEADER)] + [len(v) for v in versions.values() if v]) + 2
    header = f"{'specialist':<13}{'rows':>7}{'quar.':>7}{'test':>6}  {'accuracy [95% CI]':<22}{'macro-F1 [95% CI]':<22}" \
             f"{'conf.':>6}  {'gate':<6}{VERSION_HEADER:<{width}}{'champion':<9}"
    print(header)
    print("-" * len(header))
    incomplete = []
    for specialist in args.specialist:
        (raw_run, raw), (val_run, val), (reg_run, reg) = latest[specialist].values()
        if not val:
            collected = f"{raw.get('rows', 0):>7}{raw.get('quarantined_total', 0):>7}" if raw_run else f"{'-':>7}{'-':>7}"
            print(f"{specialist:<13}{collected}  not validated yet")
            incomplete.append(specialist)
            continue
        pm, ci = val.get("test_metrics", {}), val.get("intervals", {})

        def fmt(name: str) -> str:
            if name not in pm:
                return "-"
            if pm[name] is None:  # a class without test rows: the gate line below says which
                return "not computable"
            return f"{pm[name]:.3f} [{ci[name][0]:.3f},{ci[name][1]:.3f}]"

        gate = "pass" if val.get("gate_passed") else "FAIL"
        version = versions[specialist]
        if registered[specialist] is None:
            incomplete.append(specialist)
        print(f"{specialist:<13}{raw.get('rows', 0):>7}{raw.get('quarantined_total', 0):>7}{val.get('n_test', 0):>6}  "
              f"{fmt('accuracy'):<22}{fmt('macro_f1'):<22}{pm.get('confidence_mean', 0):>6.3f}  {gate:<6}"
              f"{version:<{width}}{champions.get(specialist) or 'none':<9}")
        if not val.get("gate_passed"):
            print(f"{'':<13}gate: {val.get('gate')}")
    return _strict_exit(args, incomplete)


def _strict_exit(args: argparse.Namespace, incomplete: list[str]) -> int:
    """0, or with --strict 1 and one line on stderr saying which specialists failed it (an exit 1 in CI with
    nothing said left the reader to work out which row was the cause)."""
    if not (args.strict and incomplete):
        return 0
    print(f"hive report: --strict: no registered version from the latest validation of {', '.join(incomplete)}",
          file=sys.stderr)
    return 1


VERSION_HEADER = "latest version (its alias then)"


def _version_label(val_run, val, reg_run, reg) -> str | None:
    """The version the latest validation's run registered, with its alias then; None when that run registered
    none (or nothing was validated)."""
    if val and reg and reg_run == val_run:
        return f"{reg['model']} v{reg['version']} ({reg['alias'] or 'no alias'})"  # its alias when registered
    return None


def _registered_in_run(assets: dict) -> bool:
    return bool(assets["registered_model_version"][0]) and \
        assets["registered_model_version"][0] == assets["validation_report"][0]


def _unregistered_label(val: dict) -> str | None:
    if not val:
        return None
    return "blocked by gate" if not val.get("gate_passed") else "not registered"


def _registered_later(specialist: str, val_run: str | None) -> str | None:
    """The version of the validated MLflow run registered after its run (`hive deploy register`, a forced
    registration), with its aliases now; None when there is none. The validation's gate verdict in the
    ledger names the MLflow run it judged."""
    if not val_run:
        return None
    from hive_assets.data import open_store
    from hive_assets.registry import client_for, model_name

    with open_store() as store:
        row = store.find_one("model_decisions", {"specialist_type": specialist, "kind": "gate_verdict",
                                                 "dagster_run_id": val_run})
    mlflow_run = ((row or {}).get("details") or {}).get("mlflow_run_id")
    if not mlflow_run:
        return None
    from hive_assets.config import Settings

    client = client_for(Settings.from_env().mlflow_uri)
    found = client.search_model_versions(f"name='{model_name(specialist)}' and run_id='{mlflow_run}'")
    if not found:
        return None
    # the search leaves aliases out: read the version itself
    version = client.get_model_version(model_name(specialist), str(max(int(v.version) for v in found)))
    return f"{version.name} v{version.version} (registered later; now {', '.join(sorted(version.aliases)) or 'no alias'})"


def _plain(metadata: dict) -> dict:
    """The metadata a script reads (numbers, short texts, JSON values); tables, links and images stay in the UI."""
    return {k: v for k, v in metadata.items()
            if v is None or isinstance(v, (bool, int, float, dict, list)) or (isinstance(v, str) and len(v) < 500)}


def _champions() -> dict[str, str]:
    """`v<N>` of each specialist's current champion (the registry alias), which the latest trained version
    need not be (a challenger under test, a version rolled back, a gate that blocked it)."""
    from hive_assets.config import SPECIALISTS, Settings
    from hive_assets.registry import CHAMPION, alias_version, client_for

    client = client_for(Settings.from_env().mlflow_uri)
    return {s: f"v{v.version}" for s in SPECIALISTS if (v := alias_version(client, s, CHAMPION)) is not None}


def add_parsers(sub) -> None:
    p = add_verb(sub, "report", help="what the latest run of each specialist produced",
                 description="The per-specialist table `make demo` prints, read from the Dagster instance: rows "
                             "and quarantined documents collected, test-set size, accuracy and macro-F1 with "
                             "95% plan-bootstrap intervals, mean confidence, the gate, the latest registered "
                             "version (with the alias it got) and the current champion (the registry alias). On an "
                             "empty instance it says so and exits 0.",
                 env=("HIVE_HOME", "DAGSTER_HOME"))
    add_specialist(p)
    p.add_argument("--json", action="store_true",
                   help="the latest materialization's metadata per specialist and asset, as JSON (default: the table)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 unless every specialist has a registered version from its latest validation")
    p.set_defaults(func=cmd_report)

"""`hive report`: what the latest run of each specialist produced, from the Dagster instance."""

from __future__ import annotations

import argparse

from hive_assets.cli import _dagster
from hive_assets.config import SPECIALISTS


def cmd_report(args: argparse.Namespace) -> int:
    """What the last run of each specialist did: the table `make demo` prints."""
    instance = _dagster.instance()
    header = f"{'specialist':<13}{'rows':>7}{'quar.':>7}{'test':>6}  {'accuracy [95% CI]':<22}{'macro-F1 [95% CI]':<22}" \
             f"{'conf.':>6}  {'gate':<6}{'model version':<28}"
    print(header)
    print("-" * len(header))
    ok = True
    for specialist in SPECIALISTS:
        raw_run, raw = _dagster.latest_partition_metadata(instance, "raw_production_data", specialist)
        val_run, val = _dagster.latest_partition_metadata(instance, "validation_report", specialist)
        reg_run, reg = _dagster.latest_partition_metadata(instance, "registered_model_version", specialist)
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

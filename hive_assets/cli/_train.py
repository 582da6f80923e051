"""`hive train` and `hive validate`: materialize training and validation through the configured Dagster
instance (so the runs appear in the UI) and print the gate table; exit 1 when a gate fails.

`--specialist` names the specialist as on every verb (`--specialist-type`, the seed's spelling, is
accepted with a deprecation note); `--model-type` is the estimator, as in the seed's MLproject. A
specialist's name given to `--model-type` is refused with a hint, so the two never mix up."""

from __future__ import annotations

import argparse
import json
import sys

from hive_assets.cli import _dagster
from hive_assets.config import AUTO_MODEL_TYPE, MODEL_TYPES, SPECIALISTS
from hive_assets.cli._args import add_specialist, add_verb, non_negative_int

TRAIN_SELECTION = ["raw_production_data", "enhanced_features", "trained_model", "validation_report"]


def add_parsers(sub) -> None:
    p = add_verb(sub, "train", help="collect, featurize, train and validate (materializes up to validation_report)",
                 description="Materialize raw_production_data -> enhanced_features -> trained_model -> "
                             "validation_report for each specialist in the configured Dagster instance, then print "
                             "the gate table. Exit 1 when a gate fails.",
                 env=("HIVE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MONGODB_URI",
                      "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "HIVE_ASSET_STORAGE", "HIVE_ENV"))
    add_specialist(p, deprecated=("--specialist-type",))
    p.add_argument("--model-type", type=estimator, default=AUTO_MODEL_TYPE,
                   help=f"the estimator: {', '.join(MODEL_TYPES)}, or {AUTO_MODEL_TYPE} (default: the best candidate "
                        "family on validation macro-F1)")
    p.add_argument("--hyperparameter-tuning", action="store_true",
                   help="successive-halving search scored on validation macro-F1")
    p.add_argument("--random-state", type=non_negative_int, default=0,
                   help="seed of the estimator and the tuning sample")
    p.add_argument("--selection-max-rows", type=non_negative_int, default=0, metavar="N",
                   help="auto: compare the families on a stratified sample of N training rows, then fit the winner "
                        "on all (faster on many labels, at some cost in quality; default 0: on every row)")
    p.add_argument("--json", action="store_true", help="one JSON object per specialist (default: the gate tables)")
    p.set_defaults(func=cmd_train)

    p = add_verb(sub, "validate", help="re-run validation_report on the latest trained model (the champion re-scored too)",
                 description="Materialize validation_report for each specialist from its latest trained_model and "
                             "enhanced_features in the configured Dagster instance; print the gate table. Exit 1 "
                             "when a gate fails.",
                 env=("HIVE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MONGODB_URI", "HIVE_ASSET_STORAGE",
                      "HIVE_ENV"))
    add_specialist(p)
    p.add_argument("--json", action="store_true", help="one JSON object per specialist (default: the gate tables)")
    p.set_defaults(func=cmd_validate)


def estimator(text: str) -> str:
    if text in MODEL_TYPES or text == AUTO_MODEL_TYPE:
        return text
    hint = f"; {text!r} is a specialist: use --specialist {text}" if text in SPECIALISTS else ""
    raise argparse.ArgumentTypeError(
        f"unknown estimator {text!r}: choose from {', '.join((*MODEL_TYPES, AUTO_MODEL_TYPE))}{hint}")


def _print_outcome(specialist: str, result, as_json: bool = False) -> bool:
    """Print the gate table (or the failure) of one run; True when every blocking gate passed."""
    from hive_assets.evaluation import gate_rows, gate_table_text

    report = _dagster.output_if_any(result, "validation_report")
    if report is None and result.success:  # trained_model skipped: the data and configuration are a live version's
        reason = _skip_reason(result.run_id) or "nothing changed, not retrained"
        if as_json:
            print(json.dumps({"specialist": specialist, "run_id": result.run_id, "success": True, "skipped": reason}),
                  flush=True)
        else:
            print(f"{specialist}: run {result.run_id}: {reason}")
        return True
    if as_json:
        record = {"specialist": specialist, "run_id": result.run_id, "success": report is not None}
        if report is None:
            record["error"] = _dagster.failure_message(result)
        else:
            record.update({"mlflow_run_id": report["mlflow_run_id"], "n_test": report["n_test"],
                           "gate": report["gate"], "non_inferiority": report["non_inferiority"],
                           "rows": gate_rows(report)})
        print(json.dumps(record, default=str), flush=True)
        return report is not None and bool(report["gate"]["passed"])
    if report is None:
        print(f"{specialist}: run {result.run_id} failed before validation: {_dagster.failure_message(result)}",
              file=sys.stderr)
        return False
    gate, ni = report["gate"], report["non_inferiority"]
    print(f"\n{specialist}: run {result.run_id}, {report['n_test']} test rows "
          f"({report['n_test_plans']} plans), MLflow run {report['mlflow_run_id']}")
    print(gate_table_text(report))
    print(f"gate: {'pass' if gate['passed'] else 'FAIL'}: {gate['summary']}")
    print(f"champion: {ni['summary']}")
    return bool(gate["passed"])


def _skip_reason(run_id: str) -> str | None:
    from hive_assets import registry
    from hive_assets.data import open_store

    with open_store() as store:
        row = store.find_one("model_decisions", {"kind": registry.SKIPPED_UNCHANGED, "dagster_run_id": run_id})
    return row["reason"] if row else None


def cmd_train(args: argparse.Namespace) -> int:
    config = {"model_type": args.model_type, "hyperparameter_tuning": args.hyperparameter_tuning,
              "random_state": args.random_state, "selection_max_rows": args.selection_max_rows}
    ok = True
    for specialist in args.specialist:
        result = _dagster.materialize(TRAIN_SELECTION, specialist, {"ops": {"trained_model": {"config": config}}},
                                      log_level=_dagster.QUIET)
        ok = _print_outcome(specialist, result, args.json) and ok
    return 0 if ok else 1


def cmd_validate(args: argparse.Namespace) -> int:
    ok = True
    instance = _dagster.instance()
    for specialist in args.specialist:
        if _dagster.latest_partition_metadata(instance, "trained_model", specialist)[0] is None:
            message = f"nothing trained yet in this instance: run `hive train --specialist {specialist}` first"
            if args.json:
                print(json.dumps({"specialist": specialist, "run_id": None, "success": False, "error": message}))
            else:
                print(f"{specialist}: {message}", file=sys.stderr)
            ok = False
            continue
        result = _dagster.materialize(["validation_report"], specialist, log_level=_dagster.QUIET)
        ok = _print_outcome(specialist, result, args.json) and ok
    return 0 if ok else 1

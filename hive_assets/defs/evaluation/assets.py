"""validation_report, with its checks: minimum metrics and calibration (blocking), champion
non-inferiority (recorded in the report, where registration reads it: it blocks promotion, not
registration as a challenger)."""

import dagster as dg
import pandas as pd

from hive_assets import registry
from hive_assets.defs import _ui
from hive_assets.defs.catalog import OWNERS, EVALUATION
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.evaluation import (
    NOT_COMPUTABLE, build_report, confusion_matrix_png, gate_rows, reliability_diagram_png,
)
from hive_assets.training import SchemaMismatch, encode_labels

CHECKS = [
    dg.AssetCheckSpec("minimum_metrics", asset="validation_report", blocking=True,
                      description="SPEC section 5 minimum metrics on the test split (95% plan-bootstrap intervals)."),
    dg.AssetCheckSpec("calibration", asset="validation_report", blocking=True,
                      description="Expected calibration error on the test split <= 0.05."),
    dg.AssetCheckSpec("champion_non_inferiority", asset="validation_report", blocking=False,
                      description="Not worse than the champion on the same rows (paired plan bootstrap, margin "
                                  "0.02). Blocks promotion (promote_if_better), not registration as challenger."),
]


REPORT_DPI = 90  # the report's two images in the asset page (figures.UI_DPI is 70, for the smaller charts)

METRICS_COLUMNS = [
    ("metric", "string", "gated quantity (`x - champion`: the paired difference with the champion)"),
    ("value", "float", "on the test split (empty: not computable, e.g. a class without test rows)"),
    ("95% low", "float", "plan-bootstrap 95% interval, low end (empty: no interval)"),
    ("95% high", "float", "plan-bootstrap 95% interval, high end"),
    ("minimum", "string", "the bound the gate applies"),
    ("passed", "bool", "the gate's verdict on this row (empty: a champion delta not computable, not failed)"),
]


def metrics_table(report: dict) -> dg.TableMetadataValue:
    """The gate table (minimum metrics, calibration, non-inferiority) with intervals, one row per quantity."""
    return _ui.table(METRICS_COLUMNS, [
        {"metric": r["metric"], "value": _number(r["value"]),
         "95% low": None if r["interval"] is None else float(r["interval"][0]),
         "95% high": None if r["interval"] is None else float(r["interval"][1]),
         "minimum": r["bound"], "passed": None if r["verdict"] == NOT_COMPUTABLE else r["verdict"] == "pass"}
        for r in gate_rows(report)])


def _number(value: float | None) -> float | None:
    """A metric as a float, None when it cannot be computed (a class without test rows: the report's
    `not_computable` says why)."""
    return None if value is None else float(value)


def _check(name: str, specialist: str, verdict: dict, severity: dg.AssetCheckSeverity,
           **metadata) -> dg.AssetCheckResult:
    return _ui.check_result(specialist, check_name=name, passed=verdict["passed"], severity=severity,
                            description=verdict["summary"],
                            metadata={"failed_metrics": dg.MetadataValue.json(verdict["failures"]),
                                      **_ui.for_display(metadata)})


@dg.asset(partitions_def=specialist_partitions, group_name=EVALUATION, kinds={"scikitlearn", "mlflow"},
          owners=OWNERS, check_specs=CHECKS,
          resource_defs={"run_lease": RUN_LEASE})  # the partition's one-writer lease, held for the whole run
def validation_report(context: dg.AssetExecutionContext, enhanced_features: pd.DataFrame, trained_model: dict,
                      mlflow: MlflowResource, document_store: DocumentStoreResource, run_lease: RunLeaseResource):
    """Held-out metrics with bootstrap intervals, ECE and Brier, the champion re-scored on the same rows with
    paired intervals of the deltas, and the verdicts; logged into the training run."""
    specialist = context.partition_key
    run_id = trained_model["mlflow_run_id"]
    scored, trained_on = enhanced_features.attrs.get("data_snapshot_hash"), trained_model["data_snapshot_hash"]
    if scored != trained_on:
        # another window's rows: its "test" rows may be the model's training rows, and the report would
        # still name the model's own snapshot (what the gate, the ledger and promotion then trust)
        raise dg.Failure(f"{specialist}: the stored enhanced_features (data snapshot {scored}) are not the data "
                         f"trained_model (MLflow run {run_id}) was trained on (snapshot {trained_on}): not validating; "
                         "materialize trained_model and validation_report together from these features",
                         allow_retries=False)
    mlflow.require_reachable(context)  # before the run's metrics, the gate verdict's ledger row and the output
    client = mlflow.client()
    with registry.run_status(client, run_id, context.log.warning):
        test = enhanced_features[enhanced_features["split"] == "test"].reset_index(drop=True)
        model = registry.load_model(mlflow.uri, trained_model["model_uri"])
        proba = model.predict_proba(test)
        champion_info, champion_proba = None, None
        champion = registry.alias_version(client, specialist, registry.CHAMPION)
        if champion is not None and champion.run_id != run_id:
            champion_info = {"version": str(champion.version), "run_id": champion.run_id}
            try:
                champion_proba = registry.load_version_model(client, champion).predict_proba(test)
            except (SchemaMismatch, registry.ArtifactError) as exc:  # a champion that fails to load: no comparison
                champion_info.update({"metrics": None, "not_comparable": str(exc)})
        report = build_report(test, proba, champion_info, champion_proba, progress=context.log.info)
        report.update({"specialist": specialist, "mlflow_run_id": run_id, "model_uri": trained_model["model_uri"],
                       "data_snapshot_hash": trained_model["data_snapshot_hash"]})
        for name, value in report["metrics"].items():
            if value is not None:  # not computable: validation_report.json's `not_computable` says why
                client.log_metric(run_id, f"test_{name}", float(value))
        for name, (lo, hi) in report["intervals"].items():
            client.log_metric(run_id, f"test_{name}_ci_low", lo)
            client.log_metric(run_id, f"test_{name}_ci_high", hi)
        for name in ("ece", "ece_noise_floor", "ece_debiased", "brier"):
            client.log_metric(run_id, f"test_{name}", report["calibration"][name])
        for name, delta in report.get("champion_comparison", {}).get("deltas", {}).items():
            if delta is not None:
                client.log_metric(run_id, f"delta_vs_champion_{name}", float(delta))
        client.log_dict(run_id, report, "validation_report.json")
        # the rows themselves, so that any other model (a baseline, a later challenger) can be scored on them
        client.log_dict(run_id, {"opinion_id": test["opinion_id"].tolist(), "plan_id": test["plan_id"].tolist(),
                                 "label": test["label"].tolist()}, "test_rows.json")
        y = encode_labels(test["label"])
        cm_title = f"{specialist}: confusion matrix (test split)"
        registry.log_png(client, run_id, confusion_matrix_png(y, proba.argmax(axis=1), cm_title),
                         "plots/confusion_matrix.png")
        registry.log_png(client, run_id, reliability_diagram_png(y, proba), "plots/reliability_diagram.png")
        run_url = registry.run_url(mlflow.uri, client.get_run(run_id).info.experiment_id, run_id)
        # small copies for the asset page (the run keeps the full-size ones), shown at their own size: 90 dpi
        # keeps the labels' 9 pt text about 11 px high (readable) in ~330 px and under 30 KB
        images = {
            "confusion_matrix": _ui.image(confusion_matrix_png(y, proba.argmax(axis=1), cm_title, dpi=REPORT_DPI,
                                                               width=3.6), cm_title, run_url),
            "reliability_diagram": _ui.image(reliability_diagram_png(y, proba, dpi=REPORT_DPI, width=3.6),
                                             f"{specialist}: reliability diagram (test split)", run_url),
        }
        gate, calibration, non_inferior = report["gate"], report["calibration"], report["non_inferiority"]
        minimum = report["minimum_metrics"]
        with document_store.opened_in_step(context) as store:
            registry.record_decision(
                store, specialist, "gate_verdict", actor=f"dagster:{context.run_id}",
                reason=f"{gate['summary']}; {non_inferior['summary']}",
                dagster_run_id=context.run_id, data_snapshot_hash=report["data_snapshot_hash"],
                details={"passed": gate["passed"], "failures": gate["failures"], "ece": calibration["ece"],
                         "non_inferiority": non_inferior, "mlflow_run_id": run_id},
                decision_id=f"gate:{specialist}:{context.run_id}",
            )
    pm = report["metrics"]
    yield dg.Output(report, metadata=_ui.for_display({
        "gate_passed": gate["passed"],
        "gate": gate["summary"],
        "non_inferior": non_inferior["passed"],
        "n_test": report["n_test"],
        # floats, so the UI plots them per partition over time
        "accuracy": float(pm["accuracy"]), "macro_f1": _number(pm["macro_f1"]),
        "confidence_mean": float(pm["confidence_mean"]), "ece": float(calibration["ece"]),
        "ece_debiased": float(calibration["ece_debiased"]), "brier": float(calibration["brier"]),
        "metrics": metrics_table(report),
        **images,
        "mlflow_run": _ui.link(run_url),
        "test_metrics": dg.MetadataValue.json({k: v for k, v in pm.items() if not k.startswith("support_")}),
        "intervals": dg.MetadataValue.json(report["intervals"]),
        **({"not_computable": dg.MetadataValue.json(report["not_computable"])} if report["not_computable"] else {}),
        "champion_version": champion_info["version"] if champion_info else None,
    }))
    yield _check("minimum_metrics", specialist, minimum, dg.AssetCheckSeverity.ERROR,
                 macro_f1=pm["macro_f1"], accuracy=pm["accuracy"], confidence_mean=pm["confidence_mean"])
    yield _check("calibration", specialist, calibration, dg.AssetCheckSeverity.ERROR, ece=calibration["ece"],
                 ece_noise_floor=calibration["ece_noise_floor"], ece_debiased=calibration["ece_debiased"],
                 brier=calibration["brier"], bound=calibration["bound"])
    yield _check("champion_non_inferiority", specialist, non_inferior, dg.AssetCheckSeverity.WARN,
                 applicable=non_inferior["applicable"], margin=non_inferior["margin"])

"""One drift check for one specialist: its recent window against its champion's training reference.

The window is every plan the specialist gave an opinion on in [now - window, now] (both ends included, as
collection reads a window), joined to its plan by `hive_assets.data.collect` (validated plans from the ledger
and plain plan documents; malformed ones left out) with no intent-confidence filter: the model saw those plans
whatever the NLU's confidence. Features come from `hive_assets.features.features_frame`, the training path.
Prediction drift uses the recommendations of the opinions the champion version itself served (the window may
also hold a challenger's or a pre-platform model's). The statistics and the noise-aware decision are
`feature_drift` and `drift_decision` (hive_assets.monitoring._drift). Nothing is written here: the
sensor and `hive drift check` decide whether a drift retrains now or is held (`drift_trigger`), record
that in the document (`with_retraining`: the run key only when a trigger document was written for it)
and save it. Statistics are stored at full precision (a p-value of 1e-12 is not 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from hive_assets import clock
from hive_assets import registry
from hive_assets.data import DocumentStore, collect
from hive_assets.features import features_frame
from hive_assets.monitoring._drift import _category_drift, drift_decision, feature_drift
from hive_assets.monitoring._settings import MonitoringSettings
from hive_assets.monitoring._triggers import drift_run_key, time_bucket

__all__ = ["DriftCheck", "check_drift", "drift_window"]


@dataclass(frozen=True)
class DriftCheck:
    """The outcome of one check. `status`: "checked", "no_champion" or "no_reference" (then no document),
    or "model_unavailable" (the champion's files fail their checksum or do not load: a document with
    that decision and the reason, no window read)."""

    specialist: str
    status: str
    message: str
    model_version: str | None = None
    document: Mapping[str, Any] | None = None
    # when the decision is "drift": the key a retraining request for this check uses (the document gets
    # it only once the request is made, see `with_retraining`)
    run_key: str | None = None

    @property
    def decision(self) -> str | None:
        return None if self.document is None else self.document["decision"]

    @property
    def drift_score(self) -> float | None:
        return None if self.document is None else self.document["drift_score"]


def _all_intents(intent_ids, start, end) -> dict[str, float]:
    return dict.fromkeys(intent_ids, 1.0)  # no NLU filter: the specialist saw these plans


def drift_window(store: DocumentStore, specialist: str, now: datetime, window,
                 plan_cache: dict | None = None) -> pd.DataFrame:
    """The window's rows: `FEATURE_NAMES` columns plus `recommendation` and `specialist_version`.
    `plan_cache`: shared by the checks of one tick (the specialists judge the same plans)."""
    result = collect(store, specialist, now=now, window_days=window.total_seconds() / 86400.0, min_confidence=0.0,
                     audit_reader=_all_intents, plan_cache=plan_cache, source="window")
    rows = result.frame
    frame = features_frame(list(rows["plan"])) if len(rows) else features_frame([])
    frame["recommendation"] = rows["recommendation"].to_numpy() if len(rows) else []
    frame["specialist_version"] = rows["specialist_version"].astype(str).to_numpy() if len(rows) else []
    return frame


MODEL_UNAVAILABLE = "model_unavailable"


def _model_unavailable(specialist: str, version: str, reason: str, now: datetime,
                       settings: MonitoringSettings) -> DriftCheck:
    """The check of a champion whose files fail their checksum or cannot be loaded: no window is read,
    and the `drift_monitoring` document says so (decision `model_unavailable`, the one-line reason)."""
    document = {
        "check_id": f"drift:{specialist}:v{version}:{now.strftime('%Y%m%dT%H%M%S%fZ')}",
        "specialist_type": specialist, "model_version": version, "checked_at": now,
        "window_start": now - settings.drift_window, "window_end": now, "window_size": 0,
        "drift_score": None, "drift_feature": None, "drifted_features": [], "decision": MODEL_UNAVAILABLE,
        "reason": reason, "threshold": settings.drift_threshold, "min_rows": settings.drift_min_rows,
        "alpha": settings.drift_alpha, "prediction_threshold": settings.drift_prediction_threshold, "features": {},
        "prediction_drift": None, "prediction_window_size": 0, "run_key": None, "retraining": None,
    }
    return DriftCheck(specialist, MODEL_UNAVAILABLE, reason, model_version=version, document=document)


def check_drift(store: DocumentStore, client, specialist: str, now: datetime | None = None,
                settings: MonitoringSettings | None = None, plan_cache: dict | None = None) -> DriftCheck:
    """Compare `specialist`'s recent window with the reference stored with its champion (module docstring).

    `client`: an MlflowClient on the registry. Returns the `drift_monitoring` document (not saved, no
    retraining recorded yet) and, when the decision is "drift", the run key a retraining request would use.
    """
    settings = settings or MonitoringSettings.from_env()
    now = (now or clock.now()).astimezone(timezone.utc)
    version = registry.alias_version(client, specialist, registry.CHAMPION)
    if version is None:
        return DriftCheck(specialist, "no_champion", f"{specialist}: no champion version, nothing to compare")
    try:
        model = registry.load_version_model(client, version)
    except registry.ArtifactError as exc:  # this specialist only: the caller goes on with the others
        return _model_unavailable(specialist, str(version.version), str(exc), now, settings)
    reference = getattr(model, "drift_reference", None)
    if not reference:
        return DriftCheck(specialist, "no_reference",
                          f"{specialist}: champion v{version.version} has no stored drift reference",
                          model_version=str(version.version))
    window = drift_window(store, specialist, now, settings.drift_window, plan_cache)
    served = window["specialist_version"] == str(version.version)
    predictions = list(window.loc[served, "recommendation"]) if served.any() else None
    result = feature_drift(reference, window, None)
    if predictions is not None and reference.get("predictions"):
        # prediction drift over the champion's own opinions (a sub-window), features over all plans
        result["prediction"] = _category_drift(reference["predictions"], predictions)
    verdict = drift_decision(result, settings.drift_threshold, settings.drift_min_rows, settings.drift_alpha,
                             prediction_threshold=settings.drift_prediction_threshold)
    features = {name: {key: v[key] for key in ("psi", "psi_bias", "psi_corrected", "psi_noise_pvalue",
                                               "psi_noise_log10_pvalue", "ks_statistic", "ks_pvalue", "ks_significant",
                                               "drift", "n")}
                for name, v in verdict["features"].items()}
    run_key = (drift_run_key(specialist, version.version, time_bucket(now, settings.drift_check_interval))
               if verdict["decision"] == "drift" else None)
    document = {
        "check_id": f"drift:{specialist}:v{version.version}:{now.strftime('%Y%m%dT%H%M%S%fZ')}",
        "specialist_type": specialist,
        "model_version": str(version.version),
        "checked_at": now,
        "window_start": now - settings.drift_window,
        "window_end": now,
        "window_size": verdict["window_size"],
        "drift_score": verdict["drift_score"],
        "drift_score_corrected": verdict["drift_score_corrected"],
        "drift_feature": verdict["drift_feature"],
        "drifted_features": verdict["drifted_features"],
        "decision": verdict["decision"],
        "reason": verdict["reason"],
        "threshold": verdict["threshold"],
        "min_rows": verdict["min_rows"],
        "alpha": verdict["alpha"],
        "prediction_threshold": verdict["prediction_threshold"],
        "features": features,
        "prediction_drift": verdict["prediction"],
        "prediction_drifted": verdict["prediction_drifted"],
        "prediction_window_size": int(served.sum()),
        "run_key": None,  # set by `with_retraining` once a trigger document exists for it
        "retraining": None,
    }
    return DriftCheck(specialist, "checked", f"{specialist} v{version.version}: {verdict['decision']} "
                      f"({verdict['reason']})", model_version=str(version.version), document=document,
                      run_key=run_key)


def next_drift_check(store: DocumentStore, specialist: str, interval: timedelta) -> datetime | None:
    """When `specialist` is due for its next drift check on the platform clock: its last check plus the
    interval, less a tenth (the daemon's ticks are seconds apart); None when it was never checked. The
    drift sensor applies it on simulated time: a clock that stands still checks nothing twice."""
    from hive_assets.data import to_utc

    last = store.find_one("drift_monitoring", {"specialist_type": specialist}, sort=[("checked_at", -1)])
    return None if last is None else to_utc(last["checked_at"]) + interval - interval / 10

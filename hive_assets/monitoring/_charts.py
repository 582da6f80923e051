"""What a drift check shows in the Dagster UI: the per-feature PSI chart, and when a check is worth an
observation at all (the drift sensor ticks every few minutes; an observation per tick would bury the
changes in the asset's history)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hive_assets.figures import UI_DPI, figure_png

SCORE_CHANGE = 0.02  # PSI units; well under the 0.2 drift threshold, above tick-to-tick noise of a stable window


def psi_chart_png(features: Mapping[str, Mapping[str, Any]], threshold: float, title: str = "",
                  dpi: int = UI_DPI) -> bytes:
    """Horizontal bars of each feature's PSI (largest on top; red where the check called drift), with the
    threshold as a dashed line. Features without a PSI (too few rows, non-finite) are left out."""
    from matplotlib.figure import Figure

    scored = sorted(((name, float(f["psi"]), bool(f.get("drift"))) for name, f in features.items()
                     if f.get("psi") is not None), key=lambda item: item[1])
    fig = Figure(figsize=(5.0, max(2.0, 0.16 * len(scored) + 0.9)))
    ax = fig.add_subplot()
    names = [n for n, _, _ in scored]
    ax.barh(range(len(scored)), [v for _, v, _ in scored],
            color=["tab:red" if drift else "tab:blue" for _, _, drift in scored])
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_yticks(range(len(scored)), names, fontsize=6)
    ax.set_xlabel("PSI (window vs training reference)", fontsize=7)
    ax.tick_params(axis="x", labelsize=6)
    ax.set_xlim(0, max([threshold * 1.25] + [v * 1.05 for _, v, _ in scored]))
    ax.legend(loc="lower right", fontsize=6)
    ax.set_title(title or "PSI by feature", fontsize=8)
    return figure_png(fig, dpi)


def drift_changed(previous: Mapping[str, Any] | None, decision: str | None, drift_score: float | None,
                  score_change: float = SCORE_CHANGE, model_version: Any = None, retraining: str | None = None) -> bool:
    """Whether a check differs materially from the last one shown (`previous`: its "decision",
    "drift_score", "model_version" and "retraining", None when nothing was shown yet): another decision,
    another champion (a promotion with the same decision would otherwise leave the old version on show),
    another retraining outcome (a hold naming a test closed since stayed on show), a score appearing or
    vanishing, or a score that moved by at least `score_change`."""
    if previous is None:
        return True
    if previous.get("decision") != decision or (previous.get("retraining") or None) != (retraining or None):
        return True
    if model_version is not None and previous.get("model_version") is not None \
            and str(previous["model_version"]) != str(model_version):
        return True
    before = previous.get("drift_score")
    if before is None or drift_score is None:
        return (before is None) != (drift_score is None)
    return abs(float(drift_score) - float(before)) >= score_change

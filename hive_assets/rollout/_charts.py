"""The A/B test's trajectory as one small chart for the Dagster UI, from its `ab_tests` document alone.

Top: the challenger's traffic share over time, a step function of `traffic_history`. Bottom: at each
look recorded in `checks` (append-only, one per check time), the estimated agreement difference
(challenger - champion) with its always-valid interval: a confidence sequence, so the band may be read
at every look without inflating the error rate, and it shrinks as labels mature.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hive_assets.data import to_utc
from hive_assets.figures import UI_DPI, figure_png


def _naive(value: Any) -> datetime | None:
    t = to_utc(value)
    return t.replace(tzinfo=None) if t is not None else None


def difference_trajectory(test: dict[str, Any]) -> list[tuple[datetime, float, float, float]]:
    """(at, estimate, lower, upper) of every look that had enough labels for an interval, in time order."""
    points = []
    for check in test.get("checks") or []:
        diff = (check.get("statistics") or {}).get("difference")
        at = _naive(check.get("at"))
        if diff and at is not None and diff.get("lower") is not None:
            points.append((at, float(diff["estimate"]), float(diff["lower"]), float(diff["upper"])))
    return sorted(points)


def traffic_steps(test: dict[str, Any], until: datetime | None = None) -> tuple[list[datetime], list[float]]:
    """Times and challenger percentages of the traffic step function, extended to the test's end, its last
    look, or `until` (naive UTC), whichever the document has, so the last step has a visible length."""
    steps = sorted((_naive(h["at"]), float(h["percent"])) for h in test.get("traffic_history") or [])
    times, percents = [t for t, _ in steps], [p for _, p in steps]
    looks = [_naive(c.get("at")) for c in test.get("checks") or []]
    end = _naive(test.get("ended_at")) or max([t for t in looks if t is not None] + ([until] if until else []),
                                              default=None)
    if times and end is not None and end > times[-1]:
        times.append(end)
        percents.append(percents[-1])
    return times, percents


def trajectory_png(test: dict[str, Any], dpi: int = UI_DPI) -> bytes:
    """The two-panel chart of the module docstring for one `ab_tests` document."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    times, percents = traffic_steps(test)
    if times:
        top.step(times, percents, where="post", color="tab:orange")
    top.set_ylabel("challenger %", fontsize=7)
    top.set_ylim(0, 105)
    top.set_title(f"{test.get('test_id', 'A/B test')}: {test.get('status', '')}", fontsize=8)
    points = difference_trajectory(test)
    if points:
        at = [p[0] for p in points]
        bottom.fill_between(at, [p[2] for p in points], [p[3] for p in points], step="post", alpha=0.3,
                            color="tab:blue", label="always-valid 95% interval")
        bottom.plot(at, [p[1] for p in points], marker="o", markersize=3, drawstyle="steps-post",
                    color="tab:blue", label="estimate")
        bottom.legend(loc="upper left", fontsize=6)
    else:
        bottom.text(0.5, 0.5, "no look with matured labels yet", ha="center", va="center",
                    transform=bottom.transAxes, fontsize=7)
    bottom.axhline(0.0, color="grey", linewidth=0.8)
    bottom.set_ylabel("agreement diff.\n(challenger - champion)", fontsize=7)
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    for ax in (top, bottom):
        ax.tick_params(labelsize=6)
    return figure_png(fig, dpi)

"""The A/B trajectory chart reads the traffic steps and the looks from the `ab_tests` document."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from PIL import Image

from hive_assets.rollout import difference_trajectory, traffic_steps, trajectory_png

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _doc(status="running", checks=None, ended_at=None):
    return {
        "test_id": "business_v2_20260301_000000", "status": status, "ended_at": ended_at,
        # ISO text, as the MongoDB/FerretDB path may return it, mixed with datetimes
        "traffic_history": [{"at": T0.isoformat(), "percent": 10.0}, {"at": T0 + timedelta(days=2), "percent": 25.0}],
        "checks": checks or [],
    }


def test_traffic_is_a_step_function_extended_to_the_last_look_or_the_end():
    look = {"at": T0 + timedelta(days=3), "statistics": {}}
    times, percents = traffic_steps(_doc(checks=[look]))
    naive = T0.replace(tzinfo=None)
    assert times == [naive, naive + timedelta(days=2), naive + timedelta(days=3)] and percents == [10.0, 25.0, 25.0]
    times, percents = traffic_steps(_doc(status="stopped", checks=[look], ended_at=T0 + timedelta(days=5)))
    assert times[-1] == naive + timedelta(days=5) and percents[-1] == 25.0
    assert traffic_steps(_doc())[1] == [10.0, 25.0]  # no look, no end: nothing to extend to


def test_the_difference_trajectory_keeps_looks_with_an_interval_in_time_order():
    diff = {"estimate": 0.02, "lower": -0.05, "upper": 0.09}
    checks = [{"at": T0 + timedelta(hours=12), "statistics": {"difference": {**diff, "lower": -0.01}}},
              {"at": T0 + timedelta(hours=6), "statistics": {"difference": diff}},
              {"at": T0 + timedelta(hours=3), "statistics": {"difference": None}},  # insufficient data
              {"at": T0 + timedelta(hours=1), "statistics": {}}]
    points = difference_trajectory(_doc(checks=checks))
    assert [p[0].hour for p in points] == [6, 12] and points[1][2] == -0.01 and points[0][1:] == (0.02, -0.05, 0.09)


def test_the_chart_renders_with_and_without_looks():
    diff = {"estimate": 0.01, "lower": -0.1, "upper": 0.12}
    looks = [{"at": T0 + timedelta(hours=h), "statistics": {"difference": diff}} for h in (6, 12, 18)]
    for doc in (_doc(), _doc(checks=looks)):
        png = trajectory_png(doc)
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and 200 < image.size[0] < 500
        assert len(png) < 40_000

"""The loop's timeline (`build_timeline`) from the store's records, without a loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hive_assets.data import SQLiteStore
from hive_assets.simulator._timeline import build_timeline

T0 = datetime(2026, 1, 8, tzinfo=timezone.utc)


def _check(hour: int, version: str, decision: str, score: float) -> dict:
    return {"check_id": f"c{hour}", "specialist_type": "technical", "checked_at": T0 + timedelta(hours=hour),
            "model_version": version, "decision": decision, "drift_score": score, "drift_feature": "domain_share",
            "window_size": 400}


def test_a_drift_that_goes_on_against_a_new_champion_has_its_own_line(tmp_path):
    """The demo promoted v2 during a drift: every check from then on said drift against v2, the timeline said
    nothing of it (only changes between drift and no drift made a line), while `hive status` and the next loop
    said v2 drifted. A drift, its continuation against each new champion, and its end each make one line."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("drift_monitoring", [
        _check(0, "1", "no_drift", 0.01), _check(6, "1", "drift", 0.48), _check(12, "1", "drift", 0.49),
        _check(18, "2", "drift", 0.485), _check(24, "2", "drift", 0.47), _check(30, "2", "no_drift", 0.02)])
    events = [(e.at - T0, e.text) for e in build_timeline(store, T0, T0 + timedelta(days=2)) if e.what == "drift"]
    assert events == [
        (timedelta(hours=6), "drift detected vs champion v1: score 0.480 on domain_share (window of 400 rows)"),
        (timedelta(hours=18), "drift detected vs champion v2: score 0.485 on domain_share (window of 400 rows)"),
        (timedelta(hours=30), "no drift any more vs champion v2 (score 0.020)"),
    ]


def test_a_specialist_without_events_is_told_why_nothing_happened(tmp_path):
    """At 5 plans an hour, or 2 % of opinions answered, the loop printed "technical: 0 event(s)" for days: its
    drift checks lacked rows, its A/B test waited for labels, and only `hive status` said so."""
    from hive_assets.simulator import format_timeline, why_quiet

    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("drift_monitoring", [
        dict(_check(h, "1", "insufficient_data", 0.9), window_size=30 + h, min_rows=200) for h in (6, 12)]
        + [_check(18, "1", "no_drift", 0.01)])
    store.upsert_many("ab_tests", [{
        "test_id": "technical_v2_t", "specialist_type": "technical", "status": "running", "started_at": T0,
        "traffic_percent": 10.0, "checks": [{"at": T0, "reason": "24 labelled units known in the smaller arm (15 matured), need 50 known before any decision"}]}])
    end = T0 + timedelta(days=1)
    quiet = {s: why_quiet(store, s, T0, end) for s in ("technical", "business")}
    assert quiet == {"technical": [
        "2 of 3 drift check(s) lacked rows (the last: 42 of the 200 it needs): a drift is not judged on fewer",
        "A/B test technical_v2_t at 10 %, its last look: 24 labelled units known in the smaller arm (15 matured), need 50 known before any decision"],
        "business": []}
    assert format_timeline([], T0, ("technical", "business"), quiet).splitlines() == [
        "technical: 0 event(s)", f"  {quiet['technical'][0]}", f"  {quiet['technical'][1]}", "business: 0 event(s)"]

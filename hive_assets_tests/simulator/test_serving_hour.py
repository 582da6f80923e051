"""One served hour on its own: what `ServingLoop.serve_hour(now)` writes belongs to the hour ending at `now`.

No champion is registered (an empty MLflow SQLite registry), so the heuristic serves: the times do not depend
on who serves. A drift injection in force adds its own batch, stamped by the same rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hive_assets.data import SQLiteStore, to_utc
from hive_assets.simulator import DriftInjection, ServingLoop

NOW = datetime(2026, 1, 9, 3, 0, tzinfo=timezone.utc)


def test_one_served_hour_stamps_plans_opinions_and_audit_events_inside_the_hour(hive_home, tmp_path):
    """The platform decides the hour's routing (a test opened, a traffic step) at its start, now - 1h: a plan,
    intent audit event or opinion stamped before it would seem served before that decision (the A/B tally and
    `hive deploy history --at` then disagree with the arm that served it), one after `now` is from the future."""
    store = SQLiteStore(hive_home / "store.sqlite")
    loop = ServingLoop(store, f"sqlite:///{tmp_path / 'mlflow.db'}", seed=42, feedback_rate=0.0,
                       drift=[DriftInjection("technical", NOW - timedelta(hours=5))])
    written = loop.serve_hour(NOW, plans=200)
    assert written["plans"] == 300 and written["opinions"] == 5 * 200 + 100

    times = {
        "plan": [to_utc(d["timestamp"]) for d in store.find("cognitive_ledger")]
        + [to_utc(d["plan_data"]["created_at"]) for d in store.find("cognitive_ledger")]
        + [to_utc(d["created_at"]) for d in store.find("cognitive_plans")],
        "opinion": [to_utc(d["evaluated_at"]) for d in store.find("specialist_opinions")],
        "audit event": [to_utc(d["timestamp"]) for d in store.find("intentions_audit")],
    }
    assert len(times["plan"]) == 2 * store.count("cognitive_ledger") + store.count("cognitive_plans")
    assert len(times["plan"]) - store.count("cognitive_ledger") == 300 and len(times["opinion"]) == 1100
    assert len(times["audit event"]) > 280  # ~2 % of intents have none
    for kind, stamps in times.items():
        outside = [t.isoformat() for t in stamps if not NOW - timedelta(hours=1) < t <= NOW]
        assert not outside, f"{len(outside)} {kind} time(s) outside (now - 1h, now]: {sorted(outside)[:5]}"
    # the hour is still covered end to end, not squeezed into part of it
    assert min(times["plan"]) < NOW - timedelta(minutes=55) and max(times["opinion"]) > NOW - timedelta(minutes=5)

"""The simulator's serving loop on an injected clock: two trained versions on a real `mlflow server`, opinions
routed by the running A/B test, human feedback that arrives hours to days later (or never)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from hive_assets import registry
from hive_assets.data import SQLiteStore, to_utc
from hive_assets.features import features_frame
from hive_assets.rollout import RolloutPolicy, check_test, start_test
from hive_assets.routing import CHALLENGER, CHAMPION, assign_arm
from hive_assets.simulator import ServingLoop, make_plans, policy_label
from hive_assets.training import temporal_group_split, train_model

pytestmark = pytest.mark.services

T0 = datetime(2026, 5, 4, 0, 0, tzinfo=timezone.utc)
HOURS, PLANS_PER_HOUR = 8, 100


def _register(client, tracking_uri: str, n_plans: int, seed: int) -> str:
    plans = make_plans(n_plans, seed=seed)
    frame = features_frame(plans)
    frame["label"] = [policy_label("business", p) for p in plans]
    frame["plan_id"] = [p["plan_id"] for p in plans]
    frame["evaluated_at"] = pd.to_datetime([p["created_at"] for p in plans], utc=True)
    frame["split"] = temporal_group_split(frame)
    model, _ = train_model("business", frame[frame.split == "train"], frame[frame.split == "validation"],
                           model_type="random_forest")
    run_id = client.create_run(registry.ensure_experiment(client, "serving-loop")).info.run_id
    uri = registry.log_model(model, tracking_uri, run_id)
    model_id = uri.removeprefix("models:/") if uri.startswith("models:/m-") else None
    version, _ = registry.register_version(client, "business", run_id, uri, {}, model_id=model_id)
    return str(version.version)


@pytest.fixture
def two_versions(hive_home, mlflow_server):
    client = registry.client_for(mlflow_server)
    try:
        client.delete_registered_model("business-evaluator")
    except MlflowException:
        pass  # nothing left by another test
    v1 = _register(client, mlflow_server, 400, seed=11)
    v2 = _register(client, mlflow_server, 1500, seed=12)
    yield client, v1, v2
    client.delete_registered_model("business-evaluator")


def test_hourly_serving_routes_by_the_test_and_delays_feedback(two_versions, hive_home, mlflow_server):
    client, v1, v2 = two_versions
    store = SQLiteStore(hive_home / "store.sqlite")
    registry.ensure_alias(client, store, "business", CHAMPION, v1, actor="test", reason="setup")
    registry.ensure_alias(client, store, "business", CHALLENGER, v2, actor="test", reason="setup")
    test, _, _ = start_test(client, store, "business", v1, v2, 10.0, T0 - timedelta(minutes=5), actor="test")

    loop = ServingLoop(store, mlflow_server, seed=5, feedback_median_hours=6.0)
    feedback_seen = []
    for hour in range(1, HOURS + 1):
        now = T0 + timedelta(hours=hour)
        written = loop.serve_hour(now, plans=PLANS_PER_HOUR)
        assert written["opinions"] == 5 * PLANS_PER_HOUR
        submitted = [to_utc(f["submitted_at"]) for f in store.find("specialist_feedback")]
        assert all(t <= now for t in submitted)  # the store never holds feedback from the future
        feedback_seen.append(len(submitted))
    assert feedback_seen == sorted(feedback_seen) and feedback_seen[0] < feedback_seen[-1]

    ours = list(store.find("specialist_opinions", {"specialist_type": "business"}))
    assert len(ours) == HOURS * PLANS_PER_HOUR
    for o in ours:
        arm = assign_arm(test["salt"], o["intent_id"], 10.0)  # routing recomputed independently
        assert o["metadata"] == {"ab_test_id": test["test_id"], "ab_arm": arm}
        assert o["specialist_version"] == (v2 if arm == CHALLENGER else v1)
        assert T0 - timedelta(minutes=2) <= to_utc(o["evaluated_at"]) <= T0 + timedelta(hours=HOURS)
    share = sum(o["metadata"]["ab_arm"] == CHALLENGER for o in ours) / len(ours)
    assert abs(share - 0.10) < 4 * (0.1 * 0.9 / len(ours)) ** 0.5
    others = list(store.find("specialist_opinions", {"specialist_type": "technical"}))
    assert others and all("metadata" not in o and o["specialist_version"] == "0.0.0-heuristic" for o in others)

    # delays: hours to days; some feedback still pending after the run, some opinions never answered
    served_at = {o["opinion_id"]: to_utc(o["evaluated_at"]) for o in ours}
    delays = [(to_utc(f["submitted_at"]) - served_at[f["opinion_id"]]).total_seconds() / 3600
              for f in store.find("specialist_feedback", {"specialist_type": "business"})]
    assert min(delays) > 0 and max(delays) > 6
    pending = [(f["submitted_at"] - served_at[f["opinion_id"]]).total_seconds() / 3600
               for f in loop.pending if f["opinion_id"] in served_at]
    assert max(pending) > 24
    assert len(delays) + len(pending) < 0.95 * len(ours)

    # the controller reads this world: served counts per arm are the opinions the loop wrote
    result = check_test(client, store, "business", T0 + timedelta(hours=HOURS),
                        RolloutPolicy(label_maturity=timedelta(hours=6)), actor="test")
    stats = result.decision.statistics
    assert stats["challenger"]["served"] == sum(o["metadata"]["ab_arm"] == CHALLENGER for o in ours)
    assert stats["champion"]["served"] + stats["challenger"]["served"] == len(ours)

"""The serving contract: opinions produced through `SpecialistRouter` and written with `opinion_document` are
what the platform reads back. `hive_assets.data.collect` returns them with their latest labels, and the
A/B controller (`check_test`, then `evaluate` on the closed test) counts them per arm, test id and
maturity exactly as computed here from what was written, for a test that keeps running, one the
controller promotes and one it rolls back; after the verdict, the next refresh serves the new champion
(or the old one), untagged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from hive_assets import registry
from hive_assets.config import CLASSES
from hive_assets.data import SQLiteStore, collect
from hive_assets.rollout import RolloutPolicy, check_test, evaluate, start_test
from hive_assets.routing import CHALLENGER, CHAMPION, assign_arm
from hive_assets.serving import SpecialistRouter, opinion_document
from hive_assets.simulator import make_plans, policy_label
from hive_assets_tests.serving.conftest import fresh, register

pytestmark = pytest.mark.services

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MATURITY = timedelta(hours=1)
# the SPEC schedule compressed to hours (and the mixture tuned for tens of labels, not thousands), so one
# look after three hours can promote or roll back
POLICY = RolloutPolicy(promote_after=timedelta(hours=2), promote_min_labelled_per_arm=40, min_labelled_per_arm=20,
                       min_served_for_confidence=10**9, label_maturity=MATURITY, mixture_sd=0.1)
# ending -> (specialist, champion's policy, challenger's policy, start traffic, what the humans answer)
SCENARIOS = {
    "running": ("evolution", "technical", "behavior", 30.0, "random"),
    "promoted": ("technical", "technical", "business", 50.0, "business"),
    "rolled_back": ("behavior", "business", "technical", 30.0, "business"),
}


@dataclass
class Served:
    opinion_id: str
    intent_id: str
    served_at: datetime
    recommendation: str
    confidence: float
    version: str
    ab_test_id: str | None
    ab_arm: str | None
    feedback: list[tuple[datetime, str]]  # (submitted_at, human label), in submission order


def ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def serve(store, router: SpecialistRouter, plans: list[dict], start: datetime, end: datetime, truth: str,
          rng: np.random.Generator) -> list[Served]:
    """Each plan through the router at evenly spaced instants of [start, end), written as production writes
    it: the plan, its intent's audit event, the opinion document, and the humans' feedback (85 % answered
    after ~30 min, one in ten first with a wrong label corrected later)."""
    out, docs = [], {"cognitive_plans": [], "intentions_audit": [], "specialist_opinions": [], "specialist_feedback": []}
    for i, plan in enumerate(plans):
        at = ms(start + (end - start) * (i / len(plans)))
        plan = {**plan, "created_at": at - timedelta(seconds=30)}
        opinion = router.evaluate(plan)
        oid = f"op-{router.specialist}-{plan['plan_id']}"
        doc = opinion_document(opinion, plan, opinion_id=oid, evaluated_at=at, reasoning_summary="served in a test")
        label = CLASSES[int(rng.integers(3))] if truth == "random" else policy_label(truth, plan)
        feedback = []
        if rng.random() < 0.85:
            answered = ms(at + timedelta(hours=float(rng.exponential(0.5))))
            if rng.random() < 0.1:
                feedback.append((answered, next(c for c in CLASSES if c != label)))
                answered = ms(answered + timedelta(minutes=10))
            feedback.append((answered, label))
        docs["cognitive_plans"].append(plan)
        docs["intentions_audit"].append({"id": plan["intent_id"], "timestamp": plan["created_at"], "confidence": 0.95,
                                         "intent": {"text": "x", "domain": plan["original_domain"]}, "actor": {},
                                         "context": {}})
        docs["specialist_opinions"].append(doc)
        for k, (submitted, human) in enumerate(feedback):
            docs["specialist_feedback"].append({
                "feedback_id": f"fb-{oid}-{k}", "opinion_id": oid, "plan_id": plan["plan_id"],
                "specialist_type": router.specialist, "human_recommendation": human, "human_rating": 0.9,
                "submitted_by": "reviewer-1", "submitted_at": submitted, "feedback_source": "human_expert",
                "metadata": {}})
        out.append(Served(oid, plan["intent_id"], at, opinion.recommendation, opinion.confidence,
                          opinion.model_version, opinion.ab_test_id, opinion.ab_arm, feedback))
    for collection, batch in docs.items():
        store.upsert_many(collection, batch)
    return out


def latest_label(unit: Served, now: datetime) -> tuple[datetime, str] | None:
    seen = [f for f in unit.feedback if f[0] <= now]
    return seen[-1] if seen else None


def expected_tally(units: list[Served], test_id: str, now: datetime) -> dict[str, dict[str, float]]:
    """Served / labelled / agreements per arm under the maturity rule (labels frozen at served + window),
    from what was written."""
    out = {arm: {"served": 0, "labelled": 0, "agreements": 0, "confidence": 0.0} for arm in (CHAMPION, CHALLENGER)}
    for u in units:
        if u.ab_test_id != test_id or u.served_at > now:
            continue
        c = out[u.ab_arm]
        c["served"] += 1
        c["confidence"] += u.confidence
        # the label as known at the end of the unit's window: a later correction does not change it
        label = latest_label(u, min(now, u.served_at + MATURITY))
        if u.served_at <= now - MATURITY and label is not None:
            c["labelled"] += 1
            c["agreements"] += int(label[1] == u.recommendation)
    return out


def counted(stats: dict) -> dict[str, float]:
    return {"served": stats["served"], "labelled": stats["labelled"], "agreements": stats["agreements"],
            "confidence": stats["mean_confidence"] * stats["served"]}


def approx(tally: dict[str, float]) -> dict:
    return {**tally, "confidence": pytest.approx(tally["confidence"], rel=1e-9, abs=1e-9)}


@pytest.mark.parametrize("ending", list(SCENARIOS))
def test_served_opinions_are_collected_and_counted_as_the_controller_expects(ending, server, logged, hive_home):
    specialist, champion_policy, challenger_policy, traffic, truth = SCENARIOS[ending]
    url, _ = server
    client = registry.client_for(url)
    fresh(client, specialist)
    store = SQLiteStore(hive_home / "store.sqlite")
    v1, v2 = register(client, specialist, logged[champion_policy]), register(client, specialist, logged[challenger_policy])
    registry.ensure_alias(client, store, specialist, registry.CHAMPION, v1, actor="test", reason="setup")
    registry.ensure_alias(client, store, specialist, registry.CHALLENGER, v2, actor="test", reason="setup")
    test, _, _ = start_test(client, store, specialist, v1, v2, traffic, T0, actor="test")

    router = SpecialistRouter(specialist, url, refresh_interval=None)
    health = router.refresh()
    assert (health["champion_version"], health["challenger_version"], health["ab_test_id"]) == (v1, v2, test["test_id"])
    rng = np.random.default_rng(7)
    plans = make_plans(300, seed=40 + len(ending), now=T0 + timedelta(hours=4), days=4 / 24)
    during = serve(store, router, plans[:240], T0, T0 + timedelta(hours=3), truth, rng)
    for u in during:  # routing recomputed independently: sticky hash of the intent at the test's traffic
        arm = assign_arm(test["salt"], u.intent_id, traffic)
        assert (u.ab_test_id, u.ab_arm, u.version) == (test["test_id"], arm, v2 if arm == CHALLENGER else v1)

    look = T0 + timedelta(hours=3)
    result = check_test(client, store, specialist, look, POLICY, actor="test")
    assert result.test["status"] == ending, result.decision.reason
    expected = expected_tally(during, test["test_id"], look)
    for arm in (CHAMPION, CHALLENGER):
        assert counted(result.decision.statistics[arm]) == approx(expected[arm])
    assert min(expected[arm]["labelled"] for arm in expected) >= 20  # the look had labels to count

    # the next refresh serves the verdict: the same test at its traffic, or the new/old champion untagged
    health = router.refresh()
    after = serve(store, router, plans[240:], look, look + timedelta(hours=1), truth, rng)
    if ending == "running":
        assert health["ab_routing"] and all(u.ab_test_id == test["test_id"] for u in after)
    else:
        assert not health["ab_routing"] and health["champion_version"] == (v2 if ending == "promoted" else v1)
        assert {(u.ab_test_id, u.ab_arm, u.version) for u in after} == {(None, None, health["champion_version"])}

    # a later look at the test counts exactly its own units, whatever was served after it closed
    later = look + timedelta(hours=2)
    doc = store.find_one("ab_tests", {"test_id": test["test_id"]})
    _, counts = evaluate(store, doc, later, POLICY)
    expected = expected_tally(during + after, test["test_id"], later)
    for arm in (CHAMPION, CHALLENGER):
        got = {k: sum(getattr(c, arm).as_dict()[k] for c in counts) for k in ("served", "labelled", "agreements")}
        assert got == {k: expected[arm][k] for k in ("served", "labelled", "agreements")}

    # collection: every opinion with its test tags, serving version and latest label as of `later`
    # (the window source reads every served opinion; training's label-driven source the labelled ones)
    frame = collect(store, specialist, now=later, window_days=1, source="window").frame.set_index("opinion_id")
    assert len(frame) == len(during) + len(after)
    labelled = collect(store, specialist, now=later, window_days=1).frame
    assert set(labelled["opinion_id"]) == {u.opinion_id for u in during + after if latest_label(u, later)}
    for u in during + after:
        row = frame.loc[u.opinion_id]
        label = latest_label(u, later)
        assert (row["ab_test_id"], row["ab_arm"], row["specialist_version"], row["recommendation"]) == \
            (u.ab_test_id, u.ab_arm, u.version, u.recommendation)
        assert row["confidence_score"] == pytest.approx(u.confidence, abs=1e-12)
        assert (row["label"] if isinstance(row["label"], str) else None) == (label[1] if label else None)
    client.delete_registered_model(registry.model_name(specialist))

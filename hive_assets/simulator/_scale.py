"""The scale scenario: millions of opinions with a production-like answered share, written fast.

Production answers a small share of opinions (its status report counted about 200 feedback documents
per specialist after weeks of traffic), the default simulator 85 %. `simulate_scale` writes `opinions`
opinions (five per plan, one per specialist) of which `label_rate` get human feedback, in bulk: plan
contents are drawn once into a pool of `plan_pool` plans and reused under new ids (collection costs
depend on document sizes and counts, not on distinct contents), so 2,000,000 opinions take minutes
rather than hours. Labels follow the hidden policy with 10 % noise; 5 % of answered opinions also get
an earlier label later corrected and 8 % a newer machine-written one (auto_generated, balanced_dataset
or a denied source), as in `simulate`. Deterministic per (seed, now).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from hive_assets import clock
from hive_assets.config import CLASSES, SPECIALISTS
from hive_assets.simulator._simulate import DENIED_SOURCE, _ms, make_plans, policy_label

Writer = Callable[[str, list[dict]], Any]


def simulate_scale(
    store,
    opinions: int,
    label_rate: float,
    seed: int = 7,
    now: datetime | None = None,
    days: float = 60.0,
    plan_pool: int = 2000,
    batch_plans: int = 5000,
    label_noise: float = 0.10,
    write: Writer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Counter:
    """Write about `opinions` opinions (a multiple of five) over the `days` before `now`; returns the
    documents written per collection. `write(collection, docs)` defaults to `store.upsert_many` (a
    benchmark may pass a plain bulk insert into an empty database)."""
    if not 0.0 <= label_rate <= 1.0:
        raise ValueError(f"label_rate must be in [0, 1], got {label_rate}")
    now = (now or clock.now()).astimezone(timezone.utc)
    write = write or store.upsert_many
    rng = np.random.default_rng([seed, 23])
    pool = make_plans(plan_pool, seed=seed, now=now, days=days)
    truth = {s: [policy_label(s, plan) for plan in pool] for s in SPECIALISTS}
    n_plans = max(1, opinions // len(SPECIALISTS))
    offsets = np.sort(rng.uniform(0.0, days * 86400.0, size=n_plans))[::-1]
    written: Counter = Counter()
    for lo in range(0, n_plans, batch_plans):
        hi = min(n_plans, lo + batch_plans)
        out: dict[str, list[dict]] = {c: [] for c in (
            "cognitive_ledger", "intentions_audit", "specialist_opinions", "specialist_feedback")}
        picks = rng.integers(plan_pool, size=hi - lo)
        for i, k in zip(range(lo, hi), picks):
            _append_plan(out, pool[int(k)], int(k), i, seed, now - timedelta(seconds=float(offsets[i]) + 3600.0),
                         rng, label_rate, label_noise, truth, now)
        for collection, docs in out.items():
            if docs:
                write(collection, docs)
                written[collection] += len(docs)
        if progress:
            progress(hi, n_plans)
    return written


def _append_plan(out: dict[str, list[dict]], template: Mapping[str, Any], k: int, i: int, seed: int,
                 created: datetime, rng: np.random.Generator, label_rate: float, label_noise: float,
                 truth: Mapping[str, list[str]], now: datetime) -> None:
    created = _ms(created)
    plan_id, intent_id = f"splan-{seed}-{i:08d}", f"sintent-{seed}-{i:08d}"
    plan = {**template, "plan_id": plan_id, "intent_id": intent_id, "created_at": created}
    out["cognitive_ledger"].append({
        "plan_id": plan_id, "intent_id": intent_id, "version": plan["version"],
        "execution_order": plan["execution_order"], "risk_score": plan["risk_score"], "risk_band": plan["risk_band"],
        "timestamp": created, "hash": hashlib.sha256(plan_id.encode()).hexdigest()[:16], "plan_data": plan,
    })
    if rng.random() >= 0.02:
        out["intentions_audit"].append({
            "id": intent_id, "timestamp": _ms(created - timedelta(seconds=5)),
            "confidence": round(float(rng.beta(9.0, 2.0)), 4),
            "intent": {"text": f"intent for {plan_id}", "domain": plan["original_domain"]},
        })
    draws = rng.random(size=(len(SPECIALISTS), 6))
    for s_idx, specialist in enumerate(SPECIALISTS):
        u = draws[s_idx]
        opinion_id = f"sop-{seed}-{i:08d}-{specialist}"
        evaluated = _ms(created + timedelta(seconds=2 + 88 * float(u[0]) + s_idx))
        out["specialist_opinions"].append({
            "opinion_id": opinion_id, "plan_id": plan_id, "intent_id": intent_id, "specialist_type": specialist,
            "specialist_version": "0.0.0-heuristic", "evaluated_at": evaluated,
            "opinion": {
                "recommendation": CLASSES[int(u[1] * 3)], "confidence_score": round(0.55 + 0.4 * float(u[2]), 4),
                "risk_score": plan["risk_score"], "reasoning_summary": f"{specialist} assessment",
                "reasoning_factors": [{"factor": "risk", "weight": plan["risk_score"]}],
            },
        })
        if u[3] >= label_rate:
            continue
        submitted = _ms(evaluated + timedelta(hours=0.2 + 47.8 * float(u[4])))
        if submitted > now:
            continue
        label = truth[specialist][k]
        if rng.random() < label_noise:
            label = [c for c in CLASSES if c != label][int(rng.integers(2))]
        base = {"opinion_id": opinion_id, "plan_id": plan_id, "specialist_type": specialist,
                "submitted_by": f"reviewer-{int(u[5] * 40)}", "metadata": {}}
        out["specialist_feedback"].append({**base, "feedback_id": f"fb-{opinion_id}", "human_recommendation": label,
                                           "human_rating": 0.8, "submitted_at": submitted,
                                           "feedback_source": "human_expert"})
        extra = rng.random()
        if extra < 0.05:  # an earlier label, later corrected
            out["specialist_feedback"].append({**base, "feedback_id": f"fb-{opinion_id}-early",
                                               "human_recommendation": CLASSES[int(rng.integers(3))],
                                               "human_rating": 0.5, "submitted_at": submitted - timedelta(minutes=30),
                                               "feedback_source": "human_expert"})
        elif extra < 0.13:  # machine-written, newer: never a label
            meta, source = (({"auto_generated": True}, "human_expert") if extra < 0.09 else
                            ({"balanced_dataset": True}, "approval_service") if extra < 0.11 else ({}, DENIED_SOURCE))
            out["specialist_feedback"].append({**base, "feedback_id": f"fb-{opinion_id}-machine",
                                               "human_recommendation": CLASSES[int(rng.integers(3))],
                                               "human_rating": 1.0, "submitted_at": submitted + timedelta(minutes=10),
                                               "feedback_source": source, "metadata": meta})

"""A small corpus written the way the production Neural Hive-Mind services write it (SPEC section 2).

What the simulator does not produce and production does:
- specialists encrypt `intent_id`, `trace_id` and `span_id` of an opinion (`enc:<Fernet token>`, real
  Fernet tokens under a key this corpus throws away), and some opinions carry no `intent_id` at all;
  the plan keeps its intent in clear, sometimes only on the ledger document (not in `plan_data`);
- the approval service writes `feedback_source: "human_expert"` with `metadata.source: "approval_service"`
  (in any case) and rates its rejections 0.0 and its approvals 1.0;
- `conditional` opinions, lowercase `original_domain`, null task durations, PII-scrubbed notes
  (`metadata.notes: "[REDACTED]"`).
Every opinion has an audit event (NLU confidence >= 0.8) and a human label, so a correct collector
labels all of them and quarantines nothing.
"""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet

from hive_assets.config import CLASSES
from hive_assets.simulator import make_plans


@dataclass
class Corpus:
    opinions: int = 0
    encrypted_intent: int = 0  # opinions whose intent_id is `enc:...`
    missing_intent: int = 0  # opinions without intent_id
    clear_intent: int = 0
    labels: Counter = field(default_factory=Counter)
    approval_service: Counter = field(default_factory=Counter)  # label -> approval-service feedback
    conditional: int = 0
    lowercase_domains: int = 0
    null_durations: int = 0


def write_production_corpus(store, now: datetime, plans: int = 60, specialist: str = "business",
                            seed: int = 2026) -> Corpus:
    fernet = Fernet(Fernet.generate_key())

    def enc(value: str) -> str:
        return "enc:" + fernet.encrypt(value.encode()).decode()

    corpus = Corpus()
    docs: dict[str, list[dict]] = {c: [] for c in (
        "cognitive_ledger", "cognitive_plans", "intentions_audit", "specialist_opinions", "specialist_feedback")}
    for i, plan in enumerate(make_plans(plans, seed=seed, now=now - timedelta(hours=6), days=20)):
        plan = copy.deepcopy(plan)
        if i % 4 == 0:
            plan["original_domain"] = plan["original_domain"].lower()
        if i % 5 == 0:
            plan["tasks"][0]["estimated_duration_ms"] = None
        corpus.lowercase_domains += plan["original_domain"].islower()
        corpus.null_durations += sum(t["estimated_duration_ms"] is None for t in plan["tasks"])
        intent_id, created = plan["intent_id"], plan["created_at"]
        docs["intentions_audit"].append({
            "id": intent_id, "timestamp": int((created - timedelta(seconds=5)).timestamp() * 1000),
            "confidence": 0.8 + 0.19 * ((i * 7) % 10) / 10,
            "intent": {"text": "[REDACTED]", "domain": plan["original_domain"].lower()},
            "actor": {"id": "[REDACTED]", "type": "user"}, "context": {"channel": "api", "locale": "pt-BR"},
        })
        if i % 6 == 5:  # a deployment that keeps plain plan documents
            docs["cognitive_plans"].append(plan)
        else:
            plan_data = dict(plan)
            if i % 3 == 1:  # the intent only on the ledger document
                plan_data.pop("intent_id")
            docs["cognitive_ledger"].append({
                "plan_id": plan["plan_id"], "intent_id": intent_id, "version": 1,
                "execution_order": plan["execution_order"], "risk_score": plan["risk_score"],
                "risk_band": plan["risk_band"], "timestamp": created,
                "hash": hashlib.sha256(plan["plan_id"].encode()).hexdigest(), "plan_data": plan_data,
            })
        opinion_id = f"{specialist}-op-{i:04d}"
        recommendation = "conditional" if i % 7 == 3 else CLASSES[(i + 1) % 3]
        opinion = {
            "opinion_id": opinion_id, "plan_id": plan["plan_id"], "specialist_type": specialist,
            "specialist_version": "1.4.2", "evaluated_at": created + timedelta(seconds=30),
            "trace_id": enc(f"trace-{i}"), "span_id": enc(f"span-{i}"),
            "opinion": {
                "recommendation": recommendation, "confidence_score": 0.71, "risk_score": plan["risk_score"],
                "reasoning_summary": "[REDACTED]",
                "reasoning_factors": [{"factor": "risk", "weight": 0.4, "evidence": "[REDACTED]"}],
            },
        }
        if i % 10 == 9:
            corpus.missing_intent += 1  # no intent_id at all
        elif i % 10 == 8:
            opinion["intent_id"] = intent_id
            corpus.clear_intent += 1
        else:
            opinion["intent_id"] = enc(intent_id)
            corpus.encrypted_intent += 1
        corpus.conditional += recommendation == "conditional"
        docs["specialist_opinions"].append(opinion)
        corpus.opinions += 1

        label = CLASSES[i % 3]
        submitted = created + timedelta(hours=2)
        feedback = {
            "feedback_id": f"fb-{opinion_id}", "opinion_id": opinion_id, "plan_id": plan["plan_id"],
            "specialist_type": specialist, "human_recommendation": label, "submitted_by": "[REDACTED]",
            "submitted_at": submitted, "feedback_source": "human_expert",
            "metadata": {"notes": "[REDACTED]"},
        }
        if label != "review_required" and i % 2 == 0:  # the approval service: approve 1.0, reject 0.0
            feedback["human_rating"] = 1.0 if label == "approve" else 0.0
            feedback["metadata"] = {"source": ("approval_service", "APPROVAL_SERVICE", "Approval_Service")[i % 3],
                                    "approval_id": f"apr-{i}", "notes": "[REDACTED]"}
            corpus.approval_service[label] += 1
        else:
            feedback["human_rating"] = 0.5 + 0.5 * ((i * 3) % 5) / 5
        corpus.labels[label] += 1
        docs["specialist_feedback"].append(feedback)
    for collection, batch in docs.items():
        store.upsert_many(collection, batch)
    return corpus


@dataclass
class EdgeCases:
    """What `write_edge_cases` wrote, by what a correct collector does with it."""
    quarantined: dict[tuple[str, str], str] = field(default_factory=dict)  # (collection, id) -> reason
    field_named: dict[tuple[str, str], str] = field(default_factory=dict)  # (collection, id) -> text in its detail
    rows: dict[str, dict] = field(default_factory=dict)  # opinion_id -> columns its row must have


def write_edge_cases(store, now: datetime, window_start: datetime, specialist: str = "business",
                     seed: int = 77) -> EdgeCases:
    """Complete units (plan, audit event, opinion, feedback) of `specialist` with what services other than
    the platform's, or their clocks, write: a field of the wrong type in one document (production-shaped
    neighbours have the right one), an integer `specialist_version`, a numeric `feedback_id` (extended JSON
    `$numberLong`, which `hive store import` reads as an integer) correcting a label, and a label stamped 10
    seconds before `window_start` for an opinion evaluated 30 seconds after it (clock skew)."""
    cases = EdgeCases()
    plans = make_plans(9, seed=seed, now=now - timedelta(hours=6), days=10)
    docs: dict[str, list[dict]] = {c: [] for c in (
        "cognitive_ledger", "intentions_audit", "specialist_opinions", "specialist_feedback")}

    def unit(i: int, opinion: dict | None = None, metadata: Any = None, evaluated: datetime | None = None,
             **feedback: Any) -> tuple[dict, dict]:
        plan = copy.deepcopy(plans[i])
        evaluated = evaluated or plan["created_at"] + timedelta(seconds=30)
        docs["cognitive_ledger"].append({"plan_id": plan["plan_id"], "intent_id": plan["intent_id"],
                                         "timestamp": plan["created_at"], "plan_data": plan})
        docs["intentions_audit"].append({"id": plan["intent_id"], "timestamp": evaluated - timedelta(minutes=1),
                                         "confidence": 0.9})
        op = {"opinion_id": f"{specialist}-edge-{i}", "plan_id": plan["plan_id"], "intent_id": plan["intent_id"],
              "specialist_type": specialist, "specialist_version": "1.4.2", "evaluated_at": evaluated,
              "opinion": {"recommendation": "approve", "confidence_score": 0.8}, **(opinion or {})}
        if metadata is not None:
            op["metadata"] = metadata
        fb = {"feedback_id": f"fb-{op['opinion_id']}", "opinion_id": op["opinion_id"], "specialist_type": specialist,
              "human_recommendation": CLASSES[i % 3], "human_rating": 0.9, "feedback_source": "human_expert",
              "submitted_at": evaluated + timedelta(hours=1), **feedback}
        docs["specialist_opinions"].append(op)
        docs["specialist_feedback"].append(fb)
        return op, fb

    def wrong(collection: str, doc: dict, named: str) -> None:
        key = doc["opinion_id"] if collection == "specialist_opinions" else str(doc["feedback_id"])
        cases.quarantined[(collection, key)] = "wrong_type"
        cases.field_named[(collection, key)] = named

    wrong("specialist_opinions", unit(0, metadata="imported")[0], "metadata=")
    wrong("specialist_opinions", unit(1, metadata=["x"])[0], "metadata=")
    wrong("specialist_opinions", unit(2, metadata={"ab_test_id": 5, "ab_arm": "champion"})[0], "metadata.ab_test_id")
    wrong("specialist_opinions", unit(3, metadata={"ab_test_id": "ab-test-v2", "ab_arm": {"arm": 1}})[0],
          "metadata.ab_arm")
    wrong("specialist_feedback", unit(4, feedback_source=1)[1], "feedback_source")  # its only label: no row
    op, _ = unit(5, opinion={"specialist_version": 3})
    cases.rows[op["opinion_id"]] = {"specialist_version": "3", "label": CLASSES[5 % 3]}
    op, fb = unit(6, metadata={"ab_test_id": "ab-test-v2", "ab_arm": "challenger"})
    correction = {**fb, "feedback_id": 778, "human_recommendation": "reject",
                  "submitted_at": fb["submitted_at"] + timedelta(hours=1)}
    docs["specialist_feedback"].append(correction)
    wrong("specialist_feedback", correction, "feedback_id")
    cases.rows[op["opinion_id"]] = {"feedback_id": fb["feedback_id"], "label": fb["human_recommendation"],
                                    "ab_test_id": "ab-test-v2", "ab_arm": "challenger"}
    op, fb = unit(7, evaluated=window_start + timedelta(seconds=30),
                  submitted_at=window_start - timedelta(seconds=10))
    cases.rows[op["opinion_id"]] = {"feedback_id": fb["feedback_id"], "label": fb["human_recommendation"]}
    for collection, batch in docs.items():
        store.upsert_many(collection, batch)
    return cases

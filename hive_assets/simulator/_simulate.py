"""Production-data simulator: plans, intent audit events, opinions and human feedback.

Feedback labels come from a hidden per-specialist decision policy over plan properties plus label
noise (default 10%: the label is replaced by one of the two other classes), so the best possible
accuracy is known (1 - noise). Machine-written feedback (auto_generated, balanced_dataset, a
deny-listed source) carries random labels, and some opinions get an early random human label later
corrected: a platform that ignores the trust rules or takes the first label instead of the latest
learns measurably worse. A small share of documents is malformed on purpose (one of `CORRUPTIONS`);
the summary lists each so tests can assert exact quarantine counts.

Deterministic per (seed, now): ids are derived from the seed, re-running replaces the same documents.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import islice
from typing import Any

import numpy as np

from hive_assets import clock
from hive_assets.config import CLASSES, SPECIALISTS

DOMAINS = ("BUSINESS", "TECHNICAL", "SECURITY", "INFRASTRUCTURE", "BEHAVIOR", "OPERATIONAL", "COMPLIANCE")
PRIORITIES = ("low", "normal", "high", "critical")
PRIORITY_SCORE = {"low": 0.25, "normal": 0.5, "high": 0.75, "critical": 1.0}
CAPABILITIES = tuple(
    f"cap_{name}" for name in (
        "read", "write", "deploy", "review", "analyze", "compute", "storage", "network", "auth", "audit",
        "ml", "etl", "notify", "schedule", "report", "billing", "search", "cache", "queue", "monitor",
    )
)
TASK_TYPES = ("analysis", "implementation", "validation", "deployment", "review", "migration", "query")
DENIED_SOURCE = "synthetic_backfill"

# Hidden policy: weights over plan properties the feature contract can see; classes are ordered
# approve < review_required < reject along the score.
POLICIES: dict[str, dict[str, Any]] = {
    "business": {"w": {"risk": 3.0, "priority": -1.6, "complexity": 0.6},
                 "domain": {"BUSINESS": -0.5, "COMPLIANCE": 0.6}},
    "technical": {"w": {"complexity": 3.0, "size": 1.6, "parallel": -1.0},
                  "domain": {"TECHNICAL": -0.4, "INFRASTRUCTURE": 0.5}},
    "behavior": {"w": {"risk": 1.8, "priority": 1.6, "parallel": 0.6},
                 "domain": {"BEHAVIOR": -0.6, "SECURITY": 0.7}},
    "evolution": {"w": {"size": 2.6, "duration": 1.2, "complexity": 1.0},
                  "domain": {"OPERATIONAL": 0.4}},
    "architecture": {"w": {"parallel": -2.2, "complexity": 1.6, "size": 1.4, "risk": 0.6},
                     "domain": {"SECURITY": 0.3, "INFRASTRUCTURE": -0.3}},
}
CLASS_SHARES = (0.40, 0.32)  # approve, review_required; reject gets the rest


def _ms(value: datetime) -> datetime:
    """Millisecond precision, as BSON dates store it: both stores then hold the same instants."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _dependency_id(dep: Any) -> Any:
    return dep.get("task_id") if isinstance(dep, dict) else dep


def _plan_properties(plan: dict) -> dict[str, float]:
    tasks = plan["tasks"]
    n = len(tasks)
    durations = [t.get("estimated_duration_ms") or 0 for t in tasks]
    # A root waits on no task of the plan: a dependency on an id outside it does not count, as in the
    # feature contract (SPEC section 3), so the policy stays a function of what the features can see.
    ids = {t["task_id"] for t in tasks}
    roots = sum(1 for t in tasks if not any(_dependency_id(d) in ids for d in t.get("dependencies") or ()))
    return {
        "risk": plan["risk_score"],
        "complexity": plan["complexity_score"],
        "priority": PRIORITY_SCORE.get(plan["original_priority"], 0.5),
        "size": math.log1p(n) / math.log(41.0),
        "parallel": roots / n if n else 0.0,
        "duration": math.log1p(sum(durations) / 1000.0) / math.log(3600.0),
    }


def policy_score(specialist: str, plan: dict, domain_offsets: Mapping[str, float] | None = None) -> float:
    """The hidden policy's score; `domain_offsets` adds the rules of domains the policy does not know
    (a new product line judged more strictly: the concept drift `hive loop` injects)."""
    return _score(POLICIES[specialist], _plan_properties(plan), str(plan["original_domain"]).upper(), domain_offsets)


def _score(policy: Mapping, props: Mapping[str, float], domain: str,
           domain_offsets: Mapping[str, float] | None = None) -> float:
    score = sum(w * props[k] for k, w in policy["w"].items())
    return score + policy["domain"].get(domain, 0.0) + (domain_offsets or {}).get(domain, 0.0)


REFERENCE_PLANS, REFERENCE_SEED = 4000, 987654321  # the population the policies' cut points are set on


@lru_cache(maxsize=1)
def _reference_population() -> tuple[tuple[dict[str, float], str], ...]:
    """The policy properties and domain of each plan of a fixed reference population (no drift). Made once
    per process: every specialist's cut points read it (made once per specialist, it cost each `hive
    simulate` or `hive loop` about 9 s before its first plan); the plans themselves are not kept."""
    return tuple((_plan_properties(p), str(p["original_domain"]).upper())
                 for p in make_plans(REFERENCE_PLANS, seed=REFERENCE_SEED))


@lru_cache(maxsize=None)
def policy_thresholds(specialist: str) -> tuple[float, float]:
    """Score cut points giving CLASS_SHARES on a fixed reference population (no drift)."""
    policy = POLICIES[specialist]
    scores = np.array([_score(policy, props, domain) for props, domain in _reference_population()])
    lo = float(np.quantile(scores, CLASS_SHARES[0]))
    hi = float(np.quantile(scores, CLASS_SHARES[0] + CLASS_SHARES[1]))
    return lo, hi


def policy_label(specialist: str, plan: dict, domain_offsets: Mapping[str, float] | None = None) -> str:
    lo, hi = policy_thresholds(specialist)
    score = policy_score(specialist, plan, domain_offsets)
    return "approve" if score < lo else ("review_required" if score < hi else "reject")


def _noisy(label: str, rng: np.random.Generator, noise: float) -> str:
    if rng.random() >= noise:
        return label
    others = [c for c in CLASSES if c != label]
    return others[int(rng.integers(len(others)))]


def _plan_id(seed: int, i: int) -> str:
    return f"plan-{seed}-{i:07d}"


def _opinion_id(seed: int, plan_id: str, specialist: str) -> str:
    return f"op-{seed}-{plan_id[-7:]}-{specialist}"


def _make_plan(i: int, rng: np.random.Generator, seed: int, created_at: datetime, drift: float) -> dict:
    plan_id = _plan_id(seed, i)
    n = int(rng.integers(1, 41))
    if drift:
        n = int(min(40, n + rng.integers(0, int(20 * drift) + 1)))
    # draw per-task randomness as vectors: one call per plan, not per task
    n_preds = np.minimum(np.arange(n), rng.poisson(1.1, size=n))
    kinds = rng.random(size=(n, 3))
    dangling = rng.random(size=n) < 0.03
    durations = rng.lognormal(mean=10.5, sigma=0.9, size=n).astype(int)
    missing = rng.random(size=n) < 0.03
    n_caps = rng.integers(1, 4, size=n)
    cap_draws = rng.random(size=(n, len(CAPABILITIES))).argsort(axis=1)
    type_draws = rng.integers(len(TASK_TYPES), size=n)
    tasks = []
    for j in range(n):
        deps: list[Any] = []
        k = int(n_preds[j])
        if k:
            preds = rng.choice(j, size=k, replace=False) if k > 1 else (int(kinds[j, 2] * j),)
            for pred, u in zip(preds, kinds[j, : len(preds)] if k <= 3 else rng.random(size=k)):
                pid = f"t{int(pred)}"
                deps.append({"task_id": pid, "type": "weak"} if u < 0.15 else
                            {"task_id": pid, "type": "strong"} if u < 0.25 else pid)
        if dangling[j]:
            deps.append(f"t{n + 100 + j}")  # dangling: not a task of this plan
        task_type = TASK_TYPES[int(type_draws[j])]
        tasks.append({
            "task_id": f"t{j}",
            "task_type": task_type,
            "description": f"{task_type} step {j}",
            "dependencies": deps,
            "estimated_duration_ms": None if missing[j] else int(durations[j]),
            "required_capabilities": [CAPABILITIES[c] for c in cap_draws[j, : n_caps[j]]],
            "parameters": {},
            "metadata": {},
        })
    if n >= 2 and rng.random() < 0.02:  # a cycle: an early task waits on a later one
        a, b = sorted(int(x) for x in rng.choice(n, size=2, replace=False))
        tasks[a]["dependencies"].append(f"t{b}")
    risk = float(rng.beta(2.0 + 6.0 * drift, 4.0))
    complexity = float(np.clip(0.6 * rng.beta(2.0, 2.0) + 0.4 * (n / 40.0), 0.0, 1.0))
    domain = DOMAINS[int(rng.integers(len(DOMAINS)))]
    if rng.random() < 0.1:
        domain = domain.lower()  # production sends any case
    priority = PRIORITIES[int(rng.choice(4, p=[0.2, 0.45, 0.25, 0.1]))]
    total = sum(t["estimated_duration_ms"] or 0 for t in tasks)
    band = "low" if risk < 0.25 else "medium" if risk < 0.5 else "high" if risk < 0.75 else "critical"
    return {
        "plan_id": plan_id,
        "intent_id": f"intent-{seed}-{i:07d}",
        "version": "1.0.0",
        "tasks": tasks,
        "execution_order": [t["task_id"] for t in tasks],
        "risk_score": round(risk, 6),
        "risk_band": band,
        "complexity_score": round(complexity, 6),
        "estimated_total_duration_ms": int(total * float(rng.uniform(0.9, 1.3))),
        "original_domain": domain,
        "original_priority": priority,
        "original_security_level": ["public", "internal", "confidential"][int(rng.integers(3))],
        "created_at": created_at,
    }


def iter_plans(n: int, seed: int, now: datetime | None = None, days: float = 60.0,
               drift: float = 0.0) -> Iterator[dict]:
    """`make_plans`, one plan at a time: the same plans, without holding them all (~19 KB each)."""
    rng = np.random.default_rng(seed)
    now = now or datetime(2026, 1, 1, tzinfo=timezone.utc)
    offsets = np.sort(rng.uniform(0.0, days * 86400.0, size=n))[::-1]
    for i in range(n):
        yield _make_plan(i, rng, seed, _ms(now - timedelta(seconds=float(offsets[i]) + 3600.0)), drift)


def make_plans(n: int, seed: int, now: datetime | None = None, days: float = 60.0, drift: float = 0.0) -> list[dict]:
    """`n` plan documents (the `plan_data` shape), created over the `days` before `now`, in time order."""
    return list(iter_plans(n, seed, now=now, days=days, drift=drift))


# -- malformed documents ------------------------------------------------------------------------------
def _drop(field_name: str) -> Callable[[dict], None]:
    return lambda d: d.pop(field_name, None)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def apply(doc: dict) -> None:
        *parents, leaf = path.split(".")
        target = doc
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[leaf] = value
    return apply


def _dup_task(plan_doc: dict) -> None:
    tasks = plan_doc["plan_data"]["tasks"]
    tasks.append(copy.deepcopy(tasks[0]))


# (collection, kind, expected reason code, mutation)
CORRUPTIONS: tuple[tuple[str, str, str, Callable[[dict], None]], ...] = (
    ("cognitive_ledger", "no_tasks", "missing_tasks", lambda d: d["plan_data"].pop("tasks")),
    ("cognitive_ledger", "tasks_not_list", "wrong_type", _set("plan_data.tasks", "t0,t1")),
    ("cognitive_ledger", "duplicate_task_ids", "duplicate_task_ids", _dup_task),
    ("cognitive_ledger", "risk_as_text", "wrong_type", _set("plan_data.risk_score", "high")),
    ("cognitive_ledger", "risk_out_of_range", "out_of_range", _set("plan_data.risk_score", 7.5)),
    ("cognitive_ledger", "negative_duration", "negative_duration", _set("plan_data.tasks.0.estimated_duration_ms", -5)),
    ("cognitive_ledger", "task_without_id", "missing_task_id", lambda d: d["plan_data"]["tasks"][0].pop("task_id")),
    ("cognitive_ledger", "bad_dependency", "invalid_dependency", _set("plan_data.tasks.0.dependencies", [42])),
    ("specialist_opinions", "unknown_recommendation", "unknown_recommendation", _set("opinion.recommendation", "maybe")),
    ("specialist_opinions", "no_opinion_body", "missing_field", _drop("opinion")),
    ("specialist_opinions", "confidence_out_of_range", "out_of_range", _set("opinion.confidence_score", 1.7)),
    ("specialist_opinions", "orphan_plan", "missing_plan", _set("plan_id", "plan-does-not-exist")),
    ("specialist_feedback", "unknown_human_recommendation", "unknown_human_recommendation",
     _set("human_recommendation", "conditional")),
    ("specialist_feedback", "rating_as_text", "wrong_type", _set("human_rating", "five stars")),
    ("specialist_feedback", "bad_submitted_at", "invalid_timestamp", _set("submitted_at", "yesterday-ish")),
)


@dataclass
class SimulationSummary:
    plans: int = 0
    written: Counter = field(default_factory=Counter)
    # (collection, document id, expected reason, specialist or None)
    malformed: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    now: datetime | None = None
    plan_docs: list[dict] = field(default_factory=list, repr=False)  # the plans, as generated (keep_plans)
    # answers drawn but due after `now` (0.2-48 h after their opinion): history ends at `now`, so not written
    answers_not_yet_due: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "plans": self.plans,
            "written": dict(self.written),
            "malformed": len(self.malformed),
            "malformed_by_reason": dict(Counter(m[2] for m in self.malformed)),
            "now": self.now.isoformat() if self.now else None,
            "answers_not_yet_due": self.answers_not_yet_due,
        }


def heuristic_opinion(specialist: str, plan: dict, rng: np.random.Generator | None = None) -> tuple[str, float, str]:
    """The pre-platform model: the policy's label 35% of the time wrong, 5% 'conditional'."""
    rng = rng or np.random.default_rng(int(hashlib.sha256(f"{specialist}:{plan['plan_id']}".encode()).hexdigest()[:8], 16))
    rec = _noisy(policy_label(specialist, plan), rng, 0.35)
    if rng.random() < 0.05:
        rec = "conditional"
    return rec, round(float(rng.uniform(0.55, 0.95)), 4), "0.0.0-heuristic"


# (specialist, plans) -> one (recommendation, confidence, model version, opinion metadata) per plan
OpinionModel = Callable[[str, list[dict]], list[tuple[str, float, str, dict]]]


def written_before(store, seed: int) -> bool:
    """Whether `simulate(seed=seed)` already wrote into `store`: its first plan's opinions are there. Its ids
    derive from the seed, so another run with it replaces those documents (their times, their opinions)."""
    # one top-level equality per id: what FerretDB pushes down (an `$in` reads every opinion)
    first = _plan_id(seed, 0)
    return any(store.find_one("specialist_opinions", {"opinion_id": _opinion_id(seed, first, s)}) is not None
               for s in SPECIALISTS)


def _served_chunks(generated: Iterator[dict], chunk_size: int, domain: str | None, specialists: Sequence[str],
                   opinion_model: OpinionModel | None) -> Iterator[tuple[int, dict, dict[str, tuple]]]:
    """(index, plan, {specialist: served opinion}) for each plan, served `chunk_size` plans at a time."""
    done = 0
    while chunk := list(islice(generated, chunk_size)):
        if domain is not None:
            for plan in chunk:
                plan["original_domain"] = domain
        served = {s: opinion_model(s, chunk) for s in specialists} if opinion_model else {}
        for j, plan in enumerate(chunk):
            yield done + j, plan, {s: opinions[j] for s, opinions in served.items()}
        done += len(chunk)


def simulate(
    store,
    plans: int = 4000,
    days: float = 60.0,
    seed: int = 42,
    now: datetime | None = None,
    drift: float = 0.0,
    label_noise: float = 0.10,
    feedback_rate: float = 0.85,
    malformed_rate: float = 0.01,
    ledger_share: float = 0.8,
    opinion_model: OpinionModel | None = None,
    batch_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = 1000,
    specialists: Sequence[str] = SPECIALISTS,
    domain: str | None = None,
    keep_plans: bool = False,
    chunk_size: int = 5000,
    audit_sink: Callable[[list[dict]], object] | None = None,
) -> SimulationSummary:
    """Write a production-shaped data set into `store` and return what was written.

    `opinion_model` produces the served opinions (e.g. the champion through the serving helper);
    without it a weak heuristic stands in for the first, pre-platform model. `progress(done, total)` is
    called every `progress_every` plans generated, and once at the end when everything is written.
    `specialists`: who gives opinions on these plans (default all five); `domain`: every plan's
    `original_domain` (a new product line), drawn otherwise. The defaults write what they always did.
    Plans are generated, served and written `chunk_size` at a time, so memory does not grow with `plans`
    (the documents are the same for any chunk size); `keep_plans` keeps them all in `summary.plan_docs`.
    `audit_sink(events)` also gets every batch of intent audit events, before the store: where collection reads
    them when they are not in the store (`audit_sink_for`: the Kafka topic when KAFKA_BOOTSTRAP_SERVERS is set).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    now = (now or clock.now()).astimezone(timezone.utc)
    rng = np.random.default_rng([seed, 1])
    summary = SimulationSummary(plans=plans, now=now)
    generated = iter_plans(plans, seed, now=now, days=days, drift=drift)

    buffers: dict[str, list[dict]] = {c: [] for c in (
        "cognitive_ledger", "cognitive_plans", "intentions_audit", "specialist_opinions", "specialist_feedback")}

    def flush(force: bool = False) -> None:
        # all of them once one is full, in this order: a plan before the opinions and feedback naming it (the
        # opinions, five a plan, filled first, and a `hive simulate` interrupted then left opinions without plans)
        if not force and all(len(docs) < batch_size for docs in buffers.values()):
            return
        for coll, docs in buffers.items():
            if docs:
                if coll == "intentions_audit" and audit_sink is not None:
                    audit_sink(docs)
                summary.written[coll] += store.upsert_many(coll, docs)
                docs.clear()

    for p_idx, plan, served in _served_chunks(generated, chunk_size, domain, specialists, opinion_model):
        if keep_plans:
            summary.plan_docs.append(plan)
        created = plan["created_at"]
        # intent audit event: ~2% missing, NLU confidence mostly high
        if rng.random() >= 0.02:
            buffers["intentions_audit"].append({
                "id": plan["intent_id"],
                "timestamp": _ms(created - timedelta(seconds=float(rng.uniform(1, 30)))),
                "confidence": round(float(rng.beta(9.0, 2.0)), 4),
                "intent": {"text": f"intent for {plan['plan_id']}", "domain": plan["original_domain"]},
                "actor": {"id": f"user-{int(rng.integers(500))}"},
                "context": {"channel": "api"},
            })
        if rng.random() < ledger_share:
            plan_doc = {
                "plan_id": plan["plan_id"], "intent_id": plan["intent_id"], "version": plan["version"],
                "execution_order": plan["execution_order"], "risk_score": plan["risk_score"],
                "risk_band": plan["risk_band"], "timestamp": created,
                "hash": hashlib.sha256(f"{seed}:{plan['plan_id']}".encode()).hexdigest()[:16], "plan_data": plan,
            }
            plan_coll = "cognitive_ledger"
        else:
            plan_doc, plan_coll = dict(plan), "cognitive_plans"
        corrupt_plan = rng.random() < malformed_rate * 3
        if corrupt_plan and plan_coll == "cognitive_ledger":
            plan_doc = copy.deepcopy(plan_doc)
            kinds = [c for c in CORRUPTIONS if c[0] == "cognitive_ledger"]
            _, kind, reason, mutate = kinds[int(rng.integers(len(kinds)))]
            mutate(plan_doc)
            summary.malformed.append((plan_coll, plan["plan_id"], reason, None))
        else:
            corrupt_plan = False
        buffers[plan_coll].append(plan_doc)

        for s_idx, specialist in enumerate(SPECIALISTS):
            if specialist not in specialists:
                continue
            opinion_id = _opinion_id(seed, plan["plan_id"], specialist)
            evaluated = _ms(created + timedelta(seconds=float(rng.uniform(2, 90)) + s_idx))
            truth = policy_label(specialist, plan)
            # the heuristic always draws, so the rest of the data set does not depend on who served
            rec, conf, version = heuristic_opinion(specialist, plan, rng)
            meta: dict = {}
            if specialist in served:
                rec, conf, version, meta = served[specialist]
            opinion = {
                "opinion_id": opinion_id, "plan_id": plan["plan_id"], "intent_id": plan["intent_id"],
                "specialist_type": specialist, "specialist_version": version, "evaluated_at": evaluated,
                "opinion": {
                    "recommendation": rec, "confidence_score": conf, "risk_score": plan["risk_score"],
                    "reasoning_summary": f"{specialist} assessment of {len(plan['tasks'])} tasks",
                    "reasoning_factors": [{"factor": "risk", "weight": plan["risk_score"]}],
                },
            }
            if meta:
                opinion["metadata"] = meta
            if not corrupt_plan and rng.random() < malformed_rate:
                kinds = [c for c in CORRUPTIONS if c[0] == "specialist_opinions"]
                _, kind, reason, mutate = kinds[int(rng.integers(len(kinds)))]
                mutate(opinion)
                summary.malformed.append(("specialist_opinions", opinion_id, reason, specialist))
            buffers["specialist_opinions"].append(opinion)

            # feedback: humans label from the hidden policy with noise, after a delay
            if rng.random() >= feedback_rate:
                continue
            submitted = _ms(evaluated + timedelta(hours=float(rng.uniform(0.2, 48))))
            if submitted > now:
                summary.answers_not_yet_due += 1
                continue
            label = _noisy(truth, rng, label_noise)
            source = "approval_service" if rng.random() < 0.15 else "human_expert"
            fb_base = {
                "opinion_id": opinion_id, "plan_id": plan["plan_id"], "specialist_type": specialist,
                "submitted_by": f"reviewer-{int(rng.integers(40))}", "metadata": {},
            }
            docs = []
            if rng.random() < 0.05:  # an early label, later corrected: the latest one counts
                docs.append({**fb_base, "feedback_id": f"fb-{opinion_id}-early",
                             "human_recommendation": CLASSES[int(rng.integers(3))], "human_rating": 0.5,
                             "submitted_at": submitted - timedelta(minutes=30), "feedback_source": "human_expert"})
            rating = ({"approve": 1.0, "reject": 0.0, "review_required": 0.5}[label] if source == "approval_service"
                      else round(float(rng.uniform(0.6, 1.0)), 3))
            docs.append({**fb_base, "feedback_id": f"fb-{opinion_id}", "human_recommendation": label,
                         "human_rating": rating, "submitted_at": submitted, "feedback_source": source})
            u = rng.random()
            if u < 0.08:  # machine-written feedback with random labels, newer than the human one
                machine = ({"auto_generated": True}, "human_expert") if u < 0.04 else \
                    ({"balanced_dataset": True}, "approval_service") if u < 0.06 else ({}, DENIED_SOURCE)
                docs.append({**fb_base, "feedback_id": f"fb-{opinion_id}-machine",
                             "human_recommendation": CLASSES[int(rng.integers(3))], "human_rating": 1.0,
                             "submitted_at": submitted + timedelta(minutes=10), "feedback_source": machine[1],
                             "metadata": machine[0]})
            if not corrupt_plan and rng.random() < malformed_rate:
                kinds = [c for c in CORRUPTIONS if c[0] == "specialist_feedback"]
                _, kind, reason, mutate = kinds[int(rng.integers(len(kinds)))]
                bad = copy.deepcopy(docs[-1])
                bad["feedback_id"] += "-bad"
                mutate(bad)
                docs.append(bad)
                summary.malformed.append(("specialist_feedback", bad["feedback_id"], reason, specialist))
            buffers["specialist_feedback"].extend(docs)
        flush()
        if progress and (p_idx + 1) % progress_every == 0 and p_idx + 1 < plans:
            progress(p_idx + 1, plans)
    flush(force=True)
    if progress:
        progress(plans, plans)
    return summary

"""What one served opinion carries, and the `specialist_opinions` document it becomes (SPEC section 2)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Opinion:
    """A plan scored by the model its A/B arm names.

    `confidence` is the calibrated max class probability and `recommendation` its class (SPEC section 4);
    `model_version` is the registry version that produced it (the document's `specialist_version`).
    `ab_test_id` / `ab_arm` are set for every unit of a running test, champion arm included (the A/B
    tally counts both arms from them), and None outside a test.
    """

    specialist: str
    recommendation: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)
    model_version: str = ""
    ab_test_id: str | None = None
    ab_arm: str | None = None

    @property
    def metadata(self) -> dict[str, str]:
        """The opinion document's `metadata`: {ab_test_id, ab_arm} inside a test, else empty."""
        return {"ab_test_id": self.ab_test_id, "ab_arm": self.ab_arm} if self.ab_test_id else {}


def _utc_ms(value: datetime) -> datetime:
    """Aware UTC at millisecond precision (what BSON dates keep: both stores then hold the same instant)."""
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def routing_unit(document: Mapping[str, Any], plan: Mapping[str, Any]) -> str | None:
    """The intent id a request is routed by: the plan's `intent_id`, else, for a `cognitive_ledger` entry, the
    entry's own (where collection finds it too: an opinion counted in a test is one its unit was routed
    in); None without one (served by the champion, outside any test). An id is read as collection reads it
    (`hive_assets.data.clear_id`: 0 is an id, True or a field-level encrypted `enc:...` is none)."""
    from hive_assets.data import clear_id

    own = clear_id(plan.get("intent_id"))
    return own if own is not None or document is plan else clear_id(document.get("intent_id"))


def opinion_document(opinion: Opinion, plan: Mapping[str, Any], *, opinion_id: str | None = None,
                     evaluated_at: datetime | None = None, reasoning_summary: str = "",
                     reasoning_factors: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The `specialist_opinions` document for `opinion` on `plan` (or on a `cognitive_ledger` entry: its
    `plan_data`, the plan `evaluate` scored), in the production shape.

    `opinion_id` defaults to a new UUID, `evaluated_at` to `hive_assets.clock.now()`. The nested
    `opinion` also keeps the class probabilities (`class_probabilities`); `metadata` is written only
    inside a test, with `ab_test_id` and `ab_arm` (what `hive_assets.rollout` counts).
    """
    from hive_assets import clock

    entry = plan
    if isinstance(plan.get("plan_data"), Mapping):  # a cognitive_ledger entry: its plan is what was scored
        plan = plan["plan_data"]
    risk = plan.get("risk_score")
    doc: dict[str, Any] = {
        "opinion_id": opinion_id or str(uuid.uuid4()),
        "plan_id": plan.get("plan_id"),
        # the plan's own (as written, an encrypted one included), else the entry's that `evaluate` routed by
        "intent_id": plan["intent_id"] if plan.get("intent_id") is not None else routing_unit(entry, plan),
        "specialist_type": opinion.specialist,
        "specialist_version": opinion.model_version,
        "evaluated_at": _utc_ms(evaluated_at or clock.now()),
        "opinion": {
            "recommendation": opinion.recommendation,
            "confidence_score": float(opinion.confidence),
            "risk_score": float(risk) if isinstance(risk, (int, float)) and not isinstance(risk, bool) else None,
            "reasoning_summary": reasoning_summary,
            "reasoning_factors": [dict(f) for f in reasoning_factors],
            "class_probabilities": dict(opinion.probabilities),
        },
    }
    if opinion.metadata:
        doc["metadata"] = opinion.metadata
    return doc

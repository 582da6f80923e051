"""Which feedback may become a label (SPEC section 4): the trust policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrustPolicy:
    """Which feedback may become a label (SPEC section 4)."""

    denied_sources: frozenset[str] = frozenset({"synthetic_backfill", "load_test"})
    min_feedback_quality: float = 0.0
    # approval-service feedback encodes rejections as rating 0.0: a quality filter must not apply
    quality_exempt_sources: frozenset[str] = frozenset({"approval_service"})

    def reason_to_drop(self, fb: Mapping[str, Any]) -> str | None:
        meta = fb.get("metadata") or {}
        if meta.get("auto_generated"):
            return "auto_generated"
        if meta.get("balanced_dataset"):
            return "balanced_dataset"
        if fb.get("feedback_source") in self.denied_sources:
            return "denied_source"
        if (
            self.min_feedback_quality > 0
            and fb.get("feedback_source") not in self.quality_exempt_sources
            and (fb.get("human_rating") is None or fb["human_rating"] < self.min_feedback_quality)
        ):
            return "below_min_quality"
        return None

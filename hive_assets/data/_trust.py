"""Which feedback may become a label (SPEC section 4): the trust policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

AUTO_GENERATED = "auto_generated"
BALANCED_DATASET = "balanced_dataset"
DENIED_SOURCE = "denied_source"
BELOW_MIN_QUALITY = "below_min_quality"
SUBMITTED_AFTER_WINDOW = "submitted_after_window"


class FeedbackFilterEmptiedClass(ValueError):
    """The feedback-quality filter removed every label of a class (SPEC section 4 forbids it)."""

    def __init__(self, label: str, dropped: int, min_feedback_quality: float):
        self.label, self.dropped, self.min_feedback_quality = label, dropped, min_feedback_quality
        super().__init__(
            f"min_feedback_quality={min_feedback_quality:g} removed every {label!r} label ({dropped} feedback "
            f"documents below it, none left): add the source that writes them to quality_exempt_sources "
            f"or lower min_feedback_quality")


@dataclass(frozen=True)
class TrustPolicy:
    """Which feedback may become a label (SPEC section 4).

    The quality filter (`human_rating` >= `min_feedback_quality`) skips feedback whose origin is one of
    `quality_exempt_sources`, compared case-insensitively with both `feedback_source` and
    `metadata.source`: the approval service stores `feedback_source: "human_expert"` and marks itself in
    `metadata.source`, and encodes its rejections as rating 0.0 (a verdict, not a quality).
    """

    denied_sources: frozenset[str] = frozenset({"synthetic_backfill", "load_test"})
    min_feedback_quality: float = 0.0
    quality_exempt_sources: frozenset[str] = frozenset({"approval_service"})

    def __post_init__(self):
        object.__setattr__(self, "quality_exempt_sources",
                           frozenset(str(s).strip().lower() for s in self.quality_exempt_sources))

    def is_quality_exempt(self, fb: Mapping[str, Any]) -> bool:
        meta = fb.get("metadata") or {}
        origins = (fb.get("feedback_source"), meta.get("source") if isinstance(meta, Mapping) else None)
        return any(isinstance(o, str) and o.strip().lower() in self.quality_exempt_sources for o in origins)

    def reason_to_drop(self, fb: Mapping[str, Any]) -> str | None:
        meta = fb.get("metadata") or {}
        if meta.get("auto_generated"):
            return AUTO_GENERATED
        if meta.get("balanced_dataset"):
            return BALANCED_DATASET
        if fb.get("feedback_source") in self.denied_sources:
            return DENIED_SOURCE
        if (
            self.min_feedback_quality > 0
            and not self.is_quality_exempt(fb)
            and (fb.get("human_rating") is None or fb["human_rating"] < self.min_feedback_quality)
        ):
            return BELOW_MIN_QUALITY
        return None

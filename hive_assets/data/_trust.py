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


def normalised_source(name: Any) -> str | None:
    """How a source name is compared: stripped and lower-cased; None for anything but text."""
    return name.strip().lower() if isinstance(name, str) else None


def feedback_origins(fb: Mapping[str, Any]) -> tuple[str, ...]:
    """Every origin a feedback document claims, normalised: its `feedback_source` and its `metadata.source`
    (the approval service writes `feedback_source: "human_expert"` and marks itself only there)."""
    meta = fb.get("metadata")
    names = (fb.get("feedback_source"), meta.get("source") if isinstance(meta, Mapping) else None)
    return tuple(o for o in map(normalised_source, names) if o is not None)


def _normalised(sources: Any) -> frozenset[str]:
    return frozenset(o for o in map(normalised_source, map(str, sources)) if o)


@dataclass(frozen=True)
class TrustPolicy:
    """Which feedback may become a label (SPEC section 4).

    A feedback document comes from a source when `feedback_origins` (its `feedback_source` or its
    `metadata.source`, compared case-insensitively) names it. The same rule decides both lists, so they
    cannot diverge: feedback from one of `denied_sources` is never a label, and the quality filter
    (`human_rating` >= `min_feedback_quality`) skips feedback from one of `quality_exempt_sources` (the
    approval service encodes its rejections as rating 0.0: a verdict, not a quality). Both sets are kept
    normalised.
    """

    denied_sources: frozenset[str] = frozenset({"synthetic_backfill", "load_test"})
    min_feedback_quality: float = 0.0
    quality_exempt_sources: frozenset[str] = frozenset({"approval_service"})

    def __post_init__(self):
        object.__setattr__(self, "denied_sources", _normalised(self.denied_sources))
        object.__setattr__(self, "quality_exempt_sources", _normalised(self.quality_exempt_sources))

    def is_denied(self, fb: Mapping[str, Any]) -> bool:
        return any(o in self.denied_sources for o in feedback_origins(fb))

    def is_quality_exempt(self, fb: Mapping[str, Any]) -> bool:
        return any(o in self.quality_exempt_sources for o in feedback_origins(fb))

    def reason_to_drop(self, fb: Mapping[str, Any]) -> str | None:
        meta = fb.get("metadata") or {}
        if meta.get("auto_generated"):
            return AUTO_GENERATED
        if meta.get("balanced_dataset"):
            return BALANCED_DATASET
        if self.is_denied(fb):
            return DENIED_SOURCE
        if (
            self.min_feedback_quality > 0
            and not self.is_quality_exempt(fb)
            and (fb.get("human_rating") is None or fb["human_rating"] < self.min_feedback_quality)
        ):
            return BELOW_MIN_QUALITY
        return None

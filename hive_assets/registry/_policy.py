"""Which alias a newly registered version gets (SPEC sections 5-7): a decision, so it lives here, tested
without Dagster or MLflow."""

from __future__ import annotations

from typing import Any

from hive_assets.routing import CHALLENGER, CHAMPION


def alias_for_new_version(version: str, champion_version: str | None, *, ab_testing_enabled: bool,
                          promote_if_better: bool | None, comparison: dict[str, Any] | None) -> tuple[str | None, str]:
    """(alias or None, reason) for `version`, given the current champion.

    No champion yet -> champion. With A/B enabled -> challenger (an A/B test decides). Without A/B,
    `promote_if_better` moves champion when the champion comparison says better; otherwise no alias.
    `promote_if_better=None` means "on when A/B testing is disabled": AB_TESTING_ENABLED=false promotes
    through this rule instead of a test (SPEC section 7).
    """
    if promote_if_better is None:
        promote_if_better = not ab_testing_enabled
    if champion_version is None:
        return CHAMPION, "first model for this specialist"
    if str(champion_version) == str(version):
        return CHAMPION, "already champion"
    if ab_testing_enabled:
        return CHALLENGER, "A/B test against the champion"
    if promote_if_better and comparison and comparison["better"]:
        return CHAMPION, (f"promote_if_better: macro-F1 +{comparison['macro_f1_improvement']:.3f}, "
                          "no regression > 0.02")
    return None, "kept as a candidate (no A/B, not promoted)"

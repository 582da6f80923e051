"""The closed loop's scenario: what production does over the simulated days, and what an operator does.

The default scenario shows every behaviour of the platform at least once (README, "The closed loop"):

- technical: from hour 2 a new product line (domain PAYMENTS, judged stricter by its reviewers) reaches
  the technical specialist only. The drift sensor sees it within hours; the retraining waits for the
  cooldown after the first training (24 h), by when the new domain has labels; the retrained challenger
  wins its A/B test and is promoted through 10 -> 25 -> 50 -> 100 %.
- then an operator pushes technical's previous champion back as challenger at 25 % (the
  `ab_test_start` operator job); it is worse on today's traffic, and the A/B test rolls it back before 50 %.
- business: its reviewers answer most opinions, so its trusted feedback reaches the threshold first: a
  feedback-triggered retraining, whose challenger is A/B tested like any other.
- behavior, evolution, architecture: fewer reviewers (20 % of opinions answered), no drift: never
  retrained by the drift sensor (nor, within the default horizon, by the feedback one).

The settings are the platform's defaults except those in DEFAULT_SETTINGS: the feedback threshold,
raised to match the simulated volume (150 plans an hour give a specialist up to ~130 labels an hour,
~190 for technical with its new domain: the seed's 100 would retrain every specialist daily), and the drift check's interval and window.
Settings read when the definitions load (sensor intervals) must be in the environment before that:
`hive loop` sets them first. Deterministic per seed: the same seed, the same timeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from hive_assets.config import SPECIALISTS

__all__ = ["DEFAULT_SETTINGS", "DriftPlan", "Scenario", "default_scenario"]

DEFAULT_SETTINGS: Mapping[str, str] = {
    "RETRAINING_FEEDBACK_THRESHOLD": "8000",
    # a drift check reads and featurizes its whole window: every 6 simulated hours over the last 6
    # hours keeps the loop fast and still covers every hour once (the SPEC default is hourly over 24 h)
    "DRIFT_CHECK_INTERVAL_MINUTES": "360",
    "DRIFT_WINDOW_HOURS": "6",
    # A/B looks every 6 hours (the confidence sequence is valid at any looks); labels count once 24 h
    # old: the simulated reviewers answer within 24 h 92 % of the time (log-normal, median 6 h)
    "AB_TEST_CHECK_INTERVAL_MINUTES": "360",
    "AB_TEST_LABEL_MATURITY_HOURS": "24",
}


@dataclass(frozen=True)
class DriftPlan:
    """A `DriftInjection` (hive_assets.simulator) relative to a start: the home's first loop's (`loop_origin`)."""

    specialist: str
    onset_hours: float = 2.0
    share: float = 0.5
    domain: str = "PAYMENTS"
    domain_offset: float = 0.8
    shift: float = 0.3

    def at(self, start: datetime):
        from hive_assets.simulator._serving import DriftInjection

        return DriftInjection(self.specialist, start + timedelta(hours=self.onset_hours), self.share, self.domain,
                              self.domain_offset, self.shift)


@dataclass(frozen=True)
class Scenario:
    days: float = 6.0
    seed: int = 42
    plans_per_hour: int = 150
    feedback_rates: Mapping[str, float] = field(default_factory=lambda: {
        "business": 0.85, "technical": 0.85, "behavior": 0.2, "evolution": 0.2, "architecture": 0.2})
    drift: tuple[DriftPlan, ...] = (DriftPlan("technical"),)
    # once the specialist's challenger is promoted, an operator pushes its previous champion back as
    # challenger (ab_test_start): a version known to be worse on today's traffic
    push_previous_champion: tuple[str, ...] = ("technical",)
    push_traffic: float = 25.0  # the operator starts the pushed version's test at this share (%)
    settings: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    label_noise: float = 0.10
    feedback_median_hours: float = 6.0
    # > 0: the review queue runs daily with this budget and reviewers answer it first (hive loop --review-queue)
    review_queue_budget: int = 0
    # an operator launches `retrain_specialist` for every specialist at the end of these simulated days
    # (1 = the end of the first day): retrains at fixed points, to compare their cost as traffic grows
    retrain_days: tuple[int, ...] = ()

    def __post_init__(self):
        if self.days <= 0 or self.plans_per_hour <= 0:
            raise ValueError("days and plans_per_hour must be positive")
        # 0.01 days played nothing and printed an empty timeline; 0.03 (0.72 h) was played as an hour while
        # the message said at least 1/24: under one hour is refused, above it rounds to whole hours
        if self.days * 24 < 1 - 1e-9:
            raise ValueError(f"the loop plays whole simulated hours: days must be at least 1/24 (one hour), "
                             f"got {self.days:g}")
        if self.review_queue_budget < 0:
            raise ValueError("review_queue_budget must be >= 0")
        late = [d for d in self.retrain_days if not 1 <= d <= self.days]
        if late:
            whole = int(self.days)
            within = f"1..{whole}" if whole else "none: a retrain day ends a whole simulated day"
            raise ValueError(f"retrain_days must be within the {self.days:g} simulated days ({within}), got {late}")
        unknown = ({d.specialist for d in self.drift} | set(self.push_previous_champion) | set(self.feedback_rates)) \
            - set(SPECIALISTS)
        if unknown:
            raise ValueError(f"unknown specialist(s) {sorted(unknown)}; choose from {', '.join(SPECIALISTS)}")

    @property
    def hours(self) -> int:
        return int(round(self.days * 24))

    def describe(self) -> list[str]:
        rounded = "" if math.isclose(self.hours, self.days * 24) else f" ({self.hours} h: the loop plays whole hours)"
        lines = [f"{self.days:g} simulated days{rounded}, {self.plans_per_hour} plans an hour, seed {self.seed}"]
        lines += [f"drift: {d.specialist} sees domain {d.domain} from hour {d.onset_hours:g} of the home's first loop "
                  f"(+{d.share:.0%} traffic, reviewers {d.domain_offset:+g} stricter)" for d in self.drift]
        lines += [f"operator: pushes {s}'s previous champion back as challenger at {self.push_traffic:g} % after "
                  f"its next promotion" for s in self.push_previous_champion]
        lines.append("feedback answered: " + ", ".join(f"{s} {r:.0%}" for s, r in self.feedback_rates.items()))
        if self.retrain_days:
            lines.append("operator: retrains every specialist at the end of day(s) "
                         + ", ".join(str(d) for d in self.retrain_days))
        if self.review_queue_budget:
            lines.append(f"review queue: {self.review_queue_budget} requests a day per specialist, answered first")
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
        return lines


def default_scenario(*, days: float | None = None, seed: int = 42, plans_per_hour: int | None = None) -> Scenario:
    """The default scenario (module docstring), optionally shortened or with another seed or volume."""
    scenario = Scenario(seed=seed)
    if days is not None:
        scenario = replace(scenario, days=days)
    if plans_per_hour is not None:
        scenario = replace(scenario, plans_per_hour=plans_per_hour)
    return scenario

"""Production-data simulator: plans, intent audit events, opinions and human feedback with known truth.

`simulate(store, plans=..., days=..., seed=...)` writes realistic documents (a small share malformed on
purpose); `served_opinions(routers)` serves opinions through `hive_assets.serving.SpecialistRouter`, the
client specialist services run (champion, challenger, A/B routing); `ServingLoop(store, tracking_uri)
.serve_hour(now)` does it hour by hour on an injected clock, with human feedback arriving after a
realistic delay. `simulate_scale` writes millions of opinions with a production-like answered share
(the collection benchmark's scenario).
"""

from hive_assets.simulator._scale import simulate_scale
from hive_assets.simulator._scenario import DEFAULT_SETTINGS, DriftPlan, Scenario, default_scenario
from hive_assets.simulator._serving import (
    DriftInjection, ServingLoop, describe_serving, interrupted_hour, loop_origin, refresh_all, resume_start,
    served_opinions,
)
from hive_assets.simulator._timeline import (
    ChampionAnswer, TimelineEvent, build_timeline, champions, format_champions, format_timeline, why_quiet,
)
from hive_assets.simulator._simulate import (
    CORRUPTIONS, DENIED_SOURCE, POLICIES, SimulationSummary, heuristic_opinion, make_plans, policy_label,
    policy_score, simulate, written_before,
)

__all__ = [
    "CORRUPTIONS", "DEFAULT_SETTINGS", "DENIED_SOURCE", "DriftPlan", "Scenario", "default_scenario", "DriftInjection", "POLICIES", "ServingLoop", "SimulationSummary", "describe_serving", "heuristic_opinion",
    "interrupted_hour", "loop_origin", "refresh_all", "resume_start", "served_opinions",
    "make_plans", "policy_label", "policy_score", "simulate", "simulate_scale", "written_before",
    "ChampionAnswer", "TimelineEvent", "build_timeline", "champions", "format_champions", "format_timeline",
    "why_quiet",
]

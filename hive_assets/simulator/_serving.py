"""The simulator's serving loop: opinions served as production would (SPEC section 7)."""

from __future__ import annotations

import sys

from hive_assets.config import SPECIALISTS
from hive_assets.rollout import running_test
from hive_assets.routing import CHALLENGER, assign_arm
from hive_assets.simulator._simulate import heuristic_opinion


def champion_opinions(tracking_uri: str, store):
    """Opinions served as production would: by each specialist's champion through the serving helper,
    and by the challenger for the units an open A/B test routes to it (with ab_test_id / ab_arm)."""
    from hive_assets.registry import load_evaluator

    try:
        champions = {s: load_evaluator(tracking_uri, s) for s in SPECIALISTS}
        tests = {s: running_test(store, s) for s in SPECIALISTS}
        challengers = {s: load_evaluator(tracking_uri, s, t["challenger_version"]) for s, t in tests.items() if t}
    except Exception as exc:  # no registry yet, or unreachable: the heuristic stands in, and we say so
        print(f"no models served ({type(exc).__name__}: {exc}); using the heuristic", file=sys.stderr)
        return None
    if not any(champions.values()):
        return None
    print("opinions served by champions: " + ", ".join(f"{s} v{e.version}" for s, e in champions.items() if e)
          + "".join(f"; A/B {t['test_id']} at {t['traffic_percent']:g}%" for t in tests.values() if t), file=sys.stderr)

    def serve(specialist: str, plans: list[dict]):
        champion = champions.get(specialist)
        if champion is None:
            return [(*heuristic_opinion(specialist, p), {}) for p in plans]
        out = [(e.recommendation, round(e.confidence, 4), e.model_version, {}) for e in champion.evaluate_many(plans)]
        test = tests.get(specialist)
        if test and specialist in challengers:
            by_challenger = challengers[specialist].evaluate_many(plans)
            for i, plan in enumerate(plans):
                arm = assign_arm(test["salt"], plan["intent_id"], test["traffic_percent"])
                rec, conf, version, _ = out[i]
                if arm == CHALLENGER:
                    e = by_challenger[i]
                    rec, conf, version = e.recommendation, round(e.confidence, 4), e.model_version
                out[i] = (rec, conf, version, {"ab_test_id": test["test_id"], "ab_arm": arm})
        return out

    return serve

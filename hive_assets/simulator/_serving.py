"""The simulator's serving loop: opinions served as production would (SPEC section 7)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hive_assets.config import SPECIALISTS
from hive_assets.data import to_utc
from hive_assets.rollout import running_test
from hive_assets.routing import CHALLENGER, CHAMPION, assign_arm
from hive_assets.simulator._simulate import heuristic_opinion


def _opinion_model(champions: Mapping, tests: Mapping, challengers: Mapping):
    """(specialist, plans) -> opinions: the champion's, and the challenger's for the units the running
    test routes to it (with ab_test_id / ab_arm); the pre-platform heuristic where no champion exists."""

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


def champion_opinions(tracking_uri: str, store):
    """Opinions served as production would: by each specialist's champion through the serving helper,
    and by the challenger for the units an open A/B test routes to it (with ab_test_id / ab_arm)."""
    try:
        models = _ServedModels(tracking_uri)
        served = models.serving(store)
    except Exception as exc:  # no registry yet, or unreachable: the heuristic stands in, and we say so
        print(f"no models served ({type(exc).__name__}: {exc}); using the heuristic", file=sys.stderr)
        return None
    champions, tests, _ = served
    if not champions:
        return None
    print("opinions served by champions: " + ", ".join(f"{s} v{e.version}" for s, e in champions.items())
          + "".join(f"; A/B {t['test_id']} at {t['traffic_percent']:g}%" for t in tests.values()), file=sys.stderr)
    return _opinion_model(*served)


class _ServedModels:
    """The registered versions serving now, loaded once per version (pods keep their model in memory):
    each hour only the aliases and the running tests are read."""

    def __init__(self, tracking_uri: str):
        from hive_assets.registry import client_for

        self.tracking_uri = tracking_uri
        self.client = client_for(tracking_uri)
        self.loaded: dict[tuple[str, str], object] = {}

    def _evaluator(self, specialist: str, version: str):
        """The loaded version, or None when its files fail their checksum or do not load: said once on
        stderr in one line naming it; that specialist alone is then served by the heuristic (or, for a
        challenger, by its champion)."""
        from hive_assets.registry import ArtifactError, load_evaluator

        key = (specialist, str(version))
        if key not in self.loaded:
            try:
                self.loaded[key] = load_evaluator(self.tracking_uri, specialist, str(version))
            except ArtifactError as exc:
                print(f"{exc}; serving {specialist} without it", file=sys.stderr)
                self.loaded[key] = None
        return self.loaded[key]

    def opinion_model(self, store):
        return _opinion_model(*self.serving(store))

    def serving(self, store) -> tuple[dict, dict, dict]:
        """(champions, running tests, challengers) per specialist, as the registry and store say now."""
        from hive_assets.registry import alias_version

        champions, tests, challengers = {}, {}, {}
        for s in SPECIALISTS:
            champion = alias_version(self.client, s, CHAMPION)
            if champion is None:
                continue
            if (served := self._evaluator(s, champion.version)) is None:
                continue
            champions[s] = served
            test = running_test(store, s)
            if test and (challenger := self._evaluator(s, test["challenger_version"])) is not None:
                tests[s] = test
                challengers[s] = challenger
        return champions, tests, challengers


@dataclass(frozen=True)
class DriftInjection:
    """From `onset` on, `specialist` also evaluates a new product line: `share` x plans-per-hour extra
    plans a hour, all of domain `domain`, their risk and size shifted by `shift` (make_plans' drift), and
    judged by its humans `domain_offset` stricter than the hidden policy's known domains. Only this
    specialist sees them: its recent window drifts, the others' does not, and its champion (never
    trained on the domain) disagrees with the humans on them until it is retrained."""

    specialist: str
    onset: datetime
    share: float = 0.5
    domain: str = "PAYMENTS"
    domain_offset: float = 0.8
    shift: float = 0.3


class ServingLoop:
    """Production hour by hour, for closed-loop simulation on an injected clock.

    Each `serve_hour(now)` writes the plans (and intent audit events) created in the hour before `now`,
    the opinions served for them (the registered champion, and the challenger for the units the running
    A/B test routes to it, with `metadata.ab_test_id` / `ab_arm` and the serving `specialist_version`;
    the heuristic where no champion is registered), and every human feedback whose time has come.
    Humans answer a share `feedback_rate` of opinions (a number, or one per specialist; the rest
    never), after a log-normal delay (median `feedback_median_hours`, sigma `feedback_delay_sigma`:
    mostly hours, a tail of days), with the hidden policy's label and `label_noise`. `drift`: the
    `DriftInjection`s in force from their onset. Feedback not yet due waits in this object, so the
    store only ever holds what production would hold at `now`. Deterministic per (seed, hours served).
    """

    def __init__(self, store, tracking_uri: str, *, seed: int = 0, label_noise: float = 0.10,
                 feedback_rate: float | Mapping[str, float] = 0.85, feedback_median_hours: float = 6.0,
                 feedback_delay_sigma: float = 1.0, drift: Sequence[DriftInjection] = ()):
        self.store, self.tracking_uri, self.seed = store, tracking_uri, seed
        self.label_noise = label_noise
        self.feedback_rates = (dict(feedback_rate) if isinstance(feedback_rate, Mapping)
                               else dict.fromkeys(SPECIALISTS, float(feedback_rate)))
        self.feedback_median_hours, self.feedback_delay_sigma = feedback_median_hours, feedback_delay_sigma
        self.drift = tuple(drift)
        self.models = _ServedModels(tracking_uri)
        self.pending: list[dict] = []
        self.hours_served = 0

    def serve_hour(self, now: datetime, plans: int = 100) -> dict[str, int]:
        """Serve the hour ending at `now` (aware UTC); returns what was written."""
        import numpy as np

        from hive_assets.simulator._simulate import _ms, _noisy, policy_label, simulate

        hour_seed = self.seed * 1_000_003 + self.hours_served
        self.hours_served += 1
        rng = np.random.default_rng([self.seed, self.hours_served, 7])
        serve = self.models.opinion_model(self.store)
        # plans are created in the hour before `now` (make_plans ends an hour before its `now`), early
        # enough that their opinions (evaluated up to ~95 s later) are not after `now`
        end = now + timedelta(hours=1) - timedelta(seconds=95)
        batches = [(simulate(self.store, plans=plans, days=1 / 24, seed=hour_seed, now=end, feedback_rate=0.0,
                             malformed_rate=0.0, opinion_model=serve), {})]
        for k, injection in enumerate(self.drift):
            if now <= injection.onset or not round(injection.share * plans):
                continue
            # a seed of its own per injection and hour: plan ids never collide with the regular stream's
            batches.append((simulate(self.store, plans=round(injection.share * plans), days=1 / 24,
                                     seed=hour_seed * 17 + 1_000_000_007 * (k + 1), now=end, drift=injection.shift,
                                     feedback_rate=0.0, malformed_rate=0.0, opinion_model=serve,
                                     specialists=(injection.specialist,), domain=injection.domain),
                            {injection.specialist: {injection.domain: injection.domain_offset}}))
        written_opinions = 0
        for summary, offsets in batches:
            written_opinions += summary.written["specialist_opinions"]
            by_plan = {p["plan_id"]: p for p in summary.plan_docs}
            opinions = sorted(self.store.find_by_keys("specialist_opinions", "plan_id", by_plan),
                              key=lambda o: o["opinion_id"])
            for o in opinions:
                specialist = o["specialist_type"]
                if rng.random() >= self.feedback_rates.get(specialist, 0.0):
                    continue  # this one is never answered
                delay = timedelta(hours=float(rng.lognormal(np.log(self.feedback_median_hours),
                                                            self.feedback_delay_sigma)))
                label = _noisy(policy_label(specialist, by_plan[o["plan_id"]], offsets.get(specialist)), rng,
                               self.label_noise)
                self.pending.append({
                    "feedback_id": f"fb-{o['opinion_id']}", "opinion_id": o["opinion_id"], "plan_id": o["plan_id"],
                    "specialist_type": specialist, "human_recommendation": label,
                    "human_rating": round(float(rng.uniform(0.6, 1.0)), 3),
                    "submitted_by": f"reviewer-{int(rng.integers(40))}",
                    "submitted_at": _ms(to_utc(o["evaluated_at"]) + delay), "feedback_source": "human_expert",
                    "metadata": {},
                })
        due = [f for f in self.pending if f["submitted_at"] <= now]
        self.pending = [f for f in self.pending if f["submitted_at"] > now]
        written = self.store.upsert_many("specialist_feedback", due) if due else 0
        return {"plans": sum(s.plans for s, _ in batches), "opinions": written_opinions, "feedback": written,
                "feedback_pending": len(self.pending)}

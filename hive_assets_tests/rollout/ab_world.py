"""A small A/B world for the rollout tests: registry versions on the real `mlflow server`, and served units
with known agreement rates written as production documents (opinions + delayed human feedback).

Nothing here decides anything: the tests compare what the platform did with what this module wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from hive_assets import registry
from hive_assets.config import CLASSES
from hive_assets.routing import CHALLENGER, assign_arm


def fresh_model(client, specialist: str, versions: int = 2, experiment: str = "ab-tests") -> list[str]:
    """`versions` registered versions of `<specialist>-evaluator` on a registered model of its own
    (any earlier one is deleted: the mlflow server is shared by the session)."""
    from mlflow.exceptions import MlflowException

    name = registry.model_name(specialist)
    try:
        client.delete_registered_model(name)
    except MlflowException:
        pass  # nothing to delete
    client.create_registered_model(name)
    experiment_id = registry.ensure_experiment(client, experiment)
    out = []
    for i in range(versions):
        run = client.create_run(experiment_id)
        client.set_terminated(run.info.run_id)
        out.append(client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                                               tags={"data_snapshot_hash": f"snapshot-{specialist}-{i + 1}"}).version)
    return [str(v) for v in out]


@dataclass
class Unit:
    opinion_id: str
    served_at: datetime
    challenger: bool
    agrees: bool
    labelled_at: datetime | None


@dataclass
class Traffic:
    """Serves units for one specialist's test at a fixed rate with known per-arm agreement."""

    specialist: str
    champion_agreement: float
    challenger_agreement: float
    rate_per_hour: int = 120
    coverage: float = 0.8              # share of units that ever get a human label
    delay_mean_hours: float = 1.0      # exponential feedback delay
    seed: int = 0
    units: list[Unit] = field(default_factory=list)

    def serve(self, store, test: dict, start: datetime, end: datetime, traffic_percent: float | None = None) -> int:
        """Units evenly spaced over [start, end), routed by `assign_arm` at the test's traffic (or the
        given, e.g. broken, share), with their opinions and feedback written to `store`. Feedback is
        written with its future timestamp: the platform must not see it before then."""
        rng = np.random.default_rng([self.seed, len(self.units)])
        share = float(test["traffic_percent"]) if traffic_percent is None else traffic_percent
        n = int(round((end - start).total_seconds() / 3600 * self.rate_per_hour))
        opinions, feedback = [], []
        for i in range(n):
            k = len(self.units)
            intent = f"intent-{self.specialist}-{self.seed}-{k}"
            served = start + (end - start) * (i / n)
            arm = assign_arm(test["salt"], intent, share)
            truth = CLASSES[int(rng.integers(3))]
            p = self.challenger_agreement if arm == CHALLENGER else self.champion_agreement
            agrees = bool(rng.random() < p)
            rec = truth if agrees else [c for c in CLASSES if c != truth][int(rng.integers(2))]
            oid = f"op-{self.specialist}-{self.seed}-{k}"
            opinions.append({
                "opinion_id": oid, "plan_id": f"plan-{k}", "intent_id": intent, "specialist_type": self.specialist,
                "specialist_version": str(test["challenger_version" if arm == CHALLENGER else "champion_version"]),
                "evaluated_at": served,
                "opinion": {"recommendation": rec, "confidence_score": round(float(rng.uniform(0.75, 0.95)), 4),
                            "risk_score": 0.5, "reasoning_summary": "", "reasoning_factors": []},
                "metadata": {"ab_test_id": test["test_id"], "ab_arm": arm},
            })
            labelled_at = None
            if rng.random() < self.coverage:
                labelled_at = served + timedelta(hours=float(rng.exponential(self.delay_mean_hours)))
                labelled_at = labelled_at.replace(microsecond=labelled_at.microsecond // 1000 * 1000)
                feedback.append({"feedback_id": f"fb-{oid}", "opinion_id": oid, "plan_id": f"plan-{k}",
                                 "specialist_type": self.specialist, "human_recommendation": truth,
                                 "human_rating": 0.9, "submitted_by": "reviewer-1", "submitted_at": labelled_at,
                                 "feedback_source": "human_expert", "metadata": {}})
            self.units.append(Unit(oid, served, arm == CHALLENGER, agrees, labelled_at))
        store.upsert_many("specialist_opinions", opinions)
        store.upsert_many("specialist_feedback", feedback)
        return n

    def expected(self, now: datetime, maturity: timedelta) -> dict[str, dict[str, int]]:
        """Served / labelled / agreements per arm as the maturity rule defines them, from what was written."""
        out = {arm: {"served": 0, "labelled": 0, "agreements": 0} for arm in ("champion", "challenger")}
        for u in self.units:
            if u.served_at > now:
                continue
            c = out["challenger" if u.challenger else "champion"]
            c["served"] += 1
            if (u.served_at <= now - maturity and u.labelled_at is not None
                    and u.labelled_at - u.served_at <= maturity):
                c["labelled"] += 1
                c["agreements"] += int(u.agrees)
        return out

"""A/B rollout (SPEC section 7): test records in `ab_tests`, the statistics, and the controller.

- `decide(state, counts_per_step, now, policy)`: the schedule 10 -> 25 -> 50 -> 100, promotion, rollback,
  "insufficient data" and the maximum duration, as a pure function of the test's state, per-step arm
  counts and the injected clock `now`.
- `agreement_difference`: an always-valid (normal-mixture confidence sequence) interval for the
  difference in agreement; `srm_test`: sample-ratio mismatch across traffic steps; `label_balance`: the
  arms' label coverage and label delays per outcome compared (the promotion's label-coverage guard).
- `tally(...)`: per-step arm counts from one row per served unit with its label as known at
  min(now, served + maturity): frozen labels of matured units, provisional ones of younger units,
  confidences validated (NaN / missing / out of range excluded and counted).

- `check_test(client, store, specialist, now, policy, actor=...)`: one look at a running test (per-arm
  counts from the opinion->feedback join, `decide`, one write of the `ab_tests` document, then the
  registry aliases, registry tags and ledger rows it implies, each written only when missing);
  `start_test`, `set_traffic`, `close_test`, `settle` for the operator's actions;
  `stop_if_arms_changed`: a running test whose champion was moved outside it, or whose challenger was
  deleted, is stopped.
- `out_of_step` / `reconcile`: what a crash left between the test records and the registry that no intent
  names (a running test's missing alias, tags or ledger rows; a new challenger's test never opened), found
  read-only and completed as the next look would (`hive doctor`); `challenger_to_open`: the test a
  registration opens.
- `trajectory_png(test)`: the test's traffic steps and the interval of the difference at each look.

Routing itself (`assign_arm`) lives in `hive_assets.routing`, a light module serving pods import.
"""

from hive_assets.rollout._apply import (
    CLOSED, ENDED, PROMOTED, ROLLED_BACK, STOPPED, ArmObservations, CheckResult, LookBeforeLastLook, arm_observations,
    check_test,
    close_test, complete_unfinished, opening_instant, outcome_intent_id, evaluate, policy_from_env, policy_record, record_decision_in_test, set_traffic, settle, settle_closed, start_test,
    state_of, stop_if_arms_changed,
)
from hive_assets.rollout._reconcile import challenger_to_open, out_of_step, reconcile
from hive_assets.rollout._charts import difference_trajectory, traffic_steps, trajectory_png
from hive_assets.rollout._controller import (
    Decision, RolloutPolicy, StepCounts, TestState, TrafficStep, decide, matured_cutoff, tally,
)
from hive_assets.rollout._records import (
    RUNNING, SUPERSEDED, next_look, open_test, opening_traffic_refusal, running_test, test_id_for,
)
from hive_assets.rollout._statistics import (
    ArmCounts, DifferenceResult, LabelBalance, SrmResult, agreement_difference, label_balance, normal_mixture_radius,
    srm_test,
)

__all__ = [
    "CLOSED", "ENDED", "PROMOTED", "ROLLED_BACK", "STOPPED", "ArmObservations", "CheckResult", "LookBeforeLastLook",
    "arm_observations",
    "check_test", "close_test", "complete_unfinished", "evaluate", "outcome_intent_id", "policy_from_env", "policy_record", "record_decision_in_test", "set_traffic", "settle",
    "settle_closed", "start_test", "state_of", "stop_if_arms_changed",
    "RUNNING", "SUPERSEDED", "ArmCounts", "Decision", "DifferenceResult", "LabelBalance", "label_balance", "RolloutPolicy", "SrmResult", "StepCounts",
    "TestState", "TrafficStep", "agreement_difference", "decide", "matured_cutoff", "normal_mixture_radius",
    "next_look", "open_test", "opening_instant", "opening_traffic_refusal", "running_test", "srm_test", "tally", "test_id_for",
    "difference_trajectory", "traffic_steps", "trajectory_png", "challenger_to_open", "out_of_step", "reconcile",
]

"""Review queue (issue 25): ask reviewers for the labels that teach the champion the most, without
biasing the decisions.

- `priority`, `choose_refresh` (`_select`): which recent opinions to request (margin uncertainty,
  champion/challenger disagreement, drifted regions, diversity), with a random share marked `random` drawn
  by permanent random numbers whatever earlier days requested.
- `refresh_queue` (`_queue`): one refresh of a specialist's queue in the store: answers linked, old
  requests expired, new ones within today's budget; `refresh_from_store` scores the recent unlabelled
  opinions with the given models first; `open_queue` reads the queue (`read_open_queue` also names the
  malformed requests it leaves out), `queue_summary` what it did in a
  period and `today_summary` on the budget's day (`_requests`); all three judge an open request by one rule,
  `status_at` (answered, expired, open, or labelled before it was made), on the labels of `labels_as_of`.
- `label_selections`, `usable_for_decisions`, `decision_split`, `without_active_labels` (`_decisions`):
  metrics, gates and A/B statistics use only the random share and organic labels; training uses all.
- `aa_false_promotions` (`_simulation`): seeded unit-level A/A tests with the queue on (`choose_refresh`
  over overlapping 48 h pools, as a refresh chooses), under the rollout's controller (the benchmark's and
  the tests' check that the decisions stay unbiased).
"""

from hive_assets.review._decisions import (
    ORGANIC, TRAIN_SPLIT, decision_split, label_selections, usable_for_decisions, without_active_labels,
)
from hive_assets.review._queue import (
    DEFAULT_DAILY_BUDGET, DEFAULT_EXPIRY, DEFAULT_RANDOM_SHARE, QueueRefresh, latest_drifted_features,
    refresh_from_store, refresh_queue,
)
from hive_assets.review._requests import (
    ANSWERED, COLLECTION, EXPIRED, OPEN, STATUSES, OpenQueue, day_start, describe_malformed, expire, link_answers,
    day_so_far, labels_as_of, make_random, malformed_fields, open_queue, read_open_queue, remaining_budget,
    queue_summary, request_documents, request_id, request_selections, requested_opinions, requested_today,
    status_at, today_summary, write_requests,
)
from hive_assets.review._simulation import AAResult, AAScenario, aa_false_promotions, aa_test
from hive_assets.review._select import (
    ACTIVE, RANDOM, REASONS, DaySoFar, PriorityWeights, QueueChoice, RefreshChoice, choose_refresh,
    disagreement, diverse_top, drift_region_weight, margin_uncertainty, permanent_random_numbers, priority,
    random_quota, spacing, standardised,
)

__all__ = [
    "AAResult", "AAScenario", "aa_false_promotions", "aa_test", "ACTIVE", "ANSWERED", "COLLECTION",
    "DEFAULT_DAILY_BUDGET", "DEFAULT_EXPIRY", "DEFAULT_RANDOM_SHARE", "EXPIRED", "OPEN", "OpenQueue", "ORGANIC",
    "RANDOM", "REASONS", "STATUSES", "TRAIN_SPLIT", "DaySoFar", "PriorityWeights", "QueueChoice", "QueueRefresh",
    "RefreshChoice", "choose_refresh", "day_so_far", "day_start", "make_random",
    "permanent_random_numbers", "random_quota", "request_selections", "spacing",
    "decision_split", "describe_malformed", "disagreement", "diverse_top", "drift_region_weight", "expire",
    "label_selections", "labels_as_of", "malformed_fields", "read_open_queue", "status_at",
    "latest_drifted_features", "refresh_from_store", "link_answers", "margin_uncertainty", "open_queue", "priority",
    "queue_summary", "refresh_queue", "remaining_budget", "request_documents", "request_id", "requested_opinions",
    "requested_today", "standardised", "today_summary", "usable_for_decisions", "without_active_labels",
    "write_requests",
]

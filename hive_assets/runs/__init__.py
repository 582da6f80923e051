"""Run coordination: one writer per (job kind, specialist), and the runs a crash left behind.

- Leases (`acquire`, `renew`, `release`, `Heartbeat`): a document per (kind, specialist) in `run_leases`
  with its owner run, token, host/pid, heartbeat and expiry; atomic on SQLite and MongoDB/FerretDB
  (`insert_new` for the first holder, compare-and-swap on the token after that). Every retraining and
  operator run takes one at its start (`hive_assets.defs.runs`), whatever launched it.
- Orphans (`orphan_runs`, `orphan_mlflow_runs`, `stale_leases`): Dagster runs STARTED whose every held
  lease went stale (or, holding none, whose process on this host is gone: `HOST_TAG`, `PID_TAG`), MLflow
  runs RUNNING without a live Dagster run, leases held for runs that ended; `hive doctor` and every run's
  start act on them.
"""

from hive_assets.runs._heartbeat import Heartbeat
from hive_assets.runs._leases import (
    COLLECTION, HELD, KINDS, OPERATOR, RELEASED, REVIEW, TRAINING, Lease, LeaseHeld, acquire, held_leases, lease_id,
    leases_of_run, process_alive, process_gone, release, release_stale, renew, stale_reason, this_host, try_acquire,
)
from hive_assets.runs._orphans import (
    ALIVE_STATUSES, HOST_TAG, PID_TAG, MlflowRunFacts, OrphanReport, RunFacts, orphan_mlflow_runs, orphan_runs,
    stale_leases,
)

__all__ = [
    "ALIVE_STATUSES", "COLLECTION", "HELD", "HOST_TAG", "KINDS", "OPERATOR", "PID_TAG", "RELEASED", "REVIEW",
    "TRAINING", "Heartbeat", "Lease", "LeaseHeld", "MlflowRunFacts", "OrphanReport", "RunFacts", "acquire",
    "held_leases", "lease_id", "leases_of_run", "orphan_mlflow_runs", "orphan_runs", "process_alive", "process_gone",
    "release", "release_stale", "renew", "stale_leases", "stale_reason", "this_host", "try_acquire",
]

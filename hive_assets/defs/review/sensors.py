"""When the review queue refreshes: once a UTC day per specialist, at the first hourly tick of the day.

The budget is daily and a request lives `expiry_hours` (72 h by default): one queue a day gives reviewers
the day's list in the morning, and candidates are the last two days' unlabelled opinions, so no
opinion is too old to be worth a label when it is asked for. The sensor reads only the day's runs (a run
key per specialist and day makes it idempotent; a failed run gets a retry key); the run does the work.
Stopped by default: an operator starts it in the UI (or `hive loop --review-queue` does, for its loop), so
homes that do not use a review queue spend nothing.
"""

from datetime import timezone

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG  # the tag of a run launched for a run key (as the daemon's)

from hive_assets import clock
from hive_assets.config import SPECIALISTS, ConfigError, review_queue_daily_budgets
from hive_assets.defs.k8s import SHORT_JOB_RUN_TAGS
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import MlflowResource
from hive_assets.defs.review.assets import review_queue
from hive_assets.reachability import registry_down

SENSOR_NAME = "review_queue_sensor"
refresh_review_queue = dg.define_asset_job(
    "refresh_review_queue", selection=[review_queue], partitions_def=specialist_partitions,
    tags=SHORT_JOB_RUN_TAGS,  # scores two days of opinions with the champion: a small pod, a bounded run
    description="Refresh one specialist's review queue: link answers, expire old requests, request today's budget.")


MAX_ATTEMPTS = 3  # a day's refresh that failed (MLflow or the store down at the tick) is retried this often


def run_key(specialist: str, now, attempt: int = 0) -> str:
    """The day's run key; a retry after a failed run gets its own (a run key is used once, failed or not)."""
    key = f"review_queue:{specialist}:{now.astimezone(timezone.utc):%Y-%m-%d}"
    return f"{key}:retry-{attempt}" if attempt else key


def _attempt(instance: dg.DagsterInstance, specialist: str, now) -> tuple[int, bool] | None:
    """(the day's first attempt whose run did not fail, whether it is launched already): not launched yet, or
    launched and alive, done or canceled by an operator; None when all MAX_ATTEMPTS failed: the next day's
    queue is the next chance."""
    for attempt in range(MAX_ATTEMPTS):
        launched = instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: run_key(specialist, now, attempt)}), limit=1)
        if not launched or launched[0].status != dg.DagsterRunStatus.FAILURE:  # canceled by hand: meant
            return attempt, bool(launched)
    return None


@dg.sensor(name=SENSOR_NAME, job=refresh_review_queue, minimum_interval_seconds=3600,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Once a UTC day per specialist: refresh its review queue (requests within the daily budget, "
                       "REVIEW_QUEUE_DAILY_BUDGET, default 100); a failed refresh is retried at the next tick, "
                       f"{MAX_ATTEMPTS} attempts a day.")
def review_queue_sensor(context: dg.SensorEvaluationContext, mlflow: MlflowResource):
    try:  # read once a tick: one malformed value, one line (the tick failed with a stack, the cause under it)
        now, budgets = clock.now(), review_queue_daily_budgets()
    except ConfigError as exc:
        return dg.SkipReason(f"{exc}: no review queue refresh is requested until it is fixed")
    requests, skipped, new = [], [], False
    for s in SPECIALISTS:
        found = _attempt(context.instance, s, now)
        if found is None:
            skipped.append(f"{s}: today's {MAX_ATTEMPTS} refreshes failed, next one tomorrow (UTC)")
            continue
        attempt, launched = found
        new = new or not launched
        requests.append(dg.RunRequest(
            run_key=run_key(s, now, attempt), partition_key=s,
            run_config={"ops": {"review_queue": {"config": {"daily_budget": budgets[s]}}}},
            tags={"hive/actor": f"sensor:{SENSOR_NAME}"}))
    # every refresh scores with the champion: one requested while MLflow is down fails after its retries and
    # spends one of the day's attempts (an outage of three ticks spent the day); asked again at the next tick.
    # Asked only when a run would be launched (the keys already launched are the daemon's to skip)
    if new and (down := registry_down(mlflow.uri)):
        return dg.SkipReason(f"model registry unavailable, no refresh requested ({down}): asked again at the "
                             "next tick")
    return dg.SensorResult(run_requests=requests, skip_reason="; ".join(skipped) if not requests else None)

"""ab_test_check_sensor: requests `ab_test_check` for every specialist with a running A/B test, or with an
unfinished decision (an A/B outcome, promotion or rollback that a crash interrupted between two writes:
the look completes it first, so nothing waits for an operator).

Every AB_TEST_CHECK_INTERVAL_MINUTES (default 60). The run key is (specialist, test id, UTC hour), so
the daemon launches at most one check per test and hour even when the interval is shorter or the
cursor is reset; the cursor keeps the last key requested per specialist so a tick inside the same hour
requests nothing.

On simulated time (a pinned home, HIVE_SIMULATED_NOW) a test is looked at only once the platform clock
has moved an interval (less a tenth) past its last look (or its opening): on a home whose clock stands
still, a tick is a no-op however often the daemon evaluates the sensor (README, "The home's clock"). On
the wall clock the daemon's interval spaces the looks, as in production.
"""

import json
from datetime import datetime, timedelta, timezone

import dagster as dg

from hive_assets import clock, registry
from hive_assets.config import SPECIALISTS, Settings, env_int
from hive_assets.data import StoreUnavailable
from hive_assets.defs.resources import DocumentStoreResource
from hive_assets.defs.monitoring.sensors import attempt_failed
from hive_assets.defs.rollout.jobs import ab_test_check
from hive_assets.monitoring import attempt_to_request
from hive_assets.rollout import next_look, running_test

SENSOR_NAME = "ab_test_check_sensor"


def check_interval_seconds() -> int:
    """AB_TEST_CHECK_INTERVAL_MINUTES in seconds (at least 1: 0.01 minutes gave a sensor interval of 0): how
    far the platform clock moves between two looks. A test is looked at once per UTC hour at most (the run key)."""
    return max(1, round(Settings.from_env().ab_test_check_interval_minutes * 60))


def tick_interval_seconds() -> int:
    """The daemon's interval (HIVE_AB_SENSOR_INTERVAL_SECONDS, which tests lower; default the check interval)."""
    return env_int("HIVE_AB_SENSOR_INTERVAL_SECONDS", check_interval_seconds(), low=1)


def run_key(specialist: str, test_id: str, now: datetime) -> str:
    return f"{specialist}:{test_id}:{now.astimezone(timezone.utc):%Y%m%dT%H}"


def resume_key(specialist: str, intent_id: str, now: datetime) -> str:
    """A resume request's key: its own (the crashed look's hourly key is spent), at most one a minute."""
    return f"{specialist}:resume:{intent_id}:{now.astimezone(timezone.utc):%Y%m%dT%H%M}"


@dg.sensor(
    name=SENSOR_NAME,
    job=ab_test_check,
    minimum_interval_seconds=tick_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Hourly re-evaluation of each running A/B test (expansion, promotion, rollback); completes any "
                "unfinished decision (A/B outcome, promotion, rollback) a crash left.",
)
def ab_test_check_sensor(context: dg.SensorEvaluationContext, document_store: DocumentStoreResource):
    now, simulated = clock.now(), clock.simulated()
    requested = json.loads(context.cursor) if context.cursor else {}
    interval = timedelta(seconds=check_interval_seconds())
    try:
        return _ab_requests(document_store, now, simulated, requested, interval, context.instance)
    except StoreUnavailable as exc:  # one line like the other sensors' (the message names no credential)
        return dg.SkipReason(f"document store unavailable, no A/B look requested: {exc}")


def _ab_requests(document_store: DocumentStoreResource, now, simulated: bool, requested: dict,
                 interval: timedelta, instance: dg.DagsterInstance):
    keys: dict[str, str] = {}
    requests, waiting = [], []
    with document_store.open() as store:
        unfinished = registry.specialists_with_unfinished(store)
        for specialist in SPECIALISTS:
            tags = {"hive/actor": f"sensor:{SENSOR_NAME}"}
            test = running_test(store, specialist)
            if unfinished.get(specialist):
                key = resume_key(specialist, unfinished[specialist][0], now)
                tags["hive/resume_intent"] = unfinished[specialist][0]
            elif test is not None:
                # the hour's look again when its run failed (a loop interrupted inside it, MLflow down): its key is
                # spent, and the look was lost until the next one (`:retry-1`, `:retry-2`, as the triggers')
                key = attempt_to_request(run_key(specialist, test["test_id"], now),
                                         lambda k: attempt_failed(instance, k))
            else:
                continue
            if test is not None:
                tags["hive/ab_test_id"] = test["test_id"]
            # on simulated time a look waits for the clock to move one interval (an unfinished decision never waits)
            due = next_look(test, interval) if simulated and test is not None and not unfinished.get(specialist) else None
            if due is not None and now < due:
                waiting.append(f"{specialist}: next look at {due:%Y-%m-%d %H:%M} UTC")
                if specialist in requested:
                    keys[specialist] = requested[specialist]
                continue
            keys[specialist] = key
            if requested.get(specialist) != key:
                requests.append(dg.RunRequest(run_key=key, partition_key=specialist, tags=tags))
    cursor = json.dumps(keys, sort_keys=True)
    if not requests:
        reason = "no running A/B test or unfinished decision needs a check this hour"
        return dg.SensorResult(skip_reason=f"{reason} ({'; '.join(waiting)})" if waiting else reason, cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)

"""The retraining triggers of SPEC section 8 as sensors, and the run-status sensors that make each
`retraining_triggers` document follow its run. Decisions live in hive_assets.monitoring; this module
reads the instance, the store and the registry, calls them, and turns the results into requests.

All start RUNNING (README, "Sensors"): the triggers are the platform's behaviour, the cooldown, the
in-flight guard and the run keys bound what they launch, and a run-status sensor that is off when a
run ends never sees that run (its first tick only sets its cursor).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG  # the tag of a run launched for a run key (as the daemon's)

from hive_assets import clock, runs
from hive_assets.config import SPECIALISTS, Settings, env_int
from hive_assets.data import StoreUnavailable, TrustPolicy, to_utc
from hive_assets.defs._ui import for_display
from hive_assets.defs.catalog import MONITORING, OWNERS
from hive_assets.defs.features.assets import TRAINABLE_PROBLEMS
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource
from hive_assets.defs.runs.lease import lease_target
from hive_assets.defs.training.jobs import retrain_specialist
from hive_assets.figures import png_markdown
from hive_assets.reachability import registry_down
from hive_assets.monitoring import (
    REACHES_REGISTRY, TRIGGERS, MonitoringSettings, SpecialistCursor, attempt_to_request, check_drift,
    counts_as_last_training, decode_cursor, discard_unused, drift_changed, drift_trigger, encode_cursor,
    evaluation_stamp, feedback_trigger, next_drift_check, psi_chart_png, record_trigger, save_drift_check,
    UntrainableData, trusted_feedback_count, unlaunched_drift_request, update_trigger_status, waits_for_test,
    with_retraining,
)
from hive_assets.rollout import running_test

FEEDBACK_SENSOR, DRIFT_SENSOR = "feedback_retraining_sensor", "drift_retraining_sensor"
TRIGGER_TAG = "hive/trigger_id"
REASON_TAG = "hive/trigger_reason"
SETTINGS = MonitoringSettings.from_env()  # intervals are fixed when the code location loads
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]
# the trust policy collection uses by default: the count follows its rules, not a copy of them
TRUST_POLICY = TrustPolicy()

feedback = dg.AssetSpec(
    "feedback", partitions_def=specialist_partitions, kinds={"mongodb"}, group_name=MONITORING, owners=OWNERS,
    description="Human feedback in `specialist_feedback`; the feedback sensor records, per specialist, the "
                "trusted feedback since its last training (observations, written when the count changes).",
)

drift = dg.AssetSpec(
    "drift", partitions_def=specialist_partitions, kinds={"mongodb"}, group_name=MONITORING, owners=OWNERS,
    description="Drift of each specialist's recent plans against its champion's training reference "
                "(`drift_monitoring`); the drift sensor records an observation when a check's decision, "
                "champion or score changes materially (so `checked_at` is the latest such check, not the "
                "latest check): drift_score, window_size, decision and the per-feature PSI chart.",
)


def drift_observation(instance: dg.DagsterInstance, specialist: str, document) -> dg.AssetObservation | None:
    """The `drift` observation of a check's document, or None when it says what the last one did (same
    decision and champion, score within `drift_changed`'s tolerance): the sensor's events are stored on
    every tick. Numbers are shown to 4 significant digits, as everywhere in the UI (`for_display`)."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=drift.key, asset_partitions=[specialist]), limit=1).records
    previous = None
    if records:
        shown = records[0].event_log_entry.asset_observation.metadata
        previous = {key: shown[key].value if key in shown else None
                    for key in ("decision", "drift_score", "model_version", "retraining")}
    score = document["drift_score"]
    retraining = (f"{document['retraining']['action']}: {document['retraining']['reason']}"
                  if document.get("retraining") else None)
    if not drift_changed(previous, document["decision"], score, model_version=document["model_version"],
                         retraining=retraining):
        return None
    title = f"{specialist} v{document['model_version']}: PSI by feature ({document['decision']})"
    metadata = {
        "decision": dg.MetadataValue.text(document["decision"]),
        "window_size": int(document["window_size"]),
        "threshold": float(document["threshold"]),
        "model_version": dg.MetadataValue.text(str(document["model_version"])),
        "checked_at": dg.MetadataValue.text(to_utc(document["checked_at"]).isoformat()),
        "check_id": dg.MetadataValue.text(document["check_id"]),
        "reason": dg.MetadataValue.text(document["reason"]),
        "psi_by_feature": dg.MetadataValue.md(png_markdown(
            psi_chart_png(document["features"], document["threshold"], title), title,
            note=f"drifted: {', '.join(document['drifted_features']) or 'none'}")),
    }
    if score is not None:
        metadata["drift_score"] = float(score)
    if retraining:
        metadata["retraining"] = dg.MetadataValue.text(retraining)
    return dg.AssetObservation(asset_key=drift.key, partition=specialist, metadata=for_display(metadata))


LAST_TRAINING_LOOKBACK = 50  # materializations read per page when the latest one is not the last training


def last_training(instance: dg.DagsterInstance, specialist: str, *, reaching_registry: bool = True):
    """(time, storage id) of the latest `trained_model` materialization of `specialist` that counts as its
    last training, or (None, None).

    It counts when its run could register it (`counts_as_last_training`): a `hive train` or a partial UI
    materialization, whose stamp says it registers nothing, is passed over, so the feedback it trained on
    stays counted until a training that can reach the registry. `reaching_registry=False`: any training.

    Its time is the platform clock's `trained_at` (simulated time under `hive loop`), or the end of the data
    it was trained on when earlier (`data_until`: a backfill's `as_of`). A materialization
    without it (reported by hand, in the UI) has only the event's wall time: that is the platform's time
    on a wall-clock home only; a simulated home skips it (a real date would stop its feedback count and
    hold its cooldown until the simulated clock reaches today, and `hive loop` would start there)."""
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey("trained_model"), asset_partitions=[specialist])
    simulated = clock.simulated()
    cursor, limit = None, 1  # every sensor tick reads this: one record, unless that one is passed over
    while True:
        page = instance.fetch_materializations(records_filter, limit=limit, cursor=cursor)
        for record in page.records:
            metadata = record.asset_materialization.metadata or {}
            reaches = metadata.get(REACHES_REGISTRY)
            if reaching_registry and not counts_as_last_training(None if reaches is None else bool(reaches.value)):
                continue
            trained_at = metadata.get("trained_at")
            if trained_at is not None:
                # the model saw feedback up to the end of its collection window (a backfill's as_of)
                until = metadata.get("data_until")
                moment = trained_at.value if until is None else min(trained_at.value, until.value)
                return datetime.fromtimestamp(moment, timezone.utc), record.storage_id
            if not simulated:
                return datetime.fromtimestamp(record.timestamp, timezone.utc), record.storage_id
        if not page.has_more:
            return None, None
        cursor, limit = page.cursor, LAST_TRAINING_LOOKBACK


def untrainable_collection(instance: dg.DagsterInstance, store, specialist: str,
                           last_training_marker: int | None) -> UntrainableData | None:
    """The partition's latest `enhanced_features` when it came after its last training (a larger storage id:
    the event log's order) and its `trainable` check found the data unfit to train, with the trusted feedback
    submitted after its window; else None. One record read (a tick asks only above the threshold)."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("enhanced_features"), asset_partitions=[specialist]), limit=1).records
    if not records or (last_training_marker is not None and records[0].storage_id <= last_training_marker):
        return None
    metadata = records[0].asset_materialization.metadata or {}
    problems, until = metadata.get(TRAINABLE_PROBLEMS), metadata.get("data_until")
    if problems is None or not problems.value or until is None:  # trainable, or written before these existed
        return None
    collected_until = datetime.fromtimestamp(until.value, timezone.utc)
    return UntrainableData(collected_until, tuple(str(p) for p in problems.value),
                           trusted_feedback_count(store, specialist, collected_until, TRUST_POLICY))


def run_in_flight(instance: dg.DagsterInstance, specialist: str) -> str | None:
    """The id of a queued or running run of `specialist` that takes its training lease (`lease_target`): a
    `retrain_specialist` run, and also a `hive train`, a `dagster asset materialize`, a UI materialization,
    on which a retraining would fail waiting for the lease. A run created longer ago than
    HIVE_RETRAIN_MAX_RUNTIME_SECONDS does not count: its process is presumed dead (`hive doctor` and the next
    run's start mark it failed), and it must not block the triggers forever."""
    cutoff = clock.wall_now() - timedelta(seconds=Settings.from_env().retrain_max_runtime_seconds)
    records = instance.get_run_records(
        dg.RunsFilter(tags={"dagster/partition": specialist}, statuses=IN_FLIGHT, created_after=cutoff))
    for record in records:  # newest first: an A/B look or a review refresh takes another lease, and is no bar
        if lease_target(record.dagster_run, instance) == (runs.TRAINING, specialist):
            return record.dagster_run.run_id
    return None


def trigger_attempt(instance: dg.DagsterInstance, run_key: str) -> str:
    """The run key a firing trigger requests (`attempt_to_request`: its first attempt whose run did not fail)."""
    return attempt_to_request(run_key, lambda key: attempt_failed(instance, key))


def attempt_failed(instance: dg.DagsterInstance, run_key: str) -> bool:
    """Whether the latest run launched for `run_key` failed (an attempt's re-execution carries its run key: the
    latest run of the key decides). A canceled one did not fail: an operator meant it (a drift trigger retried it
    at the next tick), as the review queue's refresh; the trigger's next chance is its next key."""
    latest = latest_run_of_key(instance, run_key)
    return latest is not None and latest.status == dg.DagsterRunStatus.FAILURE


def latest_run_of_key(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    """The latest run launched for `run_key` (the daemon's tag; a re-execution carries it too), or None."""
    runs_of_key = instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return runs_of_key[0] if runs_of_key else None


def discard_unused_writes(context: dg.SensorEvaluationContext, store, sensor: str) -> str | None:
    """Undo what earlier evaluations of `sensor` from this cursor wrote and no run took up (their results were
    not used: the UI's "Preview tick result"; hive_assets.monitoring._records), before this one decides; the
    stamp of this evaluation's own writes. Logged, never in the tick's result: the tick is the one it is alone."""
    stamp = evaluation_stamp(sensor, context.cursor)
    launched = lambda run_key: latest_run_of_key(context.instance, run_key) is not None  # noqa: E731
    if discarded := discard_unused(store, stamp, launched):
        context.log.info(f"discarded what an evaluation of this cursor left unused (a preview): {', '.join(discarded)}")
    return stamp


def _request(specialist: str, run_key: str, reason: str) -> dg.RunRequest:
    return dg.RunRequest(run_key=run_key, partition_key=specialist,
                         tags={TRIGGER_TAG: run_key, REASON_TAG: reason})


@dg.sensor(
    name=FEEDBACK_SENSOR, target=retrain_specialist,
    minimum_interval_seconds=SETTINGS.feedback_sensor_interval_s, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrain a specialist when its trusted feedback since its last training reaches "
                "RETRAINING_FEEDBACK_THRESHOLD (outside the cooldown, no run of it in flight, no A/B test of it running).",
)
def feedback_retraining_sensor(context: dg.SensorEvaluationContext, document_store: DocumentStoreResource,
                               mlflow: MlflowResource):
    settings = MonitoringSettings.from_env()
    now = clock.now()
    state = decode_cursor(context.cursor)
    requests, events, notes = [], [], []
    # asked once a tick, only when a specialist fires: a retraining launched while MLflow is down collected and
    # rewrote the partition's outputs, then failed at training, and spent one of the trigger's attempts
    registry_unavailable = functools.cache(lambda: registry_down(mlflow.uri))
    try:
        with document_store.open() as store:
            stamp = discard_unused_writes(context, store, FEEDBACK_SENSOR)
            for s in SPECIALISTS:
                previous = state.get(s, SpecialistCursor())
                trained_at, marker = last_training(context.instance, s)
                count = trusted_feedback_count(store, s, trained_at, TRUST_POLICY)
                untrainable = untrainable_collection(context.instance, store, s, marker) \
                    if count >= settings.feedback_threshold else None
                if count != previous.last_count or s not in state:
                    events.append(dg.AssetObservation(
                        asset_key="feedback", partition=s,
                        metadata={"trusted_since_training": count, "threshold": settings.feedback_threshold,
                                  "last_training": dg.MetadataValue.text(trained_at.isoformat() if trained_at else "never")}))
                decision = feedback_trigger(s, count, settings.feedback_threshold, trained_at,
                                            previous.last_request_at, now, settings.cooldown,
                                            last_training_marker=marker, untrainable=untrainable)
                updated = SpecialistCursor(last_count=count, last_request_at=previous.last_request_at,
                                           last_run_key=previous.last_run_key)
                in_flight = run_in_flight(context.instance, s) if decision.fire else None
                test = running_test(store, s) if decision.fire and not in_flight else None
                if in_flight:
                    notes.append(f"{s}: {count} >= {settings.feedback_threshold}, run {in_flight} in flight")
                elif test:
                    notes.append(f"{s}: {count} >= {settings.feedback_threshold}, {waits_for_test(test['test_id'])}")
                elif decision.fire and (down := registry_unavailable()):
                    notes.append(f"{s}: {decision.reason}; not requested, model registry unavailable ({down}): "
                                 "asked again at the next tick")
                elif decision.fire:
                    key = trigger_attempt(context.instance, decision.run_key)
                    record_trigger(store, key, s, "feedback", now, feedback_count=count,
                                   details={"threshold": settings.feedback_threshold,
                                            "last_training_at": trained_at.isoformat() if trained_at else None},
                                   evaluation=stamp)
                    requests.append(_request(s, key, "feedback"))
                    updated = SpecialistCursor(last_count=count, last_request_at=now, last_run_key=key)
                    notes.append(f"{s}: {decision.reason} -> {key}")
                else:
                    notes.append(f"{s}: {decision.reason}")
                state[s] = updated
    except StoreUnavailable as exc:  # the message names the host, never a credential
        return dg.SkipReason(f"document store unavailable, nothing counted: {exc}")
    context.log.info("; ".join(notes))
    return dg.SensorResult(run_requests=requests, asset_events=events, cursor=encode_cursor(state),
                           skip_reason=None if requests else "; ".join(notes))


@dg.sensor(
    name=DRIFT_SENSOR, target=retrain_specialist,
    minimum_interval_seconds=SETTINGS.drift_sensor_interval_s, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every DRIFT_CHECK_INTERVAL_MINUTES: each specialist's recent plans against its champion's "
                "training reference; records a drift_monitoring document and retrains on drift.",
)
def drift_retraining_sensor(context: dg.SensorEvaluationContext, document_store: DocumentStoreResource,
                            mlflow: MlflowResource):
    settings = MonitoringSettings.from_env()
    now, simulated = clock.now(), clock.simulated()
    state = decode_cursor(context.cursor)
    # MLflow's client retries a server that is down for a minute or more, then raises: a UI preview waited and
    # showed a stack; one health request answers in seconds (the cursor and the documents stay as they were)
    if down := registry_down(mlflow.uri):
        return dg.SkipReason(f"model registry unavailable, no drift check: {down}")
    client = mlflow.client()
    requests, notes, events = [], [], []
    plans: dict = {}  # the specialists judge the same plans: each is read and validated once a tick
    try:
        with document_store.open() as store:
            stamp = discard_unused_writes(context, store, DRIFT_SENSOR)
            for s in SPECIALISTS:
                previous = state.get(s, SpecialistCursor())
                # on simulated time, a check only once the platform clock moved an interval (the wall
                # clock always moves: there the daemon's interval spaces the checks)
                due = next_drift_check(store, s, settings.drift_check_interval) if simulated else None
                if due is not None and now < due:
                    notes.append(f"{s}: next check at {due:%Y-%m-%d %H:%M} UTC")
                    state[s] = previous
                    if key := unlaunched_drift_request(store, s):  # its tick was committed, its run not launched
                        requests.append(_request(s, key, "drift"))
                        notes.append(f"{s}: {key} requested again (its check requested it and no run took it up)")
                    continue
                check = check_drift(store, client, s, now, settings, plan_cache=plans)
                updated = SpecialistCursor(last_request_at=previous.last_request_at,
                                           last_run_key=previous.last_run_key, last_check_at=now)
                document = check.document
                if check.run_key:
                    trained_at, _ = last_training(context.instance, s)
                    in_flight = run_in_flight(context.instance, s)
                    test = None if in_flight else running_test(store, s)
                    trigger = drift_trigger(s, check.run_key, now, settings.cooldown, last_training_at=trained_at,
                                            last_request_at=previous.last_request_at, run_in_flight=in_flight,
                                            running_test_id=test["test_id"] if test else None)
                    if trigger.fire:
                        key = trigger_attempt(context.instance, trigger.run_key)
                        # the trigger document first: the check's run key always names one
                        record_trigger(store, key, s, "drift", now, drift_score=check.drift_score,
                                       details={"check_id": document["check_id"], "model_version": check.model_version,
                                                "drifted_features": document["drifted_features"],
                                                "prediction_drifted": document["prediction_drifted"]},
                                       evaluation=stamp)
                        document = with_retraining(document, "requested", "drift", key)
                        requests.append(_request(s, key, "drift"))
                        updated = SpecialistCursor(last_request_at=now, last_run_key=key, last_check_at=now)
                        notes.append(f"{check.message} -> {key}")
                    else:
                        document = with_retraining(document, "held", trigger.reason)
                        notes.append(f"{check.message}; held: {trigger.reason}")
                else:
                    notes.append(check.message)
                if document is not None:
                    save_drift_check(store, document, evaluation=stamp)
                    observation = drift_observation(context.instance, s, document)
                    if observation is not None:
                        events.append(observation)
                state[s] = updated
    except StoreUnavailable as exc:
        return dg.SkipReason(f"document store unavailable, no drift check: {exc}")
    context.log.info("; ".join(notes))
    return dg.SensorResult(run_requests=requests, asset_events=events, cursor=encode_cursor(state),
                           skip_reason=None if requests else "; ".join(notes))


# -- trigger documents follow their runs --------------------------------------------------------------
def run_metrics(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Numeric metadata of the run's materializations, as {"<asset>.<name>": value}."""
    metrics = {}
    records = instance.get_records_for_run(run_id=run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        mat = record.event_log_entry.asset_materialization
        for name, value in (mat.metadata or {}).items():
            raw = value.value
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                metrics[f"{mat.asset_key.to_user_string()}.{name}"] = raw
    return metrics


FAILURE_TAG = "hive/failure"  # why a retraining run failed, in the Runs list (Dagster's headline names steps only)
# the tag's value on a run that has not failed: a re-execution copies its parent's tags, this one included, and
# Dagster 1.13 has no call that deletes a run tag (add_run_tags adds or overwrites), so the copy is overwritten
NO_FAILURE = "none"
_CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"


def run_failure_cause(instance: dg.DagsterInstance, run_id: str, limit: int = 400) -> str | None:
    """Why the run failed, in one line: each failed blocking check with its description (the gate's "macro_f1
    0.612 < 0.65 ..."), then each failed step with its own error (a Failure's description, else the exception
    under Dagster's wrapper); else how its process died, as the code server saw it ("Run execution process
    for ... was terminated by signal 9 (SIGKILL)"); None when its events say nothing of the kind. Dagster's run
    failure says only "Execution of run ... failed. Steps failed: ['validation_report_min_metrics']", or of a
    killed run "This run has been marked as failed from outside the execution context"."""
    from hive_assets.reachability import one_line

    records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                                            dg.DagsterEventType.RESOURCE_INIT_FAILURE,
                                                            dg.DagsterEventType.ENGINE_EVENT}).records
    checks, steps, crashes = [], [], []
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data
        if event.event_type_value == "ENGINE_EVENT":  # the code server saw the run's process die (SIGKILL, OOM):
            message = event.message or ""  # its RUN_FAILURE says only "marked as failed from outside ..."
            if message.startswith("Run execution process for ") and (
                    " was terminated by signal " in message or " unexpectedly exited with code " in message):
                crashes.append(message.split(". ", 1)[0].rstrip("."))
            continue
        if event.event_type_value == "RESOURCE_INIT_FAILURE":  # a resource's setup refused the run (its lease
            if (error := getattr(data, "error", None)) is not None:  # held, its config): no step failed
                steps.append(f"{event.step_key or 'setup'}: {_innermost(error)}")
            continue
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            if not data.passed and data.severity == dg.AssetCheckSeverity.ERROR:
                checks.append(f"check {data.check_name} failed: {data.description or 'no description'}")
            continue
        error = getattr(data, "error", None)
        if error is None or _CHECK_FAILED_ERROR in error.message:  # a blocking check's: said above, with why
            continue
        user = getattr(data, "user_failure_data", None)
        said = user.description if user is not None and user.description else \
            (error.cause or error).message.strip()
        steps.append(f"{event.step_key}: {said}")
    said = checks + steps or crashes[-1:]
    return one_line("; ".join(said), limit) if said else None


def _innermost(error) -> str:
    """The error under Dagster's wrappers ("Error executing resource_fn on ResourceDefinition run_lease"): a
    Failure's own description, another exception as `Class: message`."""
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    qualified, sep, rest = message.partition(": ")
    if sep and qualified.rsplit(".", 1)[-1] == error.cls_name:
        return rest if error.cls_name == "Failure" else f"{error.cls_name}: {rest}"
    return message


def manual_trigger_id(run_id: str) -> str:
    """The trigger document of a retrain_specialist run no sensor requested: one per run launched by hand (its
    re-executions take it up, as a sensor's trigger), so following the run's events again writes nothing new."""
    return f"manual:{run_id}"


def trigger_of(run: dg.DagsterRun) -> tuple[str, str | None] | None:
    """(trigger document id, reason) the run follows; None for a run of no specialist partition."""
    trigger_id, reason = run.tags.get(TRIGGER_TAG), run.tags.get(REASON_TAG)
    if not trigger_id:  # launched by hand (Launchpad, the CLI, an operator): SPEC's "manual", one document per run
        if run.tags.get("dagster/partition") not in SPECIALISTS:  # no partition, or one that is no specialist's
            return None
        # a re-execution (from failure, a run retry) has no trigger tag to copy: the chain's first run names it
        trigger_id, reason = manual_trigger_id(run.root_run_id or run.run_id), "manual"
    return trigger_id, reason


def _follow(context, document_store: DocumentStoreResource, status: str, error: str | None = None):
    run = context.dagster_run
    if (trigger := trigger_of(run)) is None:
        return dg.SkipReason(f"run {run.run_id} has no specialist partition: it retrained nobody")
    trigger_id, reason = trigger
    if status == "running" and run.status in FINISHED_STATUSES:
        # the run's STARTED event seen after it ended (the sensors run in threads, deploy/dagster.yaml): a write
        # of "running" could land after the final one and replace it; the final status is its own sensor's
        return dg.SkipReason(f"run {run.run_id} has ended ({run.status.value}): trigger {trigger_id} not reopened")
    metrics = run_metrics(context.instance, run.run_id) if status != "running" else None
    try:
        with document_store.open() as store:
            doc, changed = update_trigger_status(
                store, trigger_id, status, run_id=run.run_id, specialist=run.tags.get("dagster/partition"),
                reason=reason, metrics=metrics, error=error, parent_run_id=run.parent_run_id)
    except StoreUnavailable as exc:
        return dg.SkipReason(f"document store unavailable, trigger {trigger_id} not updated: {exc}")
    context.log.info(f"trigger {trigger_id}: {doc['status']}{'' if changed else ' (unchanged)'}")
    return None


FINISHED_STATUSES = {dg.DagsterRunStatus.SUCCESS: "completed", dg.DagsterRunStatus.FAILURE: "failed",
                     dg.DagsterRunStatus.CANCELED: "failed"}


def failure_error(cause: str | None, event=None, *, canceled: bool = False) -> str:
    """What a failed or canceled run's trigger document says: "run canceled", else the cause from its events
    (`run_failure_cause`), else the run failure event's error, else "run failed"."""
    if canceled:
        return "run canceled"
    if cause:
        return cause
    error = getattr(getattr(event, "event_specific_data", None), "error", None)
    return str(error.message) if error is not None else (getattr(event, "message", None) or "run failed")


def reconcile_triggers(instance: dg.DagsterInstance, store, *, job_names=(retrain_specialist.name,),
                       limit: int = 200) -> list[str]:
    """Bring the trigger documents of the latest `limit` finished runs of `job_names` to their runs' outcome,
    as the run-status sensors would have; the ids of the documents changed. Those sensors' cursors move on
    whatever the evaluation did: an update skipped while the store was down, or a late "running" that replaced
    "completed" (two sensors in threads), stayed wrong for good. Oldest run first (a re-execution after the
    run it re-executes); a document that already follows the run is skipped without reading the run's events."""
    changed = []
    for record in _finished_runs(instance, job_names, limit):
        run = record.dagster_run
        if (trigger := trigger_of(run)) is None:
            continue
        trigger_id, reason = trigger
        status = FINISHED_STATUSES[run.status]
        doc = store.find_one(TRIGGERS, {"trigger_id": trigger_id})
        if doc is not None and (run.run_id in {a.get("run_id") for a in doc.get("attempts") or []}) and (
                doc.get("dagster_run_id") != run.run_id or doc.get("status") == status):
            continue  # followed already: its outcome, or an earlier attempt of a re-executed run
        canceled = run.status == dg.DagsterRunStatus.CANCELED
        error = failure_error(None if canceled else run_failure_cause(instance, run.run_id), canceled=canceled) \
            if status == "failed" else None
        doc, moved = update_trigger_status(
            store, trigger_id, status, run_id=run.run_id, specialist=run.tags.get("dagster/partition"),
            reason=reason, metrics=run_metrics(instance, run.run_id), error=error, parent_run_id=run.parent_run_id)
        if moved:
            changed.append(trigger_id)
    return changed


def _finished_runs(instance: dg.DagsterInstance, job_names, limit: int) -> list:
    """The latest `limit` finished runs of each of `job_names`, oldest first (a re-execution after its parent)."""
    finished = [record for job in job_names for record in instance.get_run_records(
        filters=dg.RunsFilter(job_name=job, statuses=list(FINISHED_STATUSES)), limit=limit)]
    return sorted(finished, key=lambda r: (r.create_timestamp, r.dagster_run.run_id))


def reconcile_failure_tags(instance: dg.DagsterInstance, *, job_names=(retrain_specialist.name,),
                           limit: int = 200) -> list[str]:
    """Give the latest `limit` finished runs of `job_names` the FAILURE_TAG the run-status sensors would have,
    where their tick missed it (the daemon stopped between the run's end and the tick, an evaluation that
    failed): a failed run with none, with the NO_FAILURE its STARTED wrote, or with its parent's words (a
    re-execution copies its parent's tags; read again, kept when it failed for the same reason), gets why it
    failed; a succeeded or canceled run still showing a reason copied from the run it re-executes gets NO_FAILURE.
    The run ids tagged; a run already right reads nothing but its record."""
    from hive_assets.reachability import one_line

    tagged = []
    for record in _finished_runs(instance, job_names, limit):
        run = record.dagster_run
        current = run.tags.get(FAILURE_TAG)
        if run.status == dg.DagsterRunStatus.FAILURE:
            if current not in (None, NO_FAILURE) and not _copied(instance, run, current):
                continue
            failures = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
            event = failures[-1].event_log_entry.dagster_event if failures else None
            value = one_line(failure_error(run_failure_cause(instance, run.run_id), event))
            if value[:200] == current:  # failed again for its parent's reason
                continue
        elif current in (None, NO_FAILURE):
            continue
        else:
            value = NO_FAILURE
        instance.add_run_tags(run.run_id, {FAILURE_TAG: value[:200]})
        tagged.append(run.run_id)
    return tagged


def _copied(instance: dg.DagsterInstance, run: dg.DagsterRun, tag: str) -> bool:
    """Whether a re-execution's FAILURE_TAG may be the copy of its parent's (the same words)."""
    parent = instance.get_run_by_id(run.parent_run_id) if run.parent_run_id else None
    return parent is not None and parent.tags.get(FAILURE_TAG) == tag


def _tag_failure(context: dg.RunStatusSensorContext, run_status: dg.DagsterRunStatus, cause: str | None = None,
                 error: str | None = None) -> None:
    """The run's FAILURE_TAG says why this run failed, never why the run it re-executes did (a re-execution, from
    the UI or a run retry, copies its parent's tags, this one included): a failed run gets its cause, or where its
    events name none, its run failure's own `error`; a run that started, succeeded or
    was canceled gets NO_FAILURE over a copied tag. A STARTED seen after the run ended writes nothing: the final
    status's sensor decides (a failure's cause is never overwritten)."""
    from hive_assets.reachability import one_line

    run = context.dagster_run
    copied = run.tags.get(FAILURE_TAG)
    if run_status == dg.DagsterRunStatus.FAILURE:
        value = cause or (one_line(error) if error else None)
    elif copied in (None, NO_FAILURE) or (run_status == dg.DagsterRunStatus.STARTED
                                          and run.status in FINISHED_STATUSES):
        return
    else:
        value = NO_FAILURE
    if value and copied != value[:200]:
        context.instance.add_run_tags(run.run_id, {FAILURE_TAG: value[:200]})


def _status_sensor(run_status: dg.DagsterRunStatus, status: str):
    @dg.run_status_sensor(
        name=f"retraining_trigger_{run_status.value.lower()}", run_status=run_status,
        monitored_jobs=[retrain_specialist], minimum_interval_seconds=SETTINGS.run_status_sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Sets the run's retraining_triggers document to {status!r} when the run is {run_status.value} "
                    "(a run launched by hand gets a document of reason 'manual').",
    )
    def follow(context: dg.RunStatusSensorContext, document_store: DocumentStoreResource):
        error = None
        if run_status == dg.DagsterRunStatus.FAILURE:
            cause = run_failure_cause(context.instance, context.dagster_run.run_id)  # read once: tag and document
            error = failure_error(cause, context.dagster_event)
            _tag_failure(context, run_status, cause, error)
        else:
            if run_status == dg.DagsterRunStatus.CANCELED:
                error = failure_error(None, canceled=True)
            _tag_failure(context, run_status)
        return _follow(context, document_store, status, error)

    return follow


trigger_started = _status_sensor(dg.DagsterRunStatus.STARTED, "running")
trigger_succeeded = _status_sensor(dg.DagsterRunStatus.SUCCESS, "completed")
trigger_failed = _status_sensor(dg.DagsterRunStatus.FAILURE, "failed")
trigger_canceled = _status_sensor(dg.DagsterRunStatus.CANCELED, "failed")


@dg.sensor(
    name="retraining_trigger_reconcile",
    minimum_interval_seconds=env_int("HIVE_TRIGGER_RECONCILE_INTERVAL_SECONDS", 300, low=1),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Brings the retraining_triggers documents of the latest finished retrain_specialist runs to their "
                "runs' outcome, where the run-status sensors missed it (the store down, two writes at once), and "
                f"the {FAILURE_TAG} tag of the latest finished runs of every job to why each failed.",
)
def trigger_reconcile(context: dg.SensorEvaluationContext, document_store: DocumentStoreResource):
    # every job of the code location (operator and A/B jobs fail too, and their runs said only "Failure"); the
    # instance's alone: done with the store down too
    repository = getattr(context, "repository_def", None)
    jobs = tuple(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")) if repository \
        else (retrain_specialist.name,)
    if tagged := reconcile_failure_tags(context.instance, job_names=jobs):
        context.log.info(f"runs given the {FAILURE_TAG} tag their run-status sensor missed: {', '.join(tagged)}")
    try:
        with document_store.open() as store:
            changed = reconcile_triggers(context.instance, store)
    except StoreUnavailable as exc:
        return dg.SkipReason(f"document store unavailable, trigger documents not reconciled: {exc}")
    if changed:
        context.log.info(f"trigger documents brought to their runs' outcome: {', '.join(changed)}")
        return dg.SkipReason(f"{len(changed)} trigger document(s) brought to their runs' outcome: "
                             f"{', '.join(changed[:10])}")
    return dg.SkipReason("every trigger document follows its run")


SENSORS = [feedback_retraining_sensor, drift_retraining_sensor, trigger_started, trigger_succeeded, trigger_failed,
           trigger_canceled, trigger_reconcile]

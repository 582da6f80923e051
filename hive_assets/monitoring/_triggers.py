"""Retraining trigger rules for the feedback and drift sensors (SPEC section 8), as pure functions.

No Dagster, no I/O: the sensors pass in counts and timestamps, and get back a decision, a run key
and the cursor to store.

Feedback rule. For one specialist: fire when the trusted feedback counted since its last successful
training (one that could reach the registry: "Last training" below) reaches `threshold`
(RETRAINING_FEEDBACK_THRESHOLD, 100), unless a run was requested, or such a training ran, within
`cooldown` (24 h) before `now`. "Within" is strict: at exactly `cooldown` after
the last request the rule fires again. A timestamp in the future (clock skew) counts as within the
cooldown. Naive datetimes are taken as UTC.

Run keys. Dagster skips a RunRequest whose run key it has already seen, so the key must identify the
trigger, not the specialist:
* `feedback_run_key(specialist, last_training_marker, count_bucket, request_window)`: the same on
  every tick that re-evaluates one trigger (same last training, same threshold multiple, same
  cooldown-long time window), different after a new training, and different for any two requests
  the cooldown allows, because they are at least `cooldown` apart and so fall into different
  windows of length `cooldown` (`time_bucket(now, cooldown)`). So a failed run never swallows the
  next trigger: after the cooldown the key changes even if no feedback arrived.
* `drift_run_key(specialist, model_version, check_time_bucket)`: one key per champion version and
  check interval (`time_bucket(check_time, DRIFT_CHECK_INTERVAL_MINUTES)`).
* `attempt_run_key(run_key, attempt)`: a trigger requested again after its run failed gets
  `<run key>:retry-<attempt>` (at most `MAX_TRIGGER_ATTEMPTS` keys; `attempt_to_request` picks the first
  whose run did not fail, for the sensors and `hive drift check`). A sensor whose cursor holds the
  request never asks again within the cooldown, so this happens only when the request was lost with
  the cursor: a `hive loop` killed while the run it launched ran (the run died with it).

Data found untrainable. When the partition's latest collection after its last training could not train
(`enhanced_features`' blocking `trainable` check: too few labelled rows, a class too rare), the rule holds
until another `threshold` of trusted feedback was submitted after that collection's window ended
(`UntrainableData`): the same labels would fail the same check, and a low-volume specialist (100-299
labels, production's first weeks) launched a failing run every cooldown.

Drift rule. A check that decided "drift" requests a run unless it is held: a run that takes the
specialist's training lease is in flight (a retraining, or a `hive train`: a new run would fail on the
lease); its A/B test is running (a new version would supersede the challenger under test, so the test
decides first); or a run was requested, or a training (as below) ran, within `cooldown` before `now`
(same "within" as the feedback rule). `drift_trigger` says which, and gives the run key only when it fires:
a held check records that it was held and why, never a run key that no run or trigger document has.

Last training. A `trained_model` materialization records `REACHES_REGISTRY`: whether its run's
selection includes `registered_model_version` (`reaches_registry`). Only those end the feedback count
and start the cooldown: `hive train` or a partial materialization in the UI registers nothing, so the
labels it trained on reach no served model. A registering run's training counts whether or not its
gate then passed (the labels were judged). A materialization without the stamp (written before it
existed, or reported by hand) counts, as it always did.

Cursor: `encode_cursor` / `decode_cursor` turn {specialist: SpecialistCursor} into a versioned JSON
string and back. Decoding never raises: an empty, garbage, or other-version cursor is an empty state,
and an entry with bad fields falls back to that field's default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

CURSOR_VERSION = 1
DEFAULT_FEEDBACK_THRESHOLD = 100  # RETRAINING_FEEDBACK_THRESHOLD
MAX_TRIGGER_ATTEMPTS = 3  # run keys of one trigger whose runs failed (`attempt_run_key`)
DEFAULT_COOLDOWN = timedelta(hours=24)

TriggerAction = Literal["fire", "below_threshold", "cooldown", "untrainable"]
DriftAction = Literal["fire", "in_flight", "ab_test", "cooldown"]

__all__ = [
    "CURSOR_VERSION",
    "REACHES_REGISTRY",
    "DEFAULT_COOLDOWN",
    "DEFAULT_FEEDBACK_THRESHOLD",
    "DriftTrigger",
    "MAX_TRIGGER_ATTEMPTS",
    "SpecialistCursor",
    "attempt_run_key",
    "attempt_to_request",
    "TriggerDecision",
    "UntrainableData",
    "counts_as_last_training",
    "decode_cursor",
    "drift_run_key",
    "drift_trigger",
    "encode_cursor",
    "feedback_run_key",
    "feedback_trigger",
    "reaches_registry",
    "time_bucket",
    "waits_for_test",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: the `trained_model` materialization's metadata: whether its run registers what it trained
REACHES_REGISTRY = "reaches_registry"
REGISTRATION_ASSET = "registered_model_version"


def reaches_registry(selected_assets: Iterable[str]) -> bool:
    """Whether a run that materializes `selected_assets` registers the model it trains."""
    return REGISTRATION_ASSET in set(selected_assets)


def counts_as_last_training(reaches: bool | None) -> bool:
    """Whether a `trained_model` materialization whose `REACHES_REGISTRY` stamp is `reaches` (None: no
    stamp) is a last training for the triggers: not one of a run that registers nothing (module docstring)."""
    return reaches is not False


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def time_bucket(moment: datetime, width: timedelta) -> int:
    """Index of the `width`-long window (counted from the Unix epoch, UTC) that contains `moment`."""
    seconds = width.total_seconds()
    if seconds <= 0:
        raise ValueError("width must be positive")
    return math.floor((_utc(moment) - _EPOCH).total_seconds() / seconds)


def _within_cooldown(now: datetime, cooldown: timedelta, last_request_at: datetime | None,
                     last_training_at: datetime | None) -> tuple[datetime, str] | None:
    """(time, what) of the latest request or training when it is within `cooldown` before `now` (a time
    in the future counts as within), else None."""
    recent = [(_utc(t), what) for t, what in ((last_request_at, "run requested"), (last_training_at, "training"))
              if t is not None]
    if not recent:
        return None
    latest, what = max(recent, key=lambda item: item[0])
    return (latest, what) if now - latest < cooldown else None


def _marker(value: datetime | int | str | None) -> str:
    if value is None:
        return "never"
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y%m%dT%H%M%S%fZ")
    return str(value)


def feedback_run_key(specialist: str, last_training_marker: datetime | int | str | None, count_bucket: int,
                     request_window: int) -> str:
    """Run key of a feedback trigger (properties: module docstring).

    `last_training_marker`: what identifies the last successful training (its event storage id, its
    time, or None when never trained); `count_bucket`: trusted count // threshold; `request_window`:
    `time_bucket(now, cooldown)`.
    """
    return f"feedback:{specialist}:trained-{_marker(last_training_marker)}:x{int(count_bucket)}:w{int(request_window)}"


def drift_run_key(specialist: str, model_version: int | str, check_time_bucket: int) -> str:
    """Run key of a drift trigger: one per specialist, champion version and check interval."""
    return f"drift:{specialist}:v{model_version}:t{int(check_time_bucket)}"


def attempt_run_key(run_key: str, attempt: int) -> str:
    """The run key of a trigger's `attempt` (0: the first, `run_key` itself; module docstring)."""
    if not 0 <= attempt < MAX_TRIGGER_ATTEMPTS:
        raise ValueError(f"attempt must be in [0, {MAX_TRIGGER_ATTEMPTS}), got {attempt}")
    return f"{run_key}:retry-{attempt}" if attempt else run_key


def attempt_to_request(run_key: str, failed: Callable[[str], bool]) -> str:
    """The run key a firing trigger requests: its first attempt (`attempt_run_key`) whose run did not fail
    (`failed(key)`: the latest run launched for that key failed; not launched yet, in flight or done is not),
    the last one when every attempt failed (Dagster skips a run key it has seen; `hive drift check` says it
    was already triggered)."""
    for attempt in range(MAX_TRIGGER_ATTEMPTS):
        key = attempt_run_key(run_key, attempt)
        if not failed(key):
            return key
    return key


@dataclass(frozen=True)
class TriggerDecision:
    """What the feedback rule decided for one specialist, and why (`run_key` only when firing)."""

    specialist: str
    action: TriggerAction
    reason: str
    trusted_count: int
    threshold: int
    run_key: str | None = None
    cooldown_until: datetime | None = None

    @property
    def fire(self) -> bool:
        return self.action == "fire"


@dataclass(frozen=True)
class UntrainableData:
    """The latest collection after the last training, which could not train (module docstring)."""

    collected_until: datetime  # the end of its window
    problems: tuple[str, ...]  # what the `trainable` check said
    trusted_since: int  # trusted feedback submitted after `collected_until`

    def holds(self, threshold: int) -> str | None:
        """Why it holds a retraining at `threshold`, or None once enough feedback came after it."""
        if self.trusted_since >= threshold:
            return None
        return (f"the data collected up to {_utc(self.collected_until):%Y-%m-%d %H:%M} UTC could not train "
                f"({'; '.join(self.problems)}): asked again once {threshold} more trusted feedback came after it "
                f"({self.trusted_since} so far)")


def feedback_trigger(
    specialist: str,
    trusted_count_since_training: int,
    threshold: int,
    last_training_at: datetime | None,
    last_request_at: datetime | None,
    now: datetime,
    cooldown: timedelta = DEFAULT_COOLDOWN,
    *,
    last_training_marker: datetime | int | str | None = None,
    untrainable: UntrainableData | None = None,
) -> TriggerDecision:
    """The feedback rule (module docstring) for one specialist.

    `last_training_marker` goes into the run key (defaults to `last_training_at`); pass the training
    materialization's storage id when the sensor has it. `untrainable`: the latest collection since the last
    training when it could not train.
    """
    if threshold <= 0:
        raise ValueError("threshold must be positive")
    count = int(trusted_count_since_training)
    if count < threshold:
        return TriggerDecision(specialist, "below_threshold",
                               f"{count} trusted feedback since the last training < threshold {threshold}",
                               count, threshold)
    if untrainable is not None and (held := untrainable.holds(threshold)):
        return TriggerDecision(specialist, "untrainable",
                               f"{count} >= {threshold} trusted feedback since the last training, but {held}",
                               count, threshold)
    now = _utc(now)
    held = _within_cooldown(now, cooldown, last_request_at, last_training_at)
    if held:
        latest, what = held
        until = latest + cooldown
        return TriggerDecision(specialist, "cooldown",
                               f"{count} >= {threshold} trusted feedback, but a {what} at {latest.isoformat()} "
                               f"is within the {cooldown} cooldown (until {until.isoformat()})",
                               count, threshold, cooldown_until=until)
    marker = last_training_at if last_training_marker is None else last_training_marker
    key = feedback_run_key(specialist, marker, count // threshold, time_bucket(now, cooldown))
    return TriggerDecision(specialist, "fire",
                           f"{count} trusted feedback since the last training >= threshold {threshold}",
                           count, threshold, run_key=key)


def waits_for_test(test_id: str) -> str:
    """Why a trigger holds while the specialist's A/B test runs."""
    # a new version would supersede the challenger under test: the running test decides first (it ends
    # within AB_TEST_MAX_DURATION_DAYS; an operator can stop it to retrain at once)
    return f"A/B test {test_id} running: retraining waits for its verdict"


@dataclass(frozen=True)
class DriftTrigger:
    """What the drift rule decided for a check that found drift (`run_key` only when firing)."""

    specialist: str
    action: DriftAction
    reason: str
    run_key: str | None = None

    @property
    def fire(self) -> bool:
        return self.action == "fire"


def drift_trigger(specialist: str, run_key: str, now: datetime, cooldown: timedelta = DEFAULT_COOLDOWN, *,
                  last_training_at: datetime | None = None, last_request_at: datetime | None = None,
                  run_in_flight: str | None = None, running_test_id: str | None = None) -> DriftTrigger:
    """The drift rule (module docstring) for a check that decided "drift"; `run_key`: the key a request
    for it uses (`drift_run_key`). `run_in_flight`: the id of a queued or running run that takes the
    specialist's training lease (a retraining, a `hive train`); `running_test_id`: its running A/B test.
    Holds in that order: in flight, A/B test, cooldown."""
    if run_in_flight:
        return DriftTrigger(specialist, "in_flight", f"run {run_in_flight} in flight")
    if running_test_id:
        return DriftTrigger(specialist, "ab_test", waits_for_test(running_test_id))
    held = _within_cooldown(_utc(now), cooldown, last_request_at, last_training_at)
    if held:
        latest, what = held
        return DriftTrigger(specialist, "cooldown",
                            f"a {what} at {latest.isoformat()} is within the {cooldown.total_seconds() / 3600:g} h "
                            f"cooldown (until {(latest + cooldown).isoformat()})")
    return DriftTrigger(specialist, "fire", "drift", run_key=run_key)


# -- cursor ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecialistCursor:
    """What a sensor remembers about one specialist between ticks."""

    last_count: int = 0
    last_request_at: datetime | None = None
    last_run_key: str | None = None
    last_check_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _time_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _entry(raw: Any) -> SpecialistCursor:
    if not isinstance(raw, Mapping):
        return SpecialistCursor()
    count = raw.get("last_count")
    key = raw.get("last_run_key")
    extra = raw.get("extra")
    return SpecialistCursor(
        last_count=count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else 0,
        last_request_at=_time_or_none(raw.get("last_request_at")),
        last_run_key=key if isinstance(key, str) else None,
        last_check_at=_time_or_none(raw.get("last_check_at")),
        extra=dict(extra) if isinstance(extra, Mapping) else {},
    )


def encode_cursor(state: Mapping[str, SpecialistCursor]) -> str:
    """A compact, versioned JSON cursor for `state` (datetimes as ISO-8601 UTC; `extra` must be JSON)."""
    def iso(t: datetime | None) -> str | None:
        return None if t is None else _utc(t).isoformat()

    return json.dumps({
        "v": CURSOR_VERSION,
        "specialists": {
            name: {"last_count": int(c.last_count), "last_request_at": iso(c.last_request_at),
                   "last_run_key": c.last_run_key, "last_check_at": iso(c.last_check_at), "extra": dict(c.extra)}
            for name, c in sorted(state.items())
        },
    }, separators=(",", ":"), sort_keys=True)


def decode_cursor(cursor: str | bytes | None) -> dict[str, SpecialistCursor]:
    """The state in `cursor`; {} for None, empty, non-JSON, or a cursor of another version. Never raises."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except (ValueError, TypeError, RecursionError):  # RecursionError: absurdly nested JSON
        return {}
    if not isinstance(data, Mapping) or data.get("v") != CURSOR_VERSION:
        return {}
    specialists = data.get("specialists")
    if not isinstance(specialists, Mapping):
        return {}
    return {str(name): _entry(raw) for name, raw in specialists.items()}

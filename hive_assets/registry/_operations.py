"""Operator actions on the registry (SPEC section 6): register, promote, rollback, alias, list.

Each action validates everything before its first write, so a refused action (`RegistryError`) leaves the
registry and the ledger as they were. Each write is idempotent on its own, written when missing rather
than when "created", so re-running an interrupted action completes it.

Crash safety of an alias move (`ensure_alias`): the order is (1) the alias, in the registry (the truth,
one atomic server-side write), (2) the optional `Production` stage mirror, (3) a read-back of the alias,
(4) the ledger row. The ledger is written last so it never records a move that did not happen; a crash
between (1) and (4) leaves the ledger one row behind, and the retry (or the next action on that
specialist, which reconciles first) appends the row with the previous holder taken from the ledger.

Intent before effect (`_intents`): `promote` and `rollback` record what they are about to do (an intent
with a deterministic id, state `intended`), apply it, then mark it `done`. Each first completes any
unfinished registry intent of the specialist (a crashed run's decision, applied with its own actor and
run); a call that repeats an unfinished decision (same operation, same version) completes that one and
returns its result. A rollback is idempotent: see `rollback`.

Gate verdicts: `validation_report` writes a `gate_verdict` row per training run; that ledger row is
authoritative, and registration copies it into the version tag `validation_gate` (passed / failed /
unknown) for the MLflow UI. Promoting a version whose gate did not pass (failed, or no verdict) is refused
unless forced with a reason, which the ledger records.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from hive_assets import clock
from hive_assets.config import AUTO_MODEL_TYPE, SPECIALISTS, Settings
from hive_assets.data.store.base import DocumentStore
from hive_assets.registry import _intents as intents
from hive_assets.registry._ledger import last_alias_row, latest_decision, latest_gate_verdict, record_decision
from hive_assets.registry._mlflow import (
    ARTIFACT_CHECKSUM_TAG, alias_version, model_name, model_version, register_version, registered_model,
)
from hive_assets.registry._unchanged import TRAINING_CONFIG_TAG
from hive_assets.routing import CHALLENGER, CHAMPION

MIRROR_PRODUCTION_ENV = "HIVE_MIRROR_PRODUCTION_STAGE"
PRODUCTION_STAGE = "Production"
GATE_TAG = "validation_gate"
# MLflow alias rules: letters, digits, '_' and '-'; `latest` and `v<digits>` are reserved
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_AB_ALIAS_RE = re.compile(r"^ab-test-v(\d+)$")
# "v3" too: `hive deploy history` and the ledger print versions that way
_VERSION_RE = re.compile(r"^(?:models:/)?(?:(?P<name>[^/@]+)/)?v?(?P<version>\d+)$")

StepHook = Callable[[str], None]


class RegistryError(ValueError):
    """A refused operation. Raised before any write: the registry and the ledger are unchanged."""


# hosts' clocks disagree a little: a decision this close behind the latest one is not the clock going back
CLOCK_SKEW = timedelta(minutes=5)


def check_clock(store: DocumentStore, specialist: str, now: datetime | None = None) -> None:
    """RegistryError when the platform clock is more than CLOCK_SKEW before the specialist's latest ledger
    row (a clock pinned back): a decision recorded now would sort before decisions already made, and the
    history (`holder_at`, `hive deploy history`, the champion `hive status` names) would contradict the
    registry. Checked before an operation's first write."""
    from hive_assets.data import to_utc

    now = (now or clock.now()).astimezone(timezone.utc)
    row = latest_decision(store, specialist)
    latest = to_utc(row.get("recorded_at")) if row else None
    if latest is not None and now < latest - CLOCK_SKEW:
        raise RegistryError(
            f"{specialist}: the platform clock ({now:%Y-%m-%d %H:%M} UTC) is before the ledger's latest decision "
            f"({latest:%Y-%m-%d %H:%M} UTC, {row.get('kind')}): a decision recorded now would be out of order in "
            "the history; nothing was changed (`hive clock` shows the clock; advance it past that time)")


def mirror_production_enabled() -> bool:
    """HIVE_MIRROR_PRODUCTION_STAGE (default false), read and checked with the other settings."""
    return Settings.from_env().mirror_production_stage


def check_specialist(specialist: str) -> str:
    if specialist not in SPECIALISTS:
        raise RegistryError(f"unknown specialist {specialist!r}; choose from {', '.join(SPECIALISTS)}")
    return specialist


def check_alias(alias: str) -> str:
    """`alias` when MLflow accepts it as an alias name, else RegistryError saying what it accepts."""
    # MLflow reserves 'latest' and 'v<N>' whatever their case (`V3` reached a run that MLflow refused)
    if not _ALIAS_RE.match(alias) or alias.lower() == "latest" or re.fullmatch(r"v\d+", alias, re.IGNORECASE):
        raise RegistryError(f"invalid alias {alias!r}: letters, digits, '_' and '-'; not 'latest' or 'v<N>' in any case")
    # another spelling of a platform alias (`Champion`, `CHALLENGER`, `ab-test-V2`) would be a second alias that
    # escapes the rules of the real one (the gate, "not the champion's version", "names its version")
    platform = next((name for name in (CHAMPION, CHALLENGER) if alias.lower() == name), None)
    if platform is None and _AB_ALIAS_RE.match(alias.lower()):
        platform = alias.lower()
    if platform is not None and alias != platform:
        raise RegistryError(f"invalid alias {alias!r}: the platform's alias is {platform!r} (aliases are case-sensitive,"
                            " so this would be another alias outside its rules)")
    return alias


MAX_VERSION = 2 ** 31 - 1  # MLflow keeps a version number in an INTEGER column (32 bits on PostgreSQL and MySQL)


def parse_version_ref(ref: str | int) -> tuple[str | None, str]:
    """(model name or None, version number) of "3" (or "v3"), "business-evaluator/3" or
    "models:/business-evaluator/3"; RegistryError for anything else."""
    match = _VERSION_RE.match(str(ref).strip())
    if not match:
        raise RegistryError(f"{ref!r} is not a model version (expected N, <model>/N or models:/<model>/N)")
    if int(match["version"]) == 0:  # was a run that failed with "no version 0"
        raise RegistryError(f"{ref!r} is not a model version: MLflow numbers versions from 1")
    if int(match["version"]) > MAX_VERSION:  # MLflow's stores raised OverflowError (SQLite INTEGER) from a run
        raise RegistryError(f"{str(ref)[:40]!r} is not a model version: MLflow numbers versions up to {MAX_VERSION:,}")
    return match["name"], match["version"]


def resolve_version(client, specialist: str, ref: str | int):
    """The ModelVersion that `ref` names for `specialist`: "3", "business-evaluator/3" or
    "models:/business-evaluator/3". Refused: another model's version, a version that does not exist, or a
    version whose training run belongs to another specialist."""
    check_specialist(specialist)
    name = model_name(specialist)
    ref_name, number = parse_version_ref(ref)
    if ref_name and ref_name != name:
        raise RegistryError(f"version {ref_name}/{number} belongs to another model; "
                            f"the {specialist} specialist's model is {name}")
    version = model_version(client, specialist, number)
    if version is None:
        raise RegistryError(f"{name} has no version {number}")
    trained_for = version.tags.get("dagster_partition")
    if trained_for and trained_for != specialist:
        raise RegistryError(f"{name} v{version.version} was trained for the {trained_for} specialist, "
                            f"not {specialist}")
    return version


def gate_status(store: DocumentStore, specialist: str, version) -> tuple[str, str]:
    """("passed" | "failed" | "unknown", summary) for a version, from its training run's verdict."""
    row = latest_gate_verdict(store, specialist, version.run_id) if version.run_id else None
    if row is None:
        tag = version.tags.get(GATE_TAG)
        return (tag, "from the version tag") if tag in ("passed", "failed") else ("unknown", "no gate verdict")
    return ("passed" if row["details"].get("passed") else "failed"), row.get("reason", "")


def check_gate(store, specialist: str, version, force: bool, reason: str) -> tuple[str, str]:
    """(status, summary) of the version's validation gate; RegistryError unless it passed or `force` comes with
    a `reason` (what promote, a challenger alias and an A/B start require: each serves production traffic)."""
    status, summary = gate_status(store, specialist, version)
    if status != "passed":
        if not force:
            raise RegistryError(f"{model_name(specialist)} v{version.version}: validation gate {status} "
                                f"({summary}); refused (to override: --force --reason \"...\" on the CLI, "
                                "force: true and a reason in the run config)")
        if not reason.strip():
            raise RegistryError("--force needs a --reason, which the ledger records")
    return status, summary


def mirror_production(client, specialist: str, version: str) -> bool:
    """Put `version` in the legacy Production stage, archiving any other version there. Idempotent.

    For serving pods that load `models:/<specialist>-evaluator/Production` (stages are deprecated in
    MLflow 3; aliases stay the truth). Returns True when a transition was needed."""
    if production_mirrored(client, specialist, version):
        return False
    client.transition_model_version_stage(model_name(specialist), str(version), PRODUCTION_STAGE,
                                          archive_existing_versions=True)
    return True


def production_mirrored(client, specialist: str, version: str) -> bool:
    """Whether `version`, and no other version, is in the legacy Production stage."""
    in_production = {str(v.version) for v in client.search_model_versions(f"name='{model_name(specialist)}'")
                     if v.current_stage == PRODUCTION_STAGE}
    return in_production == {str(version)}


def ensure_alias(client, store: DocumentStore, specialist: str, alias: str, version: str, *, kind: str = "alias_move",
                 actor: str, reason: str, dagster_run_id: str | None = None, data_snapshot_hash: str | None = None,
                 details: dict[str, Any] | None = None, mirror: bool | None = None,
                 after_step: StepHook | None = None, decided_at: datetime | None = None) -> dict[str, Any]:
    """Make `alias` point at `version` in the registry AND in the ledger; each written only when missing.
    `decided_at`: when the decision was taken (an interrupted one completed later), for its ledger row.

    Order (see the module docstring): alias, Production mirror (champion only, when enabled), read-back,
    ledger row. The previous holder is the registry's when this call moves the alias, else the ledger's
    (a retry after the alias moved). `after_step(name)` is called at "alias_write" (just before the
    alias write, when one is needed), "alias_moved" and "production_mirrored": a hook for crash tests. Returns {"moved", "recorded", "previous_version", ...}.
    """
    version = str(version)
    name = model_name(specialist)
    mirror = mirror_production_enabled() if mirror is None else mirror
    ledger_row = last_alias_row(store, specialist, alias)
    before = alias_version(client, specialist, alias)
    moved = before is None or str(before.version) != version
    if moved:
        if after_step:
            after_step("alias_write")  # about to write the alias (crash tests kill the server here)
        client.set_registered_model_alias(name, alias, version)
        previous = str(before.version) if before is not None else None
    elif ledger_row is not None and str(ledger_row["model_version"]) != version:
        previous = str(ledger_row["model_version"])  # retry: the registry moved, the ledger did not
    else:
        previous = (ledger_row or {}).get("details", {}).get("previous_version")
    if after_step:
        after_step("alias_moved")
    mirrored = False
    if mirror and alias == CHAMPION:
        mirrored = mirror_production(client, specialist, version)
        if after_step:
            after_step("production_mirrored")
    now = alias_version(client, specialist, alias)  # the ledger records what the registry holds
    if now is None or str(now.version) != version:
        raise RuntimeError(f"{name}@{alias} is v{now.version if now else None} after setting it to v{version}: "
                           "moved concurrently; retry")
    recorded = not _ledger_holds(store, specialist, alias, version, ledger_row)
    row = ledger_row
    if recorded:
        row = record_decision(
            store, specialist, kind, actor=actor, reason=reason, dagster_run_id=dagster_run_id,
            # the data the version was trained on, as its tag says, unless the caller knows it
            model_version=version, data_snapshot_hash=data_snapshot_hash or (now.tags or {}).get("data_snapshot_hash"),
            details={**(details or {}), "alias": alias, "previous_version": previous,
                     "production_mirror": bool(mirror and alias == CHAMPION)},
            decision_id=f"{kind}:{specialist}:{alias}:{version}:{dagster_run_id}" if dagster_run_id else None,
            decided_at=decided_at)
    return {"specialist": specialist, "model": name, "alias": alias, "version": version, "moved": moved,
            "recorded": recorded, "production_mirrored": mirrored, "previous_version": previous,
            "decision_id": row["decision_id"] if row else None}


def _ledger_holds(store: DocumentStore, specialist: str, alias: str, version: str,
                  row: dict[str, Any] | None) -> bool:
    """Whether the ledger says `version` holds `alias` now: its last row (`row`) is that version's, and (an A/B
    alias) that tenure did not end with its test: the same version set again after its test closed is a new
    tenure, which needs its row."""
    from hive_assets.registry._history import alias_history

    return row is not None and str(row["model_version"]) == str(version) and (
        alias == CHAMPION or alias_history(store, specialist, alias)[-1].until is None)  # `row` is its last


def reconcile(client, store: DocumentStore, specialist: str, alias: str, *, actor: str,
              dagster_run_id: str | None = None, target: str | None = None) -> dict[str, Any] | None:
    """Append the ledger row of a move the registry holds but the ledger lacks (an interrupted action,
    or a change made outside hive-assets), so the ledger's last holder is the registry's again.

    Skipped when the registry already holds `target`: that is the interrupted action itself, which the
    caller's `ensure_alias` completes with its own kind and reason."""
    holder = alias_version(client, specialist, alias)
    if holder is None or _ledger_holds(store, specialist, alias, str(holder.version),
                                       last_alias_row(store, specialist, alias)):
        return None
    if target is not None and str(holder.version) == str(target):
        return None
    return ensure_alias(client, store, specialist, alias, str(holder.version), actor=actor,
                        reason="recorded after the fact: the registry held this move, the ledger did not",
                        dagster_run_id=dagster_run_id, mirror=False)


def _logged_model_of(client, run) -> tuple[str, str | None]:
    """(source URI, model id) of the model logged in a training run."""
    models = client.search_logged_models([run.info.experiment_id],
                                         filter_string=f"source_run_id = '{run.info.run_id}'")
    if not models:
        raise RegistryError(f"MLflow run {run.info.run_id} has no logged model to register")
    model = sorted(models, key=lambda m: m.creation_timestamp)[-1]
    return f"models:/{model.model_id}", model.model_id


VERSION_METRICS = ("accuracy", "macro_f1", "confidence_mean")


def version_tags(specialist: str, *, gate: str, dagster_run_id: str | None, data_snapshot_hash: str | None,
                 feature_schema_version: str | None, model_type: str | None, training_config: str | None,
                 metrics: Mapping[str, float]) -> dict[str, str]:
    """A registered version's tags (SPEC section 6), whichever path registers it (`registered_model_version`,
    `register`): Dagster run and partition, data snapshot hash, feature schema version, the family training
    chose, the training configuration (with the snapshot hash, what the nothing-changed rule compares),
    the validation gate and the test metrics. A value that is not known (or not computable) is left out."""
    known = {"dagster_run_id": dagster_run_id, "data_snapshot_hash": data_snapshot_hash,
             "feature_schema_version": feature_schema_version, "model_type": model_type,
             TRAINING_CONFIG_TAG: training_config}
    return {"dagster_partition": specialist, GATE_TAG: gate, **{k: str(v) for k, v in known.items() if v is not None},
            **{f"metric.{k}": f"{float(metrics[k]):.4f}" for k in VERSION_METRICS if metrics.get(k) is not None}}


def run_version_fields(run) -> dict[str, Any]:
    """`version_tags`' fields as `trained_model` and `validation_report` record them in the training run:
    tags, the chosen family (param `selected_model_type`; `model_type` is what was asked for, maybe `auto`)
    and the test metrics."""
    params, tags = run.data.params, run.data.tags
    chosen = params.get("selected_model_type") or params.get("model_type")
    return {"dagster_run_id": tags.get("dagster.run_id"), "data_snapshot_hash": tags.get("data_snapshot_hash"),
            "feature_schema_version": tags.get("feature_schema_version"),
            "model_type": None if chosen == AUTO_MODEL_TYPE else chosen,
            "training_config": tags.get(TRAINING_CONFIG_TAG),
            "metrics": {k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")}}


def register(client, store: DocumentStore, specialist: str, run_id: str, *, actor: str,
             reason: str = "registered by an operator", dagster_run_id: str | None = None) -> dict[str, Any]:
    """The `<specialist>-evaluator` version of a training run; registering a run twice gives one version.

    Tags come from the run (`version_tags`, as `registered_model_version` sets them: the family training
    chose, the training configuration, the test metrics...) plus `validation_gate` from the ledger. No alias
    is set: promotion is a separate decision."""
    from mlflow.exceptions import MlflowException

    check_specialist(specialist)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise RegistryError(f"no MLflow run {run_id!r}") from None
    trained_for = run.data.tags.get("dagster.partition")
    if trained_for and trained_for != specialist:
        raise RegistryError(f"MLflow run {run_id} trained the {trained_for} specialist, not {specialist}")
    source, model_id = _logged_model_of(client, run)
    check_clock(store, specialist)
    verdict = latest_gate_verdict(store, specialist, run_id)
    gate = "unknown" if verdict is None else ("passed" if verdict["details"].get("passed") else "failed")
    rt = run.data.tags
    tags = version_tags(specialist, gate=gate, **run_version_fields(run))
    version, created = register_version(client, specialist, run_id, source, tags, model_id=model_id)
    record_decision(store, specialist, "registration", actor=actor, reason=reason, dagster_run_id=dagster_run_id,
                    model_version=str(version.version), data_snapshot_hash=rt.get("data_snapshot_hash"),
                    details={"mlflow_run_id": run_id, "gate": gate},
                    decision_id=f"register:{specialist}:{version.version}")
    return {"specialist": specialist, "model": version.name, "version": str(version.version), "created": created,
            "run_id": run_id, "gate": gate}


def promote(client, store: DocumentStore, specialist: str, version_ref: str | int, *, actor: str, reason: str = "",
            force: bool = False, dagster_run_id: str | None = None, mirror: bool | None = None,
            after_step: StepHook | None = None) -> dict[str, Any]:
    """Move `champion` to a version whose validation gate passed (or forced, with a reason): an intent,
    then the move (alias, mirror, read-back, ledger row), then the intent done."""
    version = resolve_version(client, specialist, version_ref)
    gate, summary = check_gate(store, specialist, version, force, reason)
    check_clock(store, specialist)
    same = complete_unfinished(client, store, specialist, actor=actor, dagster_run_id=dagster_run_id,
                               same=(intents.PROMOTE, str(version.version)), after_step=after_step)
    if same is not None:
        return same
    if (done := _promotion_in_place(client, store, specialist, str(version.version), mirror)) is not None:
        return done  # a rerun of a completed promotion: no intent, nothing written
    params = {"version": str(version.version), "reason": reason or f"promoted by {actor}", "gate": gate,
              "forced": bool(force and gate != "passed"), "mirror": mirror,
              "data_snapshot_hash": version.tags.get("data_snapshot_hash")}
    intent = intents.begin(store, f"promote:{specialist}:v{version.version}:{dagster_run_id or uuid.uuid4().hex}",
                           specialist, intents.PROMOTE, params, actor=actor, dagster_run_id=dagster_run_id)
    return _apply(client, store, intent, after_step=after_step)


def _promotion_in_place(client, store: DocumentStore, specialist: str, version: str,
                        mirror: bool | None) -> dict[str, Any] | None:
    """The answer to a promotion whose every effect is in place (the registry's champion is `version`, the
    ledger's last champion row says so and, mirror on, the Production stage holds it alone): nothing to do,
    and when and by whom it was done; else None."""
    holder = alias_version(client, specialist, CHAMPION)
    row = last_alias_row(store, specialist, CHAMPION)
    if holder is None or str(holder.version) != version or row is None or str(row["model_version"]) != version:
        return None
    mirror = mirror_production_enabled() if mirror is None else mirror
    if mirror and not production_mirrored(client, specialist, version):
        return None
    from hive_assets.data import to_utc

    name, when = model_name(specialist), to_utc(row.get("recorded_at"))
    since = f" since {when.isoformat(timespec='seconds')}" if when else ""
    run = f", run {row['dagster_run_id']}" if row.get("dagster_run_id") else ""
    message = (f"this promotion was already done: {name}@champion -> v{version}{since} ({row.get('kind')} by "
               f"{row.get('actor')}{run}); nothing changed")
    return {"specialist": specialist, "model": name, "alias": CHAMPION, "version": version, "moved": False,
            "recorded": False, "production_mirrored": False, "noop": True, "operation": intents.PROMOTE,
            "message": message, "previous_version": (row.get("details") or {}).get("previous_version"),
            "decision_id": row.get("decision_id")}


def _apply(client, store: DocumentStore, intent: dict[str, Any], *, completed_by: str | None = None,
           after_step: StepHook | None = None) -> dict[str, Any]:
    """Apply a promote or rollback intent (idempotent: each write only when missing), then mark it done.
    The ledger rows carry the intent's actor and Dagster run, whoever completes it."""
    p, specialist = intent["params"], intent["specialist_type"]
    actor, run_id = intent["actor"], intent["dagster_run_id"]
    kind = "promotion" if intent["operation"] == intents.PROMOTE else "rollback"
    details = {"gate": p["gate"]}
    if kind == "promotion":
        details["forced"] = p["forced"]
    else:
        details["rolled_back_from"] = p["rolled_back_from"]
        if p.get("idempotency_key"):
            details["idempotency_key"] = p["idempotency_key"]
    decided_at = None
    if completed_by:  # an interrupted decision: its row dated when it was taken (its alias moved then), not now
        details.update(completed_by=completed_by, completed_at=clock.now())
        from hive_assets.data import to_utc

        decided_at = to_utc(intent.get("recorded_at"))
    reconcile(client, store, specialist, CHAMPION, actor=actor, dagster_run_id=run_id, target=p["version"])
    result = {**ensure_alias(client, store, specialist, CHAMPION, p["version"], kind=kind, actor=actor,
                             reason=p["reason"], dagster_run_id=run_id, data_snapshot_hash=p["data_snapshot_hash"],
                             details=details, mirror=p["mirror"], after_step=after_step, decided_at=decided_at),
              "gate": p["gate"], "intent_id": intent["intent_id"]}
    if kind == "rollback":
        result["rolled_back_from"] = p["rolled_back_from"]
    intents.finish(store, intent["intent_id"], result, completed_by=completed_by)
    return result


def complete_intent(client, store: DocumentStore, intent: dict[str, Any], *, completed_by: str | None = None,
                    after_step: StepHook | None = None) -> dict[str, Any]:
    """Complete one unfinished promote or rollback intent (another module applies A/B outcomes)."""
    if intent["operation"] not in intents.REGISTRY_OPERATIONS:
        raise ValueError(f"intent {intent['intent_id']}: {intent['operation']} is not a registry operation")
    return {**_apply(client, store, intent, completed_by=completed_by, after_step=after_step), "resumed": True,
            "interrupted_at": intents.recorded_at(intent)}


def complete_unfinished(client, store: DocumentStore, specialist: str, *, actor: str,
                        dagster_run_id: str | None = None, same: tuple[str, str] | None = None,
                        after_step: StepHook | None = None) -> dict[str, Any] | None:
    """Complete the specialist's unfinished promote / rollback intents, oldest first. When one of them is
    `same` = (operation, version or None for any), the caller is repeating it: its result is returned
    (else None)."""
    found = None
    for intent in intents.unfinished(store, specialist, intents.REGISTRY_OPERATIONS):
        by = f"{actor} (run {dagster_run_id})" if dagster_run_id else actor
        result = complete_intent(client, store, intent, completed_by=by, after_step=after_step)
        if same is not None and intent["operation"] == same[0] and same[1] in (None, intent["params"]["version"]):
            found = result
    return found


def previous_champion(client, store: DocumentStore, specialist: str) -> str | None:
    """The version that held `champion` before the current holder, from the ledger."""
    current = alias_version(client, specialist, CHAMPION)
    row = last_alias_row(store, specialist, CHAMPION)
    if current is None or row is None:
        return None
    if str(row["model_version"]) != str(current.version):  # the ledger lags: the ledger's holder came before
        return str(row["model_version"])
    return row["details"].get("previous_version")


def rollback(client, store: DocumentStore, specialist: str, target_version: str | int | None = None, *, actor: str,
             reason: str = "", force: bool = False, dagster_run_id: str | None = None, mirror: bool | None = None,
             idempotency_key: str | None = None, after_step: StepHook | None = None) -> dict[str, Any]:
    """Move `champion` back to the previous champion (from the ledger) or to `target_version`.

    A target that never held champion must have passed its gate (or be forced, with a reason).

    Idempotent: a rerun of the same rollback is a no-op that says so (`{"noop": True, "message": ...}`).
    The same rollback means: with `idempotency_key`, any rollback of this specialist recorded under that
    key (done: its result, unchanged; interrupted: completed); without one, a request made while the
    ledger's last champion move is a rollback to the version the registry holds now, asking for that
    version again or for no version in particular (rolling back further needs `target_version`).
    """
    check_specialist(specialist)
    keyed = f"rollback:{specialist}:key:{idempotency_key}" if idempotency_key else None
    if keyed is not None and (earlier := intents.get(store, keyed)) is not None:
        asked = _version_number(target_version) if target_version is not None else None
        if asked is not None and asked != str(earlier["params"].get("version")):
            raise RegistryError(f"idempotency key {idempotency_key!r} names the rollback to "
                                f"v{earlier['params'].get('version')}, not to v{asked}: give this rollback its own key")
        if earlier["state"] == intents.INTENDED:
            return complete_intent(client, store, earlier, completed_by=actor)
        return _noop(specialist, {**(earlier["result"] or {}), "actor": earlier["actor"],
                                  "dagster_run_id": earlier["dagster_run_id"], "recorded_at": earlier.get("done_at")},
                     f"rollback {idempotency_key!r} was already done")
    check_clock(store, specialist)
    wanted = _version_number(target_version) if target_version is not None else None
    resumed = complete_unfinished(client, store, specialist, actor=actor, dagster_run_id=dagster_run_id,
                                  same=(intents.ROLLBACK, wanted))
    if resumed is not None:  # this rollback was interrupted: completing it was the rerun's work
        return resumed
    current = alias_version(client, specialist, CHAMPION)
    lagging = current is not None and not ledger_agrees(client, store, specialist, CHAMPION)
    last = last_alias_row(store, specialist, CHAMPION)
    if (keyed is None and not lagging and current is not None and last is not None and last["kind"] == "rollback"
            and wanted in (None, str(current.version))):
        return _noop(specialist, {"version": str(current.version), "previous_version":
                                  last["details"].get("previous_version"), "dagster_run_id": last.get("dagster_run_id"),
                                  "actor": last.get("actor"), "recorded_at": last.get("recorded_at")},
                     "this rollback was already done")
    if target_version is None:
        if lagging:
            # a change outside hive-assets: "previous" is ambiguous, so refuse
            raise RegistryError(f"{model_name(specialist)}@champion is v{current.version} in the registry but not "
                                "in the ledger (an interrupted operation?); give --target-version (the version "
                                f"to end on), or promote v{current.version} to record it")
        previous = previous_champion(client, store, specialist)
        if previous is None:
            raise RegistryError(f"{model_name(specialist)}: no previous champion in the ledger to roll back to")
        target_version = previous
    version = resolve_version(client, specialist, target_version)
    if current is not None and str(current.version) == str(version.version) and not lagging:
        raise RegistryError(f"{model_name(specialist)} v{version.version} is already champion")
    held_before = any(str(r.version) == str(version.version) for r in _champion_holders(store, specialist))
    gate = "held champion before" if held_before else check_gate(store, specialist, version, force, reason)[0]
    rolled_back_from = str(current.version) if current else None
    if lagging and rolled_back_from == str(version.version):  # a retry: the registry already moved
        rolled_back_from = str(last_alias_row(store, specialist, CHAMPION)["model_version"])
    params = {"version": str(version.version), "reason": reason or f"rollback by {actor}", "gate": gate,
              "rolled_back_from": rolled_back_from, "mirror": mirror, "idempotency_key": idempotency_key,
              "data_snapshot_hash": version.tags.get("data_snapshot_hash")}
    intent_id = keyed or (f"rollback:{specialist}:v{rolled_back_from}-v{version.version}:"
                          f"{dagster_run_id or uuid.uuid4().hex}")
    intent = intents.begin(store, intent_id, specialist, intents.ROLLBACK, params, actor=actor,
                           dagster_run_id=dagster_run_id)
    return _apply(client, store, intent, after_step=after_step)


def _version_number(ref: str | int) -> str | None:
    match = _VERSION_RE.match(str(ref).strip())
    return match["version"] if match else None


def _noop(specialist: str, done: dict[str, Any], why: str) -> dict[str, Any]:
    """The answer to a repeated rollback: nothing changed, and what had been done."""
    name = model_name(specialist)
    when = done.get("recorded_at")
    when = when.isoformat(timespec="seconds") if hasattr(when, "isoformat") else (when or "")
    by = f" by {done['actor']}" if done.get("actor") else ""
    run = f" (run {done['dagster_run_id']})" if done.get("dagster_run_id") else ""
    message = (f"{why}: {name}@champion was rolled back from v{done.get('previous_version') or done.get('rolled_back_from')}"
               f" to v{done.get('version')}{by}{' at ' + when if when else ''}{run}; nothing changed (to roll back "
               "further, give --target-version)")
    return {"specialist": specialist, "model": name, "alias": CHAMPION, "version": done.get("version"),
            "moved": False, "recorded": False, "noop": True, "operation": intents.ROLLBACK, "message": message,
            "previous_version": done.get("previous_version"), "rolled_back_from": done.get("rolled_back_from")}


def _champion_holders(store, specialist):
    from hive_assets.registry._history import alias_history

    return alias_history(store, specialist, CHAMPION)


def set_alias(client, store: DocumentStore, specialist: str, alias: str, version_ref: str | int, *, actor: str,
              reason: str = "", force: bool = False, dagster_run_id: str | None = None,
              mirror: bool | None = None) -> dict[str, Any]:
    """Point any alias at a version. `champion` goes through `promote` (same gate rule); `ab-test-v<N>`
    must name version N."""
    check_alias(alias)
    if alias == CHAMPION:
        return promote(client, store, specialist, version_ref, actor=actor, reason=reason, force=force,
                       dagster_run_id=dagster_run_id, mirror=mirror)
    version = resolve_version(client, specialist, version_ref)
    ab = _AB_ALIAS_RE.match(alias)
    if ab and ab.group(1) != str(version.version):
        raise RegistryError(f"alias {alias} names version {ab.group(1)}, not v{version.version}")
    if alias == CHALLENGER:  # the next A/B look opens a test: production traffic, as for a promotion
        champion = alias_version(client, specialist, CHAMPION)
        if champion is not None and str(champion.version) == str(version.version):
            raise RegistryError(f"v{version.version} is the champion: the challenger must be another version (a "
                                "test of the champion against itself measures nothing, and serving would not split)")
        check_gate(store, specialist, version, force, reason)
    check_clock(store, specialist)
    reconcile(client, store, specialist, alias, actor=actor, dagster_run_id=dagster_run_id,
              target=str(version.version))
    return ensure_alias(client, store, specialist, alias, str(version.version), actor=actor,
                        reason=reason or f"alias set by {actor}", dagster_run_id=dagster_run_id,
                        data_snapshot_hash=version.tags.get("data_snapshot_hash"), mirror=mirror)


def list_versions(client, store: DocumentStore, specialist: str) -> list[dict[str, Any]]:
    """Every version of the specialist's model, newest first: aliases, stage, gate, run, key tags."""
    check_specialist(specialist)
    model = registered_model(client, specialist)
    if model is None:
        return []
    aliases: dict[str, list[str]] = {}  # search results carry no aliases: the registered model does
    for alias, version in model.aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name='{model_name(specialist)}'")
    registered = {str(r.get("model_version")): r for r in store.find(
        "model_decisions", {"specialist_type": specialist, "kind": "registration"})}
    out = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        out.append({"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])), "stage": v.current_stage,
                    "gate": gate_status(store, specialist, v)[0], "run_id": v.run_id,
                    "created_at": _registered_ms(registered.get(str(v.version)), v),
                    "model_type": v.tags.get("model_type"),
                    "macro_f1": _tag_number(v.tags.get("metric.macro_f1")),
                    "data_snapshot_hash": v.tags.get("data_snapshot_hash")})
    return out


def unrecorded_registrations(client, store: DocumentStore, specialist: str) -> list[dict[str, Any]]:
    """Versions the platform created whose registration row the ledger lacks: the process registering them
    stopped between `create_model_version` and the row (a run killed there; the re-execution of its step
    completes it, with the alias it would have set). The platform's versions carry the artifact checksum
    from their creation; one registered by hand in MLflow's UI carries none and is not the platform's to
    record. Read only; each {version, mlflow_run_id, dagster_run_id, gate}."""
    check_specialist(specialist)
    recorded = {str(r.get("model_version")) for r in store.find(
        "model_decisions", {"specialist_type": specialist, "kind": "registration"})}
    found = []
    for v in sorted(client.search_model_versions(f"name='{model_name(specialist)}'"), key=lambda v: int(v.version)):
        if ARTIFACT_CHECKSUM_TAG in v.tags and str(v.version) not in recorded:
            found.append({"version": str(v.version), "mlflow_run_id": v.run_id,
                          "dagster_run_id": v.tags.get("dagster_run_id"), "gate": v.tags.get(GATE_TAG, "unknown"),
                          "data_snapshot_hash": v.tags.get("data_snapshot_hash")})
    return found


def record_registration(store: DocumentStore, specialist: str, found: Mapping[str, Any], *, actor: str) -> bool:
    """The registration row of a version `unrecorded_registrations` found, with the id the registering step
    writes (its re-execution then adds none); True if written now. The alias the step would have set is not
    decided here: it depends on that run's validation report."""
    version = str(found["version"])
    decision_id = f"register:{specialist}:{version}"
    if store.count("model_decisions", {"decision_id": decision_id}):
        return False
    record_decision(store, specialist, "registration", actor=actor,
                    reason="the version was created but its run stopped before recording it",
                    dagster_run_id=found.get("dagster_run_id"), model_version=version,
                    data_snapshot_hash=found.get("data_snapshot_hash"),
                    details={"mlflow_run_id": found.get("mlflow_run_id"), "gate": found.get("gate")},
                    decision_id=decision_id)
    return True


def _registered_ms(row: Mapping[str, Any] | None, version) -> int:
    """When the platform registered `version` (epoch ms): its ledger row's time, on the platform clock. MLflow's
    `creation_timestamp` is the wall clock's (today on a simulated home): only a version registered outside
    the platform (no row of its run) shows it."""
    from hive_assets.data import to_utc

    if row is not None and (row.get("details") or {}).get("mlflow_run_id") == version.run_id:
        return int(to_utc(row["recorded_at"]).timestamp() * 1000)
    return version.creation_timestamp


def _tag_number(text: str | None) -> float | None:
    """A metric tag (written as text, `0.8123`) as the number it is; None when absent or not a number (a tag
    set by hand)."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def ledger_agrees(client, store: DocumentStore, specialist: str, alias: str = CHAMPION) -> bool:
    """True when the ledger's last holder of `alias` is the registry's holder (both None counts)."""
    holder = alias_version(client, specialist, alias)
    row = last_alias_row(store, specialist, alias)
    return (str(holder.version) if holder else None) == (str(row["model_version"]) if row else None)


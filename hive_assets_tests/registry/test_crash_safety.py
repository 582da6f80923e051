"""Crash safety of registry writes: a real `mlflow server` killed in the middle of a promotion and of a
rollback (issue 21), and a document-store write failed between the alias move and its ledger row (issue 8
item 6), then retried or completed by the next look or command."""

from __future__ import annotations

import json
import signal

import dagster as dg
import pytest

from hive_assets import clock, registry
from hive_assets.cli._main import main
from hive_assets.data import StoreUnavailable
from hive_assets.defs import build_defs
from hive_assets.defs.registry.assets import RegisterConfig, registered_model_version
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.rollout.assets import ab_test_outcome
from hive_assets.defs.rollout.sensors import ab_test_check_sensor
from hive_assets.defs.runs.lease import RUN_LEASE
from hive_assets.defs.simulator.daemon import InProcessDaemon
from hive_assets.rollout import open_test
from hive_assets_tests.conftest import start_mlflow_server, stop_process
from hive_assets_tests.registry.conftest import ledger, log_run, record_gate

pytestmark = pytest.mark.services
ME = "user:tester"


def _stages(client):
    return {v.version: v.current_stage for v in client.search_model_versions("name='business-evaluator'")}


class KillableServer:
    """A real `mlflow server` of this module's own (the session's shared one must stay up), SIGKILLed by the
    tests and restarted on the same port and registry; the tests share it to pay its start once."""

    def __init__(self, root):
        self.root = root
        self.proc, self.url = start_mlflow_server(root)
        self.port = int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        stop_process(self.proc, signal.SIGKILL)

    @property
    def dead(self) -> bool:
        return self.proc.poll() is not None

    def restart(self) -> None:
        self.proc, _ = start_mlflow_server(self.root, self.port)

    def stop(self) -> None:
        if not self.dead:
            stop_process(self.proc)


@pytest.fixture(scope="module")
def killable_server(tmp_path_factory, small_models):
    server = KillableServer(tmp_path_factory.mktemp("killable-mlflow"))
    models, _ = small_models
    server.runs = [log_run(server.url, "business", models[i])[0] for i in range(2)]  # logged once, registered per test
    yield server
    server.stop()


@pytest.fixture
def killable(killable_server, store, monkeypatch):
    """The killable server, up, with versions 1 and 2 of business-evaluator (gates passed) and nothing else;
    MLflow's client fails fast on a dead server (no retries with backoff); the Production mirror on."""
    server = killable_server
    if server.dead:
        server.restart()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    monkeypatch.setenv(registry.MIRROR_PRODUCTION_ENV, "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    client = registry.client_for(server.url)
    if client.search_registered_models("name='business-evaluator'"):
        client.delete_registered_model("business-evaluator")  # versions count from 1 again
    for run_id in server.runs:
        record_gate(store, "business", run_id)
        registry.register(client, store, "business", run_id, actor=ME)
    return server, client


def _kill_at(server: KillableServer, point: str):
    def hook(step: str) -> None:
        if step == point:
            server.kill()
    return hook


@pytest.mark.parametrize("kill_after", ["alias_moved", "production_mirrored"])
def test_killing_the_mlflow_server_mid_promotion_then_a_retry_completes(kill_after, store, killable):
    server, client = killable
    registry.promote(client, store, "business", "1", actor=ME)
    rows_before = ledger(store, "business")

    with pytest.raises(Exception) as failure:
        registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better",
                         after_step=_kill_at(server, kill_after))
    assert not isinstance(failure.value, registry.RegistryError)
    assert server.dead  # the server really died mid-promotion
    assert ledger(store, "business") == rows_before  # the ledger never records a move it did not see done

    server.restart()  # same backend store
    # the alias is a single server-side write: fully moved (the kill came after it), never half-set
    assert registry.alias_version(client, "business", "champion").version == "2"
    assert _stages(client)["2"] == ("Production" if kill_after == "production_mirrored" else "None")
    assert registry.previous_champion(client, store, "business") == "1"

    retry = registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better")
    assert (retry["moved"], retry["recorded"], retry["previous_version"]) == (False, True, "1")
    assert registry.ledger_agrees(client, store, "business")
    assert _stages(client) == {"1": "Archived", "2": "Production"}
    assert [t.version for t in registry.alias_history(store, "business")] == ["1", "2"]
    # a second retry has nothing left to do
    n = len(ledger(store, "business"))
    registry.promote(client, store, "business", "2", actor=ME)
    assert len(ledger(store, "business")) == n


def _interrupted_promotion(store, server, client) -> dict:
    """v1 champion, then the promotion of v2 with the server SIGKILLed after `champion` moved: the mirror and
    the ledger row unwritten, the intent `intended`. Returns it, the server up again."""
    registry.promote(client, store, "business", "1", actor=ME)
    with pytest.raises(Exception) as failure:
        registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better",
                         after_step=_kill_at(server, "alias_moved"))
    assert not isinstance(failure.value, (AssertionError, registry.RegistryError)) and server.dead
    (intent,) = registry.unfinished_intents(store, "business")
    assert (intent["operation"], intent["params"]["version"]) == ("promote", "2")
    server.restart()
    return intent


def test_doctor_reports_an_interrupted_promotion_and_fix_completes_it(store, killable, capsys):
    """An intent left `intended` (a promotion killed between its alias write and its ledger row) was not among
    what `hive doctor` reported: it names it (specialist, operation, since when, what completes it), not the
    `done` ones, and `--fix` completes it as the next registry command would, once."""
    server, client = killable
    intent = _interrupted_promotion(store, server, client)
    capsys.readouterr()

    assert main(["doctor", "--json"]) == 1  # read-only: found, nothing changed
    found = json.loads(capsys.readouterr().out)
    (pending,) = found["unfinished_intents"]  # the done promotion of v1 is not reported
    assert (pending["intent_id"], pending["specialist"], pending["operation"], pending["target"], pending["actor"]) \
        == (intent["intent_id"], "business", "promote", "v2", ME)
    assert pending["since"] == registry.intent_recorded_at(intent)
    assert pending["completes_it"].startswith("the next registry or A/B command for business")
    assert pending["completes_it"].endswith(
        "or rerunning `hive deploy promote --specialist business --model-version 2`")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"unfinished promote v2 of business since {pending['since']}, decided by {ME}" in out, out
    assert "`hive doctor --fix` completes it now" in out and "1 problem(s)" in out
    assert registry.get_intent(store, intent["intent_id"])["state"] == registry.INTENDED
    assert not registry.ledger_agrees(client, store, "business")

    assert main(["doctor", "--fix"]) == 0
    out = capsys.readouterr().out
    assert (f"fixed: promote v2 of business interrupted at {pending['since']} completed (intent "
            f"{intent['intent_id']})") in out, out
    done = registry.get_intent(store, intent["intent_id"])
    assert (done["state"], done["completed_by"]) == (registry.DONE, "hive doctor")
    row = registry.last_alias_row(store, "business", "champion")  # the decision's own actor and reason
    assert (row["model_version"], row["details"]["previous_version"], row["actor"], row["reason"]) == \
        ("2", "1", ME, "v2 is better")
    # dated when the promotion was decided (its alias moved then: `deploy history` named v1 as champion until the
    # fix), the completion beside it
    from hive_assets.data import to_utc

    assert to_utc(row["recorded_at"]) == to_utc(intent["recorded_at"]) < to_utc(row["details"]["completed_at"])
    assert registry.ledger_agrees(client, store, "business") and _stages(client) == {"1": "Archived", "2": "Production"}
    lease = store.find_one("run_leases", {"lease_id": "operator:business"})  # taken as the verbs take it, given back
    assert lease["state"] == "released" and lease["owner_run_id"].startswith("hive-doctor-")

    rows = ledger(store, "business")
    assert main(["doctor", "--fix"]) == 0  # nothing left: no second row
    assert "no unfinished decisions" in capsys.readouterr().out and ledger(store, "business") == rows


def test_a_rerun_of_an_interrupted_promotion_says_it_completed_it(store, killable, capsys):
    """The operator's rerun of `hive deploy promote` completes the promotion a crash interrupted (before its
    own action, as every registry command does first). It printed "already in place, ledger already agreed" as
    if nothing had been pending; it says which promotion it completed and when that one was interrupted."""
    server, client = killable
    intent = _interrupted_promotion(store, server, client)
    capsys.readouterr()

    assert main(["deploy", "promote", "--specialist", "business", "--model-version", "2"]) == 0
    out = capsys.readouterr().out
    assert (f"completed the promotion interrupted at {registry.intent_recorded_at(intent)} ({intent['intent_id']}): "
            "business-evaluator@champion -> v2 (previous: 1; already in place, ledger written)") in out, out
    assert registry.get_intent(store, intent["intent_id"])["state"] == registry.DONE
    row = registry.last_alias_row(store, "business", "champion")
    assert (row["model_version"], row["actor"], row["reason"]) == ("2", ME, "v2 is better")
    assert registry.ledger_agrees(client, store, "business")

    intents = list(store.find("decision_intents", {}))
    assert main(["deploy", "promote", "--specialist", "business", "--model-version", "2"]) == 0  # nothing pending
    out = capsys.readouterr().out
    assert "completed" not in out, out
    assert "this promotion was already done: business-evaluator@champion -> v2 since " in out, out
    assert list(store.find("decision_intents", {})) == intents  # no second, empty intent


def _champion(client) -> str:
    return registry.alias_version(client, "business", registry.CHAMPION).version


def _rollbacks(store) -> list[dict]:
    return [r for r in ledger(store, "business") if r["kind"] == "rollback"]


def _interrupted_rollback(store) -> dict:
    """The one unfinished intent: the rollback of v2 to v1, recorded before the crash."""
    (intent,) = registry.unfinished_intents(store, "business")
    assert (intent["operation"], intent["params"]["version"], intent["params"]["rolled_back_from"]) == \
        ("rollback", "1", "2")
    return intent


def _rerun_is_a_no_op(store, client, capsys) -> None:
    rows = ledger(store, "business")
    assert main(["deploy", "rollback", "--specialist", "business"]) == 0
    out = capsys.readouterr().out
    assert "this rollback was already done" in out and "nothing changed" in out, out
    assert _champion(client) == "1" and ledger(store, "business") == rows


def test_a_rollback_killed_at_its_writes_is_completed_by_the_next_look_or_command(store, killable, capsys):
    """The rollback of v2 to v1, with the server SIGKILLed at its first alias write (`champion`), then at
    its second registry write (the Production mirror, after `champion` moved). The next look (one
    `ab_test_check_sensor` tick and the resume run it requests) and the operator's next `hive deploy
    rollback` complete it; a rerun of the completed rollback is a no-op that says so."""
    server, client = killable
    registry.promote(client, store, "business", "1", actor=ME)
    registry.promote(client, store, "business", "2", actor=ME)

    # 1. killed at the first alias write: nothing moved, the intent is recorded
    with pytest.raises(Exception) as failure:
        registry.rollback(client, store, "business", actor=ME, reason="v2 misbehaves",
                          after_step=_kill_at(server, "alias_write"))
    assert not isinstance(failure.value, (AssertionError, registry.RegistryError))
    assert server.dead  # the server really died at the write
    intent = _interrupted_rollback(store)
    assert not _rollbacks(store)
    server.restart()
    assert _champion(client) == "2" and _stages(client)["2"] == "Production"  # the champion never moved

    # the next look: one tick of the A/B sensor (no A/B test is running) requests a resume run
    defs = build_defs()
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        requests = ab_test_check_sensor.evaluate_tick(context).run_requests
        assert [(r.partition_key, r.tags.get("hive/resume_intent")) for r in requests] == \
            [("business", intent["intent_id"])]
        run = InProcessDaemon(instance, defs).launch(clock.now(), "ab_test_check", requests[0],
                                                     sensor=ab_test_check_sensor.name)
        assert run is not None and run.success
    assert _champion(client) == "1" and _stages(client) == {"1": "Production", "2": "Archived"}
    assert registry.ledger_agrees(client, store, "business")
    (row,) = _rollbacks(store)  # written with the operator's actor and reason, completed by the sensor's run
    assert (row["model_version"], row["details"]["previous_version"], row["actor"], row["reason"]) == \
        ("1", "2", ME, "v2 misbehaves")
    assert row["details"]["completed_by"].startswith(f"sensor:{ab_test_check_sensor.name}")
    assert registry.get_intent(store, intent["intent_id"])["state"] == registry.DONE
    _rerun_is_a_no_op(store, client, capsys)

    # 2. v2 champion again, then a rollback killed at its second registry write: `champion` moved (one atomic
    # server-side write), the Production mirror and the ledger row did not
    registry.promote(client, store, "business", "2", actor=ME, reason="fixed")
    rows = ledger(store, "business")
    with pytest.raises(Exception) as failure:
        registry.rollback(client, store, "business", actor=ME, reason="v2 misbehaves again",
                          after_step=_kill_at(server, "alias_moved"))
    assert not isinstance(failure.value, (AssertionError, registry.RegistryError))
    assert server.dead
    intent = _interrupted_rollback(store)
    assert ledger(store, "business") == rows  # the ledger is never ahead of the registry
    server.restart()
    assert _champion(client) == "1" and _stages(client) == {"1": "Archived", "2": "Production"}
    assert not registry.ledger_agrees(client, store, "business")

    # the next command: the operator reruns the rollback from the shell, which completes it and says so
    assert main(["deploy", "rollback", "--specialist", "business"]) == 0
    out = capsys.readouterr().out
    assert (f"completed the rollback interrupted at {registry.intent_recorded_at(intent)} ({intent['intent_id']}): "
            "business-evaluator@champion -> v1 (previous: 2; already in place, ledger written)") in out, out
    assert _champion(client) == "1" and _stages(client) == {"1": "Production", "2": "Archived"}
    assert registry.ledger_agrees(client, store, "business")
    assert len(_rollbacks(store)) == 2
    row = _rollbacks(store)[-1]
    assert (row["model_version"], row["details"]["previous_version"], row["actor"], row["reason"]) == \
        ("1", "2", ME, "v2 misbehaves again")
    assert registry.get_intent(store, intent["intent_id"])["state"] == registry.DONE
    _rerun_is_a_no_op(store, client, capsys)


class FailingLedgerStore:
    """The real store, except that the next `upsert_many` of a row of `kinds` (alias moves) into
    `model_decisions` raises once (a fault the real store cannot produce on demand)."""

    armed = True
    kinds = registry.ALIAS_KINDS

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def upsert_many(self, collection, docs):
        docs = list(docs)
        if (collection == "model_decisions" and FailingLedgerStore.armed
                and any(d["kind"] in FailingLedgerStore.kinds for d in docs)):
            FailingLedgerStore.armed = False
            raise StoreUnavailable("injected: the document store went away")
        return self._real.upsert_many(collection, docs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()


class FailingLedgerStoreResource(DocumentStoreResource):
    def open(self):
        return FailingLedgerStore(super().open())


def _inputs(run_id: str, model_uri: str) -> tuple[dict, dict]:
    trained = {"mlflow_run_id": run_id, "model_uri": model_uri, "data_snapshot_hash": "snap-r6",
               "feature_schema_version": "x", "model_type": "random_forest"}
    report = {"gate": {"passed": True, "summary": "ok"}, "champion_comparison": None,
              "metrics": {"accuracy": 0.8, "macro_f1": 0.7, "confidence_mean": 0.6},
              "mlflow_run_id": run_id, "data_snapshot_hash": "snap-r6"}  # the report of this model
    return trained, report


def test_registered_model_version_retry_after_a_failed_ledger_write_completes_it(
        clean_registry, hive_home, store, small_models, mlflow_server):
    client = clean_registry
    models, _ = small_models
    run_id, model_uri = log_run(mlflow_server, "business", models[0])
    trained, report = _inputs(run_id, model_uri)
    resources = {"mlflow": MlflowResource(tracking_uri=mlflow_server), "document_store": FailingLedgerStoreResource(),
                 "platform": PlatformSettings(), "run_lease": RUN_LEASE}

    def materialize():
        context = dg.build_asset_context(partition_key="business")
        return registered_model_version(context, config=RegisterConfig(), trained_model=trained,
                                        validation_report=report, **resources)

    FailingLedgerStore.armed = True
    with pytest.raises(dg.RetryRequested) as retried:  # the store's outage: the step asks to be retried
        materialize()
    assert "injected: the document store went away (attempt 1 of 4)" in str(retried.value.__cause__)
    # the failure left the alias moved and its ledger row missing
    assert registry.alias_version(client, "business", "champion").version == "1"
    assert registry.last_alias_row(store, "business", "champion") is None
    assert not registry.ledger_agrees(client, store, "business")

    out = materialize().value  # the retry
    assert (out["version"], out["alias"], out["created"]) == ("1", "champion", False)
    assert registry.ledger_agrees(client, store, "business")
    kinds = sorted(r["kind"] for r in ledger(store, "business"))
    assert kinds == ["alias_move", "registration"]
    row = registry.last_alias_row(store, "business", "champion")
    assert (row["model_version"], row["details"]["previous_version"], row["data_snapshot_hash"]) == ("1", None,
                                                                                                     "snap-r6")
    materialize()  # and once more: nothing is written twice
    assert len(ledger(store, "business")) == 2


def test_doctor_finds_a_version_created_without_its_registration_row_and_fix_records_it(
        clean_registry, hive_home, store, small_models, mlflow_server, monkeypatch, capsys, request):
    """A run that stopped between `create_model_version` and the registration row (here the store failed there,
    as a killed pod would leave it) left a version no ledger row names: `hive doctor` said nothing. It names
    it and the run; --fix records the row with the step's own id, so the step's re-execution adds none and
    sets the alias. A version registered by hand in MLflow (no artifact checksum) is not the platform's."""
    client = clean_registry
    models, _ = small_models
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    run_id, model_uri = log_run(mlflow_server, "business", models[0])
    trained, report = _inputs(run_id, model_uri)
    resources = {"mlflow": MlflowResource(tracking_uri=mlflow_server), "document_store": FailingLedgerStoreResource(),
                 "platform": PlatformSettings(), "run_lease": RUN_LEASE}
    context = dg.build_asset_context(partition_key="business")
    request.addfinalizer(context.__exit__)  # its ephemeral instance, closed before the interpreter's exit

    def materialize():
        return registered_model_version(context, config=RegisterConfig(), trained_model=trained,
                                        validation_report=report, **resources)

    monkeypatch.setattr(FailingLedgerStore, "kinds", ("registration",))
    FailingLedgerStore.armed = True
    with pytest.raises(dg.RetryRequested):
        materialize()  # and the run is never retried: its pod died
    assert [v.version for v in client.search_model_versions("name='business-evaluator'")] == ["1"]
    assert ledger(store, "business") == []
    by_hand, _ = log_run(mlflow_server, "business", models[1])
    client.create_model_version("business-evaluator", source=f"runs:/{by_hand}/model", run_id=by_hand)  # v2
    capsys.readouterr()

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert (f"business: v1 (MLflow run {run_id}) was created without its registration row in the ledger: Dagster "
            f"run {context.run_id} stopped right after; re-executing it from its failure records it and sets the "
            "alias it would have set; `hive doctor --fix` records the registration now") in out, out
    assert "v2" not in out
    assert main(["doctor", "--fix"]) == 0
    out = capsys.readouterr().out
    assert "fixed: registration of business v1 recorded (no alias set" in out, out
    [row] = ledger(store, "business")
    assert (row["kind"], row["decision_id"], row["model_version"], row["dagster_run_id"], row["actor"],
            row["details"]["mlflow_run_id"], row["data_snapshot_hash"]) == (
        "registration", "register:business:1", "1", context.run_id, "hive doctor", run_id, "snap-r6")
    assert registry.alias_version(client, "business", "champion") is None  # the run's decision, not the doctor's
    assert main(["doctor"]) == 0

    out = materialize().value  # the run re-executed from its failure
    assert (out["version"], out["alias"], out["created"]) == ("1", "champion", False)
    assert sorted(r["kind"] for r in ledger(store, "business")) == ["alias_move", "registration"]


def test_ab_test_outcome_mirrors_the_split_when_the_test_record_already_exists(
        clean_registry, hive_home, store, small_models, mlflow_server):
    """The state a crash right after `open_test` leaves: the record exists, the registry knows nothing."""
    client = clean_registry
    models, _ = small_models
    for i in range(2):
        run_id, _ = log_run(mlflow_server, "business", models[i])
        record_gate(store, "business", run_id)
        registry.register(client, store, "business", run_id, actor=ME)
    registry.promote(client, store, "business", "1", actor=ME)
    registry.set_alias(client, store, "business", "challenger", "2", actor=ME)
    test, created = open_test(store, "business", "1", "2", 10.0, dagster_run_id="crashed-run")
    assert created
    result = dg.materialize([ab_test_outcome], partition_key="business", instance=dg.DagsterInstance.ephemeral(),
                            resources={"mlflow": MlflowResource(tracking_uri=mlflow_server),
                                       "document_store": DocumentStoreResource(), "platform": PlatformSettings()})
    out = result.output_for_node("ab_test_outcome")
    assert out["test_id"] == test["test_id"]
    tags = client.get_registered_model("business-evaluator").tags
    assert (tags["ab_test_id"], tags["ab_salt"], float(tags["ab_challenger_traffic_percent"]),
            tags["ab_challenger_version"]) == (test["test_id"], test["salt"], 10.0, "2")
    assert client.get_model_version_by_alias("business-evaluator", "ab-test-v2").version == "2"
    steps = [r for r in ledger(store, "business") if r["kind"] == "traffic_step"]
    assert len(steps) == 1 and steps[0]["details"]["test_id"] == test["test_id"]


# -- A/B test records out of step with the registry: what no intent names (audit, stop 60) ------------------
def _opened_without_effects(store, client) -> dict:
    """v1 champion, v2 challenger, and v2's test opened as `start_test` opens it, its process dead right after
    the test's document was written: no `ab-test-v2` alias, no split in the tags, no ledger row."""
    registry.promote(client, store, "business", "1", actor=ME)
    registry.ensure_alias(client, store, "business", "challenger", "2", actor=ME, reason="registered")
    test, created = open_test(store, "business", "1", "2", 10.0)
    assert created
    return test


def test_doctor_finds_a_test_opened_without_its_registry_effects_and_fix_completes_them(store, killable, capsys):
    """A run killed inside a test's opening left the test `running` in the store while serving, which reads the
    registry's tags, routed nothing to it; `hive doctor` said "no unfinished decisions" (exit 0) and a rerun
    of the graph skipped the A/B step (nothing changed since v2). The doctor names what is missing; --fix
    writes it as the next look would, once."""
    _, client = killable
    test = _opened_without_effects(store, client)
    capsys.readouterr()

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert (f"business: A/B test {test['test_id']} running at 10 %, missing: alias ab-test-v2; the split in the "
            "registered model's tags (what serving reads); 2 ledger row(s) (ab-alias:") in out, out
    assert "`hive doctor --fix` completes it now" in out
    assert client.get_registered_model("business-evaluator").tags.get("ab_test_id") is None  # read only

    assert main(["doctor", "--fix"]) == 0
    out = capsys.readouterr().out
    assert "fixed: A/B test records of business brought in line with the registry: alias:ab-test-v2" in out, out
    tags = client.get_registered_model("business-evaluator").tags
    assert (tags["ab_test_id"], tags["ab_challenger_version"], tags["ab_test_status"]) == (test["test_id"], "2",
                                                                                           "running")
    assert registry.alias_version(client, "business", "ab-test-v2").version == "2"
    assert {r["decision_id"] for r in ledger(store, "business")} >= {f"ab-open:{test['test_id']}",
                                                                     f"ab-alias:{test['test_id']}"}
    rows = ledger(store, "business")
    assert main(["doctor", "--fix"]) == 0
    assert "A/B tests in step with the registry" in capsys.readouterr().out and ledger(store, "business") == rows


def test_doctor_fix_of_an_interrupted_promotion_stops_the_test_it_ended(store, killable, capsys):
    """A promotion of v2 killed after its alias write while v2's test ran: `--fix` completed the promotion
    but left the test running on arms that no longer exist (the registry jobs stop it after every action);
    the test stopped at the next look only."""
    server, client = killable
    test = _opened_without_effects(store, client)
    assert main(["doctor", "--fix"]) == 0  # the test's effects in place first
    with pytest.raises(Exception):
        registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better",
                         after_step=_kill_at(server, "alias_moved"))
    assert server.dead
    server.restart()
    capsys.readouterr()

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "unfinished promote v2 of business" in out
    assert (f"business: A/B test {test['test_id']} running at 10 %, although champion moved to v2 outside the "
            "test") in out, out
    assert main(["doctor", "--fix"]) == 0
    stopped = store.find_one("ab_tests", {"test_id": test["test_id"]})
    assert stopped["status"] == "stopped" and stopped["end_reason"].startswith("champion moved to v2")
    assert client.get_registered_model("business-evaluator").tags["ab_test_status"] == "stopped"
    assert registry.alias_version(client, "business", "champion").version == "2"


def test_doctor_fix_opens_the_test_of_a_challenger_registered_while_another_ran(store, killable, small_models,
                                                                                 capsys):
    """A retraining killed in registration after `challenger` moved to its new version v3, while v2's test
    ran: serving stopped routing (the alias is not on the tested version), `hive status` named v3 as the
    tested challenger, and `hive doctor` found nothing. The doctor names it; --fix supersedes v2's test with
    v3's at the default share, as the registration's own A/B step would have."""
    server, client = killable
    test = _opened_without_effects(store, client)
    assert main(["doctor", "--fix"]) == 0
    run_id, _ = log_run(server.url, "business", small_models[0][2])
    record_gate(store, "business", run_id)
    registry.register(client, store, "business", run_id, actor=ME)
    registry.ensure_alias(client, store, "business", "challenger", "3", actor=ME, reason="registered")
    capsys.readouterr()

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert (f"business: A/B test {test['test_id']} running at 10 %, although challenger v3 was registered since: "
            "its test never opened (serving stopped routing to v2)") in out, out
    assert main(["doctor", "--fix"]) == 0
    assert store.find_one("ab_tests", {"test_id": test["test_id"]})["status"] == "superseded"
    new = store.find_one("ab_tests", {"specialist_type": "business", "status": "running"})
    assert (new["challenger_version"], new["champion_version"], float(new["traffic_percent"])) == ("3", "1", 10.0)
    assert client.get_registered_model("business-evaluator").tags["ab_test_id"] == new["test_id"]
    assert main(["doctor"]) == 0

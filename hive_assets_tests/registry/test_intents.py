"""Intent before effect and idempotent rollback, on a real `mlflow server`: a rerun of a completed rollback
is a no-op that says so (by the ledger, or by an explicit idempotency key), from Python and from the CLI."""

from __future__ import annotations

import pytest

from hive_assets import registry
from hive_assets_tests.registry.conftest import ledger, record_gate

pytestmark = pytest.mark.services
ME = "user:tester"


def _champion(client) -> str:
    return registry.alias_version(client, "business", registry.CHAMPION).version


def test_a_rerun_of_a_completed_rollback_is_a_no_op_that_says_so(clean_registry, store, business_runs, mlflow_server,
                                                                 monkeypatch, capsys):
    client = clean_registry
    for run_id in business_runs[:3]:
        record_gate(store, "business", run_id)
        registry.register(client, store, "business", run_id, actor=ME)
    for version in ("1", "2", "3"):
        registry.promote(client, store, "business", version, actor=ME)

    first = registry.rollback(client, store, "business", actor=ME, reason="v3 misbehaves")
    assert (first["version"], first["rolled_back_from"], first["moved"]) == ("2", "3", True)
    rows = len(ledger(store, "business"))
    again = registry.rollback(client, store, "business", actor=ME, reason="v3 misbehaves")
    assert again["noop"] and again["message"].startswith("this rollback was already done")
    assert "rolled back from v3 to v2" in again["message"]
    assert _champion(client) == "2" and len(ledger(store, "business")) == rows  # not v2 -> v3 or v1
    assert registry.rollback(client, store, "business", "2", actor=ME)["noop"]  # the same target: the same rollback

    further = registry.rollback(client, store, "business", "1", actor=ME)  # rolling back further is explicit
    assert (further["version"], further["rolled_back_from"]) == ("1", "2") and _champion(client) == "1"

    keyed = registry.rollback(client, store, "business", "3", actor=ME, idempotency_key="incident-42")
    assert keyed["version"] == "3" and _champion(client) == "3"
    registry.promote(client, store, "business", "2", actor=ME)  # the world moves on
    replay = registry.rollback(client, store, "business", "3", actor=ME, idempotency_key="incident-42")
    assert replay["noop"] and "rollback 'incident-42' was already done" in replay["message"]
    assert _champion(client) == "2"  # a replayed key changes nothing, even after later moves
    intents = list(store.find("decision_intents", {"specialist_type": "business"}))
    assert intents and {i["state"] for i in intents} == {"done"}
    assert registry.ledger_agrees(client, store, "business")

    # the operator's rerun from the shell: exit 0, says so, moves nothing
    from hive_assets.cli._main import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    assert main(["deploy", "rollback", "--model-type", "business"]) == 0  # v2 -> v3 (v3 held it before v2)
    capsys.readouterr()
    rows = len(ledger(store, "business"))
    assert main(["deploy", "rollback", "--model-type", "business"]) == 0
    out = capsys.readouterr().out
    assert "this rollback was already done" in out and "nothing changed" in out
    assert _champion(client) == "3" and len(ledger(store, "business")) == rows


def test_a_rerun_of_a_completed_promotion_records_nothing_and_says_so(clean_registry, store, business_runs,
                                                                       mlflow_server, monkeypatch, capsys):
    """A promotion rerun with the same arguments once it completed recorded a second `done` intent that did
    nothing; it records nothing and says the promotion was already done, from Python and from the shell."""
    client = clean_registry
    for run_id in business_runs[:2]:
        record_gate(store, "business", run_id)
        registry.register(client, store, "business", run_id, actor=ME)
    registry.promote(client, store, "business", "1", actor=ME, mirror=False)
    registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better", mirror=False)

    def recorded():
        return list(store.find("decision_intents", {"specialist_type": "business"})), ledger(store, "business")

    before = recorded()
    again = registry.promote(client, store, "business", "2", actor=ME, reason="v2 is better", mirror=False)
    assert again["noop"] and (again["version"], again["moved"], again["recorded"]) == ("2", False, False)
    assert again["message"].startswith("this promotion was already done: business-evaluator@champion -> v2 since ")
    assert f"(promotion by {ME})" in again["message"] and again["message"].endswith("; nothing changed")
    assert recorded() == before and _champion(client) == "2"
    # with the Production mirror asked for and not in place, the rerun still has that effect to write
    mirrored = registry.promote(client, store, "business", "2", actor=ME, mirror=True)
    assert not mirrored.get("noop") and mirrored["production_mirrored"]
    assert registry.promote(client, store, "business", "2", actor=ME, mirror=True)["noop"]

    from hive_assets.cli._main import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    before = recorded()
    capsys.readouterr()
    assert main(["deploy", "promote", "--specialist", "business", "--model-version", "2"]) == 0
    out = capsys.readouterr().out
    assert "this promotion was already done: business-evaluator@champion -> v2 since " in out, out
    assert "nothing changed" in out and "completed" not in out
    assert main(["deploy", "alias", "--specialist", "business", "--alias", "champion", "--model-version", "2"]) == 0
    assert "this promotion was already done" in capsys.readouterr().out
    assert recorded() == before and _champion(client) == "2"


def test_a_cli_error_names_the_cause_and_the_alias_state(clean_registry, store, business_runs, mlflow_server,
                                                        monkeypatch, capsys):
    client = clean_registry
    record_gate(store, "business", business_runs[0])
    registry.register(client, store, "business", business_runs[0], actor=ME)
    registry.promote(client, store, "business", "1", actor=ME)
    from hive_assets.cli._main import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    assert main(["deploy", "promote", "--model-type", "business", "--model-version", "7"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2].startswith("error: business-evaluator has no version 7 (run ")
    assert "DagsterExecutionStepExecutionError" not in "\n".join(err)
    assert err[-1] == "now: business-evaluator@champion -> v1 (read back from MLflow)"

    # MLflow unreachable before anything is launched: said at once, nothing launched
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:s3cret@127.0.0.1:9")
    assert main(["deploy", "promote", "--model-type", "business", "--model-version", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hive deploy promote: error: MLflow at http://user:***@127.0.0.1:9 unreachable (")
    assert "s3cret" not in "\n".join(err)
    # ... and when it stops answering during a run, the state line says how to check (the verbs' own spelling)
    from hive_assets.cli._deploy import alias_state

    state = alias_state("business", "champion")
    assert state.startswith("now: business-evaluator@champion unknown (MLflow at http://user:***@127.0.0.1:9 unreachable")
    assert "check with `hive deploy list --specialist business`" in state and "s3cret" not in state


def test_the_alias_state_says_when_the_ledger_could_not_be_read(clean_registry, store, business_runs, mlflow_server,
                                                                 monkeypatch):
    """The store stopped answering after the alias moved (its ledger row unwritten): the state line named the
    alias and nothing else, and nothing here tells an alias with its row from one without."""
    client = clean_registry
    record_gate(store, "business", business_runs[0])
    registry.register(client, store, "business", business_runs[0], actor=ME)
    registry.promote(client, store, "business", "1", actor=ME)
    from hive_assets.cli._deploy import alias_state

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MONGODB_URI", "mongodb://hive:s3cret@127.0.0.1:9/?serverSelectionTimeoutMS=300")
    state = alias_state("business", "champion")
    assert state.startswith("now: business-evaluator@champion -> v1 (read back from MLflow); the ledger could not be "
                            "read (the document store does not answer): run the command again once it answers")
    assert "s3cret" not in state

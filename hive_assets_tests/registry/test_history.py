"""The ledger's time-T answer, without MLflow: tenures from alias rows written as the operations write them."""

from __future__ import annotations

from datetime import timedelta

from hive_assets import registry


def _move(store, version, previous, kind="promotion", alias="champion", specialist="technical"):
    return registry.record_decision(store, specialist, kind, actor="user:a", reason=f"to v{version}",
                                    model_version=version, details={"alias": alias, "previous_version": previous})


def test_holder_at_walks_tenures_and_ignores_other_aliases_and_specialists(store):
    assert registry.holder_at(store, "technical") is None
    rows = [_move(store, "1", None), _move(store, "5", None, alias="challenger"), _move(store, "2", "1"),
            _move(store, "9", None, specialist="business"), _move(store, "1", "2", kind="rollback")]
    registry.record_decision(store, "technical", "gate_verdict", actor="x", reason="y", details={"passed": True})
    champion_rows = [rows[0], rows[2], rows[4]]
    times = [r["recorded_at"] for r in champion_rows]
    assert registry.holder_at(store, "technical", times[0] - timedelta(microseconds=1)) is None
    for row, at in zip(champion_rows, times):
        tenure = registry.holder_at(store, "technical", at)  # a tenure starts at its row's time, inclusive
        assert (tenure.version, tenure.reason, tenure.decision_id) == (row["model_version"], row["reason"],
                                                                       row["decision_id"])
    history = registry.alias_history(store, "technical")
    assert [(t.version, t.kind, t.previous_version) for t in history] == [
        ("1", "promotion", None), ("2", "promotion", "1"), ("1", "rollback", "2")]
    assert [t.until for t in history] == [times[1], times[2], None]
    assert registry.holder_at(store, "technical", alias="challenger").version == "5"
    assert registry.holder_at(store, "business").version == "9"


def test_an_a_b_alias_tenure_ends_when_its_test_closes(store, monkeypatch):
    """`deploy history --alias challenger` showed a challenger "until" the next challenger's move, or "until
    now" after its test had closed and the alias was gone: a test's closure (not a supersession, which
    leaves `challenger` to the next move) ends its version's tenure, and nobody holds the alias after it."""
    def at(hour: int) -> None:
        monkeypatch.setenv("HIVE_SIMULATED_NOW", f"2026-03-02T{hour:02d}:00:00Z")

    def closed(version: str, status: str) -> None:
        registry.record_decision(store, "technical", "ab_test_closed", actor="sensor:x", reason=status,
                                 model_version=version, details={"status": status, "test_id": f"t{version}"})

    at(1)
    _move(store, "1", None, kind="alias_move", alias="challenger")
    at(2)
    closed("1", "stopped")
    at(3)
    _move(store, "2", "1", kind="alias_move", alias="challenger")
    at(4)
    closed("1", "rolled_back")  # a later closure of another version's test ends nothing of v2
    at(5)
    history = registry.alias_history(store, "technical", "challenger")
    assert [(t.version, t.since.hour, t.until.hour if t.until else None) for t in history] == [("1", 1, 2),
                                                                                               ("2", 3, None)]
    when = lambda hour: history[0].since.replace(hour=hour)  # noqa: E731
    assert registry.holder_at(store, "technical", when(1), alias="challenger").version == "1"
    assert registry.holder_at(store, "technical", when(2), alias="challenger") is None  # removed with its test
    assert registry.holder_at(store, "technical", when(3), alias="challenger").version == "2"
    closed("2", "superseded")  # a supersession moves challenger to the next test's version: no end of its own
    assert registry.alias_history(store, "technical", "challenger")[-1].until is None
    at(6)
    closed("2", "promoted")
    assert registry.alias_history(store, "technical", "challenger")[-1].until.hour == 6
    assert registry.holder_at(store, "technical", alias="challenger") is None
    assert [t.until for t in registry.alias_history(store, "technical")] == []  # champion: no rows, no tenures


def test_a_test_closed_and_its_version_s_next_test_opened_in_the_same_second_keeps_the_new_tenure(store,
                                                                                                  monkeypatch):
    """On a pinned clock `hive ab-test stop` then `start` of the same version share their second: the first
    test's closure (at the new tenure's start) ended the new `ab-test-v2` tenure at once, while MLflow held the
    alias and the test ran."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-03-02T01:00:00Z")
    _move(store, "2", None, kind="alias_move", alias="ab-test-v2")
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-03-02T05:00:00Z")
    registry.record_decision(store, "technical", "ab_test_closed", actor="user:a", reason="stopped", model_version="2",
                             details={"status": "stopped", "test_id": "t1"})
    second = _move(store, "2", None, kind="alias_move", alias="ab-test-v2")  # the same second, written after
    history = registry.alias_history(store, "technical", "ab-test-v2")
    assert [(t.since.hour, t.until.hour if t.until else None) for t in history] == [(1, 5), (5, None)]
    assert registry.holder_at(store, "technical", alias="ab-test-v2").decision_id == second["decision_id"]
    registry.record_decision(store, "technical", "ab_test_closed", actor="user:a", reason="stopped", model_version="2",
                             details={"status": "stopped", "test_id": "t2"})  # closed too, still in that second
    assert registry.alias_history(store, "technical", "ab-test-v2")[-1].until.hour == 5
    assert registry.holder_at(store, "technical", alias="ab-test-v2") is None

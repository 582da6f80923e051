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

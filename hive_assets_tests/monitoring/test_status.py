"""platform_status (`hive status`, the UI's platform_status) against documents written here by hand, in the
production shapes, and registry aliases set with MlflowClient on a real MLflow backend (SQLite): every
field of the view is compared with what these documents say, computed independently in the test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data import SQLiteStore
from hive_assets.monitoring import UntrainableData, format_status, platform_status, status_markdown
from hive_assets.registry import client_for

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def registry_client(tmp_path_factory):
    root = tmp_path_factory.mktemp("status-mlflow")
    client = client_for(f"sqlite:///{root / 'mlflow.db'}")
    client.create_registered_model("business-evaluator")
    for _ in range(3):
        client.create_model_version("business-evaluator", source=(root / "model").as_uri())
    client.set_registered_model_alias("business-evaluator", "champion", "2")
    client.set_registered_model_alias("business-evaluator", "challenger", "3")
    return client


def write_documents(store: SQLiteStore) -> None:
    store.upsert_many("model_decisions", [
        {"decision_id": "d1", "specialist_type": "business", "kind": "alias_move", "recorded_at": T0,
         "actor": "dagster:run-1", "reason": "first version", "model_version": "1",
         "details": {"alias": "champion", "previous_version": None}},
        {"decision_id": "d2", "specialist_type": "business", "kind": "promotion", "recorded_at": T0 + 80 * HOUR,
         "actor": "sensor:ab_test_check_sensor", "reason": "challenger significantly better", "model_version": "2",
         "details": {"alias": "champion", "previous_version": "1"}},
        # a row of another alias and of another specialist must not count
        {"decision_id": "d3", "specialist_type": "business", "kind": "alias_move", "recorded_at": T0 + 90 * HOUR,
         "actor": "dagster:run-3", "reason": "new version", "model_version": "3",
         "details": {"alias": "challenger", "previous_version": None}},
        {"decision_id": "d4", "specialist_type": "technical", "kind": "promotion", "recorded_at": T0 + 95 * HOUR,
         "actor": "user:x", "reason": "other", "model_version": "9", "details": {"alias": "champion"}},
    ])
    store.upsert_many("ab_tests", [
        {"test_id": "business_v2_old", "specialist_type": "business", "status": "promoted", "started_at": T0,
         "traffic_percent": 100.0, "verdict": "promote", "end_reason": "won"},
        {"test_id": "business_v3_new", "specialist_type": "business", "status": "running",
         "started_at": T0 + 90 * HOUR, "last_check_at": T0 + 96 * HOUR, "traffic_percent": 25.0, "verdict": "expand",
         "last_statistics": {"difference": {"estimate": 0.031, "lower": 0.004, "upper": 0.058}}},
    ])
    store.upsert_many("drift_monitoring", [
        {"check_id": "c1", "specialist_type": "business", "checked_at": T0 + 92 * HOUR, "decision": "drift",
         "drift_score": 0.4},
        {"check_id": "c2", "specialist_type": "business", "checked_at": T0 + 98 * HOUR, "decision": "no_drift",
         "drift_score": 0.05},
    ])
    store.upsert_many("retraining_triggers", [
        {"trigger_id": "feedback:business:a", "specialist_type": "business", "reason": "feedback",
         "triggered_at": T0 + 10 * HOUR, "status": "failed", "dagster_run_id": "r-old"},
        {"trigger_id": "drift:business:b", "specialist_type": "business", "reason": "drift",
         "triggered_at": T0 + 86 * HOUR, "status": "completed", "dagster_run_id": "r-new"},
    ])
    trained = T0 + 88 * HOUR
    feedback = []
    for i, (after, metadata) in enumerate([(1, {})] * 5 + [(-1, {})] * 2 + [(1, {"auto_generated": True})]):
        feedback.append({"feedback_id": f"f{i}", "opinion_id": f"o{i}", "plan_id": f"p{i}",
                         "specialist_type": "business", "human_recommendation": "approve", "human_rating": 1.0,
                         "submitted_by": "r", "submitted_at": trained + after * HOUR, "feedback_source": "human_expert",
                         "metadata": metadata})
    store.upsert_many("specialist_feedback", feedback)
    # the review queue on the clock's day (2026-01-09, the view is taken at 03:00): two requests made today
    # (one answered at 02:00), two made yesterday (one expired at 02:00, one still open); technical none
    day = datetime(2026, 1, 9, tzinfo=timezone.utc)
    business_requests(store, [
        ("q1", day + HOUR, day + 73 * HOUR, "open", None),
        ("q2", day + HOUR, day + 73 * HOUR, "answered", day + 2 * HOUR),
        ("q3", day - 70 * HOUR, day + 2 * HOUR, "open", None),
        ("q4", day - 14 * HOUR, day + 58 * HOUR, "open", None)])


def business_requests(store, rows) -> None:
    """Business's active review requests, one per (opinion, requested_at, expires_at, status, answered_at)."""
    store.upsert_many("review_requests", [
        {"request_id": f"review:business:{op}", "opinion_id": op, "plan_id": f"p-{op}", "specialist_type": "business",
         "requested_at": requested, "expires_at": expires, "status": status, "answered_at": answered,
         "selection": "active", "reason": "uncertainty", "rank": rank, "score": 0.5, "feedback_id": None}
        for rank, (op, requested, expires, status, answered) in enumerate(rows, start=1)])


def test_the_view_says_what_the_documents_say(hive_home, registry_client, monkeypatch):
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (T0 + 99 * HOUR).isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    write_documents(store)
    trained = T0 + 88 * HOUR
    drift_every, ab_every = timedelta(hours=6), timedelta(hours=6)
    business, technical = platform_status(
        store, registry_client, last_trained={"business": trained, "technical": None}, feedback_threshold=100,
        drift_interval=drift_every, ab_interval=ab_every, specialists=("business", "technical"), now=T0 + 99 * HOUR)

    assert (business.champion, business.challenger) == ("2", "3")  # the registry aliases
    assert business.champion_since == T0 + 80 * HOUR  # the ledger row that gave v2 the champion alias
    assert business.champion_why == "promotion: challenger significantly better (sensor:ab_test_check_sensor)"
    assert (business.test_id, business.traffic_percent, business.ab_verdict) == ("business_v3_new", 25.0, "expand")
    assert business.ab_estimate == 0.031 and business.ab_interval == (0.004, 0.058)
    assert (business.drift_decision, business.drift_score, business.drift_checked_at) == \
        ("no_drift", 0.05, T0 + 98 * HOUR)
    assert (business.feedback_since_training, business.feedback_threshold) == (5, 100)  # trusted, after training
    assert (business.retrain_reason, business.retrain_status, business.retrain_run_id) == ("drift", "completed", "r-new")
    # the A/B look is due at 96 h + 6 h less a tenth; the drift check at 98 h + 6 h less a tenth: the A/B look first
    assert (business.next_look, business.next_look_at) == ("A/B look", T0 + 96 * HOUR + ab_every * 0.9)

    assert (technical.champion, technical.challenger, technical.champion_since) == (None, None, None)
    # the ledger's d4 made technical's v9 champion, and the registry has no technical model at all
    assert technical.champion_why.startswith("the ledger's champion is v9, but the registry names none: its alias "
                                             "or version was removed outside the platform")
    assert technical.drift_decision is None and technical.retrain_reason is None and technical.next_look_at is None
    assert technical.feedback_since_training == 0
    assert business.review_queue == {"requested": 2, "answered": 1, "expired": 1, "open": 2}
    assert technical.review_queue == {"requested": 0, "answered": 0, "expired": 0, "open": 0}

    table = status_markdown([business, technical])
    rows = table.splitlines()
    assert len(rows) == 4 and rows[2].startswith("| business | v2 since 2026-01-08 08:00 |")
    assert "+0.031 [+0.004, +0.058] expand" in rows[2] and "5 / 100" in rows[2]
    assert "| technical | none |" in rows[3] and "never checked" in rows[3]
    assert rows[2].endswith("| 2 open; today 2 requested, 1 answered, 1 expired |")
    assert rows[3].endswith("| no request today |")
    text = format_status([business, technical], T0 + 99 * HOUR)
    assert text.startswith("platform clock: 2026-01-09 03:00 UTC") and "v3 at 25 %" in text
    assert "A/B look at 2026-01-09 05:24\n" in text + "\n" and "overdue" not in text
    # the clock moved past the look (`hive clock advance 6h`): it said a time already gone, as if to come
    later = format_status([business, technical], T0 + 105 * HOUR)
    assert "A/B look at 2026-01-09 05:24 (overdue: made at the next sensor tick)" in later
    assert business.as_dict()["ab_interval"] == [0.004, 0.058]
    assert business.feedback_held is None  # 5 of 100: nothing to hold


def test_a_reached_threshold_says_that_retraining_waits_for_the_running_test(hive_home, registry_client, monkeypatch):
    """The feedback sensor requests no retrain while the specialist's A/B test runs (a new version would
    supersede the challenger under test): the view says so next to the count, once the count reaches the
    threshold (5 trusted feedback here), and not below it."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (T0 + 99 * HOUR).isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    write_documents(store)

    def business(threshold: int):
        return platform_status(store, registry_client, last_trained={"business": T0 + 88 * HOUR},
                               feedback_threshold=threshold, drift_interval=HOUR, ab_interval=HOUR,
                               specialists=("business",), now=T0 + 99 * HOUR)[0]

    held = business(5)
    assert held.feedback_held == "A/B test business_v3_new running: retraining waits for its verdict"
    assert "5 / 5: A/B test business_v3_new running: retraining waits for its verdict" in format_status(
        [held], T0 + 99 * HOUR)
    assert business(6).feedback_held is None
    # once the test has ended, a reached threshold retrains: nothing held
    store.upsert_many("ab_tests", [dict(store.find_one("ab_tests", {"test_id": "business_v3_new"}), status="promoted")])
    assert business(5).feedback_held is None


def test_a_reached_threshold_on_data_that_could_not_train_says_it_is_held(hive_home, registry_client, monkeypatch):
    """Data collected since the last training that could not train holds the feedback trigger (the sensor's
    rule, `UntrainableData`): the view says so, before the running test's wait, and not once enough came."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", (T0 + 99 * HOUR).isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    write_documents(store)

    def business(after: int):
        untrainable = UntrainableData(T0 + 90 * HOUR, ("120 labelled rows < min_training_samples 300",), after)
        return platform_status(store, registry_client, last_trained={"business": T0 + 88 * HOUR},
                               feedback_threshold=5, drift_interval=HOUR, ab_interval=HOUR,
                               specialists=("business",), now=T0 + 99 * HOUR,
                               untrainable={"business": untrainable}.get)[0]

    assert business(4).feedback_held == (
        f"held: the data collected up to {T0 + 90 * HOUR:%Y-%m-%d %H:%M} UTC could not train (120 labelled rows < "
        "min_training_samples 300): asked again once 5 more trusted feedback came after it (4 so far)")
    assert business(5).feedback_held == "A/B test business_v3_new running: retraining waits for its verdict"


def test_a_look_without_a_matured_interval_shows_the_one_its_gates_read_or_its_reason(hive_home, registry_client):
    """At 10 % and 25 % the expansion gates read every label known (the provisional interval); with no matured
    interval yet the view showed a bare "expand" (or "hold") while the loop's timeline gave that look's numbers."""
    store = SQLiteStore(hive_home / "store.sqlite")
    look = {"at": T0 + 30 * HOUR, "reason": "not significantly worse after 24 h: [-0.01, +0.03] on 60+ labels"}
    store.upsert_many("ab_tests", [
        {"test_id": "business_v2_t", "specialist_type": "business", "status": "running", "started_at": T0,
         "traffic_percent": 25.0, "verdict": "expand", "checks": [look], "last_statistics": {
             "difference": None, "provisional_difference": {"estimate": 0.2182, "lower": 0.1671, "upper": 0.2693}}},
        {"test_id": "technical_v3_t", "specialist_type": "technical", "status": "running", "started_at": T0,
         "traffic_percent": 10.0, "verdict": "hold", "checks": [dict(look, reason="waiting for 24 h at 10 %")],
         "last_statistics": {"difference": None, "provisional_difference": None}}])
    business, technical = platform_status(store, registry_client, last_trained={}, feedback_threshold=100,
                                          drift_interval=HOUR, ab_interval=HOUR,
                                          specialists=("business", "technical"), now=T0 + 31 * HOUR)
    text = format_status([business, technical], T0 + 31 * HOUR)
    assert "+0.218 [+0.167, +0.269] on the labels known so far expand\n" in text
    assert "hold: waiting for 24 h at 10 %" in text
    assert business.ab_provisional and business.as_dict()["ab_interval"] == [0.1671, 0.2693]


def test_a_drift_that_requested_no_retrain_says_why(hive_home, registry_client, monkeypatch):
    """The drift sensor holds a retrain while a run is in flight, an A/B test runs or within the cooldown, and
    writes why in the check (`retraining: held`): the view showed "drift (PSI 0.4)" and no retrain, and the
    reason only in the sensor's tick log."""
    from hive_assets.monitoring import drift_trigger, with_retraining

    monkeypatch.setenv("HIVE_SIMULATED_NOW", (T0 + 99 * HOUR).isoformat())
    store = SQLiteStore(hive_home / "store.sqlite")
    write_documents(store)
    at = T0 + 98.5 * HOUR
    trigger = drift_trigger("business", "drift:business:x", at, running_test_id="business_v3_new")
    check = {"check_id": "c3", "specialist_type": "business", "checked_at": at, "decision": "drift", "drift_score": 0.4}
    store.upsert_many("drift_monitoring", [with_retraining(check, "held", trigger.reason)])

    def business():
        return platform_status(store, registry_client, last_trained={"business": T0 + 88 * HOUR},
                               feedback_threshold=100, drift_interval=HOUR, ab_interval=HOUR,
                               specialists=("business",), now=T0 + 99 * HOUR)[0]

    held = business()
    expected = "A/B test business_v3_new running: retraining waits for its verdict"
    assert held.drift_held == expected and held.as_dict()["drift_held"] == expected  # hive status --json too
    assert ("drift (PSI 0.4, 2026-01-09 02:30): held: A/B test business_v3_new running: retraining waits for its "
            "verdict") in format_status([held], T0 + 99 * HOUR)
    # a check whose drift requested the retrain holds nothing
    store.upsert_many("drift_monitoring", [with_retraining(dict(check, check_id="c4", checked_at=at + HOUR / 4),
                                                           "requested", "drift", "drift:business:x")])
    assert business().drift_held is None


def test_a_champion_alias_moved_outside_the_platform_is_named(hive_home, registry_client):
    """An alias set in the MLflow UI writes no ledger row: the view showed the registry's champion with no
    'since' and no 'why', and nothing said that the ledger (rollback's source) holds another version."""
    store = SQLiteStore(hive_home / "store.sqlite")
    registry_client.create_registered_model("evolution-evaluator")
    for _ in range(2):
        registry_client.create_model_version("evolution-evaluator", source=(hive_home / "model").as_uri())
    store.upsert_many("model_decisions", [
        {"decision_id": "e1", "specialist_type": "evolution", "kind": "alias_move", "recorded_at": T0,
         "actor": "dagster:run-e", "reason": "first version", "model_version": "1",
         "details": {"alias": "champion", "previous_version": None}}])

    def evolution():
        return platform_status(store, registry_client, last_trained={"evolution": T0}, feedback_threshold=100,
                               drift_interval=HOUR, ab_interval=HOUR, specialists=("evolution",), now=T0 + HOUR)[0]

    registry_client.set_registered_model_alias("evolution-evaluator", "champion", "1")
    assert evolution().champion_why == "alias_move: first version (dagster:run-e)"  # they agree
    registry_client.set_registered_model_alias("evolution-evaluator", "champion", "2")  # by hand
    moved = evolution()
    assert (moved.champion, moved.champion_since) == ("2", None)
    assert moved.champion_why.startswith("the ledger's champion is v1, but the registry names v2: the alias was "
                                         "moved outside the platform")
    # the platform's own promotion, cut between its alias write and its ledger row (`hive doctor` names it): not
    # "outside the platform"
    from hive_assets.registry import begin_intent

    begin_intent(store, "promote:evolution:2", "evolution", "promote", {"version": "2"}, actor="user:ops",
                 dagster_run_id="run-p")
    assert evolution().champion_why.startswith(
        "the ledger's champion is v1, but the registry names v2: moved by a promote of user:ops at ")
    assert "that was interrupted before its ledger row (`hive doctor --fix`" in evolution().champion_why
    registry_client.delete_registered_model("evolution-evaluator")


def test_of_tests_and_retrains_stamped_at_one_instant_the_view_shows_the_last_written(hive_home, registry_client):
    """On a pinned clock two retrains an hour apart in wall time get one timestamp: the view showed the first
    A/B test (superseded) over the one running at 10 %, and the first run's trigger over the newest."""
    store = SQLiteStore(hive_home / "store.sqlite")
    at = T0 + 90 * HOUR
    store.upsert_many("ab_tests", [
        {"test_id": "business_v3", "specialist_type": "business", "status": "superseded", "started_at": at,
         "traffic_percent": 0.0, "verdict": "superseded", "end_reason": "challenger v4 registered"}])
    store.upsert_many("ab_tests", [
        {"test_id": "business_v4", "specialist_type": "business", "status": "running", "started_at": at,
         "last_check_at": at, "traffic_percent": 10.0, "verdict": "insufficient_data"}])
    for trigger_id, status in (("manual:r-1", "failed"), ("manual:r-2", "completed")):
        store.upsert_many("retraining_triggers", [
            {"trigger_id": trigger_id, "specialist_type": "business", "reason": "manual", "triggered_at": at,
             "status": status, "dagster_run_id": trigger_id.split(":")[1]}])
    [business] = platform_status(store, registry_client, last_trained={"business": at}, feedback_threshold=100,
                                 drift_interval=HOUR, ab_interval=HOUR, specialists=("business",), now=at)
    assert (business.test_id, business.traffic_percent) == ("business_v4", 10.0)
    assert (business.retrain_status, business.retrain_run_id) == ("completed", "r-2")


def test_today_counts_the_refresh_at_midnight_as_the_budget_does(hive_home, registry_client):
    """hive loop's first refresh of a day runs at 00:00:00: the budget counted its requests while the view said
    "today 0 requested"; an answer and an expiry at 00:00 itself were missed too."""
    from hive_assets.review import requested_today

    store = SQLiteStore(hive_home / "store.sqlite")
    day = datetime(2026, 1, 9, tzinfo=timezone.utc)
    business_requests(store, [
        ("m1", day, day + 72 * HOUR, "open", None),
        ("m2", day, day + 72 * HOUR, "open", None),
        ("m3", day, day + 72 * HOUR, "open", None),
        ("a1", day - 10 * HOUR, day + 62 * HOUR, "answered", day),  # answered at 00:00 itself
        ("x1", day - 72 * HOUR, day, "open", None),  # expires at 00:00 itself
        ("y1", day - 24 * HOUR, day + 48 * HOUR, "open", None)])  # yesterday's, still open
    now = day + 5 * HOUR
    [business] = platform_status(store, registry_client, last_trained={"business": None}, feedback_threshold=100,
                                 drift_interval=HOUR, ab_interval=HOUR, specialists=("business",), now=now)
    assert requested_today(store, "business", now) == 3
    assert business.review_queue == {"requested": 3, "answered": 1, "expired": 1, "open": 4}
    assert "4 open; today 3 requested, 1 answered, 1 expired" in format_status([business], now)


def test_a_check_without_enough_rows_says_how_many_it_had_not_its_psi(hive_home, registry_client):
    """A drift check of 18 rows showed "insufficient_data (PSI 3.11, ...)", an alarming number of no meaning,
    and an A/B look without enough labels only "insufficient_data": each now says what it lacked."""
    store = SQLiteStore(hive_home / "store.sqlite")
    at = T0 + 30 * HOUR
    store.upsert_many("drift_monitoring", [
        {"check_id": "c1", "specialist_type": "business", "checked_at": at, "decision": "insufficient_data",
         "drift_score": 3.11, "window_size": 18, "min_rows": 200}])
    reason = "12 labelled units known in the smaller arm (8 matured), need 50 known before any decision"
    store.upsert_many("ab_tests", [
        {"test_id": "business_v3", "specialist_type": "business", "status": "running", "started_at": at,
         "last_check_at": at, "traffic_percent": 10.0, "verdict": "insufficient_data",
         "checks": [{"at": at, "action": "insufficient_data", "rule": "min_labelled", "reason": reason}]}])
    [business] = platform_status(store, registry_client, last_trained={"business": T0}, feedback_threshold=100,
                                 drift_interval=HOUR, ab_interval=HOUR, specialists=("business",), now=at + HOUR)
    shown = format_status([business], at + HOUR)
    assert "insufficient_data (18 of the 200 rows it needs, 2026-01-06 06:00)" in shown and "3.11" not in shown
    assert f"insufficient_data: {reason}" in shown
    assert (business.drift_window_rows, business.drift_min_rows, business.ab_verdict) == (18, 200, "insufficient_data")
    # a check that decided keeps its PSI
    store.upsert_many("drift_monitoring", [
        {"check_id": "c2", "specialist_type": "business", "checked_at": at + HOUR / 2, "decision": "no_drift",
         "drift_score": 0.05, "window_size": 400, "min_rows": 200}])
    [business] = platform_status(store, registry_client, last_trained={"business": T0}, feedback_threshold=100,
                                 drift_interval=HOUR, ab_interval=HOUR, specialists=("business",), now=at + HOUR)
    assert "no_drift (PSI 0.05, 2026-01-06 06:30)" in format_status([business], at + HOUR)


def test_a_failed_retrain_says_why_in_its_first_words(hive_home, registry_client):
    store = SQLiteStore(hive_home / "store.sqlite")
    at = T0 + 40 * HOUR
    why = "check min_metrics failed: business: macro_f1 0.612 < 0.65 (95% CI [0.551, 0.668]); " + "x" * 200
    store.upsert_many("retraining_triggers", [
        {"trigger_id": "drift:business:1", "specialist_type": "business", "reason": "drift", "triggered_at": at,
         "status": "failed", "dagster_run_id": "r-1", "error": why}])
    [business] = platform_status(store, registry_client, last_trained={"business": T0}, feedback_threshold=100,
                                 drift_interval=HOUR, ab_interval=HOUR, specialists=("business",), now=at + HOUR)
    assert business.retrain_error == why and business.as_dict()["retrain_error"] == why
    shown = format_status([business], at + HOUR)
    assert f"drift failed (2026-01-06 16:00): {why[:117]}..." in shown and why not in shown
    store.upsert_many("retraining_triggers", [
        {"trigger_id": "drift:business:1", "specialist_type": "business", "reason": "drift", "triggered_at": at,
         "status": "completed", "dagster_run_id": "r-2", "error": why}])  # a re-execution completed it
    [business] = platform_status(store, registry_client, last_trained={"business": T0}, feedback_threshold=100,
                                 drift_interval=HOUR, ab_interval=HOUR, specialists=("business",), now=at + HOUR)
    assert business.retrain_error is None and "drift completed (2026-01-06 16:00)\n" in format_status([business], at)

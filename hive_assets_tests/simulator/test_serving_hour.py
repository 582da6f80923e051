"""One served hour on its own: what `ServingLoop.serve_hour(now)` writes belongs to the hour ending at `now`.

No champion is registered (an empty MLflow SQLite registry), so the heuristic serves: the times do not depend
on who serves. A drift injection in force adds its own batch, stamped by the same rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hive_assets.data import SQLiteStore, to_utc
from hive_assets.simulator import DriftInjection, ServingLoop, interrupted_hour, loop_origin, resume_start
from hive_assets.simulator import _serving

NOW = datetime(2026, 1, 9, 3, 0, tzinfo=timezone.utc)


def _killed(*args, **kwargs):
    """Stands for a SIGKILL at the point it replaces (`save_pending`, a store write)."""
    raise KeyboardInterrupt("killed inside the hour")


def test_one_served_hour_stamps_plans_opinions_and_audit_events_inside_the_hour(hive_home, tmp_path):
    """The platform decides the hour's routing (a test opened, a traffic step) at its start, now - 1h: a plan,
    intent audit event or opinion stamped before it would seem served before that decision (the A/B tally and
    `hive deploy history --at` then disagree with the arm that served it), one after `now` is from the future."""
    store = SQLiteStore(hive_home / "store.sqlite")
    loop = ServingLoop(store, f"sqlite:///{tmp_path / 'mlflow.db'}", seed=42, feedback_rate=0.0,
                       drift=[DriftInjection("technical", NOW - timedelta(hours=5))])
    written = loop.serve_hour(NOW, plans=200)
    assert written["plans"] == 300 and written["opinions"] == 5 * 200 + 100

    times = {
        "plan": [to_utc(d["timestamp"]) for d in store.find("cognitive_ledger")]
        + [to_utc(d["plan_data"]["created_at"]) for d in store.find("cognitive_ledger")]
        + [to_utc(d["created_at"]) for d in store.find("cognitive_plans")],
        "opinion": [to_utc(d["evaluated_at"]) for d in store.find("specialist_opinions")],
        "audit event": [to_utc(d["timestamp"]) for d in store.find("intentions_audit")],
    }
    assert len(times["plan"]) == 2 * store.count("cognitive_ledger") + store.count("cognitive_plans")
    assert len(times["plan"]) - store.count("cognitive_ledger") == 300 and len(times["opinion"]) == 1100
    assert len(times["audit event"]) > 280  # ~2 % of intents have none
    for kind, stamps in times.items():
        outside = [t.isoformat() for t in stamps if not NOW - timedelta(hours=1) < t <= NOW]
        assert not outside, f"{len(outside)} {kind} time(s) outside (now - 1h, now]: {sorted(outside)[:5]}"
    # the hour is still covered end to end, not squeezed into part of it
    assert min(times["plan"]) < NOW - timedelta(minutes=55) and max(times["opinion"]) > NOW - timedelta(minutes=5)


def test_a_second_loop_on_the_same_home_goes_on_after_the_first_s_hours(hive_home, tmp_path):
    """A loop of the same seed on a home an earlier loop played (`hive loop` run twice): from hour 0 again,
    its ids were the first loop's, and each hour it served replaced one of the earlier hours (a soak test
    saw a day of opinions move from 01-05 to 01-11, the store not growing). It starts after them instead."""
    store = SQLiteStore(hive_home / "store.sqlite")
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = ServingLoop(store, tracking, seed=42, feedback_rate=0.0)
    assert first.hours_served == 0
    for hour in range(1, 6):
        first.serve_hour(NOW + timedelta(hours=hour), plans=20)
    earlier = {d["opinion_id"]: to_utc(d["evaluated_at"]) for d in store.find("specialist_opinions")}
    assert len(earlier) == 5 * 5 * 20

    second = ServingLoop(store, tracking, seed=42, feedback_rate=0.0)
    assert second.hours_served == 5  # found by key lookups, not a count: 5 hours of 20 plans
    for hour in range(6, 9):
        second.serve_hour(NOW + timedelta(hours=hour), plans=20)
    after = {d["opinion_id"]: to_utc(d["evaluated_at"]) for d in store.find("specialist_opinions")}
    assert len(after) == 8 * 5 * 20
    assert {k: after[k] for k in earlier} == earlier  # none of the first loop's opinions moved
    # another seed is another stream, from its own hour 0
    assert ServingLoop(store, tracking, seed=7, feedback_rate=0.0).hours_served == 0


def test_hours_served_finds_the_first_unserved_hour_at_any_count(tmp_path):
    from hive_assets.simulator._serving import hour_seed, hours_served
    from hive_assets.simulator._simulate import _plan_id

    store = SQLiteStore(tmp_path / "store.sqlite")
    for served in (0, 1, 2, 3, 7, 8, 9, 100, 143):
        collection = "cognitive_plans" if served % 2 else "cognitive_ledger"  # a plan goes to either
        have = {d["plan_id"] for c in ("cognitive_plans", "cognitive_ledger") for d in store.find(c)}
        store.upsert_many(collection, [{"plan_id": _plan_id(hour_seed(3, h), 0)} for h in range(served)
                                       if _plan_id(hour_seed(3, h), 0) not in have])
        assert hours_served(store, 3) == served


def test_answers_not_yet_due_when_a_loop_ends_are_delivered_by_the_next_one(tmp_path):
    """Humans answer hours or days later. Those answers used to wait in the loop's memory only, so `hive loop`
    played in two parts (or killed and started again) lost every answer still pending at the break (about
    2,700 on a soak test). Two loops of 4 and 6 hours now write the same feedback as one loop of 10."""
    def feedback(store) -> dict:
        return {d["feedback_id"]: (d["opinion_id"], d["human_recommendation"], to_utc(d["submitted_at"]))
                for d in store.find("specialist_feedback")}

    def play(store, parts) -> dict:
        hour = 0
        for length in parts:
            loop = ServingLoop(store, f"sqlite:///{tmp_path / 'mlflow.db'}", seed=42, feedback_rate=0.85,
                               feedback_median_hours=2.0)
            for _ in range(length):
                hour += 1
                written = loop.serve_hour(NOW + timedelta(hours=hour), plans=20)
        return written

    whole, parts = SQLiteStore(tmp_path / "whole.sqlite"), SQLiteStore(tmp_path / "parts.sqlite")
    play(whole, [10])
    assert play(parts, [4, 6])["feedback_pending"] > 50  # answers were still pending at the end, as at the break
    brk = NOW + timedelta(hours=4)
    served_before = {d["opinion_id"] for d in whole.find("specialist_opinions") if to_utc(d["evaluated_at"]) <= brk}
    owed = [f for f, (opinion, _, at) in feedback(whole).items() if opinion in served_before and at > brk]
    assert len(owed) > 100  # answers the first part owed at the break, which the second delivers
    assert feedback(parts) == feedback(whole)
    assert parts.count("specialist_opinions") == whole.count("specialist_opinions") == 10 * 5 * 20


def test_a_loop_killed_before_saving_its_hour_leaves_the_written_answers_as_they_are(tmp_path, monkeypatch):
    """Killed after an hour's feedback was written but before its state was saved, a loop leaves the state of
    the hour before. That state still holds the organic answers this hour's review answers replaced, under
    the same ids: the next loop must not write them over the review answers (a review of this module found
    `metadata.review_request_id` gone a day later)."""
    from hive_assets.simulator import _serving

    store, tracking = SQLiteStore(tmp_path / "store.sqlite"), f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = dict(seed=42, feedback_rate=0.85, feedback_median_hours=6.0, review_capacity=48)
    loop = ServingLoop(store, tracking, **options)
    loop.serve_hour(NOW + timedelta(hours=1), plans=20)
    owed = [f for f in loop.pending if f["specialist_type"] == "business"][:2]  # organic answers, not yet due
    store.upsert_many("review_requests", [
        {"request_id": f"review:business:{f['opinion_id']}", "opinion_id": f["opinion_id"], "plan_id": f["plan_id"],
         "specialist_type": "business", "status": "open", "requested_at": NOW + timedelta(hours=1),
         "expires_at": NOW + timedelta(hours=200), "rank": i, "selection": "active", "score": 0.5,
         "reason": "uncertainty"} for i, f in enumerate(owed)])  # as a refresh writes them: a malformed one is not read

    monkeypatch.setattr(_serving, "save_pending", _killed)
    with pytest.raises(KeyboardInterrupt):
        loop.serve_hour(NOW + timedelta(hours=2), plans=20)
    monkeypatch.undo()

    def answers() -> list:
        docs = {d["opinion_id"]: d for d in store.find("specialist_feedback")}
        return [(docs[f["opinion_id"]]["metadata"], docs[f["opinion_id"]]["human_recommendation"],
                 to_utc(docs[f["opinion_id"]]["submitted_at"])) for f in owed]

    reviewed = answers()
    assert [m.get("review_request_id") for m, _, _ in reviewed] == [f"review:business:{f['opinion_id']}" for f in owed]
    after = ServingLoop(store, tracking, **options)
    assert not {f["feedback_id"] for f in after.pending} & {f["feedback_id"] for f in owed}
    assert interrupted_hour(store, 42) == (1, NOW + timedelta(hours=1))  # the killed hour is played again
    for hour in range(2, 60):  # past every answer the organic ones would have been due at
        after.serve_hour(NOW + timedelta(hours=hour), plans=5)
    assert max(f["submitted_at"] for f in owed) < NOW + timedelta(hours=59)
    assert answers() == reviewed


@pytest.mark.parametrize("documents, said", [
    ([{"state_id": "pending_feedback", "slot": 0, "chunks": 5, "review_credit": {}}],
     "chunk pending_feedback:0:0 of 5 is missing"),
    ([{"state_id": "pending_feedback", "slot": "b", "chunks": 1}], "its header says slot='b', chunks=1"),
    ([{"state_id": "pending_feedback", "slot": 1, "chunks": 1}, {"state_id": "pending_feedback:1:0", "answers": "x"}],
     "chunk pending_feedback:1:0 of 1 is without a list of answers"),
    ([{"state_id": "pending_feedback", "slot": 0, "chunks": 1},
      {"state_id": "pending_feedback:0:0", "answers": [{"feedback_id": "fb-1", "submitted_at": "soon"}]}],
     "an answer without a feedback_id or a submitted_at time"),
    ([{"state_id": "pending_feedback", "slot": 0, "chunks": 0, "review_credit": {"business": "lots"}}],
     "review_credit is not a number per specialist"),
])
def test_a_damaged_saved_state_is_refused_with_what_is_wrong_and_how_to_go_on(tmp_path, documents, said):
    """`hive store import` takes the `simulator_state` collection: a hand-made header naming chunks that are
    not there made `hive loop` fail with a TypeError traceback from the loop's constructor."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("simulator_state", documents)
    with pytest.raises(ValueError) as refused:
        ServingLoop(store, f"sqlite:///{tmp_path / 'mlflow.db'}", seed=42)
    assert said in str(refused.value) and "simulator_state" in str(refused.value)
    # the way out the message gives works: an empty header
    store.upsert_many("simulator_state", [{"state_id": "pending_feedback", "slot": 0, "chunks": 0}])
    assert ServingLoop(store, f"sqlite:///{tmp_path / 'mlflow.db'}", seed=42).pending == []


def test_the_loop_origin_is_the_first_loop_s_start_for_every_later_loop(tmp_path):
    """The drift's hours count from it. Saved with the state after each hour (a loop that served nothing
    leaves none); a home saved by an older version counts back the hours its seed served; an earlier
    `--start` is a first loop; a damaged origin is said, not replaced."""
    from hive_assets.simulator import loop_origin

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = SQLiteStore(tmp_path / "store.sqlite")
    assert loop_origin(store, 42, NOW) == NOW
    loop = ServingLoop(store, tracking, seed=42, origin=NOW)
    for hour in (1, 2, 3):
        loop.serve_hour(NOW + timedelta(hours=hour), plans=5)
    reopened = SQLiteStore(tmp_path / "store.sqlite")
    assert loop_origin(reopened, 42, NOW + timedelta(hours=3)) == NOW
    assert loop_origin(reopened, 7, NOW + timedelta(days=2)) == NOW  # any seed: the home's world
    assert loop_origin(reopened, 42, NOW - timedelta(hours=5)) == NOW - timedelta(hours=5)

    older = SQLiteStore(tmp_path / "older.sqlite")  # its state was saved without an origin
    loop = ServingLoop(older, tracking, seed=42)
    for hour in (1, 2, 3):
        loop.serve_hour(NOW + timedelta(hours=hour), plans=5)
    assert loop_origin(older, 42, NOW + timedelta(hours=3)) == NOW
    assert loop_origin(older, 7, NOW + timedelta(hours=3)) == NOW + timedelta(hours=3)  # seed 7 served nothing

    header = older.find_one("simulator_state", {"state_id": "pending_feedback"})
    older.upsert_many("simulator_state", [{**header, "origin": "yesterday"}])
    with pytest.raises(ValueError, match="the loop state's origin .* is not a time: yesterday"):
        loop_origin(older, 42, NOW + timedelta(hours=3))


def test_a_saved_state_typed_as_doubles_is_read(tmp_path):
    """mongosh writes numbers as doubles, the damaged-state message's own way out among them."""
    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("simulator_state", [
        {"state_id": "pending_feedback", "slot": 1.0, "chunks": 1.0, "review_credit": {"business": 2}},
        {"state_id": "pending_feedback:1:0", "answers": [{"feedback_id": "fb-1", "opinion_id": "op-1",
                                                          "submitted_at": "2026-01-09T05:00:00Z"}]}])
    loop = ServingLoop(store, f"sqlite:///{tmp_path / 'mlflow.db'}", seed=42)
    assert [f["feedback_id"] for f in loop.pending] == ["fb-1"] and loop._review_credit["business"] == 2.0



@pytest.mark.parametrize("killed_at", ["feedback", "state"])
def test_a_loop_killed_inside_an_hour_plays_it_again_and_loses_no_answer(tmp_path, monkeypatch, killed_at):
    """Killed inside an hour (before its answers were written, or after, before the state was saved), a loop
    lost that hour's new answers: its opinions were stored, so the next loop went on after the hour, and the
    answers had been only in the killed loop's memory. The next loop now plays the hour again from its start:
    ten hours with a kill inside the fourth write what ten uninterrupted hours write."""
    from hive_assets.simulator import _serving

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = dict(seed=42, feedback_rate=0.85, feedback_median_hours=2.0,
                   drift=[DriftInjection("technical", NOW + timedelta(hours=2))])

    def feedback(store) -> dict:
        return {d["feedback_id"]: (d["opinion_id"], d["human_recommendation"], to_utc(d["submitted_at"]),
                                   d["submitted_by"]) for d in store.find("specialist_feedback")}

    whole = SQLiteStore(tmp_path / "whole.sqlite")
    loop = ServingLoop(whole, tracking, **options)
    for hour in range(1, 11):
        loop.serve_hour(NOW + timedelta(hours=hour), plans=20)

    store = SQLiteStore(tmp_path / "killed.sqlite")
    loop = ServingLoop(store, tracking, **options)
    for hour in range(1, 4):
        loop.serve_hour(NOW + timedelta(hours=hour), plans=20)

    if killed_at == "state":
        monkeypatch.setattr(_serving, "save_pending", _killed)
    else:
        writes = store.upsert_many
        monkeypatch.setattr(store, "upsert_many", lambda c, docs, *a, **k: _killed() if c == "specialist_feedback"
                            else writes(c, docs, *a, **k))
    with pytest.raises(KeyboardInterrupt):
        loop.serve_hour(NOW + timedelta(hours=4), plans=20)
    monkeypatch.undo()
    assert interrupted_hour(store, 42) == (3, NOW + timedelta(hours=3))
    assert interrupted_hour(store, 7) is None  # another seed's loop goes on after its own hours
    again = ServingLoop(store, tracking, **options)
    assert again.hours_served == 3
    for hour in range(4, 11):
        again.serve_hour(NOW + timedelta(hours=hour), plans=20)
    assert interrupted_hour(store, 42) is None
    assert len(feedback(whole)) > 500 and feedback(store) == feedback(whole)
    assert store.count("specialist_opinions") == whole.count("specialist_opinions")


def test_the_interrupted_hour_is_the_one_being_played_whatever_came_before(tmp_path, monkeypatch):
    """The hour a killed loop was serving, read from what it wrote before the hour's first document: the
    first hour of a home (no state saved yet), and an hour after a jump of the clock (a review: the end of
    the last saved hour was taken for the killed hour's start, and the loop went back to it)."""
    from hive_assets.simulator import _serving

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"

    first = SQLiteStore(tmp_path / "first.sqlite")
    monkeypatch.setattr(_serving, "save_pending", _killed)
    with pytest.raises(KeyboardInterrupt):
        ServingLoop(first, tracking, seed=42).serve_hour(NOW + timedelta(hours=1), plans=5)
    monkeypatch.undo()
    assert interrupted_hour(first, 42) == (0, NOW)
    assert ServingLoop(first, tracking, seed=42).hours_served == 0

    jumped = SQLiteStore(tmp_path / "jumped.sqlite")
    loop = ServingLoop(jumped, tracking, seed=42)
    for hour in (1, 2):
        loop.serve_hour(NOW + timedelta(hours=hour), plans=5)
    assert interrupted_hour(jumped, 42) is None  # complete
    later = NOW + timedelta(days=2)  # `hive clock advance 2d`, then a loop killed in its first hour
    monkeypatch.setattr(_serving, "save_pending", _killed)
    with pytest.raises(KeyboardInterrupt):
        ServingLoop(jumped, tracking, seed=42).serve_hour(later + timedelta(hours=1), plans=5)
    monkeypatch.undo()
    assert interrupted_hour(jumped, 42) == (2, later)
    assert interrupted_hour(jumped, 7) is None


# -- which hour a loop plays again, seed by seed (a mutation audit found these rules untested) --------------

def _loop(tmp_path, seed: int, **kwargs) -> tuple[SQLiteStore, ServingLoop]:
    store = SQLiteStore(tmp_path / "store.sqlite")
    return store, ServingLoop(store, f"sqlite:///{tmp_path / 'mlflow.db'}", seed=seed, feedback_rate=0.0, **kwargs)


def _kill_at(monkeypatch, loop: ServingLoop, now: datetime, where=(_serving, "save_pending")) -> None:
    monkeypatch.setattr(*where, _killed)
    with pytest.raises(KeyboardInterrupt):
        loop.serve_hour(now, plans=5)
    monkeypatch.undo()


def test_another_seed_s_killed_hour_sends_no_other_seed_back(tmp_path, monkeypatch):
    store, seven = _loop(tmp_path, 7)
    for hour in range(1, 6):
        seven.serve_hour(NOW + timedelta(hours=hour), plans=5)
    _kill_at(monkeypatch, _loop(tmp_path, 42)[1], NOW + timedelta(hours=6))
    assert interrupted_hour(store, 7) is None
    assert _loop(tmp_path, 7)[1].hours_served == 5


def test_a_header_saved_by_another_seed_hides_no_killed_hour(tmp_path, monkeypatch):
    store, first = _loop(tmp_path, 42)
    for hour in range(1, 4):  # seed 42: hours 0-2
        first.serve_hour(NOW + timedelta(hours=hour), plans=5)
    other = _loop(tmp_path, 7)[1]
    for hour in range(4, 8):  # seed 7: hours 0-3, so the saved header says 4 hours
        other.serve_hour(NOW + timedelta(hours=hour), plans=5)
    _kill_at(monkeypatch, _loop(tmp_path, 42)[1], NOW + timedelta(hours=8))  # seed 42's hour 3
    assert interrupted_hour(store, 42) == (3, NOW + timedelta(hours=7))
    assert _loop(tmp_path, 42)[1].hours_served == 3


def test_a_loop_killed_before_its_hour_s_first_document_left_nothing_to_play_again(tmp_path, monkeypatch):
    from hive_assets.simulator import _simulate

    store, loop = _loop(tmp_path, 42)
    loop.serve_hour(NOW + timedelta(hours=1), plans=5)
    _kill_at(monkeypatch, loop, NOW + timedelta(hours=2), where=(_simulate, "simulate"))
    assert interrupted_hour(store, 42) is None  # its hour 1 stored nothing
    assert _loop(tmp_path, 42)[1].hours_served == 1


def test_a_playing_marker_with_a_damaged_time_is_no_interrupted_hour(tmp_path):
    store, loop = _loop(tmp_path, 42)
    loop.serve_hour(NOW + timedelta(hours=1), plans=5)
    store.upsert_many("simulator_state", [{"state_id": "playing_hour", "seed": 42, "hour": 0, "now": "garbage"},
                                          {"state_id": "pending_feedback", "slot": 0, "chunks": 0}])
    assert interrupted_hour(store, 42) is None


def test_an_older_home_s_origin_counts_back_from_the_killed_hour(tmp_path, monkeypatch):
    store, loop = _loop(tmp_path, 42)
    _kill_at(monkeypatch, loop, NOW + timedelta(hours=1))
    # its hour 0 (NOW .. NOW+1h) is played again from NOW: the home's first start
    assert loop_origin(store, 42, NOW) == NOW


@pytest.mark.parametrize("chunks", [0.5, True])
def test_a_header_whose_chunk_count_is_not_whole_is_damaged(tmp_path, chunks):
    store = SQLiteStore(tmp_path / "store.sqlite")
    store.upsert_many("simulator_state", [{"state_id": "pending_feedback", "slot": 0, "chunks": chunks}])
    with pytest.raises(ValueError, match="its header says"):
        _serving.load_pending(store)


AT = NOW + timedelta(hours=3)  # the start of the interrupted hour


@pytest.mark.parametrize("start, pinned, expected, said", [
    (None, None, AT, "played again"),  # a wall-clock home: back to the hour
    (None, AT, AT, "played again"),  # the clock where the killed loop left it
    (None, AT - timedelta(hours=5), AT, "played again"),  # pinned back before it: the hour still comes first
    (None, AT + timedelta(days=2), None, "played again as the loop's first hour"),  # moved on: never back
    (AT + timedelta(days=1), None, AT + timedelta(days=1), "played again as the loop's first hour"),  # --start
    (AT - timedelta(hours=1), AT, AT - timedelta(hours=1), "played again as the loop's first hour"),
])
def test_where_a_loop_starts_after_a_killed_hour(start, pinned, expected, said):
    got, line = resume_start((3, AT), start, pinned)
    assert got == expected
    assert line == f"the hour from {AT:%Y-%m-%d %H:%M} UTC was interrupted (its answers were not saved): {said}"
    assert resume_start(None, start, pinned) == (start, None)  # nothing interrupted: the start as given

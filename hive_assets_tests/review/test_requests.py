"""review_requests in the document store: budget, idempotence, restart, answers, expiry, decision labels."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from hive_assets.data import to_utc
from hive_assets.data.store.sqlite import SQLiteStore
from hive_assets.features import features_frame
from hive_assets.review import (
    ACTIVE, ANSWERED, COLLECTION, EXPIRED, OPEN, ORGANIC, RANDOM, decision_split, expire, label_selections,
    link_answers, open_queue, queue_summary, refresh_from_store, refresh_queue, remaining_budget, requested_today,
    usable_for_decisions, without_active_labels,
)
from hive_assets.simulator import make_plans, simulate
from hive_assets_tests.data.store import any_store  # noqa: F401  (fixture)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
PLANS = make_plans(40, seed=3, now=NOW, days=1)


def pool(n: int = 40):
    plans = PLANS[:n]
    candidates = pd.DataFrame({"opinion_id": [f"op-{p['plan_id']}" for p in plans],
                               "plan_id": [p["plan_id"] for p in plans]})
    features = features_frame(plans)
    # a champion unsure on the first half, sure on the second
    proba = np.array([[0.4, 0.35, 0.25] if i < n // 2 else [0.9, 0.05, 0.05] for i in range(n)])
    return candidates, features, proba


def refresh(store, now=NOW, budget=10, **kw):
    candidates, features, proba = pool()
    return refresh_queue(store, "business", now, candidates, features, proba, daily_budget=budget,
                         expiry=timedelta(hours=24), **kw)


def feedback(opinion_id: str, at: datetime) -> dict:
    return {"feedback_id": f"fb-{opinion_id}", "opinion_id": opinion_id, "plan_id": "p", "specialist_type": "business",
            "human_recommendation": "approve", "human_rating": 0.9, "submitted_by": "r", "submitted_at": at,
            "feedback_source": "human_expert", "metadata": {}}


def test_budget_zero_writes_nothing(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        result = refresh(store, budget=0)
        assert result.requested == 0 and store.count(COLLECTION) == 0


class Champion:
    """A champion that scores the window (the first refresh) and must not be asked again once the day's
    budget is spent: no window is read then."""

    def __init__(self):
        self.calls = 0

    def predict_proba(self, features):
        self.calls += 1
        return np.tile([0.5, 0.3, 0.2], (len(features), 1))


def test_a_spent_budget_reads_no_window(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        simulate(store, plans=40, days=1, seed=5, now=NOW, feedback_rate=0.2, malformed_rate=0.0,
                 specialists=["business"])
        champion = Champion()
        first = refresh_from_store(store, "business", NOW, champion, daily_budget=5, min_confidence=0.0)
        assert first.requested == 5 and first.candidates > 5 and champion.calls == 1
        again = refresh_from_store(store, "business", NOW + timedelta(hours=1), champion, daily_budget=5,
                                   min_confidence=0.0)
        assert (again.requested, again.candidates, again.budget_left) == (0, 0, 0) and champion.calls == 1
        assert refresh_from_store(store, "business", NOW, champion, daily_budget=0).requested == 0
        assert champion.calls == 1 and store.count(COLLECTION) == 5


def test_queue_lifecycle(any_store):
    store = any_store
    first = refresh(store)
    assert first.requested == 10 and store.count(COLLECTION) == 10
    docs = list(store.find(COLLECTION))
    assert sorted(d["selection"] for d in docs).count(RANDOM) == 2
    # the active picks are the uncertain half
    assert all(int(d["opinion_id"][-7:]) < 20 for d in docs if d["selection"] == ACTIVE)
    # the day's budget is spent: a second refresh the same day writes nothing, changes nothing
    assert refresh(store, now=NOW + timedelta(hours=3)).requested == 0 and store.count(COLLECTION) == 10
    queue = open_queue(store, "business", NOW)
    assert [d["rank"] for d in queue] == list(range(1, 11))
    active_scores = [d["score"] for d in queue if d["selection"] == ACTIVE]
    assert active_scores == sorted(active_scores, reverse=True)
    # one answered in time, one answered after its expiry, the rest expire
    answered, late = queue[0]["opinion_id"], queue[1]["opinion_id"]
    store.upsert_many("specialist_feedback", [feedback(answered, NOW + timedelta(hours=2)),
                                              feedback(late, NOW + timedelta(hours=30))])
    later = refresh(store, now=NOW + timedelta(hours=36), budget=0)
    assert (later.linked, later.expired) == (1, 9)
    status = {d["opinion_id"]: d for d in store.find(COLLECTION)}
    assert status[answered]["status"] == ANSWERED and status[answered]["feedback_id"] == f"fb-{answered}"
    assert status[late]["status"] == EXPIRED
    assert not open_queue(store, "business", NOW + timedelta(hours=36))
    # the next day brings a new budget; already requested opinions are never requested again
    next_day = refresh(store, now=NOW + timedelta(days=1, hours=2))
    assert next_day.requested == 10 and len({d["opinion_id"] for d in store.find(COLLECTION)}) == 20


def test_an_answered_request_leaves_the_queue_before_the_next_refresh(tmp_path):
    # reviewers (and the simulator's) read the queue many times between two daily refreshes: a request
    # answered an hour ago must not be asked again while its status waits for the next refresh's link
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        refresh(store)
        queue = open_queue(store, "business", NOW)
        store.upsert_many("specialist_feedback", [feedback(queue[0]["opinion_id"], NOW + timedelta(minutes=10))])
        later = open_queue(store, "business", NOW + timedelta(hours=1))
        assert [d["request_id"] for d in later] == [d["request_id"] for d in queue[1:]]
        assert store.count(COLLECTION, {"status": OPEN}) == 10  # reading changed nothing
        assert refresh(store, now=NOW + timedelta(hours=2), budget=0).linked == 1
        assert open_queue(store, "business", NOW + timedelta(hours=2)) == later


def test_queue_summary_counts_what_the_queue_did_in_the_period(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        refresh(store)
        queue = open_queue(store, "business", NOW)
        store.upsert_many("specialist_feedback", [feedback(queue[0]["opinion_id"], NOW + timedelta(minutes=10))])
        refresh(store, now=NOW + timedelta(hours=1), budget=0)  # links the first answer
        store.upsert_many("specialist_feedback", [feedback(queue[1]["opinion_id"], NOW + timedelta(minutes=70)),
                                                  feedback(queue[2]["opinion_id"], NOW + timedelta(hours=25))])
        until = NOW + timedelta(hours=2)
        # the second answer counts though not linked yet; the third is not submitted yet
        assert queue_summary(store, "business", NOW - timedelta(hours=1), until) == {
            "requested": 10, "answered": 2, "expired": 0, "open": 8}
        # made at NOW, before the period; answered in it
        assert queue_summary(store, "business", NOW, until) == {"requested": 0, "answered": 2, "expired": 0, "open": 8}
        assert queue_summary(store, "business", NOW + timedelta(hours=1, minutes=15), until)["answered"] == 0
        # a day later (expiry 24 h), before any refresh marks them: the third answer came too late
        later = NOW + timedelta(hours=30)
        expected = {"requested": 10, "answered": 2, "expired": 8, "open": 0}
        assert queue_summary(store, "business", NOW - timedelta(hours=1), later) == expected
        refresh(store, now=later, budget=0)  # what a refresh then writes agrees
        assert queue_summary(store, "business", NOW - timedelta(hours=1), later) == expected
        assert store.count(COLLECTION, {"status": EXPIRED}) == 8
        # a past period: the answers linked since were not known then
        assert queue_summary(store, "business", NOW - timedelta(hours=1), NOW + timedelta(minutes=5)) == {
            "requested": 10, "answered": 0, "expired": 0, "open": 10}


def test_requests_survive_a_restart(tmp_path):
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as store:
        refresh(store)
        before = sorted(d["request_id"] for d in open_queue(store, "business", NOW))
    with SQLiteStore(path) as store:
        assert sorted(d["request_id"] for d in open_queue(store, "business", NOW)) == before and len(before) == 10
        assert refresh(store).requested == 0  # nothing re-requested after the restart either


def test_decisions_use_random_and_organic_labels_only(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        refresh(store)
        requested = {d["opinion_id"]: d["selection"] for d in store.find(COLLECTION)}
        ids = [f"op-{p['plan_id']}" for p in PLANS]
        selections = label_selections(store, "business", ids)
    assert {k: v for k, v in selections.items() if v != ORGANIC} == requested
    usable = [o for o in ids if usable_for_decisions(selections[o])]
    assert len(usable) == 40 - 8
    split = pd.Series(["train"] * 20 + ["validation"] * 10 + ["test"] * 10)
    moved = decision_split(split, pd.Series([selections[o] for o in ids]))
    active = np.array([selections[o] == ACTIVE for o in ids])
    assert (moved[active] == "train").all() and (moved[~active] == split[~active]).all()
    with pytest.raises(ValueError, match="length"):
        decision_split(split, pd.Series(["organic"]))


def test_a_refresh_whose_lease_check_fails_before_writing_spends_nothing(tmp_path):
    """The asset passes its run lease's check as `before_write`: a run that lost its lease raises there,
    after choosing, before writing a request."""
    class LeaseLost(Exception):
        pass

    def lost():
        raise LeaseLost("lease taken over")

    with SQLiteStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(LeaseLost):
            refresh(store, before_write=lost)
        assert store.count(COLLECTION) == 0
        checks = []
        assert refresh(store, before_write=lambda: checks.append(1)).requested == 10 and checks == [1]


def request(opinion_id: str, requested: datetime, expires: datetime, selection: str = ACTIVE,
            status: str = OPEN) -> dict:
    return {"request_id": f"review:business:{opinion_id}", "opinion_id": opinion_id, "plan_id": "p",
            "specialist_type": "business", "score": 1.0, "reason": "uncertainty", "selection": selection,
            "inclusion_probability": None, "rank": 1, "model_version": "1", "requested_at": requested,
            "expires_at": expires, "status": status, "feedback_id": None, "answered_at": None}


def test_an_answer_in_time_then_a_correction_after_the_expiry_is_answered(any_store):
    """The audit's case: the latest trusted label (a correction after the expiry) hid the answer in time, and
    the next refresh expired the request. The rule is the label as of the expiry."""
    store = any_store
    t = datetime(2026, 1, 11, tzinfo=timezone.utc)
    expires, in_time, correction, refresh_at = (datetime(2026, 1, 14, tzinfo=timezone.utc),
                                                datetime(2026, 1, 13, 10, tzinfo=timezone.utc),
                                                datetime(2026, 1, 15, 6, tzinfo=timezone.utc),
                                                datetime(2026, 1, 15, 7, tzinfo=timezone.utc))
    store.upsert_many(COLLECTION, [request("op-a", t, expires), request("op-late", t, expires)])
    store.upsert_many("specialist_feedback", [
        dict(feedback("op-a", in_time), feedback_id="fb-in-time"),
        dict(feedback("op-a", correction), feedback_id="fb-correction", human_recommendation="reject"),
        dict(feedback("op-late", correction), feedback_id="fb-late")])  # only after the expiry
    # before any refresh marks them, the summary already gives each its status
    assert queue_summary(store, "business", t - HOUR, refresh_at) == {
        "requested": 2, "answered": 1, "expired": 1, "open": 0}
    assert (link_answers(store, "business", refresh_at), expire(store, "business", refresh_at)) == (1, 1)
    docs = {d["opinion_id"]: d for d in store.find(COLLECTION)}
    assert (docs["op-a"]["status"], docs["op-a"]["feedback_id"]) == (ANSWERED, "fb-in-time")
    assert to_utc(docs["op-a"]["answered_at"]) == in_time
    assert docs["op-late"]["status"] == EXPIRED and docs["op-late"]["feedback_id"] is None
    assert queue_summary(store, "business", t - HOUR, refresh_at) == {
        "requested": 2, "answered": 1, "expired": 1, "open": 0}


def test_a_label_submitted_after_its_request_expired_is_organic_whatever_the_request_s_status(tmp_path):
    """A label that came after its request expired came as reviewers label anyway: it is organic (kept out
    of the organic pool, the hard cases the queue asked for would be missing there). Judged from the label's
    time, not the stored status, which only a refresh writes: otherwise a refresh between two runs on the
    same data moved labels between train and test (and a home whose sensor never runs kept them active)."""
    t = datetime(2026, 1, 11, tzinfo=timezone.utc)
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.upsert_many(COLLECTION, [
            request("op-late-active", t, t + HOUR, ACTIVE, OPEN),  # no refresh since it expired
            request("op-late-random", t, t + HOUR, RANDOM, EXPIRED),
            request("op-intime-active", t, t + HOUR, ACTIVE, EXPIRED),  # e.g. its answer failed a refresh's trust
            request("op-edge-active", t, t + HOUR, ACTIVE, ANSWERED),
            request("op-open-random", t, t + 72 * HOUR, RANDOM, OPEN)])
        times = {"op-late-active": t + 2 * HOUR, "op-late-random": t + 2 * HOUR, "op-intime-active": t + HOUR / 2,
                 "op-edge-active": t + HOUR, "op-open-random": t + HOUR, "op-none": t}
        expected = {"op-late-active": ORGANIC, "op-late-random": ORGANIC, "op-intime-active": ACTIVE,
                    "op-edge-active": ACTIVE, "op-open-random": RANDOM, "op-none": ORGANIC}
        assert label_selections(store, "business", times, times) == expected
        # without the labels' times: what was asked for (a request is a request)
        assert label_selections(store, "business", times)["op-late-active"] == ACTIVE
        labels = {o: {"feedback_id": f"fb-{o}", "_submitted": at} for o, at in times.items()}
        assert sorted(without_active_labels(store, "business", labels)) == [
            "op-late-active", "op-late-random", "op-none", "op-open-random"]


def test_a_clock_moved_back_neither_spends_another_day_nor_shows_later_requests(any_store):
    """Requests made at 18:00 before the clock was pinned back: they spend their own day's budget, never an
    earlier day's, and the queue does not show them before they were made."""
    store = any_store
    made = datetime(2026, 3, 3, 18, tzinfo=timezone.utc)
    assert refresh(store, now=made).requested == 10
    same_day, day_before = datetime(2026, 3, 3, 6, tzinfo=timezone.utc), datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    assert (requested_today(store, "business", same_day), remaining_budget(store, "business", same_day, 10)) == (10, 0)
    assert requested_today(store, "business", day_before) == 0
    assert remaining_budget(store, "business", day_before, 10) == 10
    assert open_queue(store, "business", same_day) == [] and open_queue(store, "business", day_before) == []
    assert len(open_queue(store, "business", made)) == 10
    # the budget day after: a new budget, the requests still open
    next_day = datetime(2026, 3, 4, 1, tzinfo=timezone.utc)
    assert remaining_budget(store, "business", next_day, 10) == 10
    assert len(open_queue(store, "business", next_day)) == 10


def test_today_counts_what_the_budget_counts_from_midnight_itself(any_store):
    """hive loop's first refresh of a day runs at 00:00:00: today's summary (hive status) counts its requests
    as the budget does, while a period's summary (hive loop's) still starts after its `since`."""
    from hive_assets.review import today_summary

    store = any_store
    midnight = datetime(2026, 3, 3, tzinfo=timezone.utc)
    assert refresh(store, now=midnight).requested == 10
    later = midnight + 5 * HOUR
    assert remaining_budget(store, "business", later, 10) == 0
    assert today_summary(store, "business", later) == {"requested": 10, "answered": 0, "expired": 0, "open": 10}
    assert queue_summary(store, "business", midnight, later)["requested"] == 0


def test_the_day_s_tally_and_a_request_made_random_on_either_store(any_store):
    """`day_so_far` reads `made_random_at` by a date range where most requests hold null: FerretDB compares
    those by BSON type order, SQLite by its JSON encoding; both must count only the day's."""
    from hive_assets.review._requests import day_so_far, make_random, request_id
    from hive_assets.review._select import DaySoFar

    store = any_store
    assert refresh(store, budget=10).requested == 10  # day 1: 2 random, 8 active
    actives = sorted(d["opinion_id"] for d in store.find(COLLECTION) if d["selection"] == ACTIVE)
    day2 = NOW + timedelta(days=1)
    assert day_so_far(store, "business", NOW) == DaySoFar(10, 2, 2, 10)  # made, as random, random today, top rank
    assert day_so_far(store, "business", day2) == DaySoFar(0, 0, 0, 0)
    assert make_random(store, "business", actives[0], day2, 0.25) == 1
    assert make_random(store, "business", actives[0], day2 + HOUR, 0.5) == 0  # once random, left as it is
    made = store.find_one(COLLECTION, {"request_id": request_id("business", actives[0])})
    assert (made["selection"], made["inclusion_probability"], to_utc(made["made_random_at"])) == (RANDOM, 0.25, day2)
    # day 1 keeps its own tally (the request was made then, as active); day 2 counts the random selection
    assert day_so_far(store, "business", NOW) == DaySoFar(10, 2, 2, 10)
    assert day_so_far(store, "business", day2) == DaySoFar(0, 0, 1, 0)


def test_a_label_submitted_before_its_request_is_organic_not_its_answer(tmp_path):
    """A label stamped before the request was made (it reached the store late, or its time was the client's)
    came whatever the queue did: it was linked as the request's answer, counted as answered, and its label
    kept out of the decisions as an active pick's."""
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        assert refresh(store, budget=10).requested == 10
        active = sorted(d["opinion_id"] for d in store.find(COLLECTION) if d["selection"] == ACTIVE)
        early, answer = active[0], active[1]
        store.upsert_many("specialist_feedback", [feedback(early, NOW - HOUR), feedback(answer, NOW + HOUR)])
        later = NOW + 2 * HOUR
        assert refresh(store, now=later, budget=0).linked == 1
        status = {d["opinion_id"]: d["status"] for d in store.find(COLLECTION)}
        assert (status[early], status[answer]) == (OPEN, ANSWERED)
        assert queue_summary(store, "business", NOW - HOUR, later)[ANSWERED] == 1
        # not asked again meanwhile (it has a label), nor counted open, and expired when its time comes
        queue = {d["opinion_id"] for d in open_queue(store, "business", later)}
        assert early not in queue and queue_summary(store, "business", NOW - HOUR, later)[OPEN] == len(queue) == 8
        assert queue_summary(store, "business", NOW - HOUR, NOW + 25 * HOUR)[EXPIRED] == 9
        times = {early: NOW - HOUR, answer: NOW + HOUR}
        assert label_selections(store, "business", times, times) == {early: ORGANIC, answer: ACTIVE}


def test_a_request_the_store_cannot_place_in_time_is_named_not_lost(any_store):
    """The queue was read with the store's date filters: a request whose `requested_at` is no time or is
    missing never reached the reader, so it left the queue unnamed (SQLite compares such text as text, MongoDB
    not at all). Dates as ISO text are times: such a request is queued. A malformed request its readable dates
    put outside the queue (expired, or made later) is not named, nor one whose status is not `open` (the
    status stays the store's filter: closed requests are most of the collection)."""
    from hive_assets.review import read_open_queue

    store = any_store
    sound = {"specialist_type": "business", "plan_id": "p", "score": 0.5, "reason": "uncertainty",
             "selection": ACTIVE, "rank": 1, "requested_at": NOW - HOUR, "expires_at": NOW + 24 * HOUR,
             "status": OPEN}
    edits = {"no-time": {"requested_at": "yesterday"}, "no-date": {"requested_at": None},
             "unknown-status": {"status": "OPEN"}, "as-text": {"requested_at": "2026-03-02T09:00:00Z",
                                                              "expires_at": "2026-03-03T10:00:00Z", "rank": 2},
             "expired-bad-rank": {"expires_at": NOW - HOUR, "rank": "1"},
             "later-bad-rank": {"requested_at": NOW + HOUR, "rank": "1"}, "closed": {"status": EXPIRED}}
    store.upsert_many(COLLECTION, [{**sound, "request_id": f"review:business:{op}", "opinion_id": op, **edit}
                                   for op, edit in [("sound", {}), *edits.items()]])
    read = read_open_queue(store, "business", NOW)
    assert [d["opinion_id"] for d in read.requests] == ["sound", "as-text"]
    assert read.malformed == [("review:business:no-date", ["requested_at"]),
                              ("review:business:no-time", ["requested_at"])]
    # `hive status`'s counts agree with the queue (the store's date filters passed over these too); "closed",
    # expired by its status and not by its date, is open to a summary, which judges a past period by dates
    summary = queue_summary(store, "business", NOW - 3 * HOUR, NOW)
    assert (summary[OPEN], summary["malformed"]) == (len(read.requests) + 1, len(read.malformed))

"""`hive review-queue` on a home holding review requests: the count is the queue's, whatever `--limit` shows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hive_assets.data.store.sqlite import SQLiteStore
from hive_assets.review import OPEN, write_requests
from hive_assets_tests.cli.test_cli import HOME_REL, hive, shell  # noqa: F401  (fixture)

NOW = datetime(2026, 1, 7, tzinfo=timezone.utc)


def test_limit_shortens_the_list_not_the_count(shell):
    cwd, env = shell
    (cwd / HOME_REL).mkdir()
    with SQLiteStore(cwd / HOME_REL / "store.sqlite") as store:
        write_requests(store, [{"request_id": f"review:business:op-{i}", "opinion_id": f"op-{i}", "plan_id": f"p-{i}",
                                "specialist_type": "business", "score": 1.0 - i / 10, "reason": "uncertainty",
                                "selection": "active", "inclusion_probability": 1.0, "rank": i + 1,
                                "model_version": "1", "requested_at": NOW, "expires_at": NOW + timedelta(hours=72),
                                "status": OPEN, "feedback_id": None, "answered_at": None} for i in range(7)])
    env = {**env, "HIVE_SIMULATED_NOW": (NOW + timedelta(hours=1)).isoformat()}
    text = hive("review-queue", "--specialist", "business", "--limit", "2", cwd=cwd, env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("business: 7 open review requests") and "first 2 shown" in lines[0]
    assert [line.split()[3] for line in lines[1:]] == ["op-0", "op-1"]
    out = hive("review-queue", "--specialist", "business", "--limit", "2", "--json", cwd=cwd, env=env)
    data = json.loads(out.stdout)
    assert data["open"] == {"business": 7} and [r["rank"] for r in data["queues"]["business"]] == [1, 2]


def test_malformed_requests_are_left_out_and_named_never_a_traceback(shell):
    """A request a reviewer tool or an import left malformed (rank as text, score null, an expiry that is no
    time) is left out of the queue and named in one warning line; the sound ones keep their order, the
    documents stay as they are, and `hive status` counts it apart (these readers raised before)."""
    cwd, env = shell
    (cwd / HOME_REL).mkdir()
    sound = {"specialist_type": "business", "reason": "uncertainty", "selection": "active",
             "inclusion_probability": 1.0, "model_version": "1", "requested_at": NOW,
             "expires_at": NOW + timedelta(hours=72), "status": OPEN, "feedback_id": None, "answered_at": None}
    docs = [{**sound, "request_id": f"review:business:op-{i}", "opinion_id": f"op-{i}", "plan_id": f"p-{i}",
             "score": 0.5, "rank": i + 1} for i in range(3)]
    docs += [{**docs[0], "request_id": "review:business:op-bad-score", "opinion_id": "op-bad-score", "score": None},
             {**docs[0], "request_id": "review:business:op-bad-rank", "opinion_id": "op-bad-rank", "rank": "first"},
             {**docs[0], "request_id": "review:business:op-bad-expiry", "opinion_id": "op-bad-expiry",
              "expires_at": "soon"}]
    with SQLiteStore(cwd / HOME_REL / "store.sqlite") as store:
        store.upsert_many("review_requests", docs)
    env = {**env, "HIVE_SIMULATED_NOW": (NOW + timedelta(hours=1)).isoformat()}
    text = hive("review-queue", "--specialist", "business", cwd=cwd, env=env)
    assert text.returncode == 0 and "Traceback" not in text.stderr, text.stderr
    assert text.stdout.splitlines()[0].startswith("business: 3 open review requests")
    assert [line.split()[3] for line in text.stdout.splitlines()[1:]] == ["op-0", "op-1", "op-2"]
    [warning] = [line for line in text.stderr.splitlines() if "warning" in line]
    assert "business: 3 malformed review requests left out" in warning, warning
    assert "review:business:op-bad-rank: rank" in warning and "review:business:op-bad-score: score" in warning
    data = json.loads(hive("review-queue", "--specialist", "business", "--json", cwd=cwd, env=env).stdout)
    assert data["open"] == {"business": 3} and data["malformed"]["business"] == [
        {"request_id": "review:business:op-bad-expiry", "fields": ["expires_at"]},
        {"request_id": "review:business:op-bad-rank", "fields": ["rank"]},
        {"request_id": "review:business:op-bad-score", "fields": ["score"]}]
    status = hive("status", "--specialist", "business", cwd=cwd, env=env)
    assert "Traceback" not in status.stderr, status.stderr
    # open as the queue has it (it said 5 open of the 3 a reviewer sees): the malformed ones apart, the day's
    # requests all six (the budget they spent)
    assert "3 open; today 6 requested, 0 answered, 0 expired; 3 malformed, not counted" in status.stdout
    with SQLiteStore(cwd / HOME_REL / "store.sqlite") as store:  # nothing lost or rewritten
        assert store.count("review_requests") == 6
        assert store.find_one("review_requests", {"opinion_id": "op-bad-rank"})["rank"] == "first"


def test_review_queue_and_status_agree_on_a_request_labelled_before_it_was_made(shell):
    """A request whose opinion got a label dated before the request (it reached the store late, or its time is
    the client's) left `hive review-queue` (there is nothing left to ask) while `hive status` still counted it
    open. The label is organic, not the request's answer: the request is neither answered nor open, in both."""
    cwd, env = shell
    (cwd / HOME_REL).mkdir()
    sound = {"specialist_type": "business", "plan_id": "p", "score": 0.5, "reason": "uncertainty",
             "selection": "active", "inclusion_probability": 1.0, "model_version": "1", "requested_at": NOW,
             "expires_at": NOW + timedelta(hours=72), "status": OPEN, "feedback_id": None, "answered_at": None}
    names = ("op-unlabelled", "op-labelled-before", "op-answered")
    labels = {"op-labelled-before": NOW - timedelta(hours=2), "op-answered": NOW + timedelta(minutes=30)}
    with SQLiteStore(cwd / HOME_REL / "store.sqlite") as store:
        write_requests(store, [{**sound, "request_id": f"review:business:{name}", "opinion_id": name, "rank": i + 1}
                               for i, name in enumerate(names)])
        store.upsert_many("specialist_feedback", [
            {"feedback_id": f"fb-{name}", "opinion_id": name, "plan_id": "p", "specialist_type": "business",
             "human_recommendation": "approve", "human_rating": 0.9, "submitted_by": "reviewer", "submitted_at": at,
             "feedback_source": "human_expert", "metadata": {}} for name, at in labels.items()])
    env = {**env, "HIVE_SIMULATED_NOW": (NOW + timedelta(hours=1)).isoformat()}
    queue = hive("review-queue", "--specialist", "business", "--json", cwd=cwd, env=env)
    assert queue.returncode == 0, queue.stderr
    data = json.loads(queue.stdout)
    assert [r["opinion_id"] for r in data["queues"]["business"]] == ["op-unlabelled"]
    status = hive("status", "--specialist", "business", "--json", cwd=cwd, env=env)
    assert status.returncode == 0, status.stderr
    (business,) = json.loads(status.stdout)["specialists"]
    today = business["review_queue"]
    assert today["open"] == data["open"]["business"] == 1
    assert (today["requested"], today["answered"], today["expired"]) == (3, 1, 0)

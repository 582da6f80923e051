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

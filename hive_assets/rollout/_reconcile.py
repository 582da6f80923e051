"""What a crash can leave between a specialist's A/B test records and the registry, found without writing
(`out_of_step`, for `hive doctor`) and completed as the next look would, without taking a look (`reconcile`).

A run killed between the writes of a test's opening, a registration or a completed promotion leaves states no
decision intent names: a running test whose `ab-test-v<N>` alias, registered-model tags (the split serving
reads) or ledger rows are missing; a closed test not settled; a test still running although its arms moved (a
promotion completed later, the champion no longer the one it compares); a new challenger registered while the
test of another version runs, its own test never opened (serving stops routing: the alias is not on the tested
version). The hourly look (`check_test`) and `ab_test_outcome` complete these; `hive doctor` said "no
unfinished decisions" meanwhile and `--fix` left them (audit). Every step here is one of theirs: idempotent,
each effect written only when missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hive_assets import registry
from hive_assets.data.store.base import DocumentStore
from hive_assets.rollout._apply import (
    CLOSED, _model_name, _why_arms_changed, complete_unfinished, opening_row_id, settle, settle_closed, start_test,
    stop_if_arms_changed, traffic_row_id,
)
from hive_assets.rollout._records import RUNNING, running_test
from hive_assets.routing import CHALLENGER, CHAMPION


def challenger_to_open(client, store: DocumentStore, specialist: str) -> tuple[str, str] | None:
    """(champion, challenger) versions when the `challenger` alias is on a version other than the champion's
    that no closed test has tested: the test `ab_test_outcome` opens (or finds running) for a registration."""
    champion = registry.alias_version(client, specialist, CHAMPION)
    challenger = registry.alias_version(client, specialist, CHALLENGER)
    if champion is None or challenger is None or champion.version == challenger.version:
        return None
    if store.count("ab_tests", {"specialist_type": specialist, "status": {"$ne": RUNNING},
                                "challenger_version": str(challenger.version)}):
        return None
    return str(champion.version), str(challenger.version)


def _superseding(client, store: DocumentStore, specialist: str, test: dict[str, Any] | None,
                 ab_testing_enabled: bool) -> tuple[str, str] | None:
    """The untested challenger registered while `test` (of another version) runs, whose test never opened."""
    if test is None or not ab_testing_enabled:
        return None
    pair = challenger_to_open(client, store, specialist)
    return pair if pair is not None and pair[1] != str(test["challenger_version"]) else None


def _missing_effects(client, store: DocumentStore, test: dict[str, Any]) -> list[str]:
    """What `settle` would write for a running test (read only)."""
    specialist, test_id = test["specialist_type"], test["test_id"]
    challenger = str(test["challenger_version"])
    missing = []
    alias = registry.ab_test_alias(challenger)
    holder = registry.alias_version(client, specialist, alias)
    if holder is None or str(holder.version) != challenger:
        missing.append(f"alias {alias}")
    tags = client.get_registered_model(_model_name(specialist)).tags
    wanted = {**registry.ab_split_tags(test), "ab_test_status": RUNNING}
    if any(tags.get(key) != value for key, value in wanted.items()):
        missing.append("the split in the registered model's tags (what serving reads)")
    rows = [opening_row_id(test_id), *(traffic_row_id(test_id, i) for i in range(len(test["traffic_history"])))]
    absent = [r for r in rows if not store.count("model_decisions", {"decision_id": r})]
    if absent:
        missing.append(f"{len(absent)} ledger row(s) ({', '.join(absent)})")
    return missing


def out_of_step(client, store: DocumentStore, specialist: str, *, ab_testing_enabled: bool = True) -> list[str]:
    """One line per state of the specialist's tests a crash left incomplete (module docstring); reads only."""
    problems = [f"A/B test {t['test_id']} {t['status']}, but its registry and ledger effects are not all written"
                for t in store.find("ab_tests", {"specialist_type": specialist})
                if t["status"] in CLOSED and not t.get("settled")]
    test = running_test(store, specialist)
    if test is None:
        return problems
    at = f"A/B test {test['test_id']} running at {float(test['traffic_percent']):g} %"
    if (why := _why_arms_changed(client, store, specialist, str(test["champion_version"]),
                                 str(test["challenger_version"]))) is not None:
        return [*problems, f"{at}, although {why}"]
    if (pair := _superseding(client, store, specialist, test, ab_testing_enabled)) is not None:
        problems.append(f"{at}, although challenger v{pair[1]} was registered since: its test never opened (serving "
                        f"stopped routing to v{test['challenger_version']})")
    elif missing := _missing_effects(client, store, test):
        problems.append(f"{at}, missing: {'; '.join(missing)}")
    return problems


def reconcile(client, store: DocumentStore, specialist: str, now: datetime, *, start_traffic: float,
              ab_testing_enabled: bool = True, actor: str, dagster_run_id: str | None = None) -> list[str]:
    """Complete what `out_of_step` finds, as the next look and `ab_test_outcome` would (each their own step):
    unfinished decisions, unsettled closed tests, a test whose arms moved stopped, the test of a challenger
    registered meanwhile opened (superseding the running one), the running test's missing effects. Returns
    the effects written."""
    done = complete_unfinished(client, store, specialist, actor=actor, dagster_run_id=dagster_run_id)
    done += settle_closed(client, store, specialist, actor=actor, dagster_run_id=dagster_run_id)
    done += stop_if_arms_changed(client, store, specialist, now, actor=actor, dagster_run_id=dagster_run_id)[1]
    test = running_test(store, specialist)
    if (pair := _superseding(client, store, specialist, test, ab_testing_enabled)) is not None:
        test, _, effects = start_test(client, store, specialist, *pair, start_traffic, now, actor=actor,
                                      dagster_run_id=dagster_run_id)
        done += effects
    elif test is not None:
        done += settle(client, store, test, actor=actor, dagster_run_id=dagster_run_id, now=now)
    return done

"""The cyclic collector is paused around bulk decoding that builds thousands of containers, and only there."""

import gc

import orjson
import pandas as pd
import pytest

from hive_assets.cyclic_gc import cyclic_gc_paused
from hive_assets.storage import frame_from_parquet, frame_to_parquet


@pytest.fixture
def collections():
    """Counts the collector's runs (gc.callbacks is called at the start of each)."""
    runs = []

    def count(phase, info):
        if phase == "start":
            runs.append(info["generation"])

    gc.callbacks.append(count)
    yield runs
    gc.callbacks.remove(count)


def _plans(n: int) -> list[dict]:
    return [{"plan_id": f"p{i}", "tasks": [{"task_id": f"t{j}", "dependencies": [f"t{j - 1}"] if j else [],
                                            "estimated_duration_ms": 1000 + j} for j in range(20)]}
            for i in range(n)]


def test_restores_the_collector_state_nested_and_on_error():
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner one does not re-enable what the outer one paused
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a caller that had paused it keeps it paused
    finally:
        gc.enable()


def test_decoding_stored_plans_does_not_run_the_collector_per_allocation_burst(collections):
    """With the collector on, decoding 3,000 plans runs it hundreds of times (each a traversal of what is
    alive); the stored collection's decode runs it at most a few times (when it is back on)."""
    plans = _plans(3000)
    data = frame_to_parquet(pd.DataFrame({"plan": plans}))
    texts = [orjson.dumps(p) for p in plans]
    gc.collect()
    collections.clear()
    decoded_with_collector_on = [orjson.loads(t) for t in texts]
    assert len(collections) > 100
    del decoded_with_collector_on
    gc.collect()
    collections.clear()
    frame = frame_from_parquet(data)
    assert frame["plan"].tolist() == plans
    assert len(collections) <= 5 and gc.isenabled()


def _in_generation(obj, generation: int) -> bool:
    return any(o is obj for o in gc.get_objects(generation=generation))


def test_what_was_built_while_paused_ends_in_the_oldest_generation():
    """Young, the decoded plans would be traversed by the next young collections; old, only by a full one."""
    with cyclic_gc_paused():
        plans = _plans(50)
    assert gc.isenabled()
    assert not _in_generation(plans, 0) and not _in_generation(plans[0], 1)
    assert _in_generation(plans, 2) and _in_generation(plans[-1]["tasks"], 2)
    with cyclic_gc_paused():
        with cyclic_gc_paused():
            inner = [{"a": [1]}]
        assert _in_generation(inner, 0)  # still paused: the outermost pause moves it when it ends
    assert _in_generation(inner, 2)


def test_a_pause_without_the_move_leaves_young_objects_young():
    """The features' decoding runs per serving request: its pause must leave the process's young garbage to
    the young collections, not move it to the oldest generation."""
    with cyclic_gc_paused(move_to_oldest=False):
        made = [{"x": [1]}]
        assert not gc.isenabled()
    assert gc.isenabled() and _in_generation(made, 0) and not _in_generation(made, 2)


def test_cycles_built_while_paused_are_still_collected():
    import weakref

    class Node:
        pass

    with cyclic_gc_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        del a, b
    assert alive() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert alive() is None


def test_objects_a_caller_froze_stay_frozen():
    frozen = [{"kept": "frozen"}]
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with cyclic_gc_paused():
            made = [{"x": 1}]
        assert gc.get_freeze_count() == before and not _in_generation(frozen, 2)
        assert _in_generation(made, 0)  # the move is skipped: unfreezing would thaw the caller's objects
    finally:
        gc.unfreeze()

"""The C fast path of the structure check (hive_assets/data/_structure.c) and the task loop's exact-type
branches: collection validates every document it reads, so these decide most of its cost, and neither may
change a verdict. The C module only answers "sane"; these tests hold it to the Python walk on random trees
(seeded) built to hit every branch: each type the walk treats alike or apart, text with and without lone
surrogates, depths around the limit."""

from __future__ import annotations

import collections
import math
import os
import random
import types
from datetime import datetime, timezone

import pytest

from hive_assets.data import _documents as d

SURROGATE = "\ud800"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _require_c():
    """The C module is optional on a laptop without a compiler, but CI must build and exercise it."""
    if d._structure is not None:
        return d._structure
    if os.environ.get("HIVE_REQUIRE_SERVICES") == "1" and not os.environ.get("HIVE_DATA_PURE_PYTHON"):
        pytest.fail("the C module hive_assets.data._structure was not built (pip install -e . compiles it)")
    pytest.skip("C structure check not built, or HIVE_DATA_PURE_PYTHON set")


def walk(doc, max_depth=d.MAX_DEPTH):
    """The Python walk alone (the C module switched off)."""
    module, d._structure = d._structure, None
    try:
        return d.structure_problems(doc, max_depth)
    finally:
        d._structure = module


class TextSubclass(str):
    pass


class DictSubclass(dict):
    pass


class ListSubclass(list):
    pass


class Leaf:
    """Any other object: a leaf to the walk."""


TEXTS = ["plain", "", "ação", "ü" * 3, "日本", "emoji \U0001F600", "NUL \x00"]
INVALID_TEXTS = ["lone " + SURROGATE, "\udfff", "ok" + SURROGATE + "ok", "日本" + SURROGATE, "\U0001F600" + "\udc00"]
LEAVES = [0, -7, 10 ** 30, 1.5, math.nan, math.inf, True, False, None, NOW, datetime(2020, 1, 1)]
ODD_LEAVES = [b"bytes", Leaf(), TextSubclass("sub " + SURROGATE)]


def text(rng: random.Random) -> str:
    return rng.choice(INVALID_TEXTS) if rng.random() < 0.03 else rng.choice(TEXTS)


def random_tree(rng: random.Random, depth: int, max_depth: int):
    """A value at level `depth`; containers stop near `max_depth` (some go past it)."""
    if depth >= max_depth or rng.random() < 0.4:
        roll = rng.random()
        return text(rng) if roll < 0.5 else rng.choice(LEAVES) if roll < 0.97 else rng.choice(ODD_LEAVES)
    kind = rng.choices(["dict", "list", "tuple", "dict_sub", "list_sub", "mapping", "ordered", "empty"],
                       weights=[100, 80, 1, 1, 1, 1, 1, 4])[0]
    width = rng.randint(1, 4)
    children = [random_tree(rng, depth + 1, max_depth) for _ in range(width)]
    keys = [text(rng) if rng.random() < 0.95 else rng.choice([1, 2.5, None, TextSubclass("k" + SURROGATE)])
            for _ in range(width)]
    if kind == "dict":
        return dict(zip(keys, children))
    if kind == "list":
        return children
    if kind == "tuple":
        return tuple(children)
    if kind == "dict_sub":
        return DictSubclass(zip(keys, children))
    if kind == "list_sub":
        return ListSubclass(children)
    if kind == "mapping":
        return types.MappingProxyType(dict(zip(keys, children)))
    if kind == "ordered":
        return collections.OrderedDict(zip(keys, children))
    return rng.choice([{}, []])


def chain(levels: int, leaf):
    """Dicts and lists alternating, `levels` containers deep, `leaf` at the bottom."""
    node = leaf
    for i in range(levels):
        node = {"x": node} if i % 2 else [node]
    return node


def test_the_c_check_says_sane_only_when_the_walk_finds_nothing_and_verdicts_are_unchanged():
    c = _require_c()
    rng = random.Random(20261207)
    sane = insane = fallbacks = 0
    for i in range(6000):
        limit = rng.choice([2, 3, 4, 6, d.MAX_DEPTH])
        doc = random_tree(rng, 1, limit + 2 if limit < d.MAX_DEPTH else 8)
        if rng.random() < 0.05:
            doc = {d.UNREADABLE_FIELD: rng.choice([{"reason": "r", "detail": "x"}, "not a mapping"]), "k": doc}
        expected = walk(doc, limit)
        if c.sane(doc, limit):
            assert expected == [], (i, doc, limit)
            sane += 1
        else:
            insane += bool(expected)
            fallbacks += not expected
        got = d.structure_problems(doc, limit)
        assert [(p.reason, p.detail) for p in got] == [(p.reason, p.detail) for p in expected], (i, doc, limit)
    # every branch was taken: sane trees, problems found, and sane trees the C module left to the walk
    assert sane > 500 and insane > 500 and fallbacks > 500, (sane, insane, fallbacks)


@pytest.mark.parametrize("leaf", ["text", "ação", "\U0001F600", 3, 2.5, None, True, NOW])
def test_the_c_check_passes_the_common_shapes_up_to_the_depth_limit(leaf):
    c = _require_c()
    for levels in (1, 2, d.MAX_DEPTH - 1, d.MAX_DEPTH):
        assert c.sane(chain(levels, leaf), d.MAX_DEPTH) and walk(chain(levels, leaf)) == []
    assert not c.sane(chain(d.MAX_DEPTH + 1, leaf), d.MAX_DEPTH)
    assert [p.reason for p in d.structure_problems(chain(d.MAX_DEPTH + 1, leaf))] == [d.TOO_DEEP]
    assert not c.sane(chain(d.MAX_DEPTH, [leaf]), d.MAX_DEPTH)  # an empty or leaf-holding list is a level too


@pytest.mark.parametrize("where", ["value", "key", "list item", "deep value"])
@pytest.mark.parametrize("text", [SURROGATE, "\udfff", "日本" + SURROGATE, "\U0001F600\udc00"])
def test_the_c_check_leaves_every_lone_surrogate_to_the_walk(where, text):
    c = _require_c()
    doc = {"value": {"a": text}, "key": {text: 1}, "list item": {"a": ["ok", text]},
           "deep value": chain(40, {"a": text})}[where]
    assert not c.sane(doc, d.MAX_DEPTH)
    assert [p.reason for p in d.structure_problems(doc)] == [d.INVALID_STRING]


def test_the_c_check_leaves_containers_it_does_not_know_and_odd_limits_to_the_walk():
    c = _require_c()
    for doc in ({"a": (1, 2)}, {"a": DictSubclass()}, {"a": ListSubclass()}, {"a": types.MappingProxyType({})},
                DictSubclass(a=1), (1,), "text", 5, {d.UNREADABLE_FIELD: {"reason": "r"}}):
        assert not c.sane(doc, d.MAX_DEPTH), doc
    assert c.sane({"a": Leaf(), "b": TextSubclass(SURROGATE), "c": b"\xff"}, d.MAX_DEPTH)  # leaves to the walk too
    assert walk({"a": Leaf(), "b": TextSubclass(SURROGATE), "c": b"\xff"}) == []
    cyclic: dict = {"a": []}
    cyclic["a"].append(cyclic)  # a document holding itself is infinitely deep: the walk says so
    assert not c.sane(cyclic, d.MAX_DEPTH)
    assert [p.reason for p in d.structure_problems(cyclic)] == [d.TOO_DEEP]
    for limit in (0, -1, 10_000, 10 ** 30, 2.5, "64"):
        assert not c.sane({"a": 1}, limit), limit
    assert d.structure_problems({"a": {"b": 1}}, 10 ** 30) == [] and d.structure_problems({"a": {"b": 1}}, 2.5) == []
    assert [p.reason for p in d.structure_problems({"a": 1}, 0)] == [d.TOO_DEEP]
    assert d.structure_problems(chain(300, 1), 10_000) == []


def test_a_simulated_plan_takes_the_c_path():
    from hive_assets.simulator import make_plans

    c = _require_c()
    plans = make_plans(50, seed=3)
    assert all(c.sane(plan, d.MAX_DEPTH) for plan in plans)


# -- the task loop's exact-type branches ----------------------------------------------------------------------

def _reasons(task):
    return [p.reason for p in d.validate_plan({"plan_id": "p", "tasks": [task]}, NOW)]


class FloatSubclass(float):
    pass


@pytest.mark.parametrize("value, reason", [
    (0, None), (5, None), (1.5, None), (d.MAX_DURATION_MS, None), (int(d.MAX_DURATION_MS), None),
    (FloatSubclass(5.0), None), (-0.0, None),
    (-1, d.NEGATIVE_DURATION), (-0.5, d.NEGATIVE_DURATION), (FloatSubclass(-1.0), d.NEGATIVE_DURATION),
    (int(d.MAX_DURATION_MS) + 1, d.OUT_OF_RANGE), (2e15, d.OUT_OF_RANGE), (10 ** 400, d.OUT_OF_RANGE),
    (math.nan, d.OUT_OF_RANGE), (math.inf, d.OUT_OF_RANGE), (-math.inf, d.OUT_OF_RANGE),
    (True, d.WRONG_TYPE), (False, d.WRONG_TYPE), ("5", d.WRONG_TYPE), ([5], d.WRONG_TYPE),
])
def test_a_task_duration_is_judged_by_its_value_not_by_the_branch_that_saw_it(value, reason):
    assert _reasons({"task_id": "a", "estimated_duration_ms": value}) == ([reason] if reason else [])


@pytest.mark.parametrize("caps, ok", [
    ([], True), (["a", "b"], True), ([TextSubclass("a")], True), (["a", TextSubclass("b")], True), (None, True),
    (["a", 1], False), ([None], False), ([b"a"], False), ("a", False), (("a",), False),
])
def test_capabilities_are_a_list_of_text_whatever_their_str_type(caps, ok):
    assert _reasons({"task_id": "a", "required_capabilities": caps}) == ([] if ok else [d.WRONG_TYPE])


@pytest.mark.parametrize("dependency, ok", [
    ("a", True), (TextSubclass("a"), True), ({"task_id": "a"}, True), ({"task_id": "a", "type": "weak"}, True),
    (collections.OrderedDict(task_id="a"), True), (types.MappingProxyType({"task_id": "a"}), True),
    ({"task_id": 1}, False), ({"task_id": "a", "type": "other"}, False), (1, False), (["a"], False),
])
def test_dependencies_keep_their_rules_on_every_mapping_and_text_type(dependency, ok):
    reasons = _reasons({"task_id": "b", "dependencies": [dependency]})
    assert reasons == ([] if ok else [d.INVALID_DEPENDENCY])


@pytest.mark.parametrize("task, reason", [
    ({"task_id": "a"}, None), (collections.OrderedDict(task_id="a"), None),
    (types.MappingProxyType({"task_id": "a"}), None), (["task_id", "a"], d.WRONG_TYPE), ("a", d.WRONG_TYPE),
])
def test_a_task_is_any_mapping(task, reason):
    assert _reasons(task) == ([reason] if reason else [])

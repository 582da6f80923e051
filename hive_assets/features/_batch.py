"""The batch path: `features_frame` and the vectorised kernels behind it (private).

Pipeline, for a stream of plans:

1. Flattening (the only per-plan Python work), in mini-chunks of `MINI_CHUNK` plans so that every
   pass over a chunk's dicts, lists and strings hits the CPU cache: tasks, ids, durations,
   dependency lists and capability lists are pulled out with C-level `map`/`chain` calls, and ids /
   capabilities are turned into integer codes through per-block vocabularies (dicts, so ids compare
   with Python equality exactly as the single-plan path does). Anything odd in a chunk (a value of
   the wrong shape, an unhashable id, ...) makes the chunk re-run on sanitised copies of its plans.
2. Per block of up to `BLOCK_PLANS` plans, everything else is numpy over flat arrays with global
   task indices and plan offsets: id resolution through a dense (plan, code) table (or a sort when
   that table would be large), edge de-duplication by sorting packed (src, dst, weak) keys (which
   also yields the CSR adjacency), degrees and per-plan counts with `bincount`, per-plan maxima with
   `maximum.reduceat`, depth / critical path / acyclic part by level-synchronous Kahn relaxation over
   all plans at once (iterations = longest chain), generations by counting sorted (plan, depth)
   keys, the Gini coefficient by sorting a padded (plan, duration) matrix row-wise (`lexsort` for
   plans over `GINI_PAD` tasks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain, islice, repeat
from typing import Any

import numpy as np

import pandas as pd

from hive_assets.config import optional_extension
from hive_assets.cyclic_gc import cyclic_gc_paused
from hive_assets.features._scalars import (
    _DOMAIN_CACHE, _PRIORITY_CACHE, _decoded, _domain, _is_weak, _priority, _sanitize_plan,
)
from hive_assets.features._schema import DEFAULT_SCORE, NUMERIC_FEATURES

# Optional C flattener (hive_assets/features/_flatten.c, built by setup.py when a compiler is available): it
# returns exactly what `_extract` returns for the common case and raises on anything else, in which
# case the chunk takes the Python path. HIVE_FEATURES_PURE_PYTHON=1 disables it.
_flatten = optional_extension("hive_assets.features._flatten", "HIVE_FEATURES_PURE_PYTHON")

MINI_CHUNK = 128
BLOCK_PLANS = 8192
DENSE_TABLE_LIMIT = 1 << 23
GINI_PAD = 64

_COL = {name: i for i, name in enumerate(NUMERIC_FEATURES)}
_N_NUMERIC = len(NUMERIC_FEATURES)

_SENTINEL = object()  # stands for a non-string dependency entry in the flat dependency list
_NA = 1  # id-vocabulary code of None (missing id)
_LISTS = frozenset((list, tuple))
_LISTS_OR_NONE = frozenset((list, tuple, type(None)))
_dget = dict.get


class _Vocab(dict):
    """value -> dense integer code, assigned on first sight (C-level hits, Python only on misses)."""

    __slots__ = ()

    def __missing__(self, key):
        code = len(self)
        self[key] = code
        return code


class _WeakKinds(dict):
    __slots__ = ()

    def __missing__(self, key):
        weak = _is_weak(key)
        if len(self) < 1024:
            self[key] = weak
        return weak


_WEAK = _WeakKinds()


class _Unexpected(Exception):
    pass


def _lists(values: list) -> list:
    """Check a column of list values (None -> empty); anything else sends the chunk to the slow path."""
    kinds = set(map(type, values))
    if kinds <= _LISTS:
        return values
    if kinds <= _LISTS_OR_NONE:
        return [v if v is not None else () for v in values]
    raise _Unexpected


def _floats(values: list) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    if out.ndim != 1 or out.shape[0] != len(values):
        raise _Unexpected
    return out


def _extract(chunk: list, ids: _Vocab, caps: _Vocab) -> tuple:
    """Flatten one mini-chunk of plans into arrays (see module docstring)."""
    n_plans = len(chunk)
    task_lists = _lists(list(map(_dget, chunk, repeat("tasks"))))
    n_tasks = np.fromiter(map(len, task_lists), np.int64, n_plans)
    tasks = list(chain.from_iterable(task_lists))
    nt = len(tasks)
    task_ids = list(map(_dget, tasks, repeat("task_id")))
    durations = list(map(_dget, tasks, repeat("estimated_duration_ms")))
    dep_lists = _lists(list(map(_dget, tasks, repeat("dependencies"))))
    cap_lists = _lists(list(map(_dget, tasks, repeat("required_capabilities"))))

    n_deps = np.fromiter(map(len, dep_lists), np.int64, nt)
    side: list = []
    put = side.append
    deps = [d if d.__class__ is str else (put(d) or _SENTINEL) for d in chain.from_iterable(dep_lists)]
    lookup = ids.__getitem__
    dep_codes = np.fromiter(map(lookup, deps), np.int64, len(deps))
    weak = np.zeros(len(deps), dtype=bool)
    if side:
        try:
            side_ids = list(map(_dget, side, repeat("task_id")))
            kinds = list(map(_dget, side, repeat("type")))
        except TypeError:  # a non-dict entry (e.g. an int id): it is its own id, strong
            side_ids = [d.get("task_id") if d.__class__ is dict else d for d in side]
            kinds = [d.get("type") if d.__class__ is dict else None for d in side]
        where = np.flatnonzero(dep_codes == 0)
        if where.shape[0] != len(side):
            raise _Unexpected
        dep_codes[where] = np.fromiter(map(lookup, side_ids), np.int64, len(side))
        weak[where] = np.fromiter(map(_WEAK.__getitem__, kinds), bool, len(side))
    task_codes = np.fromiter(map(lookup, task_ids), np.int64, nt)

    n_caps = np.fromiter(map(len, cap_lists), np.int64, nt)
    cap_codes = np.fromiter(map(caps.__getitem__, chain.from_iterable(cap_lists)), np.int64, int(n_caps.sum()))

    scalars = np.empty((3, n_plans), dtype=np.float64)
    scalars[0] = _floats(list(map(_dget, chunk, repeat("risk_score"))))
    scalars[1] = _floats(list(map(_dget, chunk, repeat("complexity_score"))))
    scalars[2] = _floats(list(map(_dget, chunk, repeat("estimated_total_duration_ms"))))
    domains = list(map(_domain, map(_dget, chunk, repeat("original_domain"))))
    priority = np.fromiter(map(_priority, map(_dget, chunk, repeat("original_priority"))), np.float64, n_plans)
    return (n_tasks, task_codes, _floats(durations), n_deps, dep_codes, weak, n_caps, cap_codes,
            scalars, priority, domains)


def _extract_c(chunk: list, ids: _Vocab, caps: _Vocab) -> tuple:
    """`_extract` through the C flattener; raises (before touching the vocabularies) outside its fast case."""
    (n_tasks, task_codes, durations, n_deps, dep_codes, weak, n_caps, cap_codes, scalars, priority,
     domains) = _flatten.extract(chunk, ids, caps, _WEAK, _domain, _DOMAIN_CACHE, _priority, _PRIORITY_CACHE)
    fb = np.frombuffer
    i64, f64 = np.int64, np.float64
    return (fb(n_tasks, i64), fb(task_codes, i64), fb(durations, f64), fb(n_deps, i64), fb(dep_codes, i64),
            fb(weak, np.bool_), fb(n_caps, i64), fb(cap_codes, i64), fb(scalars, f64).reshape(3, len(chunk)),
            fb(priority, f64), domains)


def _extract_safe(chunk: list, ids: _Vocab, caps: _Vocab) -> tuple:
    if _flatten is not None:
        try:
            return _extract_c(chunk, ids, caps)
        except Exception:  # outside the C fast case (or any C-side error): the Python path decides
            pass
    try:
        return _extract(chunk, ids, caps)
    except Exception:
        return _extract([_sanitize_plan(p) for p in chunk], ids, caps)


def _is_tree(plan: Any) -> bool:
    return plan.__class__ is dict


@cyclic_gc_paused(move_to_oldest=False)  # only paused: the serving path comes here per request
def _decoded_chunk(chunk: list) -> list:
    """The mini-chunk's plans decoded, the cyclic collector paused meanwhile: thousands of containers at once
    would make it traverse the whole heap (a Dagster process's too) for trees that reference counting frees
    with the chunk."""
    return list(map(_decoded, chunk))


def compute_matrix(plans: Iterable) -> tuple[np.ndarray, list[str]]:
    """(plans x NUMERIC_FEATURES float64 matrix, domain list) for an iterable of plans: each a dict or its
    JSON text (a collection's `plan` column), decoded a mini-chunk at a time, so that a collection's plans
    never all exist as trees at once."""
    it = iter(plans)
    blocks: list[np.ndarray] = []
    domains: list[str] = []
    while True:
        ids, caps = _Vocab({_SENTINEL: 0, None: _NA}), _Vocab({None: 0})
        parts = []
        n = 0
        while n < BLOCK_PLANS:
            chunk = list(islice(it, MINI_CHUNK))
            if not chunk:
                break
            if not all(map(_is_tree, chunk)):  # JSON text: decoded a mini-chunk at a time
                chunk = _decoded_chunk(chunk)
            parts.append(_extract_safe(chunk, ids, caps))
            n += len(chunk)
        if not parts:
            break
        block, block_domains = _block(parts, len(ids), len(caps))
        blocks.append(block)
        domains.extend(block_domains)
        if n < BLOCK_PLANS:
            break
    if not blocks:
        return np.zeros((0, _N_NUMERIC)), []
    if len(blocks) == 1:
        return blocks[0], domains
    # copy block by block, releasing each: peak ~ output + one block (np.concatenate would hold both)
    matrix = np.empty((len(domains), _N_NUMERIC), dtype=np.float64)
    blocks.reverse()
    pos = 0
    while blocks:
        block = blocks.pop()
        matrix[pos:pos + block.shape[0]] = block
        pos += block.shape[0]
    return matrix, domains


def _cat(parts: list, i: int, dtype) -> np.ndarray:
    arrays = [p[i] for p in parts]
    return np.concatenate(arrays) if len(arrays) > 1 else np.asarray(arrays[0], dtype=dtype)


def _segmax(values: np.ndarray, starts: np.ndarray, nonempty: np.ndarray, n_plans: int, fill) -> np.ndarray:
    out = np.full(n_plans, fill, dtype=values.dtype)
    if starts.shape[0]:
        out[nonempty] = np.maximum.reduceat(values, starts)
    return out


def _resolve(plan_t: np.ndarray, task_codes: np.ndarray, plan_d: np.ndarray, dep_codes: np.ndarray,
             n_plans: int, n_codes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Dependency -> task index (-1 when dangling), and the kept-task mask (None when all are kept).

    Tasks with code _NA (no id) are never targets and never duplicates; otherwise the first task
    with a given (plan, id) wins.
    """
    nt = task_codes.shape[0]
    idx = np.arange(nt)
    named = task_codes != _NA
    all_named = bool(named.all())
    if n_plans * n_codes <= DENSE_TABLE_LIMIT:
        table_dtype = np.int32 if nt < 2**31 - 1 else np.int64
        keys = plan_t * n_codes + task_codes
        table = np.full(n_plans * n_codes, -1, dtype=table_dtype)
        if all_named:
            table[keys] = idx
            clash = table[keys] != idx
        else:
            table[keys[named]] = idx[named]
            clash = named & (table[keys] != idx)
        keep = None
        if clash.any():  # repeated ids: make the table hold the first occurrence
            first = np.full(n_plans * n_codes, nt, dtype=np.int64)
            np.minimum.at(first, keys[named], idx[named])
            table = np.where(first == nt, -1, first)
            keep = ~named | (table[keys] == idx)
        return table[plan_d * n_codes + dep_codes].astype(np.int64, copy=False), keep
    # large vocabulary (e.g. uuid ids): sort the named (plan, code) keys
    nidx = idx[named] if not all_named else idx
    keys = plan_t[nidx] * n_codes + task_codes[nidx]
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    sorted_idx = nidx[order]
    first = np.ones(sorted_keys.shape[0], dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    unique_keys = sorted_keys[first]
    unique_idx = sorted_idx[first]
    keep = None
    if unique_keys.shape[0] != nidx.shape[0]:
        keep = ~named
        keep[unique_idx] = True
    query = plan_d * n_codes + dep_codes
    pos = np.searchsorted(unique_keys, query)
    if unique_keys.shape[0]:
        pos = np.minimum(pos, unique_keys.shape[0] - 1)
        hit = unique_keys[pos] == query
        target = np.where(hit, unique_idx[pos], -1)
    else:
        target = np.full(query.shape[0], -1, dtype=np.int64)
    return target, keep


def _block(parts: list, n_codes: int, n_cap_codes: int) -> tuple[np.ndarray, list[str]]:
    # ---- gather the mini-chunks ---------------------------------------------------------------
    n_tasks_raw = _cat(parts, 0, np.int64)
    task_codes = _cat(parts, 1, np.int64)
    dur = _cat(parts, 2, np.float64)
    n_deps = _cat(parts, 3, np.int64)
    dep_codes = _cat(parts, 4, np.int64)
    dep_weak = _cat(parts, 5, bool)
    n_caps = _cat(parts, 6, np.int64)
    cap_codes = _cat(parts, 7, np.int64)
    scalars = np.concatenate([p[8] for p in parts], axis=1) if len(parts) > 1 else parts[0][8]
    priority = _cat(parts, 9, np.float64)
    domains = [d for p in parts for d in p[10]]
    P = n_tasks_raw.shape[0]
    plans = np.arange(P)

    # ---- ids -> task indices; drop repeated ids (first occurrence wins) -----------------------
    plan_t = np.repeat(plans, n_tasks_raw)
    owner = np.repeat(np.arange(task_codes.shape[0]), n_deps)
    plan_d = plan_t[owner]
    target, keep = _resolve(plan_t, task_codes, plan_d, dep_codes, P, n_codes)
    cap_plan = np.repeat(plan_t, n_caps)
    if keep is not None:
        dep_kept = keep[owner]
        renumber = np.cumsum(keep) - 1
        valid = dep_kept & (target >= 0)
        dangling_mask = dep_kept & (target < 0)
        src = renumber[target[valid]]
        dst = renumber[owner[valid]]
        cap_kept = np.repeat(keep, n_caps)
        cap_plan = cap_plan[cap_kept]
        cap_codes = cap_codes[cap_kept]
        plan_t = plan_t[keep]
        dur = dur[keep]
        n_tasks = np.bincount(plan_t, minlength=P)
    else:
        valid = target >= 0
        dangling_mask = ~valid
        src = target[valid]
        dst = owner[valid]
        n_tasks = n_tasks_raw
    weak = dep_weak[valid]
    dangling = np.bincount(plan_d[dangling_mask], minlength=P)
    T = dur.shape[0]
    offsets = np.zeros(P + 1, dtype=np.int64)
    np.cumsum(n_tasks, out=offsets[1:])
    nonempty = n_tasks > 0
    starts = offsets[:-1][nonempty]
    n = n_tasks.astype(np.float64)

    missing = ~np.isfinite(dur)
    if missing.any():
        dur = np.where(missing, 0.0, dur)

    # ---- distinct edges, weak only if every occurrence is weak; sorted by (src, dst) = CSR ------
    if src.shape[0]:
        packed = np.sort((src * T + dst) * 2 + weak)
        keys = packed >> 1
        first = np.ones(keys.shape[0], dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        keys = keys[first]
        weak_u = (packed[first] & 1).astype(np.float64)
        src = keys // T
        dst = keys - src * T
    else:
        src = dst = np.zeros(0, dtype=np.int64)
        weak_u = np.zeros(0)
    indeg = np.bincount(dst, minlength=T)
    outdeg = np.bincount(src, minlength=T)
    edge_plan = plan_t[src]
    n_edges = np.bincount(edge_plan, minlength=P).astype(np.float64)
    n_weak = np.bincount(edge_plan, weights=weak_u, minlength=P)

    # ---- Kahn, level-synchronous over all plans: depth, critical path, acyclic part -----------
    out_ptr = np.zeros(T + 1, dtype=np.int64)
    np.cumsum(outdeg, out=out_ptr[1:])
    remaining = indeg.copy()
    depth = np.zeros(T, dtype=np.int64)
    path = np.full(T, -np.inf)
    best = np.full(T, -np.inf)
    slot = np.zeros(T, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    depth[frontier] = 1
    path[frontier] = dur[frontier]
    level = 1
    while frontier.shape[0]:
        counts = outdeg[frontier]
        active = counts > 0
        frontier, counts = frontier[active], counts[active]
        total = int(counts.sum())
        if total == 0:
            break
        ends = np.cumsum(counts)
        edge_idx = np.arange(total) + np.repeat(out_ptr[frontier] - (ends - counts), counts)
        heads = dst[edge_idx]
        np.maximum.at(best, heads, np.repeat(path[frontier], counts))
        np.subtract.at(remaining, heads, 1)
        ready = heads[remaining[heads] == 0]
        if ready.shape[0] > 1:  # a task reached by several edges of this level appears once
            order = np.arange(ready.shape[0])
            slot[ready] = order
            ready = ready[slot[ready] == order]
        level += 1
        depth[ready] = level
        path[ready] = dur[ready] + best[ready]
        frontier = ready
    processed = depth > 0
    n_processed = np.bincount(plan_t, weights=processed, minlength=P)
    depth_max = _segmax(depth, starts, nonempty, P, 0).astype(np.float64)
    critical = _segmax(path, starts, nonempty, P, -np.inf)
    critical[np.isneginf(critical)] = 0.0

    # generation sizes: count tasks per (plan, depth)
    widest = np.zeros(P)
    if processed.any():
        gkeys = np.sort(plan_t[processed] * (level + 1) + depth[processed])
        run_start = np.ones(gkeys.shape[0], dtype=bool)
        run_start[1:] = gkeys[1:] != gkeys[:-1]
        run_pos = np.flatnonzero(run_start)
        run_len = np.diff(np.append(run_pos, gkeys.shape[0])).astype(np.float64)
        np.maximum.at(widest, gkeys[run_pos] // (level + 1), run_len)

    # ---- durations ------------------------------------------------------------------------------
    total_ms = np.bincount(plan_t, weights=dur, minlength=P)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_ms = np.where(nonempty, total_ms / n, 0.0)
        mean_s = mean_ms / 1000.0
        dev = dur / 1000.0 - mean_s[plan_t]
        variance = np.where(nonempty, np.bincount(plan_t, weights=dev * dev, minlength=P) / n, 0.0)
        cv = np.where(mean_s != 0, np.sqrt(variance) / mean_s, 0.0)
        missing_ratio = np.where(nonempty, np.bincount(plan_t, weights=missing, minlength=P) / n, 0.0)

    # Gini: sum_i i * x_(i) per plan
    gini = np.zeros(P)
    eligible = (n_tasks >= 2) & (total_ms > 0)
    if eligible.any():
        weighted = np.zeros(P)
        small = eligible & (n_tasks <= GINI_PAD)
        if small.any():
            rows = np.flatnonzero(small)
            width = int(n_tasks[rows].max())
            row_of = np.full(P, -1, dtype=np.int64)
            row_of[rows] = np.arange(rows.shape[0])
            tmask = small[plan_t]
            tplan = plan_t[tmask]
            grid = np.full((rows.shape[0], width), np.inf)
            grid[row_of[tplan], np.flatnonzero(tmask) - offsets[tplan]] = dur[tmask]
            grid.sort(axis=1)
            grid[np.isposinf(grid)] = 0.0
            weighted[rows] = grid @ np.arange(1, width + 1, dtype=np.float64)
        large = eligible & ~small
        if large.any():
            tmask = large[plan_t]
            tplan = plan_t[tmask]
            tdur = dur[tmask]
            order = np.lexsort((tdur, tplan))
            tplan, tdur = tplan[order], tdur[order]
            local = np.arange(tplan.shape[0])
            local = local - np.searchsorted(tplan, tplan) + 1  # rank inside the plan, from 1
            weighted += np.bincount(tplan, weights=local * tdur, minlength=P)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = 2.0 * weighted / (n * total_ms) - (n + 1.0) / n
            gini = np.where(eligible, np.clip(raw, 0.0, (n - 1.0) / n), 0.0)

    # ---- capabilities: distinct per plan ----------------------------------------------------------
    named_caps = cap_codes != 0
    if not named_caps.all():
        cap_plan, cap_codes = cap_plan[named_caps], cap_codes[named_caps]
    if P * n_cap_codes <= DENSE_TABLE_LIMIT:
        seen = np.zeros(P * n_cap_codes, dtype=bool)
        seen[cap_plan * n_cap_codes + cap_codes] = True
        distinct_caps = seen.reshape(P, n_cap_codes).sum(axis=1).astype(np.float64)
    else:
        pairs = np.unique(cap_plan * n_cap_codes + cap_codes)
        distinct_caps = np.bincount(pairs // n_cap_codes, minlength=P).astype(np.float64)

    # ---- assemble -----------------------------------------------------------------------------
    risk = scalars[0]
    risk = np.where(np.isfinite(risk), risk, DEFAULT_SCORE)
    complexity = scalars[1]
    complexity = np.where(np.isfinite(complexity), complexity, DEFAULT_SCORE)
    estimate = scalars[2]
    estimate = np.where(np.isfinite(estimate), estimate, total_ms)
    out = np.empty((P, _N_NUMERIC), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, _COL["num_tasks"]] = n
        out[:, _COL["num_edges"]] = n_edges
        out[:, _COL["density"]] = np.where(n >= 2, n_edges / (n * (n - 1.0)), 0.0)
        out[:, _COL["avg_out_degree"]] = np.where(nonempty, n_edges / n, 0.0)
        out[:, _COL["max_in_degree"]] = _segmax(indeg, starts, nonempty, P, 0)
        out[:, _COL["max_out_degree"]] = _segmax(outdeg, starts, nonempty, P, 0)
        out[:, _COL["task_depth_max"]] = depth_max
        out[:, _COL["critical_path_length"]] = critical
        out[:, _COL["max_parallelism"]] = widest
        out[:, _COL["parallelization_potential"]] = np.where(
            nonempty, np.bincount(plan_t, weights=indeg == 0, minlength=P) / n, 0.0)
        out[:, _COL["has_cyclic_dependencies"]] = (n_processed < n_tasks).astype(np.float64)
        out[:, _COL["weak_dependency_ratio"]] = np.where(n_edges > 0, n_weak / n_edges, 0.0)
        out[:, _COL["total_duration_ms"]] = total_ms
        out[:, _COL["avg_duration_ms"]] = mean_ms
        out[:, _COL["duration_variance"]] = variance
        out[:, _COL["duration_coefficient_of_variation"]] = cv
        out[:, _COL["capability_diversity"]] = np.where(nonempty, distinct_caps / n, 0.0)
        out[:, _COL["workload_distribution_score"]] = gini
        out[:, _COL["risk_score"]] = risk
        out[:, _COL["complexity_score"]] = complexity
        out[:, _COL["risk_complexity_product"]] = risk * complexity
        out[:, _COL["risk_adjusted_duration_estimate"]] = estimate * (1.0 + risk)
        out[:, _COL["priority_score"]] = priority
        out[:, _COL["missing_duration_ratio"]] = missing_ratio
        out[:, _COL["dangling_dependency_count"]] = dangling
    return out, domains


def features_frame(plans: Iterable[Mapping]) -> pd.DataFrame:
    """Features of many plans (training path), one row per plan in input order; a plan may be given as its
    JSON text (str or bytes: a collection's `plan` column), text that is not JSON is a malformed plan.

    Columns are `FEATURE_NAMES` in order, numeric columns float64, `domain` object, RangeIndex.
    `plans` may be any iterable (a generator is consumed in chunks, so memory stays bounded by the
    output, not by the input).
    """
    matrix, domains = compute_matrix(plans)
    frame = pd.DataFrame(matrix, columns=list(NUMERIC_FEATURES), copy=False)
    frame["domain"] = pd.Series(domains, dtype=object, index=frame.index)
    return frame

"""Feature contract (SPEC section 3): one module, used by training (`features_frame`) and serving
(`plan_features`), versioned by `FEATURE_SCHEMA_VERSION`.

Imports only numpy and pandas. `features_frame` is vectorised over many plans at once (the kernels
live in `hive_assets.features._batch`); `plan_features` is a small pure-Python path for one plan.
The two agree to 1e-9 on every feature (tested against each other and against an independent
networkx reference in `hive_assets_tests/feature_reference.py`).

Input: a plan document (`plan_data`): `tasks` (list of task dicts), `risk_score`, `complexity_score`,
`estimated_total_duration_ms`, `original_domain`, `original_priority`. Edges run predecessor ->
dependent. No recursion anywhere: a 5,000-long chain or a 10,000-task plan is fine.

Decisions for the cases SPEC section 3 leaves open (both paths implement exactly these):

* Task identity. Ids are compared with Python equality (`"1"` and `1` differ). A task whose
  `task_id` is missing or None is still a task (it counts in N, durations, capabilities, and its own
  dependencies are edges), but no dependency can point to it. A repeated `task_id`: the **first
  occurrence wins**; later tasks with the same id are dropped entirely (not counted in N, their
  durations, capabilities and dependencies are ignored, and their dependencies are not counted as
  dangling). A dependency on that id points to the first occurrence.
* Dependencies. An entry is a task id (string or other scalar) or an object
  `{"task_id": ..., "type": ...}`; the edge is *weak* iff `type` is a string equal to "weak"
  (case- and whitespace-insensitive), anything else (including no type) is strong. An entry whose id
  is missing/None or is not a task id of the plan is ignored and counted in
  `dangling_dependency_count`, once per entry (so a repeated dangling entry counts twice).
* Edges. E counts distinct (predecessor, dependent) pairs. The same pair given several times counts
  once and is **weak only if every occurrence is weak**. A task depending on itself is a valid edge
  (a self-loop): it counts in E and in both degrees (so `density` may exceed 1 only in plans with
  self-loops, as networkx's density does) and makes the plan cyclic.
* Cycles. `has_cyclic_dependencies` = 1 if the graph has a cycle (self-loops included). Then
  `task_depth_max`, `critical_path_length` and `max_parallelism` are computed on the acyclic part:
  the tasks that are neither on a cycle nor downstream of one (exactly the tasks Kahn's algorithm
  peels). They are 0 when that part is empty. Degrees, density, `parallelization_potential` and all
  other features use the whole graph.
* Durations. `estimated_duration_ms` missing, None, not convertible to float, NaN or infinite counts
  as 0 ms and as missing in `missing_duration_ratio`. Numeric strings are converted. Other values are
  used as given (validation rejects negatives upstream; `workload_distribution_score` is clipped to
  [0, (n-1)/n] so it stays in [0, 1) whatever the input).
  `duration_variance` is the population variance of the durations in seconds (ms / 1000), so in s^2;
  `duration_coefficient_of_variation` = population std / mean (unitless), 0 when the mean is 0.
  `critical_path_length` is in ms, `avg_duration_ms` = total / N (0 when N = 0).
* Gini (`workload_distribution_score`): durations sorted ascending x_1..x_n,
  G = 2 sum_i i x_i / (n sum x) - (n + 1) / n; 0 when n < 2 or sum x <= 0.
* Capabilities: `required_capabilities` entries compared with Python equality; None entries are
  ignored; `capability_diversity` = distinct values over the plan / N.
* Plan scalars: `risk_score` and `complexity_score` missing, None, NaN, infinite or not numeric ->
  0.5. `estimated_total_duration_ms` likewise -> `total_duration_ms`.
  `risk_adjusted_duration_estimate` = that estimate * (1 + risk_score).
  `priority_score`: low .25, normal .5, high .75, critical 1.0 (case/whitespace-insensitive), else .5.
  `domain` = `str(original_domain).strip().upper()`, "UNKNOWN" when missing, None or blank.
* A plan given as its JSON text (str or bytes) is the plan it encodes.
* Malformed shapes never raise: a plan that is not a mapping (text that is not JSON too) is an empty
  plan; a `tasks` value that is not a list is no tasks; task entries that are not mappings are skipped;
  a `dependencies` or `required_capabilities` value that is a single string is a one-element list, any
  other non-list is empty; unhashable ids are treated as missing (a task: anonymous; a dependency:
  dangling); unhashable capability entries are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hive_assets.features._scalars import _SEQUENCES, _decoded, _domain, _finite_or, _is_weak, _priority, _sanitize_plan
from hive_assets.features._schema import DEFAULT_SCORE


def plan_features(plan: Mapping) -> dict[str, float | str]:
    """Features of one plan (serving path). Numeric values are Python floats, `domain` a str.

    Same values as `features_frame([plan])` (to 1e-9); like it, takes the plan's JSON text too.
    """
    plan = _decoded(plan)
    try:
        return _plan_features(plan)
    except Exception:
        return _plan_features(_sanitize_plan(plan))


def _plan_features(plan: Mapping) -> dict[str, float | str]:
    raw_tasks = plan.get("tasks")
    if raw_tasks is None:
        raw_tasks = ()
    elif raw_tasks.__class__ is not list and not isinstance(raw_tasks, _SEQUENCES):
        raise TypeError("tasks is not a list")

    # tasks: first occurrence of an id wins; anonymous tasks are kept but cannot be referenced
    index: dict[Any, int] = {}
    tasks: list[Mapping] = []
    for task in raw_tasks:
        tid = task.get("task_id")
        if tid is not None:
            if tid in index:
                continue
            index[tid] = len(tasks)
        tasks.append(task)
    n = len(tasks)

    durations: list[float] = []
    missing = 0
    capabilities: set = set()
    edges: dict[tuple[int, int], bool] = {}  # (pred, dependent) -> weak (True only if always weak)
    dangling = 0
    for i, task in enumerate(tasks):
        raw = task.get("estimated_duration_ms")
        value = float("nan") if raw is None else float(raw)
        if math.isfinite(value):
            durations.append(value)
        else:
            durations.append(0.0)
            missing += 1
        deps = task.get("dependencies")
        if deps is not None:
            if not isinstance(deps, _SEQUENCES):
                raise TypeError("dependencies is not a list")
            for dep in deps:
                if dep.__class__ is str:
                    dep_id, weak = dep, False
                elif dep.__class__ is dict:
                    dep_id, weak = dep.get("task_id"), _is_weak(dep.get("type"))
                else:
                    dep_id, weak = dep, False
                j = None if dep_id is None else index.get(dep_id)
                if j is None:
                    dangling += 1
                    continue
                key = (j, i)
                previous = edges.get(key)
                edges[key] = weak if previous is None else (previous and weak)
        caps = task.get("required_capabilities")
        if caps is not None:
            if not isinstance(caps, _SEQUENCES):
                raise TypeError("required_capabilities is not a list")
            capabilities.update(caps)
    capabilities.discard(None)

    n_edges = len(edges)
    indeg = [0] * n
    outdeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    weak_edges = 0
    for (j, i), weak in edges.items():
        succ[j].append(i)
        outdeg[j] += 1
        indeg[i] += 1
        weak_edges += weak

    # Kahn, level by level: depth = level, critical path = own duration + best predecessor path
    remaining = indeg[:]
    frontier = [v for v in range(n) if remaining[v] == 0]
    roots = len(frontier)
    best = [-math.inf] * n
    path = [0.0] * n
    for v in frontier:
        path[v] = durations[v]
    level = 0
    processed = 0
    widest = 0
    longest = -math.inf
    while frontier:
        level += 1
        processed += len(frontier)
        if len(frontier) > widest:
            widest = len(frontier)
        nxt = []
        for v in frontier:
            pv = path[v]
            if pv > longest:
                longest = pv
            for w in succ[v]:
                if pv > best[w]:
                    best[w] = pv
                remaining[w] -= 1
                if remaining[w] == 0:
                    nxt.append(w)
        for w in nxt:
            path[w] = durations[w] + best[w]
        frontier = nxt

    total = 0.0
    for x in durations:
        total += x
    if n:
        mean_ms = total / n
        mean_s = mean_ms / 1000.0
        acc = 0.0
        for x in durations:
            d = x / 1000.0 - mean_s
            acc += d * d
        variance = acc / n
        cv = math.sqrt(variance) / mean_s if mean_s != 0 else 0.0
    else:
        mean_ms = variance = cv = 0.0
    gini = 0.0
    if n >= 2 and total > 0:
        weighted = 0.0
        for rank, x in enumerate(sorted(durations), 1):
            weighted += rank * x
        gini = min(max(2.0 * weighted / (n * total) - (n + 1) / n, 0.0), (n - 1) / n)

    risk = _finite_or(plan.get("risk_score"), DEFAULT_SCORE)
    complexity = _finite_or(plan.get("complexity_score"), DEFAULT_SCORE)
    estimate = _finite_or(plan.get("estimated_total_duration_ms"), total)

    return {
        "num_tasks": float(n),
        "num_edges": float(n_edges),
        "density": n_edges / (n * (n - 1)) if n >= 2 else 0.0,
        "avg_out_degree": n_edges / n if n else 0.0,
        "max_in_degree": float(max(indeg, default=0)),
        "max_out_degree": float(max(outdeg, default=0)),
        "task_depth_max": float(level),
        "critical_path_length": float(longest) if processed else 0.0,
        "max_parallelism": float(widest),
        "parallelization_potential": roots / n if n else 0.0,
        "has_cyclic_dependencies": 1.0 if processed < n else 0.0,
        "weak_dependency_ratio": weak_edges / n_edges if n_edges else 0.0,
        "total_duration_ms": total,
        "avg_duration_ms": mean_ms,
        "duration_variance": variance,
        "duration_coefficient_of_variation": cv,
        "capability_diversity": len(capabilities) / n if n else 0.0,
        "workload_distribution_score": gini,
        "risk_score": risk,
        "complexity_score": complexity,
        "risk_complexity_product": risk * complexity,
        "risk_adjusted_duration_estimate": estimate * (1.0 + risk),
        "priority_score": _priority(plan.get("original_priority")),
        "missing_duration_ratio": missing / n if n else 0.0,
        "dangling_dependency_count": float(dangling),
        "domain": _domain(plan.get("original_domain")),
    }


"""Slow, independent reference for the feature contract (SPEC section 3), written with networkx.

It shares no code with `hive_assets.features` / `hive_assets.features._batch` (only the feature
names, to order its output): the graph features come from networkx (strongly connected components,
descendants, topological generations, `dag_longest_path_length`), the statistics from `statistics`
(exact rational arithmetic) and the Gini coefficient from the mean-absolute-difference form
sum_ij |x_i - x_j| / (2 n sum x), which is algebraically the SPEC's sorted form.

It implements the decisions in the `hive_assets.features` docstring for well-shaped plans (task
dicts with string or None ids, string or {task_id, type} dependencies, numeric or None durations):
first occurrence of a repeated id wins, anonymous tasks are kept but unreachable, duplicate edges
count once and are weak only if every occurrence is weak, self-loops are edges and cycles, depth /
critical path / generations use the tasks neither on nor downstream of a cycle.
"""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import networkx as nx

from hive_assets.features import NUMERIC_FEATURES

PRIORITY = {"low": 0.25, "normal": 0.5, "high": 0.75, "critical": 1.0}


def _number(value, default):
    if value is None:
        return default
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def reference_features(plan: dict) -> dict:
    kept: list[dict] = []
    node_of: dict = {}
    for task in plan.get("tasks") or []:
        tid = task.get("task_id")
        if tid is not None and tid in node_of:
            continue  # a repeated id: the first occurrence wins
        if tid is not None:
            node_of[tid] = len(kept)
        kept.append(task)
    n = len(kept)

    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    all_weak: dict[tuple[int, int], bool] = {}
    dangling = 0
    for i, task in enumerate(kept):
        for dep in task.get("dependencies") or []:
            if isinstance(dep, dict):
                target = dep.get("task_id")
                kind = dep.get("type")
                weak = isinstance(kind, str) and kind.strip().lower() == "weak"
            else:
                target, weak = dep, False
            if target is None or target not in node_of:
                dangling += 1
                continue
            edge = (node_of[target], i)
            all_weak[edge] = all_weak.get(edge, True) and weak
            graph.add_edge(*edge)
    n_edges = graph.number_of_edges()

    durations = []
    missing = 0
    for task in kept:
        value = _number(task.get("estimated_duration_ms"), None)
        if value is None:
            missing += 1
            value = 0.0
        durations.append(value)

    # acyclic part: drop tasks on a cycle (non-trivial SCC or self-loop) and their descendants
    on_cycle = set()
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            on_cycle |= component
    on_cycle |= {u for u, v in nx.selfloop_edges(graph)}
    tainted = set(on_cycle)
    for node in on_cycle:
        tainted |= nx.descendants(graph, node)
    acyclic = graph.subgraph([v for v in graph if v not in tainted]).copy()
    generations = list(nx.topological_generations(acyclic))
    weighted = nx.DiGraph()
    weighted.add_node("source")
    for v in acyclic:
        weighted.add_edge("source", v, weight=durations[v])
    for u, v in acyclic.edges:
        weighted.add_edge(u, v, weight=durations[v])
    critical = nx.dag_longest_path_length(weighted, weight="weight") if len(acyclic) else 0.0

    total = math.fsum(durations)
    if n:
        seconds = [Fraction(x) / 1000 for x in durations]
        mean_ms = statistics.fmean(durations)
        variance = float(statistics.pvariance(seconds))
        cv = math.sqrt(variance) / float(statistics.mean(seconds)) if total != 0 else 0.0
    else:
        mean_ms = variance = cv = 0.0
    if n >= 2 and total > 0:
        mad = math.fsum(abs(a - b) for a in durations for b in durations)
        gini = mad / (2 * n * total)
    else:
        gini = 0.0

    caps = {c for task in kept for c in (task.get("required_capabilities") or []) if c is not None}
    risk = _number(plan.get("risk_score"), 0.5)
    complexity = _number(plan.get("complexity_score"), 0.5)
    estimate = _number(plan.get("estimated_total_duration_ms"), total)
    priority = plan.get("original_priority")
    domain = plan.get("original_domain")
    domain = str(domain).strip().upper() if domain is not None else ""

    values = {
        "num_tasks": n,
        "num_edges": n_edges,
        "density": nx.density(graph) if n >= 2 else 0.0,
        "avg_out_degree": n_edges / n if n else 0.0,
        "max_in_degree": max((d for _, d in graph.in_degree()), default=0),
        "max_out_degree": max((d for _, d in graph.out_degree()), default=0),
        "task_depth_max": len(generations),
        "critical_path_length": critical,
        "max_parallelism": max((len(g) for g in generations), default=0),
        "parallelization_potential": sum(1 for _, d in graph.in_degree() if d == 0) / n if n else 0.0,
        "has_cyclic_dependencies": 0.0 if nx.is_directed_acyclic_graph(graph) else 1.0,
        "weak_dependency_ratio": sum(all_weak.values()) / n_edges if n_edges else 0.0,
        "total_duration_ms": total,
        "avg_duration_ms": mean_ms,
        "duration_variance": variance,
        "duration_coefficient_of_variation": cv,
        "capability_diversity": len(caps) / n if n else 0.0,
        "workload_distribution_score": gini,
        "risk_score": risk,
        "complexity_score": complexity,
        "risk_complexity_product": risk * complexity,
        "risk_adjusted_duration_estimate": estimate * (1 + risk),
        "priority_score": PRIORITY.get(priority.strip().lower(), 0.5) if isinstance(priority, str) else 0.5,
        "missing_duration_ratio": missing / n if n else 0.0,
        "dangling_dependency_count": dangling,
    }
    out = {name: float(values[name]) for name in NUMERIC_FEATURES}
    out["domain"] = domain or "UNKNOWN"
    return out

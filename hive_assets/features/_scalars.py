"""Scalar helpers shared by the single-plan and the batch path: one definition of each rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hive_assets.features._schema import DEFAULT_SCORE, PRIORITY_SCORES, UNKNOWN_DOMAIN

try:  # orjson where the platform's dependencies are installed; a pod with numpy and pandas only has json
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover
    from json import loads as _json_loads

_DOMAIN_CACHE: dict[str, str] = {}
_PRIORITY_CACHE: dict[str, float] = {}
_CACHE_LIMIT = 4096


def _decoded(plan: Any) -> Any:
    """A plan given as its JSON text (a collection keeps plans so) -> the plan; text that is not JSON stays
    what it is, a malformed plan like any other value that is not one."""
    if isinstance(plan, (str, bytes, bytearray)):
        try:
            return _json_loads(plan)
        except ValueError:
            return plan
    return plan


def _domain(value: Any) -> str:
    """`original_domain` -> category: upper-cased, stripped; UNKNOWN when missing or blank."""
    if value is None:
        return UNKNOWN_DOMAIN
    if value.__class__ is str:
        hit = _DOMAIN_CACHE.get(value)
        if hit is not None:
            return hit
    try:
        out = str(value).strip().upper() or UNKNOWN_DOMAIN
    except Exception:  # a value whose __str__ fails
        out = UNKNOWN_DOMAIN
    if value.__class__ is str and len(_DOMAIN_CACHE) < _CACHE_LIMIT:
        _DOMAIN_CACHE[value] = out
    return out


def _priority(value: Any) -> float:
    if value.__class__ is not str and not isinstance(value, str):
        return DEFAULT_SCORE
    hit = _PRIORITY_CACHE.get(value)
    if hit is not None:
        return hit
    out = PRIORITY_SCORES.get(value.strip().lower(), DEFAULT_SCORE)
    if len(_PRIORITY_CACHE) < _CACHE_LIMIT:
        _PRIORITY_CACHE[value] = out
    return out


def _is_weak(kind: Any) -> bool:
    return isinstance(kind, str) and kind.strip().lower() == "weak"


def _as_float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except Exception:
        return None


def _finite_or(value: Any, default: float) -> float:
    f = _as_float_or_none(value)
    return f if f is not None and math.isfinite(f) else default


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except Exception:
        return False
    return True


_SEQUENCES = (list, tuple)


def _sanitize_plan(plan: Any) -> dict:
    """A copy of `plan` in the canonical shapes the fast paths accept, with the same meaning.

    Only used when a plan (or a chunk holding it) made a fast path raise; the decisions it applies
    are those listed in the module docstring.
    """
    if not isinstance(plan, Mapping):
        return {"tasks": []}
    out: dict[str, Any] = {
        "risk_score": _as_float_or_none(plan.get("risk_score")),
        "complexity_score": _as_float_or_none(plan.get("complexity_score")),
        "estimated_total_duration_ms": _as_float_or_none(plan.get("estimated_total_duration_ms")),
        "original_domain": _domain(plan.get("original_domain")),
        "original_priority": plan.get("original_priority") if isinstance(plan.get("original_priority"), str) else None,
    }
    raw_tasks = plan.get("tasks")
    tasks = []
    for task in raw_tasks if isinstance(raw_tasks, _SEQUENCES) else ():
        if not isinstance(task, Mapping):
            continue
        tid = task.get("task_id")
        deps_raw = task.get("dependencies")
        if isinstance(deps_raw, (str, Mapping)):
            deps_raw = [deps_raw]
        elif not isinstance(deps_raw, _SEQUENCES):
            deps_raw = []
        deps: list[Any] = []
        for dep in deps_raw:
            if isinstance(dep, str):
                deps.append(str(dep))
            elif isinstance(dep, Mapping):
                dep_id = dep.get("task_id")
                kind = dep.get("type")
                deps.append({"task_id": dep_id if _hashable(dep_id) else None,
                             "type": kind if isinstance(kind, str) else None})
            else:
                deps.append(dep if _hashable(dep) else None)
        caps_raw = task.get("required_capabilities")
        if isinstance(caps_raw, str):
            caps_raw = [caps_raw]
        elif not isinstance(caps_raw, _SEQUENCES):
            caps_raw = []
        tasks.append({
            "task_id": tid if _hashable(tid) else None,
            "estimated_duration_ms": _as_float_or_none(task.get("estimated_duration_ms")),
            "dependencies": deps,
            "required_capabilities": [c for c in caps_raw if _hashable(c)],
        })
    out["tasks"] = tasks
    return out


"""Feature-module benchmark: plans/s of the batch path (`features_frame`), the single-plan path
(`plan_features`) and the networkx reference, in the same run, plus peak memory of 1,000,000 plans
streamed through `features_frame` (in a subprocess, so `ru_maxrss` is its own).

    .venv/bin/python benchmarks/bench_features.py                  # 100,000 plans, 1M-plan memory run
    .venv/bin/python benchmarks/bench_features.py --plans 20000 --memory-plans 0

Plans come from `hive_assets.simulator.make_plans` when it is importable, else from a local
generator of the same shape (1-40 tasks, mean ~20, weak / strong / plain / dangling dependencies,
~2% cyclic, ~3% missing durations); the output says which. Everything runs on one core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hive_assets.cli._args import positive_int  # noqa: E402
from hive_assets.features import NUMERIC_FEATURES, features_frame, plan_features  # noqa: E402


# -- plans --------------------------------------------------------------------------------------------
_CAPS = tuple(f"cap_{i}" for i in range(20))
_DOMAINS = ("BUSINESS", "TECHNICAL", "SECURITY", "INFRASTRUCTURE", "BEHAVIOR", "OPERATIONAL", "COMPLIANCE")


def fallback_plans(n: int, seed: int) -> list[dict]:
    """Plans shaped like the simulator's, for when `hive_assets.simulator` is not available."""
    rng = random.Random(seed)
    plans = []
    for i in range(n):
        size = rng.randint(1, 40)
        tasks = []
        for j in range(size):
            deps: list = []
            for pred in rng.sample(range(j), min(j, rng.choice((0, 1, 1, 1, 2, 2, 3)))):
                u = rng.random()
                pid = f"t{pred}"
                deps.append({"task_id": pid, "type": "weak"} if u < 0.15 else
                            {"task_id": pid, "type": "strong"} if u < 0.25 else pid)
            if rng.random() < 0.03:
                deps.append(f"t{size + 100 + j}")
            tasks.append({
                "task_id": f"t{j}", "task_type": "analysis", "description": f"step {j}",
                "dependencies": deps,
                "estimated_duration_ms": None if rng.random() < 0.03 else int(rng.lognormvariate(10.5, 0.9)),
                "required_capabilities": rng.sample(_CAPS, rng.randint(1, 3)),
                "parameters": {}, "metadata": {},
            })
        if size >= 2 and rng.random() < 0.02:
            a, b = sorted(rng.sample(range(size), 2))
            tasks[a]["dependencies"].append(f"t{b}")
        plans.append({
            "plan_id": f"plan-{seed}-{i}", "tasks": tasks, "risk_score": rng.random(),
            "complexity_score": rng.random(), "estimated_total_duration_ms": rng.randint(10**4, 10**7),
            "original_domain": rng.choice(_DOMAINS), "original_priority": rng.choice(("low", "normal", "high", "critical")),
        })
    return plans


def make_plans(n: int, seed: int) -> tuple[list[dict], str]:
    try:
        from hive_assets.simulator import make_plans as simulate
    except ImportError:
        return fallback_plans(n, seed), "local fallback generator (hive_assets.simulator not importable)"
    return simulate(n, seed=seed), "hive_assets.simulator.make_plans"


# -- timing ---------------------------------------------------------------------------------------
def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (Linux) in MB; None elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0). `ru_maxrss` cannot be used for this: Linux keeps
    it across fork + exec, so a child would report its parent's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def memory_child(n_plans: int, pool_size: int, seed: int) -> None:
    """Run in a subprocess: stream n_plans (cycling a pool) through features_frame, report peak RSS."""
    pool, source = make_plans(pool_size, seed)
    features_frame(pool[:100])
    gc.collect()
    exact = _reset_peak()
    base_mb = _status_mb("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def stream():
        for i in range(n_plans):
            yield pool[i % pool_size]

    t0 = time.perf_counter()
    frame = features_frame(stream())
    seconds = time.perf_counter() - t0
    peak_mb = _status_mb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(frame) == n_plans
    print(json.dumps({"plans": n_plans, "pool": pool_size, "source": source, "seconds": seconds,
                      "baseline_mb": base_mb, "peak_mb": peak_mb, "exact": exact,
                      "frame_mb": frame.memory_usage(deep=False).sum() / 2**20}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=int, default=100_000, help="plans for the throughput runs")
    parser.add_argument("--reference-plans", type=int, default=5_000, help="subsample for the networkx reference")
    parser.add_argument("--memory-plans", type=int, default=1_000_000, help="plans streamed in the memory run (0: skip)")
    parser.add_argument("--memory-pool", type=int, default=10_000, help="distinct plans cycled by the memory run")
    parser.add_argument("--repeat", type=positive_int, default=3, help="batch timing repeats (best and median reported)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_plans, args.memory_pool, args.seed)
        return

    memory = None
    if args.memory_plans:  # first, in a fresh subprocess
        cmd = [sys.executable, __file__, "--memory-child", "--memory-plans", str(args.memory_plans),
               "--memory-pool", str(args.memory_pool), "--seed", str(args.seed)]
        memory = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

    t0 = time.perf_counter()
    plans, source = make_plans(args.plans, args.seed)
    gen_seconds = time.perf_counter() - t0
    n = len(plans)
    tasks = np.array([len(p["tasks"]) for p in plans])
    print(f"plans: {n:,} from {source} (generated in {gen_seconds:.1f} s); tasks/plan mean {tasks.mean():.1f}, "
          f"max {tasks.max()}; total tasks {tasks.sum():,}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at start")

    features_frame(plans[:2000])  # warm-up (imports, allocator)
    frame = None

    def batch():
        nonlocal frame
        frame = features_frame(plans)

    batch_times = timed(batch, args.repeat)

    # the same batch path with the C flattener disabled (pure-Python flattening), for comparison
    from hive_assets.features import _batch as kernels

    flattener = kernels._flatten
    kernels._flatten = None
    try:
        pure_times = timed(lambda: features_frame(plans), args.repeat)
    finally:
        kernels._flatten = flattener
    flattener_label = "C flattener `hive_assets.features._flatten`" if flattener is not None else (
        "pure-Python flattening: C flattener not built or HIVE_FEATURES_PURE_PYTHON set")

    singles: list = []
    single_time = timed(lambda: singles.extend(plan_features(p) for p in plans), 1)[0]

    from hive_assets_tests.feature_reference import reference_features

    sub = plans[: min(args.reference_plans, n)]
    refs: list = []
    ref_time = timed(lambda: refs.extend(reference_features(p) for p in sub), 1)[0]

    # the three paths agree (the numbers below are for correct results)
    numeric = list(NUMERIC_FEATURES)
    batch_values = frame[numeric].to_numpy()
    single_values = pd.DataFrame(singles, columns=numeric).to_numpy()
    ref_values = pd.DataFrame(refs, columns=numeric).to_numpy()

    def worst(a, b):
        return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))) if a.size else 0.0

    rates = {
        "batch": n / min(batch_times),
        "batch_median": n / statistics.median(batch_times),
        "pure": n / min(pure_times),
        "single": n / single_time,
        "reference": len(sub) / ref_time,
    }
    print()
    print(f"batch rows: {flattener_label}")
    print("| path | plans | seconds | plans/s | x reference |")
    print("|---|---:|---:|---:|---:|")
    print(f"| `features_frame` batch, best of {args.repeat} | {n:,} | {min(batch_times):.2f} | "
          f"{rates['batch']:,.0f} | {rates['batch'] / rates['reference']:.0f}x |")
    print(f"| `features_frame` batch, median of {args.repeat} | {n:,} | {statistics.median(batch_times):.2f} | "
          f"{rates['batch_median']:,.0f} | {rates['batch_median'] / rates['reference']:.0f}x |")
    print(f"| `features_frame` batch, pure-Python flattening, best of {args.repeat} | {n:,} | {min(pure_times):.2f} | "
          f"{rates['pure']:,.0f} | {rates['pure'] / rates['reference']:.0f}x |")
    print(f"| `plan_features` single, loop | {n:,} | {single_time:.2f} | {rates['single']:,.0f} | "
          f"{rates['single'] / rates['reference']:.0f}x |")
    print(f"| networkx reference (tests) | {len(sub):,} | {ref_time:.2f} | {rates['reference']:,.0f} | 1x |")
    print()
    print(f"agreement (max relative difference): batch vs single {worst(batch_values, single_values):.1e}, "
          f"batch vs reference {worst(batch_values[: len(sub)], ref_values):.1e}")

    if memory:
        peak = "VmHWM" if memory["exact"] else "ru_maxrss"
        print()
        print(f"| memory run (own process) | plans | seconds | plans/s | peak RSS ({peak}) | RSS before | growth | output frame |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| `features_frame` over a generator (pool of {memory['pool']:,} plans cycled) | {memory['plans']:,} | "
              f"{memory['seconds']:.1f} | {memory['plans'] / memory['seconds']:,.0f} | {memory['peak_mb']:,.0f} MB | "
              f"{memory['baseline_mb']:,.0f} MB | {memory['peak_mb'] - memory['baseline_mb']:,.0f} MB | "
              f"{memory['frame_mb']:,.0f} MB |")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end (other processes share these cpus)")


if __name__ == "__main__":
    main()

"""Serving client benchmark (issue 26): per-plan latency of `SpecialistRouter.evaluate` against calling the
MLflow pyfunc model directly, in the same run, plus the client's import time, time to its first
refresh, refresh cost and memory.

    .venv/bin/python benchmarks/bench_serving.py                # 2,000 plans per path
    .venv/bin/python benchmarks/bench_serving.py --plans 500

Two xgboost versions (the default model type, trained and calibrated by `train_model` on simulated
plans) are logged and registered on a real `mlflow server`, as champion and challenger of a running
A/B test at 50 %, so half the plans go to each model. Paths, measured interleaved in rounds (the
machine is shared: a burst of load then hits every path alike):

- `pyfunc.predict`: what a service does without the client: the features of one plan
  (`plan_features`, one-row frame) and `mlflow.pyfunc` `predict` on it (the champion only, no routing);
- `SpecialistRouter.evaluate`: routing by `assign_arm`, the same features, the arm's model, an `Opinion`;
- `SpecialistRouter.evaluate_many` on batches of 100, per plan;
- `SpecialistModel.predict_proba` on the one-row frame (the floor: the model alone).

Memory and timings of a fresh process (import, first refresh, RSS) run in subprocesses, so each
measures its own interpreter. Prints a Markdown table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, os, sys, time
def rss(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
out = {"rss_start_mb": rss()}
t = time.perf_counter()
mode, uri = sys.argv[1], sys.argv[2]
if mode == "router":
    from hive_assets.serving import SpecialistRouter
    out["import_s"] = time.perf_counter() - t
    out["rss_imported_mb"] = rss()
    t = time.perf_counter()
    router = SpecialistRouter("business", uri, refresh_interval=3600, wait=600)
    out["first_refresh_s"] = time.perf_counter() - t
    assert router.health()["ab_routing"], router.health()
    serve = router.evaluate
else:
    import mlflow, pandas as pd
    from hive_assets.features import FEATURE_NAMES, plan_features
    mlflow.set_tracking_uri(uri)
    models = [mlflow.pyfunc.load_model(f"models:/business-evaluator/{v}") for v in ("1", "2")]
    out["first_refresh_s"] = time.perf_counter() - t
    serve = lambda plan: models[0].predict(pd.DataFrame([plan_features(plan)], columns=list(FEATURE_NAMES)))
out["rss_ready_mb"] = rss()
from hive_assets.simulator import make_plans
plans = make_plans(300, seed=99)
for plan in plans:
    serve(plan)
out["rss_after_300_mb"] = rss()
out["peak_rss_mb"] = rss("VmHWM")  # not ru_maxrss: it keeps the forking parent's peak
out["dagster_loaded"] = any(m.split(".")[0] == "dagster" for m in sys.modules)
print(json.dumps(out))
"""


def train_and_register(url: str, n_plans: int) -> None:
    import pandas as pd

    from hive_assets import clock, registry
    from hive_assets.data import SQLiteStore
    from hive_assets.features import features_frame
    from hive_assets.rollout import start_test
    from hive_assets.simulator import make_plans, policy_label
    from hive_assets.training import temporal_group_split, train_model

    client = registry.client_for(url)
    experiment = registry.ensure_experiment(client, "bench-serving")
    versions = []
    for seed, policy in ((1, "business"), (2, "technical")):
        plans = make_plans(n_plans, seed=seed)
        frame = features_frame(plans)
        frame["label"] = [policy_label(policy, p) for p in plans]
        frame["plan_id"] = [p["plan_id"] for p in plans]
        frame["evaluated_at"] = pd.to_datetime([p["created_at"] for p in plans], utc=True)
        frame["split"] = temporal_group_split(frame)
        model, _ = train_model("business", frame[frame.split == "train"], frame[frame.split == "validation"])
        run_id = client.create_run(experiment).info.run_id
        uri = registry.log_model(model, url, run_id)
        client.set_terminated(run_id)
        version, _ = registry.register_version(client, "business", run_id, uri,
                                               {"feature_schema_version": model.feature_schema_version},
                                               model_id=uri.removeprefix("models:/"))
        versions.append(str(version.version))
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "store.sqlite")
        registry.ensure_alias(client, store, "business", registry.CHAMPION, versions[0], actor="bench", reason="bench")
        registry.ensure_alias(client, store, "business", registry.CHALLENGER, versions[1], actor="bench", reason="bench")
        start_test(client, store, "business", versions[0], versions[1], 50.0,
                   clock.now() - timedelta(minutes=1), actor="bench")
        store.close()


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return p(0.50), p(0.99), statistics.fmean(ordered) * 1000


def child(mode: str, url: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, mode, url], capture_output=True, text=True, env=env,
                          timeout=1800)
    if done.returncode:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def import_time(repeats: int = 7) -> dict:
    """Wall time of `import hive_assets.serving` in fresh interpreters, against `import hive_assets.routing`
    and an empty interpreter (best and median of `repeats`)."""
    out = {}
    for name, code in (("empty", "pass"), ("routing", "import hive_assets.routing"),
                       ("serving", "import hive_assets.serving")):
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            runs.append(time.perf_counter() - started)
        out[name] = (min(runs), statistics.median(runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=2000, help="plans per path")
    parser.add_argument("--train-plans", type=int, default=3000, help="plans each model is trained on")
    args = parser.parse_args()

    import mlflow
    import pandas as pd

    from hive_assets.features import FEATURE_NAMES, plan_features
    from hive_assets.serving import SpecialistRouter
    from hive_assets.simulator import make_plans
    from hive_assets_tests.conftest import start_mlflow_server, stop_process

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_mlflow_server(Path(tmp))
        try:
            started = time.perf_counter()
            train_and_register(url, args.train_plans)
            print(f"trained and registered 2 xgboost versions in {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)
            router = SpecialistRouter("business", url, refresh_interval=None)
            router.refresh()
            assert router.health()["ab_routing"], router.health()
            mlflow.set_tracking_uri(url)
            pyfunc = mlflow.pyfunc.load_model("models:/business-evaluator/1")
            model = router._state.champion.model  # the floor: the same SpecialistModel, no routing, no opinion
            plans = make_plans(args.plans, seed=7)

            def frame(plan):
                return pd.DataFrame([plan_features(plan)], columns=list(FEATURE_NAMES))

            paths = {
                "`pyfunc.predict` (features + MLflow pyfunc, champion only)": lambda p: pyfunc.predict(frame(p)),
                "`SpecialistRouter.evaluate` (routing + features + arm's model + Opinion)": router.evaluate,
                "`SpecialistModel.predict_proba` (features + model alone)": lambda p: model.predict_proba(frame(p)),
            }
            samples: dict[str, list[float]] = {name: [] for name in paths}
            for plan in plans[:50]:  # warm-up
                for serve in paths.values():
                    serve(plan)
            rounds = 20
            for r in range(rounds):  # interleaved rounds: load bursts hit every path alike
                chunk = plans[r * len(plans) // rounds:(r + 1) * len(plans) // rounds]
                for name, serve in paths.items():
                    for plan in chunk:
                        t = time.perf_counter()
                        serve(plan)
                        samples[name].append(time.perf_counter() - t)
            batch = []
            for i in range(0, len(plans), 100):
                t = time.perf_counter()
                router.evaluate_many(plans[i:i + 100])
                batch.append((time.perf_counter() - t) / len(plans[i:i + 100]))
            refresh = []
            for _ in range(20):
                t = time.perf_counter()
                router.refresh()
                refresh.append(time.perf_counter() - t)
            challenger_share = sum(o.ab_arm == "challenger" for o in map(router.evaluate, plans)) / len(plans)
            fresh_router = child("router", url)
            fresh_direct = child("direct", url)
            imports = import_time()
        finally:
            stop_process(proc)

    rows = [(name, *percentiles(s)) for name, s in samples.items()]
    rows.append(("`SpecialistRouter.evaluate_many`, batches of 100, per plan", *percentiles(batch)))
    direct_p50 = rows[0][1]
    print(f"\nMachine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {date.today()}; "
          f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end (shared machine). "
          f"{len(plans)} plans per path, challenger share {challenger_share:.2f}.\n")
    print("| path | p50 ms | p99 ms | mean ms | p50 x pyfunc |")
    print("|---|---:|---:|---:|---:|")
    for name, p50, p99, mean in rows:
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {mean:.2f} | {p50 / direct_p50:.2f} |")
    r50, r99, _ = percentiles(refresh)
    print(f"\nrefresh without change (one `get_registered_model`): p50 {r50:.1f} ms, p99 {r99:.1f} ms")
    print("\n| fresh process | import s | ready s (first refresh / pyfunc loads) | RSS imported MB | RSS ready MB "
          "| RSS after 300 plans MB | peak RSS MB | dagster loaded |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, d in (("SpecialistRouter (champion + challenger)", fresh_router),
                    ("two pyfunc models loaded directly", fresh_direct)):
        print(f"| {name} | {d.get('import_s', float('nan')):.3f} | {d['first_refresh_s']:.1f} | "
              f"{d.get('rss_imported_mb', float('nan')):.0f} | {d['rss_ready_mb']:.0f} | {d['rss_after_300_mb']:.0f} | "
              f"{d['peak_rss_mb']:.0f} | {d['dagster_loaded']} |")
    print("\n| interpreter running | best s | median s |")
    print("|---|---:|---:|")
    for name, (best, median) in imports.items():
        print(f"| `{'python -c pass' if name == 'empty' else 'import hive_assets.' + name}` | {best:.3f} | {median:.3f} |")
    print(json.dumps({"latency_ms": {n: {"p50": a, "p99": b, "mean": c} for n, a, b, c in rows},
                      "refresh_ms": {"p50": r50, "p99": r99}, "router_process": fresh_router,
                      "direct_process": fresh_direct, "import_s": imports, "load_start": load_start}))


if __name__ == "__main__":
    main()

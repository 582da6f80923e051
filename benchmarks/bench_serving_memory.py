"""Memory of a long-lived serving pod across promotions: RSS growth while the champion moves through N versions.

    .venv/bin/python benchmarks/bench_serving_memory.py                 # this checkout, 10 versions
    .venv/bin/python benchmarks/bench_serving_memory.py --reference REF  # + the same under REF (a checkout)

N versions of `business-evaluator` (200-tree random forests on 3,000 simulated plans, logged and registered as
the tests do) in an embedded MLflow (SQLite) under a temporary home; one `SpecialistRouter` (no thread,
`refresh()` by hand) serves each in turn as champion. Each measurement runs in its own process (`--child`),
this checkout first on PYTHONPATH (REF's for the reference); prints RSS after the first load and after the
last, and how many versions the process's cache of loaded versions held.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(n: int, home: str) -> dict:
    os.environ.update(HIVE_HOME=home, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", MLFLOW_LOGGING_LEVEL="WARNING")
    from sklearn.ensemble import RandomForestClassifier

    from hive_assets import registry
    from hive_assets.features import features_frame
    from hive_assets.registry import _mlflow
    from hive_assets.serving import SpecialistRouter
    from hive_assets.simulator import make_plans, policy_label
    from hive_assets.training import SpecialistModel, encode, encode_labels
    from hive_assets_tests.serving.conftest import log, register

    uri = f"sqlite:///{home}/mlflow.db"
    plans = make_plans(3000, seed=5)
    features = encode(features_frame(plans))
    client = registry.client_for(uri)
    versions = []
    for i in range(n):
        labels = encode_labels([policy_label(("business", "technical", "behavior")[i % 3], p) for p in plans])
        forest = RandomForestClassifier(n_estimators=200, random_state=i).fit(features, labels)
        versions.append(register(client, "business", log(uri, SpecialistModel("business", "random_forest", forest))))
    del forest
    name = registry.model_name("business")
    router = SpecialistRouter("business", uri, refresh_interval=None, wait=0)
    rows = []
    for v in versions:
        client.set_registered_model_alias(name, "champion", v)
        assert router.refresh()["champion_version"] == v
        router.evaluate(plans[0])
        gc.collect()
        rows.append({"version": v, "rss_mb": round(rss_mb(), 1), "cached": len(_mlflow._VERSION_MODELS)})
    return {"rows": rows}


def measure(code: Path, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-serving-memory-") as home:
        env = {**os.environ, "PYTHONPATH": f"{code}:{ROOT}"}  # the checkout's package; this one's test helpers
        # run in the home: the embedded MLflow puts its artifacts under ./mlruns of the working directory
        out = subprocess.run([sys.executable, __file__, "--child", "--versions", str(n), "--home", home],
                             env=env, capture_output=True, text=True, check=True, cwd=home)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--reference", help="a checkout to measure the same way")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.versions, args.home)))
        return
    print("| code | RSS after the first version, MB | after the last, MB | growth, MB | versions cached at the end |")
    print("|---|---:|---:|---:|---:|")
    for label, code in (("this checkout", ROOT), ("reference", Path(args.reference) if args.reference else None)):
        if code is None:
            continue
        rows = measure(code, args.versions)["rows"]
        first, last = rows[0], rows[-1]
        print(f"| {label} | {first['rss_mb']:.0f} | {last['rss_mb']:.0f} | {last['rss_mb'] - first['rss_mb']:+.0f} "
              f"| {last['cached']} |", flush=True)


if __name__ == "__main__":
    main()

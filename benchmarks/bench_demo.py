"""Wall time of `make demo` (without the install): its three steps as the Makefile runs them, one
partition against a reference in the same run, and the closed loop per simulated day.

The reference for a partition is the same work done by the domain layer alone, in one process, without
Dagster or the CLI: collect -> features -> train -> score on the test split. The ratio is what the
orchestration (dagster CLI start-up, run storage, MLflow logging and registry, checks) costs on top.
The loop's reference is the real time it simulates (a day is 86,400 s): the ratio is its speed-up.

    .venv/bin/python benchmarks/bench_demo.py [--plans 4000] [--days 6] [--label-rate 0.2] [--retrain-days 1 6]

`--label-rate` sets the answered share of every specialist's opinions, in the history (`hive simulate`)
and in the loop (`hive loop`); the retrains of the loop are then listed per simulated day with the
seconds of each step, from the instance's run records (issue 23: does a retrain's cost grow?).
`--retrain-days` has the loop's operator retrain every specialist at the end of those simulated days
(`hive loop --retrain-days`): the same retrains at two points, with the opinions of the 90-day window
and the trusted-feedback documents at each (counted afterwards in the store by their timestamps).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from hive_assets.cli._home import write_instance_settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPECIALISTS = ["business", "technical", "behavior", "evolution", "architecture"]


START = "2026-01-05T00:00:00Z"  # the Makefile's DEMO_START


def run(cmd: list[str], env: dict, stdout=subprocess.DEVNULL, check: bool = True) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, check=check, stdout=stdout, stderr=subprocess.DEVNULL)
    if done.returncode:  # e.g. a blocking check refused a partition's first model: said, and the loop goes on
        print(f"{' '.join(cmd[-2:])}: exit {done.returncode}", file=sys.stderr, flush=True)
    return time.perf_counter() - start


def reference_partition(home: Path, specialist: str) -> float:
    """Domain layer only, in-process (imports already paid)."""
    from hive_assets.data import collect
    from hive_assets.features import features_frame
    from hive_assets.data.store import SQLiteStore
    from hive_assets.training import temporal_group_split, train_model

    start = time.perf_counter()
    store = SQLiteStore(home / "store.sqlite")
    result = collect(store, specialist, now=datetime.fromisoformat(START.replace("Z", "+00:00")))
    labelled = result.frame[result.frame["label"].notna()].reset_index(drop=True)
    frame = features_frame(labelled["plan"].tolist())
    frame["label"], frame["plan_id"], frame["evaluated_at"] = labelled["label"], labelled["plan_id"], labelled["evaluated_at"]
    frame["split"] = temporal_group_split(frame)
    model, _ = train_model(specialist, frame[frame.split == "train"], frame[frame.split == "validation"])
    model.predict(frame[frame.split == "test"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=4000)
    parser.add_argument("--days", type=float, default=6.0)
    parser.add_argument("--label-rate", type=float, default=None,
                        help="answered share of every specialist's opinions (default: simulate's and the scenario's)")
    parser.add_argument("--history-label-rate", type=float, default=None,
                        help="answered share of the simulated history only (default: --label-rate); e.g. the "
                             "simulator's 0.85 when a specialist's first model is refused at --label-rate")
    parser.add_argument("--keep-home", type=Path,
                        help="copy the demo's home (store, instance, registry) there at the end, to measure on it")
    parser.add_argument("--retrain-days", type=int, nargs="+", default=[],
                        help="the loop's operator retrains every specialist at the end of these simulated days")
    args = parser.parse_args()
    rate = [] if args.label_rate is None else ["--label-rate", str(args.label_rate)]
    operator = ["--retrain-days", *map(str, args.retrain_days)] if args.retrain_days else []
    history = args.label_rate if args.history_label_rate is None else args.history_label_rate
    history_rate = [] if history is None else ["--label-rate", str(history)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hive"
        write_instance_settings(home / "dagster")  # the instance `hive` and `make demo` create
        env = {**os.environ, "HIVE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
        for name in ("MONGODB_URI", "MLFLOW_TRACKING_URI", "KAFKA_BOOTSTRAP_SERVERS"):
            env.pop(name, None)
        first = {**env, "HIVE_SIMULATED_NOW": START}
        t_sim = run([str(BIN / "hive"), "simulate", "--plans", str(args.plans), "--days", "60", "--seed", "42",
                     "--now", START, *history_rate], first)
        t_parts = {}
        for s in SPECIALISTS:
            t_parts[s] = run([str(BIN / "dagster"), "asset", "materialize", "-m", "hive_assets.definitions",
                              "--select", "not group:review", "--partition", s], first,
                              check=history is None)
        loop_out = Path(tmp) / "loop.json"
        with loop_out.open("w") as out:
            t_loop = run([str(BIN / "hive"), "loop", "--days", str(args.days), "--seed", "42", "--json", *rate, *operator],
                         env, out, check=args.label_rate is None)  # exit 1: an alias disagrees at the end
        loop = json.loads(loop_out.read_text())
        (ROOT / ".hive").mkdir(exist_ok=True)
        (ROOT / ".hive" / "bench_demo_loop.json").write_text(json.dumps(loop))  # to look at afterwards
        retrains = retrain_steps(home / "dagster", loop)
        if args.keep_home:
            import shutil

            shutil.copytree(home, args.keep_home, dirs_exist_ok=True)
            (args.keep_home / "loop.json").write_text(json.dumps(loop))
            # the copy's MLflow database still names the artifacts' old place: re-point it, as a user would
            kept = {**env, "HIVE_HOME": str(args.keep_home.resolve())}
            kept.pop("DAGSTER_HOME")
            run([str(BIN / "hive"), "doctor", "--fix"], kept, check=False)
        window_counts(home / "store.sqlite", retrains)
        os.environ.update({"HIVE_HOME": str(home)})
        reference_partition(home, "business")  # warm imports, as the CLI process pays its own
        t_ref = reference_partition(home, "business")
    total = t_sim + sum(t_parts.values()) + t_loop
    print(f"# demo benchmark, {datetime.now(timezone.utc):%Y-%m-%d}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, {args.plans} plans")
    print("| step | seconds |\n|---|---|")
    print(f"| simulate ({args.plans} plans, 5 specialists) | {t_sim:.1f} |")
    for s, t in t_parts.items():
        print(f"| dagster asset materialize --partition {s} (whole graph) | {t:.1f} |")
    print(f"| hive loop --days {args.days:g} (the closed loop) | {t_loop:.1f} |")
    print(f"| **demo total (without install)** | **{total:.1f}** |")
    print(f"| reference: domain layer only, one partition, in-process | {t_ref:.1f} |")
    print(f"| ratio one partition via dagster CLI / reference | {t_parts['business'] / t_ref:.1f}x |")
    runs = {}
    for r in loop["runs"]:
        runs[r["job"]] = runs.get(r["job"], 0) + 1
    print(f"\n| closed loop: where the time goes ({args.days:g} simulated days) | seconds | per simulated day |")
    print("|---|---|---|")
    for what, seconds in sorted(loop["seconds"].items(), key=lambda kv: -kv[1]):
        n = next((f" ({n} runs)" for job, n in runs.items() if what.endswith(job)), "")
        print(f"| {what}{n} | {seconds:.1f} | {seconds / args.days:.1f} |")
    print(f"| **loop total, in the process** | **{sum(loop['seconds'].values()):.1f}** | "
          f"**{sum(loop['seconds'].values()) / args.days:.1f}** |")
    print(f"| ratio real time / simulated time (a day is 86,400 s) | {86400 * args.days / t_loop:.0f}x | |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[2]:.1f} (15 min)")
    print_retrains(retrains, args.label_rate)


RETRAIN_JOB = "retrain_specialist"


def retrain_steps(dagster_home: Path, loop: dict) -> list[dict]:
    """The loop's retrain runs: simulated day, specialist, run seconds, seconds per step (step stats of
    the instance's event log), rows collected (the raw_production_data materialization's metadata)."""
    import dagster as dg

    start = datetime.fromisoformat(loop["start"])
    out = []
    os.environ["DAGSTER_HOME"] = str(dagster_home)  # the instance's dagster.yaml reads it
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in loop["runs"]:
            if run["job"] != RETRAIN_JOB:
                continue
            steps = {st.step_key: (st.end_time or 0) - (st.start_time or 0)
                     for st in instance.get_run_step_stats(run["run_id"])}
            rows = None
            for record in instance.get_records_for_run(run["run_id"]).records:
                mat = record.event_log_entry.asset_materialization
                if mat is not None and mat.asset_key.path[-1] == "raw_production_data":
                    value = mat.metadata.get("rows")
                    rows = getattr(value, "value", value)
            at = datetime.fromisoformat(run["at"])
            # a run at the end of a day (hour 24) belongs to that day
            day = int(((at - start).total_seconds() - 1) // 86400) + 1
            stats = instance.get_run_step_stats(run["run_id"])
            failed = [st.step_key for st in stats if getattr(st.status, "value", "") == "FAILURE"]
            ran = {st.step_key for st in stats}
            # trained_model yields no output when nothing changed: registration and the test are skipped
            outcome = (f"failed at {failed[0]}" if failed else "failed" if not run["success"] else
                       "registered" if "registered_model_version" in ran else
                       "nothing changed" if "trained_model" in ran else "no steps")
            tags = instance.get_run_by_id(run["run_id"]).tags
            reason = tags.get("hive/trigger_reason") or ("operator" if tags.get("hive/actor") else "manual")
            out.append({"day": day, "at": at, "specialist": run["partition"], "seconds": run["seconds"],
                        "cpu_seconds": run.get("cpu_seconds"),
                        "steps": steps, "rows": rows, "success": run["success"], "outcome": outcome,
                        "reason": reason})
    return out


def window_counts(store_path: Path, retrains: list[dict], window_days: int = 90) -> None:
    """Per retrain: the opinions of the 90-day window when it ran (all specialists, and its own) and its
    specialist's feedback documents by then, counted afterwards from their timestamps (the loop appends
    documents stamped with simulated time; nothing is deleted)."""
    from datetime import timedelta

    from hive_assets.data.store import SQLiteStore

    with SQLiteStore(store_path) as store:
        for r in retrains:
            window = {"$gte": r["at"] - timedelta(days=window_days), "$lte": r["at"]}
            r["opinions_window"] = store.count("specialist_opinions", {"evaluated_at": window})
            r["own_opinions_window"] = store.count("specialist_opinions",
                                                   {"specialist_type": r["specialist"], "evaluated_at": window})
            r["feedback_window"] = store.count("specialist_feedback",
                                               {"specialist_type": r["specialist"], "submitted_at": window})


def print_retrains(retrains: list[dict], label_rate: float | None) -> None:
    answered = "the scenario's answered shares" if label_rate is None else f"{label_rate:.0%} answered"
    steps = sorted({k for r in retrains for k in r["steps"]}, key=lambda k: -sum(r["steps"].get(k, 0) for r in retrains))
    print(f"\n| closed loop retrains ({answered}) | trigger | ended | day | opinions in window (all / own) | "
          f"feedback docs (own) | rows | run s | run CPU s | " + " | ".join(steps) + " |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(steps))
    for r in retrains:
        cpu = "" if r["cpu_seconds"] is None else f"{r['cpu_seconds']:.1f}"
        print(f"| {r['specialist']} | {r['reason']} | {r['outcome']} | {r['day']} | "
              f"{r.get('opinions_window', 0):,} / {r.get('own_opinions_window', 0):,} | {r.get('feedback_window', 0):,} | "
              f"{r['rows']} | {r['seconds']:.1f} | {cpu} | " + " | ".join(f"{r['steps'].get(k, 0):.1f}" for k in steps) + " |")
    operator = {}  # day -> the operator's retrains of that day (`--retrain-days`): every specialist, same work
    for r in retrains:
        if r["reason"] == "operator" and r["cpu_seconds"] is not None:
            operator.setdefault(r["day"], []).append(r)
    if len(operator) >= 2:
        first, last = min(operator), max(operator)
        totals = {d: (sum(r["cpu_seconds"] for r in operator[d]), sum(r["seconds"] for r in operator[d]),
                      sum(r["rows"] or 0 for r in operator[d])) for d in (first, last)}
        (c1, w1, n1), (c2, w2, n2) = totals[first], totals[last]
        print(f"\noperator retrains, {len(operator[last])} specialists: day {first} {c1:.1f} CPU s ({w1:.1f} wall, {n1:,} rows), day {last} "
              f"{c2:.1f} CPU s ({w2:.1f} wall, {n2:,} rows): day {last} / day {first} = **{c2 / c1:.2f}x CPU** "
              f"({w2 / w1:.2f}x wall, {n2 / n1:.2f}x rows)")


if __name__ == "__main__":
    main()

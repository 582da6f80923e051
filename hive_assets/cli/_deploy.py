"""`hive deploy`: the registry operations (the seed's mlflow_deployer.py verbs). Those that change the
registry are Dagster jobs run in the configured instance, so they leave a run record with their config
and outcome (the actor is `user:<login>`, run tag `hive/actor`); the read-only `list` and `history` read
MLflow and the ledger directly through the domain layer and launch no run.

The specialist is `--specialist`; the seed's `--model-type` (which named the specialist here, and names
the estimator in `hive train`) is still accepted with a deprecation note."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from hive_assets.cli import _dagster
from hive_assets.cli._args import (
    add_specialist, add_verb, alias_name, iso_datetime, mlflow_run_id, model_version_ref, non_empty,
)


def _actor() -> str:
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (e.g. a container without a passwd entry)
        return "user:unknown"


def _job(job_name: str, op: str, config: dict, args: argparse.Namespace) -> int:
    outcome = _dagster.run_job_outcome(job_name, {"ops": {op: {"config": config}}}, tags={"hive/actor": _actor()},
                               output_node=op)
    if not outcome["success"]:
        print(_dagster.refusal_line(outcome["error"], outcome["run_id"]), file=sys.stderr)
        if alias := {"promote_model_version": "champion", "rollback_champion": "champion",
                     "set_model_alias": config.get("alias")}.get(job_name):
            print(alias_state(config["specialist"], alias), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"run_id": outcome["run_id"], "result": outcome["output"]}, default=str))
    else:
        _print_result(outcome["output"])
        print(f"run {outcome['run_id']}")
    return 0


def alias_state(specialist: str, alias: str) -> str:
    """Where `alias` points now, read back from MLflow (never waited for: an outage says "unknown" and how
    to check), and any decision a crash left unfinished, which the next command completes."""
    import os

    from hive_assets.config import Settings
    from hive_assets.data import open_store
    from hive_assets.registry import alias_version, model_name, unfinished_intents

    name = model_name(specialist)
    problem = _dagster.reachable(Settings.from_env().mlflow_uri)
    if problem is None:
        saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
        os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
        try:
            from hive_assets.registry import client_for

            holder = alias_version(client_for(Settings.from_env().mlflow_uri), specialist, alias)
            state = f"now: {name}@{alias} -> {'v' + str(holder.version) if holder else 'no version'} (read back from MLflow)"
        except Exception as exc:  # the read-back itself failed: say so rather than guess
            problem = _dagster.one_line(str(exc), 200)
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    if problem is not None:
        state = (f"now: {name}@{alias} unknown ({problem}); check with `hive deploy list --specialist {specialist}` "
                 "once MLflow answers")
    try:
        with open_store() as store:
            pending = [f"{i['operation']} v{i['params'].get('version') or i['params'].get('test_id')}"
                       for i in unfinished_intents(store, specialist)]
    except RuntimeError:  # the store is down: the registry may have moved without its ledger row
        return (state + "; the ledger could not be read (the document store does not answer): run the command "
                "again once it answers, which records what the registry holds and completes what is unfinished")
    if pending:
        state += (f"; unfinished: {', '.join(pending)} (recorded before any effect: the next `hive deploy` command, "
                  f"A/B look or A/B sensor tick for {specialist} completes it)")
    return state


#: an intent's operation (its id's first word) as a command's output names it
_DECISIONS = {"promote": "promotion", "rollback": "rollback", "ab-outcome": "A/B test's outcome"}


def _print_result(result) -> None:
    if isinstance(result, list):
        # the aliases' column as wide as its longest cell: "champion,challenger,ab-test-v12" overflowed 28
        aliases = [",".join(v["aliases"]) or "-" for v in result]
        width = max(len("aliases"), *map(len, aliases)) + 2
        print(f"{'version':<9}{'aliases':<{width}}{'stage':<12}{'gate':<9}{'macro-F1':<10}run")
        for v, named in zip(result, aliases):
            stage = v["stage"] if v["stage"] not in (None, "None") else "-"  # MLflow 3: stages are deprecated
            print(f"{v['version']:<9}{named:<{width}}{stage:<12}{v['gate']:<9}"
                  f"{'-' if v['macro_f1'] is None else format(v['macro_f1'], '.4f'):<10}{v['run_id']}")
        return
    if result.get("noop"):
        print(result["message"])
        return
    done = ""
    if result.get("resumed"):  # an interrupted decision (recorded before the crash), completed by this command
        operation = str(result.get("intent_id", "")).split(":", 1)[0]
        at = f" at {result['interrupted_at']}" if result.get("interrupted_at") else ""
        done = (f"completed the {_DECISIONS.get(operation, operation or 'decision')} interrupted{at} "
                f"({result.get('intent_id')}): ")
    if "alias" in result:
        print(f"{done}{result['model']}@{result['alias']} -> v{result['version']} (previous: "
              f"{result['previous_version'] or 'none'}; {'moved' if result['moved'] else 'already in place'}, "
              f"ledger {'written' if result['recorded'] else 'already agreed'})")
    else:
        print(f"{done}{result['model']} v{result['version']} ({'new' if result['created'] else 'existing'} version; "
              f"gate {result['gate']})")
    if result.get("ab_test_stopped"):
        print(f"A/B test {result['ab_test_stopped']} stopped: {result['ab_test_stop_reason']}")


def cmd_register(args: argparse.Namespace) -> int:
    return _job("register_model_version", "register_version_op",
                {"specialist": args.specialist, "run_id": args.run_id, "reason": args.reason or ""}, args)


def cmd_promote(args: argparse.Namespace) -> int:
    return _job("promote_model_version", "promote_op",
                {"specialist": args.specialist, "model_version": args.model_version, "force": args.force,
                 "reason": args.reason or ""}, args)


def cmd_rollback(args: argparse.Namespace) -> int:
    return _job("rollback_champion", "rollback_op",
                {"specialist": args.specialist, "target_version": args.target_version or "", "force": args.force,
                 "reason": args.reason or "", "idempotency_key": args.idempotency_key or ""}, args)


def cmd_alias(args: argparse.Namespace) -> int:
    return _job("set_model_alias", "alias_op",
                {"specialist": args.specialist, "alias": args.alias, "model_version": args.model_version,
                 "force": args.force, "reason": args.reason or ""}, args)


def cmd_list(args: argparse.Namespace) -> int:
    """The versions with aliases, stage and gate, read from the registry and the ledger (no run: reading
    leaves no record; the job `list_model_versions` does the same from the UI)."""
    from hive_assets.config import Settings
    from hive_assets.data import open_store
    from hive_assets.registry import client_for, list_versions

    with open_store() as store:
        versions = list_versions(client_for(Settings.from_env().mlflow_uri), store, args.specialist)
    if args.json:
        print(json.dumps({"run_id": None, "result": versions}, default=str))  # the shape of the other verbs
    elif not versions:
        print(f"no version of {args.specialist}-evaluator is registered")
    else:
        _print_result(versions)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Who held `champion` at --at (or the whole timeline without it), from the ledger."""
    from hive_assets.data import open_store
    from hive_assets.registry import alias_history, holder_at

    with open_store() as store:
        if args.at is not None:
            tenure = holder_at(store, args.specialist, args.at, alias=args.alias)
            tenures = [tenure] if tenure else []
        else:
            tenures = alias_history(store, args.specialist, args.alias)
    if args.json:
        print(json.dumps([t.as_dict() for t in tenures]))
        return 0
    if not tenures:
        print(f"no version held {args.alias} for {args.specialist}" + (f" at {args.at.isoformat()}" if args.at else ""))
        return 0
    for t in tenures:
        how = [f"run {t.dagster_run_id}"] if t.dagster_run_id else []
        how.append(f"previous v{t.previous_version}" if t.previous_version else f"no previous {args.alias}")
        print(f"v{t.version:<5} {args.alias} since {t.since.isoformat()} until {t.until.isoformat() if t.until else 'now'}"
              f"  {t.kind} by {t.actor}: {t.reason} ({', '.join(how)})")
    return 0


def add_parsers(sub) -> None:
    """The `deploy` verb group, added to the `hive` parser."""
    deploy = sub.add_parser("deploy", help="registry operations: register, promote, rollback, alias (Dagster jobs); "
                                           "list, history (read only)").add_subparsers(
        dest="deploy_command", required=True, metavar="{register,promote,rollback,alias,list,history}")

    def verb(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = add_verb(deploy, name, help=help_text[:1].lower() + help_text[1:].rstrip("."), description=help_text,
                     env=("HIVE_HOME", "DAGSTER_HOME", "MLFLOW_TRACKING_URI", "MONGODB_URI",
                          "HIVE_MIRROR_PRODUCTION_STAGE"))
        add_specialist(p, one=True, required=True, deprecated=("--model-type",))
        p.add_argument("--json", action="store_true", help="print the result as JSON (default: text)")
        p.set_defaults(func=func)
        return p

    p = verb("register", cmd_register, "Register an MLflow run's model as a version (twice -> one version).")
    p.add_argument("--run-id", required=True, type=mlflow_run_id, help="the MLflow training run id")
    p.add_argument("--reason", type=non_empty, help="why, for the ledger (default: none)")
    p = verb("promote", cmd_promote, "Make a version champion; refused when its validation gate did not pass.")
    p.add_argument("--model-version", type=model_version_ref, required=True, help="N, <model>/N or models:/<model>/N")
    p.add_argument("--force", action="store_true", help="promote despite the gate (needs --reason)")
    p.add_argument("--reason", type=non_empty, help="why, for the ledger (default: none)")
    verb("list", cmd_list, "List the model versions with aliases, stage and gate (read only: no run).")
    p = verb("rollback", cmd_rollback, "Move champion back to the previous champion (from the ledger).")
    p.add_argument("--target-version", type=model_version_ref,
                   help="restore this version instead (default: the previous champion)")
    p.add_argument("--force", action="store_true", help="allow a target whose gate did not pass (needs --reason)")
    p.add_argument("--reason", type=non_empty, help="why, for the ledger (default: none)")
    p.add_argument("--idempotency-key", type=non_empty,
                   help="name this rollback: rerunning with the same key is a no-op that says so "
                        "(default: a rerun right after a rollback is recognised from the ledger)")
    p = verb("alias", cmd_alias, "Point an alias at a version (champion follows promote's rules).")
    p.add_argument("--alias", type=alias_name, required=True, help="champion, challenger, ab-test-v<N>, ...")
    p.add_argument("--model-version", type=model_version_ref, required=True, help="N, <model>/N or models:/<model>/N")
    p.add_argument("--force", action="store_true", help="for champion: promote despite the gate (needs --reason)")
    p.add_argument("--reason", type=non_empty, help="why, for the ledger (default: none)")
    p = verb("history", cmd_history, "Which version held champion at --at (default: the whole timeline; read only).")
    p.add_argument("--at", type=iso_datetime, help="ISO-8601 time; naive means UTC (default: every tenure)")
    p.add_argument("--alias", type=alias_name, default="champion",
                   help="the alias whose history to show (default: champion)")

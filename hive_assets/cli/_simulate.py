"""`hive simulate`: simulated production traffic into the configured store, with progress on stderr."""

from __future__ import annotations

import argparse
import json
import sys

from hive_assets.cli._args import (
    add_specialist, add_verb, clock_instant, fraction, non_negative_int, period_days, positive_int,
)
from hive_assets.config import Settings
from hive_assets.interrupts import stop_if_signalled


def _progress(done: int, total: int) -> None:
    print(f"hive simulate: {done}/{total} plans", file=sys.stderr, flush=True)
    # a Ctrl-C whose KeyboardInterrupt Python dropped (raised in a finalizer) stops here, between batches, not
    # after the last plan (a CI run saw 60 s of progress lines after the signal)
    stop_if_signalled()


def _announced(opinion_model):
    """The serving model, saying on stderr which specialist it serves (the slow part when champions exist)."""
    if opinion_model is None:
        return None

    def serve(specialist: str, plans: list[dict]):
        print(f"hive simulate: serving {len(plans)} {specialist} opinions", file=sys.stderr, flush=True)
        return opinion_model(specialist, plans)

    return serve


def _served(tracking_uri: str):
    """The opinion model through the serving client (what the specialist services run), or None with the
    reason on stderr when no champion can be served."""
    from hive_assets.cli._dagster import registry_down
    from hive_assets.serving import routers_for
    from hive_assets.simulator import describe_serving, refresh_all, served_opinions

    # a server that does not answer: say so at once, rather than after MLflow's retries (about 4 minutes)
    if down := registry_down(tracking_uri):
        print(f"hive simulate: {down}: opinions from the pre-platform heuristic", file=sys.stderr)
        return None
    routers = routers_for(tracking_uri, refresh_interval=None)
    error = refresh_all(routers)
    line = describe_serving(routers)
    if line is None:
        why = "model registry unreachable (the warning above says why)" if error else "no champion registered yet"
        print(f"hive simulate: {why}: opinions from the pre-platform heuristic", file=sys.stderr)
        return None
    print(f"hive simulate: {line}", file=sys.stderr)
    return served_opinions(routers)


def _note_a_future_end(end) -> None:
    """Documents stamped after the platform's clock are invisible to it (collection, drift, the A/B tally
    read up to `now`): `--now` past the home's clock wrote 300 plans of which collection saw 10, silently."""
    from hive_assets import clock
    from hive_assets.data import FUTURE_TOLERANCE

    platform_now = clock.now()
    if end is not None and end > platform_now + FUTURE_TOLERANCE:
        print(f"hive simulate: note: --now {end:%Y-%m-%d %H:%M} UTC is after the home's clock "
              f"({platform_now:%Y-%m-%d %H:%M} UTC): the platform reads only what is stamped up to its clock, "
              "so the documents after it count once the clock gets there (`hive clock`)", file=sys.stderr)


def cmd_simulate(args: argparse.Namespace) -> int:
    from hive_assets.data import KafkaUnavailable, audit_sink_for, open_store
    from hive_assets.simulator import simulate, written_before

    _note_a_future_end(args.now)
    with open_store() as store:
        if written_before(store, args.seed):
            # e.g. `hive simulate --plans 1000` after `make demo` (seed 42) moved the demo's first 1,000 plans
            print(f"hive simulate: note: seed {args.seed} wrote into this store before: its documents are "
                  f"replaced (same ids, new times and opinions); another --seed adds new ones", file=sys.stderr)
        opinion_model = None if args.no_serve else _served(Settings.from_env().mlflow_uri)
        try:
            summary = simulate(store, plans=args.plans, days=args.days, seed=args.seed, now=args.now,
                               drift=args.drift, label_noise=args.label_noise, feedback_rate=args.label_rate,
                               opinion_model=_announced(opinion_model), progress=_progress,
                               progress_every=args.progress_every, specialists=args.specialist,
                               audit_sink=audit_sink_for(Settings.from_env()))
        except KafkaUnavailable as exc:  # the audit events go to the topic collection reads
            print(f"hive simulate: error: {exc}; what was written before it is kept: the same command again "
                  "writes the same documents (the ids are the seed's)", file=sys.stderr)
            return 1
        where = store.describe()
    info = summary.as_dict()
    print(json.dumps({"store": where, **info}, indent=2) if args.json else
          f"simulated {info['plans']} plans into {where}: " + ", ".join(f"{k}={v}" for k, v in info["written"].items())
          + f"; {info['malformed']} malformed on purpose" + _not_yet_due(info))
    return 0


def _not_yet_due(info: dict) -> str:
    """The answers --label-rate drew that fall after the history's end: over a short period they are most of
    them (1 day at 0.85: 19 % of the opinions answered), which read as a label rate silently not applied."""
    if not (late := info["answers_not_yet_due"]):
        return ""
    return (f"; {late} answers drawn by --label-rate are due after {info['now']} (0.2-48 h after their opinion) "
            "and were not written: the history ends at --now")


def add_parsers(sub) -> None:
    p = add_verb(sub, "simulate", help="write simulated production data into the configured store",
                 description="Write realistic plans, audit events, opinions and human feedback (with known truth "
                             "and a few malformed documents on purpose) into the configured document store. "
                             "--specialist limits who gives opinions (and gets feedback) on the plans. "
                             "Once a champion is registered, its opinions are served by it (and by the "
                             "challenger for the units an open A/B test routes to it). The document ids "
                             "derive from the seed: re-running with the same seed replaces the same documents.",
                 env=("HIVE_HOME", "MONGODB_URI", "MONGODB_DATABASE", "MLFLOW_TRACKING_URI"))
    add_specialist(p)
    p.add_argument("--plans", type=positive_int, default=4000, help="number of cognitive plans to simulate")
    p.add_argument("--days", type=period_days, default=60.0, help="length of the simulated period in days")
    p.add_argument("--seed", type=non_negative_int, default=42, help="random seed: same seed, same documents")
    p.add_argument("--drift", type=fraction, default=0.0,
                   help="0..1: shift of the plan risk and size distributions (for drift scenarios)")
    p.add_argument("--label-noise", type=fraction, default=0.10,
                   help="0..1: share of human labels that disagree with the ground-truth policy")
    p.add_argument("--label-rate", type=fraction, default=0.85,
                   help="0..1: answered share of opinions (human feedback); production answers a few percent")
    p.add_argument("--now", type=clock_instant,
                   help="ISO-8601 end of the simulated period; a naive time is UTC (default: the home's clock: `hive clock`)")
    p.add_argument("--no-serve", action="store_true",
                   help="opinions from the pre-platform heuristic even when champions exist (default: serve "
                        "with the registered champions)")
    p.add_argument("--progress-every", type=positive_int, default=1000,
                   help="print a progress line on stderr every N plans")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (default: one line of text)")
    p.set_defaults(func=cmd_simulate)

"""`hive simulate`: simulated production traffic into the configured store."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from hive_assets.config import Settings


def cmd_simulate(args: argparse.Namespace) -> int:
    from hive_assets.data import open_store
    from hive_assets.simulator import champion_opinions, simulate

    now = datetime.fromisoformat(args.now) if args.now else None
    with open_store() as store:
        opinion_model = None if args.no_serve else champion_opinions(Settings.from_env().mlflow_uri, store)
        summary = simulate(store, plans=args.plans, days=args.days, seed=args.seed, now=now, drift=args.drift,
                           label_noise=args.label_noise, opinion_model=opinion_model)
        where = store.describe()
    info = summary.as_dict()
    print(json.dumps({"store": where, **info}, indent=2) if args.json else
          f"simulated {info['plans']} plans into {where}: " + ", ".join(f"{k}={v}" for k, v in info["written"].items())
          + f"; {info['malformed']} malformed on purpose")
    return 0

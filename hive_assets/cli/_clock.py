"""`hive clock`: show, pin, advance or release the home's clock (hive_assets.clock).

A simulated home (`make demo` pins it at DEMO_START) keeps its instant in `$HIVE_HOME/clock.json`: the CLI,
`dagster dev`, `dagster-daemon` and the sensors all read it, and nothing moves until it is advanced.
`release` goes live on the wall clock."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone

from hive_assets import clock
from hive_assets.cli._args import UsageError, add_verb, clock_instant, set_check
from hive_assets.config import ConfigError

ENV = ("HIVE_HOME",)


def duration(text: str):
    try:
        return clock.parse_duration(text)
    except ValueError as exc:
        back = text.strip().startswith("-") and _is_duration(text.strip()[1:])  # '-3h': a step back
        raise argparse.ArgumentTypeError(f"{exc}" + ("; the clock only moves forward: `hive clock pin ISO` "
                                                      "sets it to any instant" if back else "")) from None


def _is_duration(text: str) -> bool:
    try:
        clock.parse_duration(text)
    except ValueError:
        return False
    return True


def describe(home_clock: clock.HomeClock | None) -> dict:
    override = os.environ.get(clock.SIMULATED_NOW, "").strip()
    state = home_clock or clock.HomeClock()
    return {"path": str(clock.clock_path()), "mode": state.mode,
            "now": clock.now().isoformat(), "pinned_at": state.now.isoformat() if state.now else None,
            "overridden_by": clock.SIMULATED_NOW if override else None, "settings": dict(state.settings)}


def _print(info: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(info, indent=2))
        return
    if info["mode"] == clock.SIMULATED:
        print(f"simulated: {datetime.fromisoformat(info['pinned_at']):%Y-%m-%d %H:%M:%S} UTC (pinned in {info['path']}); "
              "nothing moves until `hive clock advance DURATION` or `hive loop`; `hive clock release` goes live")
    else:
        print(f"wall clock (live): {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
    if info["overridden_by"]:
        print(f"note: {clock.SIMULATED_NOW} is set in this shell and wins: now = {info['now']}")
    if info["settings"]:
        print("scenario settings (an exported variable wins): "
              + ", ".join(f"{k}={v}" for k, v in sorted(info["settings"].items())))


def _latest_decision() -> datetime | None:
    """When the home's ledger recorded its latest decision (None: no ledger, or the store does not answer:
    the note below is a courtesy, never a reason to fail the pin)."""
    from hive_assets.config import Settings
    from hive_assets.data import StoreUnavailable, open_store
    from hive_assets.registry import latest_decision_at

    settings = Settings.from_env()
    if not settings.mongodb_uri and not settings.store_path.exists():
        return None  # a new home: no ledger yet (and no store file created for asking)
    try:
        with open_store(settings) as store:
            return latest_decision_at(store)
    except StoreUnavailable:
        return None


def _check_advance(args: argparse.Namespace) -> None:
    """A home without a simulated clock (a new one included), or a duration past the latest instant: refused
    before the home is created (it was created, then the advance refused)."""
    if (problem := clock.advance_problem(clock.read_home_clock(), args.duration)) is not None:
        raise UsageError(problem)


def cmd_clock(args: argparse.Namespace) -> int:
    if args.clock_command in ("pin", "advance", "release"):
        clock.check_not_playing()  # the loop pins the clock every simulated hour: a change now would be undone
    if args.clock_command == "pin":
        latest = _latest_decision()
        at = args.at
        if getattr(args, "no_earlier", False):
            # a second `make demo`: the home goes on from where it is; pinned back, its registry decisions
            # are refused (they would sort before the ones already made)
            try:
                current = clock.read_home_clock()
            except ConfigError:  # a malformed file, which this pin replaces: only the ledger says how far
                current = None
            later = [t for t in (latest, current.now if current is not None and current.simulated else None)
                     if t is not None and t > at]
            if later:
                at = max(later)
                print(f"hive clock pin: note: this home already goes on to {at:%Y-%m-%d %H:%M} UTC "
                      f"(--no-earlier): its clock stays there, not {args.at:%Y-%m-%d %H:%M}", file=sys.stderr)
        home_clock = clock.pin(at)
        if latest is not None and home_clock.now < latest:
            # a second `make demo` does this on purpose; by hand it is usually a typo
            print(f"hive clock pin: note: this home's ledger goes on to {latest:%Y-%m-%d %H:%M} UTC; at "
                  f"{home_clock.now:%Y-%m-%d %H:%M} the runs judge the data as of then, and A/B looks are refused "
                  "until the clock passes each test's latest look", file=sys.stderr)
    elif args.clock_command == "advance":
        home_clock = clock.advance(args.duration)
    elif args.clock_command == "release":
        home_clock = clock.release()
    else:
        home_clock = clock.read_home_clock()
    _print(describe(home_clock), args.json)
    return 0


def add_parsers(sub) -> None:
    p = add_verb(sub, "clock", help="show, pin, advance or release the home's clock (simulated time or the wall clock)",
                 description="A simulated home keeps its instant in $HIVE_HOME/clock.json; every process of the "
                             "home (the hive CLI, dagster dev, dagster-daemon, the sensors) reads it, and nothing "
                             "moves until it is advanced. HIVE_SIMULATED_NOW, when exported, wins.\n\n"
                             "  hive clock show\n  hive clock pin 2026-01-05T00:00:00Z\n"
                             "  hive clock advance 6h        (1d, 90m, 1d12h)\n  hive clock release            "
                             "(go live on the wall clock)", env=ENV)
    actions = p.add_subparsers(dest="clock_command", metavar="ACTION")
    show = actions.add_parser("show", help="the home's clock (the default action)")
    pin = actions.add_parser("pin", help="simulate time: the home's clock stops at ISO")
    pin.add_argument("at", type=clock_instant, metavar="ISO", help="ISO-8601 instant (naive means UTC)")
    pin.add_argument("--no-earlier", action="store_true",
                     help="never back: when the home's clock or its ledger is already later than ISO, stay at the "
                          "later of the two (what a second `make demo` does)")
    adv = actions.add_parser("advance", help="move a simulated home's clock forward by DURATION")
    adv.add_argument("duration", type=duration, metavar="DURATION", help="e.g. 6h, 2d, 1d12h, 90m")
    set_check(adv, _check_advance)
    rel = actions.add_parser("release", help="go live: the home uses the wall clock")
    for q in (pin, rel):  # they replace a malformed clock file, whose error names them as the way out
        q.set_defaults(replaces_clock=True)
    p.add_argument("--json", action="store_true", default=False, help="print the clock as JSON")
    for q in (show, pin, adv, rel):  # `hive clock --json show` and `hive clock show --json` alike
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the clock as JSON")
    p.set_defaults(func=cmd_clock, clock_command="show")

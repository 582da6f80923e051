"""The platform's one clock: the wall clock, or the simulated instant `hive loop` plays.

`now()` is what every sensor, asset and ledger write uses as "the current time". When
HIVE_SIMULATED_NOW holds an ISO-8601 instant (set by `hive loop` for each simulated hour, and by
`make demo` for the first training), that instant is the time: the simulator, the sensors, the A/B
controller and the documents' timestamps then agree on one clock, and a replay is deterministic.
Unset (production), it is the wall clock in UTC.

`wall_now()` is the other clock, for one purpose only: whether a *process* is still alive (run leases
and their heartbeats, the age of a Dagster run against its maximum runtime). Those measure real seconds
between real processes; a simulated hour is frozen while its runs execute, so it cannot say that a
heartbeat is late.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

SIMULATED_NOW = "HIVE_SIMULATED_NOW"

__all__ = ["SIMULATED_NOW", "now", "parse_instant", "wall_now"]


def parse_instant(text: str) -> datetime:
    """ISO-8601 (a trailing Z allowed; naive means UTC) -> aware UTC datetime; ValueError otherwise."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def now() -> datetime:
    """The current instant (aware UTC): HIVE_SIMULATED_NOW when set, else the wall clock."""
    raw = os.environ.get(SIMULATED_NOW, "").strip()
    if not raw:
        return datetime.now(timezone.utc)
    try:
        return parse_instant(raw)
    except ValueError:
        from hive_assets.config import ConfigError

        raise ConfigError(f"{SIMULATED_NOW} must be an ISO-8601 instant, got {raw!r}") from None


def wall_now() -> datetime:
    """The wall clock (aware UTC), for process liveness only (see the module docstring)."""
    return datetime.now(timezone.utc)

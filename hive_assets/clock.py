"""The platform's one clock: the home's clock (simulated or the wall), read by every process.

`now()` is what every sensor, asset and ledger write uses as "the current time". In order:

1. HIVE_SIMULATED_NOW, when set explicitly (tests; `hive loop` sets it for each simulated hour in its
   own process);
2. the home's clock, `$HIVE_HOME/clock.json`: a simulated home stores its instant there, so the CLI,
   `dagster dev`, `dagster-daemon` and every sensor of that home read the same time, and the time moves
   only when someone moves it (`hive clock advance`, `hive loop`); a home whose file says "wall" (or has
   no file: every production home) uses the wall clock;
3. the wall clock in UTC.

Why a file under HIVE_HOME and not the document store: `now()` is called on every ledger write and every
sensor tick, by processes that may not have opened the store yet (and the store's code reads the clock);
a small JSON file costs a stat per call (the parsed content is cached by modification time), has no
import cycle, and lives beside the other embedded state of a simulated home. A production home needs
no file (the wall clock); with HIVE_ENV=production a pinned file is an error, never a silent fake time.

The file also keeps the scenario's settings a simulation changed (`hive loop`'s thresholds and
intervals): `apply_home_settings()` exports them (an exported variable wins) before the code location
reads its settings, so `dagster dev` on a simulated home judges with the thresholds its history was
played with.

`wall_now()` is the other clock, for one purpose only: whether a *process* is still alive (run leases
and their heartbeats, the age of a Dagster run against its maximum runtime). Those measure real seconds
between real processes; a simulated hour is frozen while its runs execute, so it cannot say that a
heartbeat is late.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

SIMULATED_NOW = "HIVE_SIMULATED_NOW"
CLOCK_FILE = "clock.json"
LOOP_LOCK_FILE = ".loop.lock"  # held by `hive loop` (`playing`)
SIMULATED, WALL = "simulated", "wall"

__all__ = ["CLOCK_FILE", "SIMULATED_NOW", "HomeClock", "advance", "apply_home_settings", "check_span", "clock_path",
           "now", "parse_duration", "parse_instant", "pin", "read_home_clock", "release", "simulated", "wall_now",
           "write_home_clock"]


def _config_error(message: str) -> Exception:
    from hive_assets.config import ConfigError  # config is imported lazily: it must not import this module

    return ConfigError(message)


def parse_instant(text: str) -> datetime:
    """ISO-8601 (a trailing Z allowed; naive means UTC) -> aware UTC datetime; ValueError otherwise."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
MAX_DURATION = timedelta(days=36_500)  # a century: beyond it the clock would leave datetime's range
# What a simulated clock may say. Collection holds times between 1700 and 2260 only (pandas' datetimes end
# in 2262) and adds windows, cooldowns and test horizons to "now": a home pinned in 2300 failed its first
# collection, so the clock itself refuses such a time. From the Unix epoch: every store and MLflow keeps
# times as seconds or milliseconds since then.
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_INSTANT = datetime(2250, 1, 1, tzinfo=timezone.utc)


def _in_range(at: datetime, what: str, hint: str = "") -> datetime:
    """`at`, or a ConfigError saying that a simulated clock cannot be there."""
    if not EARLIEST_INSTANT <= at <= LATEST_INSTANT:
        raise _config_error(f"{what}: a simulated clock lies between {EARLIEST_INSTANT:%Y-%m-%d} and "
                            f"{LATEST_INSTANT:%Y-%m-%d} UTC, got {at:%Y-%m-%d %H:%M} UTC{hint}")
    return at


def parse_duration(text: str) -> timedelta:
    """'6h', '2d', '1d12h', '90m', '30s' -> timedelta (positive); ValueError otherwise."""
    compact = re.sub(r"\s+", "", text or "")
    negative = compact.startswith("-")  # '-3h' is a duration, and not a positive one
    body = compact[1:] if negative else compact
    parts = _DURATION.findall(body)
    if not body or "".join(f"{n}{u}" for n, u in parts).lower() != body.lower():
        raise ValueError(f"not a duration: {text!r} (e.g. 6h, 2d, 1d12h, 90m)")
    try:
        delta = sum((timedelta(**{_UNITS[u.lower()]: float(n)}) for n, u in parts), timedelta())
    except OverflowError:
        delta = None
    if negative or (delta is not None and delta <= timedelta(0)):
        raise ValueError(f"a duration must be positive, got {text!r}")
    if delta is None or delta > MAX_DURATION:
        raise ValueError(f"a duration must be at most {MAX_DURATION.days:,} days, got {text!r}")
    return delta


@dataclass(frozen=True)
class HomeClock:
    """What `$HIVE_HOME/clock.json` says: simulated at `now`, or the wall clock; plus the scenario's settings."""

    mode: str = WALL
    now: datetime | None = None
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self.mode == SIMULATED

    def as_dict(self) -> dict:
        return {"mode": self.mode, "now": self.now.isoformat() if self.now else None, "settings": dict(self.settings)}


def clock_path() -> Path:
    from hive_assets.config import hive_home

    return hive_home() / CLOCK_FILE


_cache: dict[Path, tuple[tuple[int, int], HomeClock]] = {}


def _settings_of(body: dict) -> dict[str, str] | None:
    """The clock file's `settings` (none: empty), or None when they do not map variable names to strings."""
    settings = body.get("settings") or {}
    if not isinstance(settings, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in settings.items()):
        return None
    return dict(settings)


def _parse(path: Path, text: str) -> HomeClock:
    problem = f"{path}: malformed clock file"
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _config_error(f"{problem} ({exc.msg} at line {exc.lineno}); fix it, or run `hive clock release`") \
            from None
    if not isinstance(body, dict) or body.get("mode") not in (SIMULATED, WALL):
        raise _config_error(f"{problem}: 'mode' must be {SIMULATED!r} or {WALL!r}; fix it, or run `hive clock release`")
    settings = _settings_of(body)
    if settings is None:
        raise _config_error(f"{problem}: 'settings' must map variable names to strings")
    at = None
    if body["mode"] == SIMULATED:
        try:
            at = parse_instant(str(body.get("now") or ""))
        except ValueError:
            raise _config_error(f"{problem}: a simulated clock needs 'now' as an ISO-8601 instant, got "
                                f"{body.get('now')!r}; fix it, or run `hive clock pin ISO`") from None
    return HomeClock(body["mode"], at, settings)


def read_home_clock(path: Path | None = None) -> HomeClock | None:
    """The home's clock file (None when the home has none); a malformed file is a one-line ConfigError."""
    path = path or clock_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _config_error(f"{path}: cannot read the clock file ({exc.strerror})") from None
    home_clock = _parse(path, text)
    _cache[path] = (key, home_clock)
    return home_clock


def check_span(start: datetime, length: timedelta) -> None:
    """ConfigError unless a simulated clock can go from `start` through `length` later (`hive loop`: said
    before the first hour, not at the hour that leaves the range)."""
    _in_range(start, "cannot start the clock there")
    if length > LATEST_INSTANT - start:  # compared as durations: the sum may leave datetime's range
        raise _config_error(f"{length.total_seconds() / 86_400:g} days from {start:%Y-%m-%d %H:%M} UTC end after "
                            f"{LATEST_INSTANT:%Y-%m-%d}, the latest a simulated clock says: play fewer days")


def _production() -> bool:
    return os.environ.get("HIVE_ENV", "").strip().lower() == "production"


def now() -> datetime:
    """The current instant (aware UTC): HIVE_SIMULATED_NOW, else the home's simulated clock, else the wall clock."""
    raw = os.environ.get(SIMULATED_NOW, "").strip()
    if raw:
        try:
            at = parse_instant(raw)
        except ValueError:
            raise _config_error(f"{SIMULATED_NOW} must be an ISO-8601 instant, got {raw!r}") from None
        return _in_range(at, SIMULATED_NOW)
    home_clock = read_home_clock()
    if home_clock is not None and home_clock.simulated:
        if _production():
            raise _config_error(f"HIVE_ENV=production, but {clock_path()} pins simulated time "
                                f"({home_clock.now.isoformat()}): run `hive clock release`")
        # checked here, not when the file is read: `hive clock pin` and `release` must still read its settings
        return _in_range(home_clock.now, f"{clock_path()}: 'now'",
                         "; run `hive clock pin ISO` or `hive clock release`")
    return datetime.now(timezone.utc)


def simulated() -> bool:
    """Whether "now" is simulated time (HIVE_SIMULATED_NOW, or a pinned home) rather than the wall clock.
    On simulated time the sensors space their looks by the platform clock, since the daemon's wall-time
    interval says nothing about how far that clock moved."""
    if os.environ.get(SIMULATED_NOW, "").strip():
        return True
    home_clock = read_home_clock()
    return home_clock is not None and home_clock.simulated


def write_home_clock(home_clock: HomeClock, path: Path | None = None) -> HomeClock:
    """Write the clock file atomically (a reader never sees half a file)."""
    path = path or clock_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(home_clock.as_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with suppress(OSError):  # no half-written file left behind (a directory in the way stays)
            tmp.unlink(missing_ok=True)
        raise _unwritable(path, exc) from None
    return home_clock


def _unwritable(path: Path, exc: OSError) -> Exception:
    return _config_error(f"{path}: cannot be written ({exc.strerror or exc}): the home's clock needs a writable "
                         "HIVE_HOME; nothing was changed")


@contextmanager
def _changing(path: Path | None = None) -> Iterator[Path]:
    """Hold the home's clock lock (`.clock.json.lock`, an exclusive `flock`) around a read-modify-write of
    the clock file: two `hive clock advance 1h` at once moved it one hour (both read the same instant, the
    later write won). Readers need no lock: the file is replaced atomically."""
    path = path or clock_path()
    with _locked(path.with_name(f".{path.name}.lock"), wait=True):
        _cache.pop(path, None)  # read what the previous holder wrote, not a copy cached before the lock
        yield path


@contextmanager
def _locked(lock_path: Path, *, wait: bool) -> Iterator[IO[str] | None]:
    """An exclusive `flock` on `lock_path` (created with its directory), released when the file closes or the
    process dies; without `wait`, None while another process holds it."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(lock_path, "a+")
    except OSError as exc:  # a read-only home: a traceback from every verb that changes the clock
        raise _unwritable(lock_path, exc) from None
    with lock_file as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        yield lock


def _pin(at: datetime, settings: dict[str, str] | None, path: Path) -> HomeClock:
    if _production():
        raise _config_error("HIVE_ENV=production: a production home runs on the wall clock; it cannot be pinned")
    at = _in_range(at.astimezone(timezone.utc), "cannot pin the clock there")
    kept = dict(settings) if settings is not None else _kept_settings(path)
    return write_home_clock(HomeClock(SIMULATED, at, kept), path)


def _kept_settings(path: Path) -> dict[str, str]:
    """The settings a pin or release keeps. A malformed file is replaced, not refused: its error names these
    two commands as the way out; its settings are kept when they still parse."""
    from hive_assets.config import ConfigError

    try:
        current = read_home_clock(path)
    except ConfigError:
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return (_settings_of(body) if isinstance(body, dict) else None) or {}
    return dict(current.settings) if current else {}


@contextmanager
def playing(path: Path | None = None) -> Iterator[None]:
    """Held by `hive loop` while it plays the home (an exclusive `flock` on `.loop.lock`, with its pid): a
    second loop on the same home is refused, and so is `hive clock pin/advance/release` (the loop pins the
    clock every simulated hour, so a change by hand was undone within a second). Released when the loop
    ends or its process dies."""
    with _loop_lock(path) as lock:
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


def check_not_playing(path: Path | None = None) -> None:
    """ConfigError while a `hive loop` plays the home (`playing`): its clock is the loop's."""
    with _loop_lock(path):
        pass


@contextmanager
def _loop_lock(path: Path | None) -> Iterator[IO[str]]:
    path = (path or clock_path()).with_name(LOOP_LOCK_FILE)
    with _locked(path, wait=False) as lock:
        if lock is None:
            holder = path.read_text().strip() or "pid unknown"
            raise _config_error(f"a hive loop is playing this home ({holder}): its clock moves with it; wait for "
                                "it to end, or stop it (Ctrl-C)")
        yield lock


def pin(at: datetime, settings: dict[str, str] | None = None, path: Path | None = None) -> HomeClock:
    """Make the home simulated at `at` (keeping its settings unless new ones are given)."""
    with _changing(path) as locked:
        return _pin(at, settings, locked)


def advance(delta: timedelta, path: Path | None = None) -> HomeClock:
    """Move a simulated home's clock forward by `delta` (read and written under the clock's lock, so
    concurrent advances add up)."""
    with _changing(path) as locked:
        current = read_home_clock(locked)
        if (problem := advance_problem(current, delta)) is not None:
            raise _config_error(problem)
        return _pin(current.now + delta, None, locked)


def advance_problem(current: HomeClock | None, delta: timedelta) -> str | None:
    """Why `current` (the home's clock, None: no clock file) cannot advance by `delta`, or None. `hive clock
    advance` asks first, before its home is created; `advance` asks again under the lock."""
    if current is None or not current.simulated:
        return "this home runs on the wall clock: `hive clock pin ISO` first to simulate time"
    if delta <= timedelta(0):
        return f"the clock only moves forward, got {delta}"
    if delta > LATEST_INSTANT - current.now:  # compared as durations: the sum may leave datetime's range
        return (f"the clock is at {current.now:%Y-%m-%d %H:%M} UTC: {delta} later is past "
                f"{LATEST_INSTANT:%Y-%m-%d}, the latest a simulated clock says")
    return None


def release(path: Path | None = None) -> HomeClock:
    """Go live: the home uses the wall clock from now on (its settings stay)."""
    with _changing(path) as locked:
        return write_home_clock(HomeClock(WALL, None, _kept_settings(locked)), locked)


def apply_home_settings(*, replacing: bool = False) -> dict[str, str]:
    """Export the home's stored settings that are not already set (an exported variable wins); the ones applied.
    `replacing`: for `hive clock pin` / `release`, which replace a malformed file rather than refuse it."""
    from hive_assets.config import ConfigError, note_home_settings

    try:
        home_clock = read_home_clock()
    except ConfigError:
        if not replacing:
            raise
        return {}
    applied = {k: v for k, v in (home_clock.settings if home_clock else {}).items() if not os.environ.get(k)}
    os.environ.update(applied)
    note_home_settings(applied, clock_path())  # a malformed one's error names the file
    return applied


def wall_now() -> datetime:
    """The wall clock (aware UTC), for process liveness only (see the module docstring)."""
    return datetime.now(timezone.utc)

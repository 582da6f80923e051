"""The home's clock (hive_assets.clock, `hive clock`): pin, advance, release; what wins over what; a production
home runs on the wall clock; a malformed clock file is a one-line error. The CLI runs in-process through
`hive_assets.cli._main.main` (its argument parsing, home preparation and error handling), against a
temporary HIVE_HOME."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from hive_assets import clock
from hive_assets.cli._main import main
from hive_assets.config import ConfigError

PINNED = datetime(2026, 1, 5, tzinfo=timezone.utc)


@pytest.fixture
def home(hive_home, monkeypatch):
    for name in (clock.SIMULATED_NOW, "HIVE_ENV", "RETRAINING_FEEDBACK_THRESHOLD", "DRIFT_WINDOW_HOURS"):
        monkeypatch.setenv(name, "")  # recorded, so whatever a test (or apply_home_settings) sets is undone
        monkeypatch.delenv(name)
    return hive_home


def hive(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # a bad argument, refused while parsing (argparse's exit 2)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> bool:
    """Besides the home it announces, the CLI said one line, an error, and no traceback."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("hive: HIVE_HOME=")]
    return len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in err


def close_to_wall(at: datetime) -> bool:
    return abs(at - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_pin_advance_release_with_the_cli(home, capsys):
    assert hive(capsys, "clock", "pin", "2026-01-05T00:00:00Z")[0] == 0
    assert json.loads((home / clock.CLOCK_FILE).read_text())["now"] == PINNED.isoformat()
    assert clock.now() == PINNED

    code, out, _ = hive(capsys, "clock", "advance", "1d6h", "--json")
    assert code == 0 and json.loads(out)["now"] == (PINNED + timedelta(days=1, hours=6)).isoformat()
    assert clock.now() == PINNED + timedelta(days=1, hours=6)
    code, out, _ = hive(capsys, "clock")  # show is the default action
    assert code == 0 and out.startswith("simulated: 2026-01-06 06:00:00 UTC")

    code, out, _ = hive(capsys, "clock", "--json", "release")
    assert code == 0 and json.loads(out)["mode"] == "wall" and json.loads(out)["pinned_at"] is None
    assert close_to_wall(clock.now())
    # a released home cannot be advanced: it must be pinned again first
    code, _, err = hive(capsys, "clock", "advance", "6h")
    assert code == 2 and one_error_line(err) and "pin" in err


@pytest.mark.parametrize("pinned, duration, said", [
    (None, "6h", "this home runs on the wall clock: `hive clock pin ISO` first to simulate time"),
    ("2249-12-31T00:00:00Z", "2d", "the clock is at 2249-12-31 00:00 UTC: 2 days, 0:00:00 later is past 2250-01-01"),
])
def test_an_advance_that_cannot_be_done_creates_no_home(home, tmp_path, monkeypatch, capsys, pinned, duration, said):
    """`hive clock advance` on a new home (no clock file: the wall clock) created the home and its Dagster
    instance, then refused; so did an advance past the latest instant, on a home whose instance was not
    created yet. Both are refused first now, and nothing is created."""
    new_home = tmp_path / "new-home"
    monkeypatch.setenv("HIVE_HOME", str(new_home))
    monkeypatch.setenv("DAGSTER_HOME", str(new_home / "dagster"))
    if pinned:
        new_home.mkdir()
        clock.pin(datetime.fromisoformat(pinned))
    before = sorted(p.name for p in new_home.iterdir()) if pinned else None
    code, out, err = hive(capsys, "clock", "advance", duration)
    assert code == 2 and one_error_line(err) and said in err and out == ""
    assert (sorted(p.name for p in new_home.iterdir()) if pinned else new_home.exists()) == (before or False)


def test_pinning_before_the_ledger_s_latest_decision_says_so(home, capsys):
    from hive_assets.data import SQLiteStore
    from hive_assets.registry import record_decision

    assert hive(capsys, "clock", "pin", "2026-01-05T00:00:00Z")[0] == 0
    assert not (home / "store.sqlite").exists()  # asking about the ledger creates no store
    with SQLiteStore(home / "store.sqlite") as store:  # two decisions, written by the ledger as time moves
        for day in (6, 9):
            clock.pin(datetime(2026, 1, day, 12, tzinfo=timezone.utc))
            record_decision(store, "business", "alias_move", actor="test", reason="setup")
    code, _, err = hive(capsys, "clock", "pin", "2026-01-08T00:00:00Z")
    assert code == 0 and clock.now() == datetime(2026, 1, 8, tzinfo=timezone.utc)  # pinned all the same
    assert "hive clock pin: note: this home's ledger goes on to 2026-01-09 12:00 UTC; at 2026-01-08 00:00" in err
    code, _, err = hive(capsys, "clock", "pin", "2026-01-10T00:00:00Z")  # after it: nothing to say
    assert code == 0 and "note:" not in err


def test_precedence_env_then_home_then_wall(home, monkeypatch):
    assert close_to_wall(clock.now())  # no file: the wall clock
    clock.pin(PINNED)
    assert clock.now() == PINNED
    monkeypatch.setenv(clock.SIMULATED_NOW, "2026-03-01T12:00:00Z")  # set explicitly (tests, hive loop's hours)
    assert clock.now() == datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    monkeypatch.delenv(clock.SIMULATED_NOW)
    clock.advance(timedelta(hours=2))
    assert clock.now() == PINNED + timedelta(hours=2)  # re-read after the file changed (no stale cache)


def test_a_production_home_uses_the_wall_clock_and_refuses_a_pin(home, monkeypatch, capsys):
    monkeypatch.setenv("HIVE_ENV", "production")
    assert close_to_wall(clock.now())
    code, _, err = hive(capsys, "clock", "pin", "2026-01-05T00:00:00Z")
    assert code == 2 and one_error_line(err) and "production" in err
    assert not (home / clock.CLOCK_FILE).exists()
    # a clock file that pins time in a production home is an error, never a silent fake time
    monkeypatch.delenv("HIVE_ENV")
    clock.pin(PINNED)
    monkeypatch.setenv("HIVE_ENV", "production")
    with pytest.raises(ConfigError, match="release"):
        clock.now()


@pytest.mark.parametrize("content, message", [
    ("{not json", "malformed clock file"),
    ('{"mode": "simulated", "now": "yesterday"}', "ISO-8601"),
    ('{"mode": "frozen"}', "'mode' must be"),
])
def test_a_malformed_clock_file_is_a_one_line_error(home, capsys, content, message):
    (home / clock.CLOCK_FILE).write_text(content)
    with pytest.raises(ConfigError, match=message):
        clock.now()
    code, out, err = hive(capsys, "clock", "show")
    assert code == 2 and out == "" and one_error_line(err) and message in err


@pytest.mark.parametrize("content, kept", [
    ("{not json", {}),
    ('{"mode": "frozen", "settings": {"DRIFT_WINDOW_HOURS": "6"}}', {"DRIFT_WINDOW_HOURS": "6"}),
    ('{"mode": "simulated", "now": 5, "settings": {"DRIFT_WINDOW_HOURS": "6"}}', {"DRIFT_WINDOW_HOURS": "6"}),
    ('{"mode": "simulated", "now": "2026-01-01T00:00:00Z", "settings": [1]}', {}),
])
@pytest.mark.parametrize("verb", [["release"], ["pin", "2026-01-05T00:00:00Z"], ["pin", "2026-01-05", "--no-earlier"]])
def test_the_commands_a_malformed_clock_file_names_replace_it(home, capsys, content, kept, verb):
    """The error says "fix it, or run `hive clock release`" (or `pin`): both failed with that same error,
    read while preparing the home and again before the write, so the way out it named was no way out."""
    (home / clock.CLOCK_FILE).write_text(content)
    assert hive(capsys, "clock", "show")[0] == 2
    code, _, err = hive(capsys, "clock", *verb)
    assert code == 0 and "error" not in err, err
    assert clock.read_home_clock().settings == kept  # the scenario's settings survive when they still parse
    assert clock.now() == PINNED if verb[0] == "pin" else close_to_wall(clock.now())


@pytest.mark.parametrize("blocked", [clock.LOOP_LOCK_FILE, f".{clock.CLOCK_FILE}.lock", "tmp"])
@pytest.mark.parametrize("verb", [["advance", "1h"], ["pin", "2026-02-01T00:00:00Z"], ["release"]])
def test_a_clock_file_that_cannot_be_written_is_one_line(home, capsys, blocked, verb):
    """A read-only home (or a lock or temporary path that is no file): `hive clock advance/pin/release` and
    `hive loop` ended in an OSError traceback from the lock's open. A directory in the way fails as a
    read-only disk does, whoever runs the test."""
    clock.pin(PINNED)
    before = (home / clock.CLOCK_FILE).read_text()
    name = f".{clock.CLOCK_FILE}.{os.getpid()}.tmp" if blocked == "tmp" else blocked
    (home / name).unlink(missing_ok=True)  # the pin above left the clock's lock file
    (home / name).mkdir()
    code, out, err = hive(capsys, "clock", *verb)
    assert code == 2 and out == "" and one_error_line(err) and "cannot be written" in err, err
    assert (home / clock.CLOCK_FILE).read_text() == before


@pytest.mark.parametrize("argv", [["clock", "advance", "soon"], ["clock", "advance", "-3h"],
                                  ["clock", "pin", "next tuesday"]])
def test_bad_arguments_exit_2(home, capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_the_scenario_settings_are_exported_unless_already_set(home, monkeypatch):
    clock.pin(PINNED, settings={"RETRAINING_FEEDBACK_THRESHOLD": "8000", "DRIFT_WINDOW_HOURS": "6"})
    monkeypatch.setenv("DRIFT_WINDOW_HOURS", "12")  # the user's export wins
    assert clock.apply_home_settings() == {"RETRAINING_FEEDBACK_THRESHOLD": "8000"}
    assert os.environ["RETRAINING_FEEDBACK_THRESHOLD"] == "8000" and os.environ["DRIFT_WINDOW_HOURS"] == "12"
    # advance and release keep the settings
    assert clock.advance(timedelta(hours=1)).settings["RETRAINING_FEEDBACK_THRESHOLD"] == "8000"
    assert clock.release().settings["DRIFT_WINDOW_HOURS"] == "6"


def test_a_malformed_setting_from_the_clock_file_names_the_file(home, monkeypatch):
    """`hive status` said "RETRAINING_FEEDBACK_THRESHOLD must be an integer, got 'abc'" of a variable nobody
    exported: the home's clock file had set it."""
    from hive_assets.config import Settings

    clock.pin(PINNED, settings={"RETRAINING_FEEDBACK_THRESHOLD": "abc", "AB_TEST_CHECK_INTERVAL_MINUTES": "60"})
    monkeypatch.setenv("AB_TEST_CHECK_INTERVAL_MINUTES", "-1")  # exported: the user's, said as before
    clock.apply_home_settings()
    with pytest.raises(ConfigError) as bad:
        Settings.from_env()
    assert str(bad.value) == ("RETRAINING_FEEDBACK_THRESHOLD must be an integer, got 'abc' (set by the 'settings' "
                              f"of {home / 'clock.json'}, not exported)")
    monkeypatch.setenv("RETRAINING_FEEDBACK_THRESHOLD", "200")
    with pytest.raises(ConfigError) as exported:
        Settings.from_env()
    assert "AB_TEST_CHECK_INTERVAL_MINUTES" in str(exported.value) and "clock.json" not in str(exported.value)


@pytest.mark.parametrize("argv, reason", [
    (["clock", "advance", "-3h"], "a duration must be positive, got '-3h'; the clock only moves forward"),
    (["clock", "advance", "-1d12h"], "a duration must be positive, got '-1d12h'"),
    (["clock", "advance", "-3q"], "not a duration: '-3q'"),
])
def test_a_negative_duration_is_refused_for_what_it_is(home, capsys, argv, reason):
    # argparse took '-3h' for an unknown option and said "the following arguments are required: DURATION"
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and reason in err and "required" not in err and one_error_line(err)
    assert not (home / clock.CLOCK_FILE).exists()


@pytest.mark.parametrize("text, expected", [("6h", timedelta(hours=6)), ("1d12h", timedelta(days=1, hours=12)),
                                            ("90m", timedelta(minutes=90)), ("2D", timedelta(days=2))])
def test_durations(text, expected):
    assert clock.parse_duration(text) == expected


ADVANCE_AT = """
import sys, time
from datetime import timedelta
from hive_assets import clock
start = float(sys.argv[1])
clock.read_home_clock()  # a value cached before the lock, as the CLI's start-up read leaves one
while time.time() < start:
    pass
clock.advance(timedelta(hours=1))
"""


def test_advances_at_the_same_moment_add_up(home):
    """Eight `hive clock advance 1h` at the same moment move the clock eight hours: each reads and writes
    the file under the clock's lock (without it, most of them read the same instant and the later writes
    undid the earlier ones: 3 hours of 8 here, one advance in five lost with two CLI calls)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    clock.pin(PINNED)
    start = time.time() + 2.0  # every process imported and waiting by then
    package_root = str(Path(clock.__file__).resolve().parents[1])  # this checkout's hive_assets in the children
    env = {**os.environ, "HIVE_HOME": str(home),
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-c", ADVANCE_AT, str(start)], env=env) for _ in range(8)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 8
    assert clock.read_home_clock().now == PINNED + timedelta(hours=8)


HOLD_LOOP = """
import sys, time
from hive_assets import clock
with clock.playing():
    print("playing", flush=True)
    time.sleep(60)
"""


def test_while_a_loop_plays_the_home_a_second_loop_and_clock_changes_are_refused(home, capsys):
    """`hive loop` pins the clock every simulated hour: `hive clock advance 1d` during it printed the new time
    and was undone within a second; a second loop rewrote the first's hours and moved the clock back."""
    import subprocess
    import sys
    from pathlib import Path

    clock.pin(PINNED)
    package_root = str(Path(clock.__file__).resolve().parents[1])
    env = {**os.environ, "HIVE_HOME": str(home),
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    loop = subprocess.Popen([sys.executable, "-c", HOLD_LOOP], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert loop.stdout.readline().strip() == "playing"
        for verb in (["advance", "1h"], ["pin", "2026-02-01T00:00"], ["release"]):
            assert main(["clock", *verb]) == 2
            err = capsys.readouterr().err
            assert f"a hive loop is playing this home (pid {loop.pid})" in err and "Traceback" not in err
        with pytest.raises(ConfigError, match=f"pid {loop.pid}"), clock.playing():
            pass
        assert main(["loop", "--days", "1"]) == 2  # a second loop: one line, before it describes its scenario
        err = capsys.readouterr().err
        assert f"a hive loop is playing this home (pid {loop.pid})" in err and "hive loop: 1 simulated" not in err
        assert main(["clock"]) == 0  # reading it is fine
        assert clock.read_home_clock().now == PINNED
    finally:
        loop.kill()
        loop.wait(10)
    assert main(["clock", "advance", "1h"]) == 0  # the loop's process is gone: so is its lock
    assert clock.read_home_clock().now == PINNED + timedelta(hours=1)


@pytest.mark.parametrize("text", ["1969-12-31T23:59:59Z", "2250-01-01T00:00:01Z", "2300-01-01T00:00:00Z"])
def test_a_simulated_clock_stays_where_collection_can_read_time(home, capsys, monkeypatch, text):
    """A home pinned in 2300 took the pin and then failed its first collection (documents' times end in
    2260); before the Unix epoch, stores and MLflow keep no times. Each way to say "now" refuses it."""
    clock.pin(PINNED)
    code, _, err = hive(capsys, "clock", "pin", text)
    assert code == 2 and one_error_line(err) and "between 1970-01-01 and 2250-01-01" in err
    assert clock.now() == PINNED  # the clock did not move
    monkeypatch.setenv(clock.SIMULATED_NOW, text)
    with pytest.raises(ConfigError, match=clock.SIMULATED_NOW):
        clock.now()
    monkeypatch.delenv(clock.SIMULATED_NOW)
    (home / clock.CLOCK_FILE).write_text(json.dumps({"mode": "simulated", "now": text, "settings": {"DRIFT_WINDOW_HOURS": "6"}}))
    code, out, err = hive(capsys, "clock", "show")
    assert code == 2 and out == "" and one_error_line(err) and "hive clock pin ISO` or `hive clock release" in err
    # the way out it names works (an older version wrote such files), keeping the scenario's settings
    assert hive(capsys, "clock", "pin", "2026-01-05T00:00:00Z")[0] == 0 and clock.now() == PINNED
    assert clock.read_home_clock().settings == {"DRIFT_WINDOW_HOURS": "6"}
    (home / clock.CLOCK_FILE).write_text(json.dumps({"mode": "simulated", "now": text}))
    assert hive(capsys, "clock", "release")[0] == 0 and close_to_wall(clock.now())


def test_the_clock_s_range_ends_are_taken(home):
    for at in (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2250, 1, 1, tzinfo=timezone.utc)):
        assert clock.pin(at).now == at == clock.now()
    with pytest.raises(ConfigError, match="past 2250-01-01"):
        clock.advance(timedelta(seconds=1))

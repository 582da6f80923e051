"""The `hive` command run as a user runs it: the console script in a subprocess with a minimal environment
(env -i style: PATH=/usr/bin:/bin, HOME, a *relative* HIVE_HOME, no DAGSTER_HOME), from a working directory
of its own. PYTHONPATH is passed on only when the test process has one (a worktree run), so that the code
under test is what runs; in CI the editable install points at the clone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from hive_assets.cli._home import write_instance_settings
from hive_assets_tests.basic_auth_mlflow import PASSWORD, TOKEN, USERNAME

BIN = Path(sys.executable).parent
HIVE = str(BIN / "hive")
PACKAGED_INSTANCE_SETTINGS = Path(__file__).resolve().parents[2] / "hive_assets" / "cli" / "dagster.yaml"
HOME_REL = "hive-home"  # relative on purpose: resolved against the command's working directory
RUN_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def user_env(home_dir: Path, **extra: str) -> dict[str, str]:
    """What a user's bare shell has, plus PYTHONPATH only if this test process runs with one."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home_dir), "HIVE_HOME": HOME_REL}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in os.environ["PYTHONPATH"].split(os.pathsep) if p)
    env.update(extra)
    return env


def hive(*args: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([HIVE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def announced_home(stderr: str) -> str:
    return re.search(r"^hive: HIVE_HOME=(\S+) \(Dagster instance (\S+)\)$", stderr, re.M).groups()


@pytest.fixture
def shell(tmp_path) -> tuple[Path, dict[str, str]]:
    """A working directory and a bare environment whose HOME is elsewhere."""
    cwd, user_home = tmp_path / "work", tmp_path / "user"
    cwd.mkdir()
    user_home.mkdir()
    return cwd, user_env(user_home)


# --- one user session: simulate, import, collect, report, all in the relative HIVE_HOME ---------------------

@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-session")
    cwd, user_home = root / "work", root / "user"
    cwd.mkdir()
    user_home.mkdir()
    env = user_env(user_home)
    out = {"cwd": cwd, "env": env, "home": cwd / HOME_REL}
    # served by the (absent) champions: the MLflow backend under HIVE_HOME is opened and created
    out["simulate"] = hive("simulate", "--plans", "400", "--days", "20", "--seed", "5", "--json",
                           "--progress-every", "150", cwd=cwd, env=env)
    lines = [
        {"_id": {"$oid": "65a000000000000000000001"}, "id": "intent-extra-1",
         "timestamp": {"$date": "2026-01-01T00:00:00Z"}, "confidence": {"$numberDouble": "0.91"},
         "intent": {"text": "t", "domain": "BUSINESS"}},
        {"_id": {"$oid": "65a000000000000000000002"}, "id": "intent-extra-2",
         "timestamp": {"$date": {"$numberLong": "1767225600000"}}, "confidence": 0.5},
    ]
    (cwd / "audit.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out["import"] = hive("store", "import", "--collection", "intentions_audit", "audit.jsonl", "--json", cwd=cwd,
                         env=env)
    out["collect"] = hive("collect", "--specialist", "business,technical", "--min-samples", "100", "--json",
                          cwd=cwd, env=env)
    out["report"] = hive("report", cwd=cwd, env=env)
    out["hive env"] = hive("env", cwd=cwd, env=env)
    return out


def test_simulate_writes_under_the_relative_home_and_shows_progress(session):
    out, home = session["simulate"], session["home"]
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"]["specialist_opinions"] == 400 * 5
    assert announced_home(out.stderr) == (str(home), str(home / "dagster"))
    progress = re.findall(r"^hive simulate: (\d+)/400 plans$", out.stderr, re.M)
    assert progress == ["150", "300", "400"]
    assert "no champion registered yet" in out.stderr
    # everything lives under cwd/HIVE_HOME: store, MLflow backend, Dagster instance with the project settings
    assert (home / "store.sqlite").is_file() and (home / "mlflow.db").is_file()
    assert (home / "dagster" / "dagster.yaml").read_text() == PACKAGED_INSTANCE_SETTINGS.read_text()
    assert "Traceback" not in out.stderr


def test_store_import_reads_a_path_relative_to_the_working_directory(session):
    out = session["import"]
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"] == 2


def test_collect_runs_land_in_the_instance_under_the_relative_home(session, monkeypatch):
    import dagster as dg

    out, home = session["collect"], session["home"]
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["specialist"] for r in records] == ["business", "technical"]
    for r in records:
        assert 0 < r["labelled"] <= r["rows"] < 400
        assert all(isinstance(v, int) and v > 0 for v in r["quarantined"].values())
    # the instance at cwd/HIVE_HOME/dagster, opened the way a user's DAGSTER_HOME would open it
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    runs = {r.dagster_run.run_id: r.dagster_run for r in instance.get_run_records()}
    assert set(runs) == {r["run_id"] for r in records}
    assert {run.tags["dagster/partition"] for run in runs.values()} == {"business", "technical"}
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs.values())
    # the project's concurrency limits hold in that instance
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 12
    assert queue.tag_concurrency_limits == [
        {"key": "hive/retrain", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]


def test_report_reads_the_collect_runs(session):
    out = session["report"]
    assert out.returncode == 0, out.stderr  # no --strict: incomplete is not a failure
    rows = {r["specialist"]: r["rows"] for r in map(json.loads, session["collect"].stdout.splitlines())}
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines()[2:]}
    assert lines["business"][1] == str(rows["business"]) and lines["technical"][1] == str(rows["technical"])
    quarantined = {r["specialist"]: sum(r["quarantined"].values()) for r in map(json.loads, session["collect"].stdout.splitlines())}
    assert lines["business"][2] == str(quarantined["business"])  # the `quarantined_total` metadata
    assert lines["business"][-3:] == ["not", "validated", "yet"]
    assert lines["behavior"][1:3] == ["-", "-"]


def test_hive_env_points_the_dagster_cli_at_the_same_instance(session):
    out, home = session["hive env"], session["home"]
    assert out.returncode == 0, out.stderr
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", out.stdout, re.M))
    # MLflow's usage telemetry off for `mlflow ui` too, as for the platform's processes (test_config.py)
    assert exports == {"HIVE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    # the README's recipe: eval "$(hive env)" then the dagster CLI sees the runs `hive collect` made
    listed = subprocess.run([str(BIN / "dagster"), "run", "list"], cwd=session["cwd"],
                            env={**session["env"], **exports}, capture_output=True, text=True, timeout=300)
    run_ids = {json.loads(line)["run_id"] for line in session["collect"].stdout.splitlines()}
    assert set(re.findall(rf"Run: ({RUN_ID})", listed.stdout)) == run_ids, listed.stdout + listed.stderr


# --- other homes --------------------------------------------------------------------------------------------

def test_failed_collect_prints_the_run_id_and_the_error(shell, monkeypatch):
    import dagster as dg

    cwd, env = shell
    (cwd / HOME_REL).mkdir()
    (cwd / HOME_REL / "store.sqlite").write_bytes(b"not a database " * 200)
    out = hive("collect", "--specialist", "business", cwd=cwd, env=env)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "Stack Trace" not in out.stderr, out.stderr  # Dagster's, at WARNING
    failure = re.search(rf"^hive collect: business: collection failed in run ({RUN_ID}): (.+)$", out.stderr, re.M)
    assert failure, out.stderr
    assert "file is not a database" in failure.group(2)
    monkeypatch.setenv("DAGSTER_HOME", str(cwd / HOME_REL / "dagster"))
    run = dg.DagsterInstance.from_config(str(cwd / HOME_REL / "dagster")).get_run_by_id(failure.group(1))
    assert run.status == dg.DagsterRunStatus.FAILURE
    # --json: one object per specialist, the failed ones too (they were missing: a script saw nothing of them)
    out = hive("collect", "--specialist", "business,technical", "--json", cwd=cwd, env=env)
    assert out.returncode == 1
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["specialist"], r["success"]) for r in records] == [("business", False), ("technical", False)]
    assert all("file is not a database" in r["error"] and re.fullmatch(RUN_ID, r["run_id"]) for r in records)


def test_report_on_an_empty_home_says_so(shell):
    cwd, env = shell
    out = hive("report", cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("nothing materialized yet in the Dagster instance "
                                 f"{cwd / HOME_REL / 'dagster'}")
    assert "Traceback" not in out.stderr
    # the home did not exist: said once, so a mistyped HIVE_HOME is not taken for an empty real one
    new_home = f"hive: HIVE_HOME={cwd / HOME_REL} did not exist: created, empty"
    assert new_home in out.stderr
    again = hive("report", "--strict", cwd=cwd, env=env)
    assert again.returncode == 1 and new_home not in again.stderr
    # the home exists, its exported DAGSTER_HOME does not (a typo): an empty instance, every count from none
    typo = hive("report", cwd=cwd, env={**env, "DAGSTER_HOME": "home/dagstr"})
    assert f"hive: DAGSTER_HOME={cwd / 'home' / 'dagstr'} did not exist: created, an empty Dagster instance" \
        in typo.stderr, typo.stderr
    assert "did not exist" not in hive("report", cwd=cwd, env={**env, "DAGSTER_HOME": "home/dagstr"}).stderr


def test_an_exported_dagster_home_wins(shell, tmp_path):
    cwd, env = shell
    out = hive("report", cwd=cwd, env={**env, "DAGSTER_HOME": "elsewhere/instance"})
    assert out.returncode == 0, out.stderr
    assert announced_home(out.stderr) == (str(cwd / HOME_REL), str(cwd / "elsewhere" / "instance"))
    assert (cwd / "elsewhere" / "instance" / "dagster.yaml").is_file()
    assert not (cwd / HOME_REL / "dagster").exists()


def test_a_home_that_is_a_file_is_a_one_line_error_naming_the_setting(shell):
    cwd, env = shell
    (cwd / "notes.txt").write_text("mine\n")
    cases = [({"HIVE_HOME": "notes.txt"}, "HIVE_HOME", f"{cwd / 'notes.txt'} is a file"),
             ({"HIVE_HOME": "notes.txt/home"}, "HIVE_HOME", f"{cwd / 'notes.txt'} in its path is a file"),
             ({"DAGSTER_HOME": "notes.txt"}, "DAGSTER_HOME", f"{cwd / 'notes.txt'} is a file")]
    for extra, name, why in cases:
        for verb in (("env",), ("report",), ("clock", "show")):
            out = hive(*verb, cwd=cwd, env={**env, **extra})
            assert out.returncode == 2, (extra, verb, out.stderr)
            assert out.stderr.splitlines() == [
                f"hive {' '.join(verb)}: error: {name}={cwd / extra[name]}: cannot be used as a directory ({why}): "
                "point it at a writable directory"], out.stderr
            assert out.stdout == ""
    assert (cwd / "notes.txt").read_text() == "mine\n"


def test_store_import_names_its_bad_lines_and_adds_nothing_the_second_time(shell):
    cwd, env = shell
    lines = [json.dumps({"_id": {"$oid": "65a000000000000000000009"}, "note": "no plan_id"}), "not json",
             json.dumps({"plan_id": "p-1"}), "[1, 2]"]
    (cwd / "plans.jsonl").write_text("\n".join(lines) + "\n")
    for _ in range(2):
        out = hive("store", "import", "--collection", "cognitive_plans", "plans.jsonl", cwd=cwd, env=env)
        assert out.returncode == 1
        assert out.stdout == "plans.jsonl: read=4, written=2, duplicate_lines=0, bad_lines=2, missing_key=1\n"
        assert [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")] == [
            "bad lines:", "  line 2: JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            "  line 4: ValueError: expected a JSON object, got list"], out.stderr
    from hive_assets.data.store.sqlite import SQLiteStore

    with SQLiteStore(cwd / HOME_REL / "store.sqlite") as store:
        assert store.count("cognitive_plans") == 2


def _simulate_then_sigint(command: list[str], cwd, env) -> tuple[int, str]:
    """(exit code, stderr after the signal) of `command simulate` of 200,000 plans sent SIGINT once its
    first 1,000 are written."""
    import signal

    # as a terminal's foreground command: SIGINT at its default, whatever this process inherited (a harness
    # started in the background of a shell without job control ignores SIGINT, and an ignored SIGINT is
    # inherited: Python then installs no KeyboardInterrupt handler, and the command would never see the signal)
    proc = subprocess.Popen([*command, "simulate", "--plans", "200000", "--no-serve", "--seed", "3",
                             "--progress-every", "1000"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = []
        while not any("1000/200000 plans" in line for line in seen):
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, rest


def test_ctrl_c_is_one_line_and_exit_130(shell):
    """The terminal's Ctrl-C (SIGINT to the process) while `hive simulate` writes: no traceback."""
    returncode, rest = _simulate_then_sigint([HIVE], *shell)
    assert returncode == 130, rest
    assert "Traceback" not in rest
    assert rest.splitlines()[-1] == ("hive simulate: interrupted; what finished is kept, a run cut short is marked "
                                     "failed, and every step is safe to run again"), rest


def _watchers_under(pid: int) -> list[int]:
    """Dagster's compute-log watchers (`watch_orphans.py`) among the processes whose parent is `pid`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"watch_orphans" in cmdline:
            found.append(int(proc.name))
    return found


def test_ctrl_c_in_a_run_s_step_is_one_line_as_the_terminal_sends_it(shell):
    """A terminal sends Ctrl-C to its whole foreground process group: Dagster's compute-log watchers, children
    of the CLI during each step of an in-process run, got it too and each printed a KeyboardInterrupt traceback
    above the verb's one line."""
    import signal
    import time

    cwd, env = shell
    assert hive("simulate", "--plans", "300", "--no-serve", "--seed", "5", cwd=cwd, env=env).returncode == 0
    proc = subprocess.Popen([HIVE, "train", "--specialist", "business"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,  # its own group, as a shell's job
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not _watchers_under(proc.pid):  # a step runs: its output is being mirrored
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest
    assert rest.splitlines()[-1] == ("hive train: interrupted; what finished is kept, a run cut short is marked "
                                     "failed, and every step is safe to run again"), rest


def test_a_ctrl_c_python_drops_still_stops_simulate_at_its_next_batch(shell):
    """Python runs a signal's handler at the next bytecode, which may be in a finalizer, where the
    KeyboardInterrupt is printed as "Exception ignored" and dropped; `hive simulate` then wrote on to its last
    plan. Here a SIGINT handler that drops it stands in for that finalizer: the signal is still recorded
    (`watch()`), and simulate stops at its next batch."""
    dropping = ("import signal, sys; signal.signal(signal.SIGINT, lambda *_: None); "
                "from hive_assets.cli import main; sys.argv[0] = 'hive'; sys.exit(main())")
    returncode, rest = _simulate_then_sigint([str(BIN / "python"), "-c", dropping], *shell)
    assert returncode == 130, rest
    assert len([line for line in rest.splitlines() if "/200000 plans" in line]) <= 2, rest  # the next batch at most
    assert rest.splitlines()[-1].startswith("hive simulate: interrupted; what finished is kept"), rest


def test_a_database_registry_that_does_not_answer_is_one_line_at_once(shell):
    """MLflow on PostgreSQL (postgresql+psycopg2://) whose server is down: MLflow retried for 1 min 45 s, then
    printed a traceback. The port is one nothing listens on; then one that does (a real listening socket)."""
    import socket
    import time

    cwd, env = shell
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    uri = f"postgresql+psycopg2://hive:s3cret@127.0.0.1:{port}/mlflow"
    started = time.monotonic()
    out = hive("status", cwd=cwd, env={**env, "MLFLOW_TRACKING_URI": uri})
    assert time.monotonic() - started < 30
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == (
        f"hive status: error: MLflow's database at postgresql+psycopg2://hive:***@127.0.0.1:{port}/mlflow "
        "unreachable (Connection refused); nothing was read or changed: run it again when MLflow answers")
    assert "s3cret" not in out.stderr + out.stdout
    from hive_assets.cli._dagster import registry_down

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert registry_down(f"postgresql+psycopg2://hive:s3cret@127.0.0.1:{listening.getsockname()[1]}/m") is None
    assert registry_down(uri).endswith("unreachable (Connection refused)")


def test_instance_settings_are_written_once_never_over_a_deployments_own(tmp_path):
    assert write_instance_settings(tmp_path / "a" / "dagster")
    assert (tmp_path / "a" / "dagster" / "dagster.yaml").read_text() == PACKAGED_INSTANCE_SETTINGS.read_text()
    own = tmp_path / "b"
    own.mkdir()
    (own / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    assert not write_instance_settings(own)
    assert (own / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"


# --- manners: version, help, one-line errors ---------------------------------------------------------------

def test_version_comes_from_the_package_metadata(shell):
    cwd, env = shell
    out = hive("--version", cwd=cwd, env=env)
    assert out.returncode == 0 and out.stdout.strip() == f"hive {version('hive-assets')}"


HELP = {
    (): ("simulate", "collect", "store", "report", "env"),
    ("simulate",): ("HIVE_HOME", "MONGODB_URI", "MLFLOW_TRACKING_URI", "(default: 4000)", "(default: 42)"),
    ("collect",): ("HIVE_HOME", "DAGSTER_HOME", "MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "DATA_COLLECTION_DAYS",
                   "MIN_CONFIDENCE", "(default: all)", "(default: 10000)"),
    ("report",): ("HIVE_HOME", "DAGSTER_HOME", "(default: off)"),
    ("store",): ("import", "index"),
    ("store", "index"): ("MONGODB_URI", "MONGODB_DATABASE", "FERRETDB_POSTGRESQL_URL", "GIN"),
    ("store", "import"): ("HIVE_HOME", "MONGODB_URI", "MONGODB_DATABASE", "intentions_audit"),
    ("env",): ("HIVE_HOME", "DAGSTER_HOME", 'eval "$(hive env)"'),
    ("doctor",): ("HIVE_HOME", "DAGSTER_HOME", "HIVE_RETRAIN_MAX_RUNTIME_SECONDS", "(default: off)", "(default: all)"),
}


def _option_help(text: str) -> dict[str, str]:
    """Each option of a --help text with its (possibly wrapped) help."""
    section = text.split("options:\n", 1)[1].split("\n\n", 1)[0]
    options, current = {}, None
    for line in section.splitlines():
        match = re.match(r"^  (-[-\w]+(?:, --[-\w]+)?)(?: [A-Z_]+)?(?:\s{2,}(.*))?$", line)
        if match:
            current = match.group(1)
            options[current] = match.group(2) or ""
        else:
            options[current] += " " + line.strip()
    return options


@pytest.mark.parametrize("verb", list(HELP), ids=lambda v: " ".join(v) or "hive")
def test_help_explains_each_option_with_its_default_and_the_environment(shell, verb):
    cwd, env = shell
    out = hive(*verb, "--help", cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    for expected in HELP[verb]:
        assert expected in out.stdout, (expected, out.stdout)
    required = {"--collection"}
    for option, text in _option_help(out.stdout).items():
        if option in ("-h, --help", "--version") or option in required:
            assert text, option
            continue
        assert "(default: " in text, (option, out.stdout)
    assert not (cwd / HOME_REL).exists()  # help touches nothing


def test_a_refused_ab_test_action_is_one_line_as_a_refused_deploy_is(shell):
    """`hive ab-test stop` said `hive ab-test stop: run <id> failed: business: no running A/B test`, not the
    `error: ... (run <id>)` line of a refused `hive deploy` (README, "The hive CLI")."""
    cwd, env = shell
    for verb in (("stop",), ("expand", "--traffic", "20")):
        out = hive("ab-test", *verb, "--specialist", "business", cwd=cwd, env=env)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert re.fullmatch(rf"error: business: no running A/B test \(run {RUN_ID}\)",
                            out.stderr.strip().splitlines()[-1]), out.stderr


def test_loop_help_says_where_a_loop_without_start_begins(shell):
    """It said "the end of the stored history"; a simulated home starts at its clock (`default_start`)."""
    cwd, env = shell
    out = hive("loop", "--help", cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    start = " ".join(_option_help(out.stdout)["--start"].split())
    assert start.endswith("(default: the home's clock, or where the stored history ends if later; opinions stamped "
                          "more than an hour past the clock are not played to)"), start


BAD = {
    "unknown specialist": (("collect", "--specialist", "business,marketing"), "unknown specialist(s) 'marketing'"),
    "unknown collection": (("store", "import", "--collection", "plans", "x.jsonl"), "unknown collection 'plans'"),
    "missing file": (("store", "import", "--collection", "cognitive_plans", "missing.jsonl"),
                     "no such file: 'missing.jsonl'"),
    "not a number": (("simulate", "--plans", "many"), "argument --plans: must be a positive integer, got 'many'"),
    "zero plans": (("simulate", "--plans", "0"), "must be a positive integer, got '0'"),
    "fraction out of range": (("collect", "--min-confidence", "1.5"), "must be a number between 0 and 1, got '1.5'"),
    "not finite": (("simulate", "--days", "nan"), "must be a positive number, got 'nan'"),
    "bad date": (("simulate", "--now", "yesterday"), "must be an ISO-8601 date-time"),
    # written, and said to "count once the clock gets there": no clock goes past 2250
    "a history end no clock reaches": (("simulate", "--now", "3000-01-01"),
                                       "argument --now: must be between 1970-01-01 and 2250-01-01 UTC"),
    "unknown command": (("retrain-everything",), "invalid choice: 'retrain-everything'"),
    # these launched a Dagster run that failed (a failed run in the operators' list for a typo)
    "not a model version": (("deploy", "promote", "--specialist", "business", "--model-version", "latest"),
                            "argument --model-version: 'latest' is not a model version (expected N, <model>/N"),
    "version 0": (("deploy", "promote", "--specialist", "business", "--model-version", "v0"),
                  "argument --model-version: 'v0' is not a model version: MLflow numbers versions from 1"),
    # MLflow's store raised OverflowError (SQLite INTEGER) from inside a run
    "a version beyond MLflow's numbers": (("deploy", "promote", "--specialist", "business", "--model-version",
                                           "99999999999999999999999"), "MLflow numbers versions up to 2,147,483,647"),
    "a version beyond MLflow's numbers, A/B": (("ab-test", "start", "--specialist", "business", "--new-version",
                                                "v2147483648"), "must be a version number such as 3, got 'v2147483648'"),
    "not an alias": (("deploy", "alias", "--specialist", "business", "--alias", "champ!on", "--model-version", "2"),
                     "argument --alias: invalid alias 'champ!on': letters, digits, '_' and '-'"),
    # MLflow reserves 'latest' / 'v<N>' in any case; another case of a platform alias escaped its rules
    "a reserved alias in capitals": (("deploy", "alias", "--specialist", "business", "--alias", "LATEST",
                                      "--model-version", "1"), "invalid alias 'LATEST': letters, digits"),
    "a version alias in capitals": (("deploy", "alias", "--specialist", "business", "--alias", "V3",
                                     "--model-version", "3"), "invalid alias 'V3'"),
    "a platform alias in capitals": (("deploy", "alias", "--specialist", "business", "--alias", "CHALLENGER",
                                      "--model-version", "1"), "the platform's alias is 'challenger'"),
    "an A/B alias in capitals": (("deploy", "alias", "--specialist", "business", "--alias", "ab-test-V2",
                                  "--model-version", "2"), "the platform's alias is 'ab-test-v2'"),
    "force without a reason": (("deploy", "promote", "--specialist", "business", "--model-version", "1", "--force"),
                               "--force needs --reason"),
    "force without a reason, A/B": (("ab-test", "start", "--specialist", "business", "--new-version", "2", "--force"),
                                    "--force needs --reason"),
    "not a version number": (("ab-test", "start", "--specialist", "business", "--new-version", "two"),
                             "argument --new-version: must be a version number such as 3, got 'two'"),
    # the verb's name, as every other usage error (argparse named the top parser: "hive: error:")
    "unknown option": (("report", "--verbose"), "hive report: error: unrecognized arguments: --verbose"),
    "a word too many": (("drift", "check", "--once", "business"), "hive drift check: error: unrecognized arguments: "
                                                                  "business (see 'hive drift check --help')"),
    # a test opened at 100 % has no champion arm: it served the untested challenger alone for 14 days
    "a test with no champion arm": (("ab-test", "start", "--specialist", "business", "--new-version", "2",
                                     "--traffic", "100"),
                                    "argument --traffic: must be a share in [0.0001, 100), got '100'"),
    # under the routing's resolution (a unit in a million) a share routes what 0.0001 % does, not less
    "a share routing cannot tell apart": (("ab-test", "start", "--specialist", "business", "--new-version", "2",
                                           "--traffic", "1e-300"), "must be a share in [0.0001, 100), got '1e-300'"),
    "expanded to no champion arm": (("ab-test", "expand", "--specialist", "business", "--traffic", "100"),
                                    "at 100 % no champion arm is left to compare with"),
    # an empty key was taken, silently, as no key at all
    "an empty idempotency key": (("deploy", "rollback", "--specialist", "business", "--idempotency-key", " "),
                                 "argument --idempotency-key: must not be empty, got ' '"),
    # the same for the other words a verb takes: a source no feedback has replaced the default exempt one, a test
    # id guarded nothing, a reason was none in the ledger (A/B stop: instead of its default), and a log file was
    # the working directory, its error naming "."
    "an empty quality-exempt source": (("collect", "--quality-exempt-source", ""),
                                       "argument --quality-exempt-source: must not be empty, got ''"),
    "an empty test id": (("ab-test", "expand", "--specialist", "business", "--traffic", "25", "--test-id", ""),
                         "argument --test-id: must not be empty, got ''"),
    "an empty reason": (("deploy", "promote", "--specialist", "business", "--model-version", "1", "--reason", " "),
                        "argument --reason: must not be empty, got ' '"),
    "an empty reason, A/B": (("ab-test", "stop", "--specialist", "business", "--reason", ""),
                             "argument --reason: must not be empty, got ''"),
    "an empty log file": (("loop", "--days", "1", "--seed", "1", "--log-file", ""),
                          "argument --log-file: must not be empty, got ''"),
    # a log in a directory that is not there: it was created, with its parents (even under /)
    "a log file in no directory": (("loop", "--log-file", "missing/dir/loop.log"),
                                   "--log-file missing/dir/loop.log: no such directory missing/dir (create it first)"),
    # bad only together, or against the home's clock: said once the home had been created (and announced)
    "under an hour to play": (("loop", "--days", "0.01", "--seed", "1"), "days must be at least 1/24 (one hour)"),
    "a retrain day beyond --days": (("loop", "--days", "1", "--seed", "1", "--retrain-days", "5"),
                                    "retrain_days must be within the 1 simulated days (1..1), got [5]"),
    "a loop that ends past the clock's range": (("loop", "--days", "36500", "--start", "2200-01-01T00:00:00Z"),
                                                "end after 2250-01-01, the latest a simulated clock says"),
    "a loop start past the clock's range": (("loop", "--start", "3000-01-01"), "--start: cannot start the clock "
                                            "there: a simulated clock lies between 1970-01-01 and 2250-01-01 UTC"),
    "a pin past the clock's range": (("clock", "pin", "3000-01-01"),
                                     "argument ISO: must be between 1970-01-01 and 2250-01-01 UTC"),
    "an A/B decision after the home's clock": (("ab-test", "stop", "--specialist", "business", "--now", "2200-01-01"),
                                               "hive ab-test stop: error: --now 2200-01-01T00:00:00+00:00 is after "
                                               "the home's clock"),
}


@pytest.mark.parametrize("damaged", ["store.sqlite", "mlflow.db"])
@pytest.mark.parametrize("verb", [("status",), ("deploy", "list", "--specialist", "business")])
def test_a_home_whose_database_is_not_sqlite_is_one_line(shell, damaged, verb):
    """A store.sqlite or mlflow.db that is not a SQLite file (or a home on a read-only disk: the same sqlite3
    errors) printed ~100 lines of traceback."""
    cwd, env = shell
    (cwd / "home").mkdir()
    (cwd / "home" / damaged).write_text("garbage\n")
    out = hive(*verb, cwd=cwd, env={**env, "HIVE_HOME": "home"})
    lines = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert out.returncode == 1 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert lines[0].endswith(f"a SQLite database cannot be used (DatabaseError: file is not a database): "
                             f"HIVE_HOME={cwd / 'home'} must be writable, and its store.sqlite, mlflow.db and dagster/ "
                             "(or MLFLOW_TRACKING_URI's database) the platform's own files (every step is safe to run "
                             "again once they are)")
    assert (cwd / "home" / damaged).read_text() == "garbage\n"


def test_only_sqlite_errors_that_say_a_file_cannot_be_used_are_one_line():
    """Every sqlite3 error was "HIVE_HOME must be writable": a lock held by a loop as well, and a bug's
    IntegrityError lost its traceback."""
    import sqlite3

    from hive_assets.cli._main import _SQLITE_BUSY, _sqlite_error

    def wrapped(error: BaseException) -> BaseException:  # as SQLAlchemy and MLflow raise it
        try:
            try:
                raise error
            except sqlite3.Error as inner:
                raise RuntimeError("(sqlite3.OperationalError) ...") from inner
        except RuntimeError as outer:
            return outer

    for text in ("unable to open database file", "attempt to write a readonly database", "file is not a database",
                 "disk I/O error", "database disk image is malformed"):
        found = _sqlite_error(wrapped(sqlite3.OperationalError(text)))
        assert found is not None and not _SQLITE_BUSY.search(str(found))
    assert _SQLITE_BUSY.search(str(_sqlite_error(wrapped(sqlite3.OperationalError("database is locked")))))
    for bug in (sqlite3.IntegrityError("UNIQUE constraint failed: t.k"), sqlite3.OperationalError("no such table: x"),
                sqlite3.ProgrammingError("closed database")):
        assert _sqlite_error(wrapped(bug)) is None


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_are_one_line_and_exit_2(shell, case):
    cwd, env = shell
    argv, message = BAD[case]
    out = hive(*argv, cwd=cwd, env=env)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (cwd / HOME_REL).exists()  # rejected before any side effect


def test_a_request_beyond_memory_is_one_line_and_writes_nothing(shell):
    cwd, env = shell
    # 10**14 plans: their creation times alone exceed any machine's address space
    out = hive("simulate", "--plans", str(10**14), "--no-serve", cwd=cwd, env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("hive simulate: error: out of memory (")
    assert out.stderr.strip().endswith("): ask for less")
    from hive_assets.data.store import SQLiteStore

    store = SQLiteStore(cwd / HOME_REL / "store.sqlite")
    assert sum(store.count(c) for c in ("cognitive_ledger", "cognitive_plans", "specialist_opinions")) == 0


def test_a_version_number_may_be_written_as_hive_deploy_history_prints_it():
    from hive_assets.cli._args import version_number

    assert [version_number(v) for v in ("3", "v3", "03", " 12 ")] == ["3", "3", "3", "12"]
    from hive_assets.registry import parse_version_ref  # what deploy --model-version accepts

    assert [parse_version_ref(v) for v in ("v3", "3", "business-evaluator/v3", "models:/business-evaluator/3")] \
        == [(None, "3"), (None, "3"), ("business-evaluator", "3"), ("business-evaluator", "3")]


def test_the_closing_block_names_the_workspace_as_the_working_directory_reaches_it(monkeypatch, tmp_path):
    from hive_assets.cli._story import next_steps

    repo = Path(__file__).resolve().parents[2]
    for cwd, expected in ((repo, "-w workspace.yaml"), (tmp_path, f"-w {repo / 'workspace.yaml'}")):
        monkeypatch.chdir(cwd)
        text = next_steps(tmp_path / "home", "sqlite:////x/mlflow.db", [])
        assert f"/dagster dev {expected}\n" in text, text


def test_the_closing_block_names_the_home_and_its_logs_absolute(monkeypatch, tmp_path):
    """`export HIVE_HOME=demo-home` and `demo-home/loop.log` held only in the directory the loop ran in; `hive env`
    prints them absolute."""
    from hive_assets.cli._story import next_steps

    monkeypatch.chdir(tmp_path)
    home = tmp_path / "demo-home"
    text = next_steps(home, "sqlite:////x/mlflow.db", [home / "demo-business.log", Path("demo-home/loop.log")])
    assert f"export HIVE_HOME={home} " in text, text
    assert f"the full logs (Dagster runs, MLflow): {home / 'demo-*.log'}, {home / 'loop.log'}\n" in text + "\n", text


def test_the_closing_block_never_prints_the_tracking_database_s_password(tmp_path):
    from hive_assets.cli._story import next_steps

    secret = next_steps(tmp_path / "home", "postgresql+psycopg2://hive:s3cr3tpw@db:5432/mlflow", [])
    assert "s3cr3tpw" not in secret and '--backend-store-uri "$MLFLOW_TRACKING_URI" --port' in secret, secret
    plain = next_steps(tmp_path / "home", "postgresql://db:5432/mlflow", [])
    assert "--backend-store-uri postgresql://db:5432/mlflow --port" in plain, plain


def test_simulate_says_when_its_end_is_after_the_home_s_clock(shell):
    cwd, env = shell
    assert hive("clock", "pin", "2026-01-05T00:00:00Z", cwd=cwd, env=env).returncode == 0
    late = hive("simulate", "--plans", "20", "--no-serve", "--seed", "1", "--now", "2026-03-01T00:00:00Z", cwd=cwd,
                env=env)
    assert late.returncode == 0, late.stderr
    assert ("hive simulate: note: --now 2026-03-01 00:00 UTC is after the home's clock (2026-01-05 00:00 UTC)"
            in late.stderr), late.stderr
    for seed, end in (("2", "2026-01-05T00:04:00Z"), ("3", "2025-12-01T00:00:00Z")):  # within the skew; history
        quiet = hive("simulate", "--plans", "20", "--no-serve", "--seed", seed, "--now", end, cwd=cwd, env=env)
        assert quiet.returncode == 0 and "note:" not in quiet.stderr, quiet.stderr


def test_simulate_says_when_a_seed_replaces_what_it_wrote_before(shell):
    cwd, env = shell
    first = hive("simulate", "--plans", "20", "--no-serve", "--seed", "5", cwd=cwd, env=env)
    other = hive("simulate", "--plans", "20", "--no-serve", "--seed", "6", cwd=cwd, env=env)
    again = hive("simulate", "--plans", "10", "--no-serve", "--seed", "5", "--specialist", "behavior", cwd=cwd, env=env)
    assert [p.returncode for p in (first, other, again)] == [0, 0, 0], again.stderr
    assert "note:" not in first.stderr + other.stderr
    assert ("hive simulate: note: seed 5 wrote into this store before: its documents are replaced (same ids, new "
            "times and opinions); another --seed adds new ones") in again.stderr.splitlines()


def test_store_index_without_mongodb_is_refused_before_the_store_is_created(shell):
    cwd, env = shell
    out = hive("store", "index", cwd=cwd, env=env)
    assert out.returncode == 2
    assert "hive store index: error: MONGODB_URI is not set" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (cwd / HOME_REL).exists()  # nor the home: said before it is created


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("AB_TEST_DEFAULT_TRAFFIC", "10%", "AB_TEST_DEFAULT_TRAFFIC must be a number, got '10%'"),
    ("AB_TESTING_ENABLED", "maybe", "AB_TESTING_ENABLED must be one of true/false, 1/0, yes/no, got 'maybe'"),
    ("DATA_COLLECTION_DAYS", "0", "DATA_COLLECTION_DAYS must be >= 1 and <= 36500, got '0'"),
    ("DATA_COLLECTION_DAYS", "100000000", "DATA_COLLECTION_DAYS must be >= 1 and <= 36500, got '100000000'"),
])
def test_a_malformed_environment_value_names_the_variable(shell, variable, value, message):
    cwd, env = shell
    out = hive("collect", "--specialist", "business", cwd=cwd, env={**env, variable: value})
    assert out.returncode == 2
    assert out.stderr.strip() == f"hive collect: error: {message}"
    assert not (cwd / HOME_REL).exists()


@pytest.mark.parametrize(("variable", "value", "message"), [
    # an unescaped '/' in the password: its start was read as the port, and a traceback printed it
    ("MLFLOW_TRACKING_URI", "http://admin:S3cret/Passw0rdXYZ@127.0.0.1:15500",
     "MLFLOW_TRACKING_URI is not a usable URL (no host, or a port that is not a number)"),
    ("MONGODB_URI", "mongodb://hive:Pw@S3cret77@127.0.0.1:27017/",
     "MONGODB_URI is not a usable MongoDB URI (mongodb://hive:***@127.0.0.1:27017/): Username and password must"),
    ("MONGODB_URI", "mongo://127.0.0.1/", "MONGODB_URI is not a usable MongoDB URI (mongo://127.0.0.1/): Invalid URI"),
    # the same '/' in a MongoDB password: the whole URI was printed, the password in clear
    ("MONGODB_URI", "mongodb://hive:S3cret/Passw0rdXYZ@127.0.0.1:27017/",
     "MONGODB_URI is not a usable MongoDB URI (mongodb://hive:***@127.0.0.1:27017/): "),
])
def test_a_malformed_service_uri_is_one_line_exit_2_without_the_password(shell, variable, value, message):
    cwd, env = shell
    out = hive("deploy", "history", "--specialist", "business", cwd=cwd, env={**env, variable: value})
    errors = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert out.returncode == 2 and len(errors) == 1, out.stderr
    assert errors[0].startswith(f"hive deploy history: error: {message}"), errors
    assert "S3cret" not in out.stderr + out.stdout and "Passw0rd" not in out.stderr + out.stdout


def test_an_unreachable_store_is_one_line_without_the_password(shell):
    cwd, env = shell
    (cwd / "one.jsonl").write_text('{"id": "intent-1", "timestamp": {"$date": "2026-01-01T00:00:00Z"}}\n')
    uri = "mongodb://hive:s3cret-pw@127.0.0.1:1/?serverSelectionTimeoutMS=300"
    out = hive("store", "import", "--collection", "intentions_audit", "one.jsonl", cwd=cwd, env={**env, "MONGODB_URI": uri})
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert len(errors) == 1 and errors[0].startswith("hive store import: error: MongoDB at 127.0.0.1:1 "), out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout and "Traceback" not in out.stderr


@pytest.mark.parametrize("verb", [("status",), ("report",), ("deploy", "list", "--specialist", "business"),
                                  ("train", "--specialist", "business"), ("drift", "check", "--once", "--dry-run")])
def test_an_unreachable_registry_is_one_line_at_once_without_the_password(shell, verb):
    cwd, env = shell
    # MLflow's own retries, left at their default here, held `hive status` 4 minutes before a traceback
    out = hive(*verb, cwd=cwd, env={**env, "MLFLOW_TRACKING_URI": "http://hive:s3cret-pw@127.0.0.1:1"}, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    prog = " ".join(("hive",) + tuple(w for w in verb if not w.startswith("-") and w not in ("business",)))
    assert errors == [f"{prog}: error: MLflow at http://hive:***@127.0.0.1:1 unreachable ([Errno 111] Connection "
                      "refused); nothing was read or changed: run it again when MLflow answers"], out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout


def test_doctor_cannot_say_all_is_well_while_mlflow_does_not_answer(shell):
    cwd, env = shell
    assert hive("doctor", cwd=cwd, env=env).returncode == 0  # a new home: no MLflow database yet, nothing to check
    down = {**env, "MLFLOW_TRACKING_URI": "http://hive:s3cret-pw@127.0.0.1:1"}
    out = hive("doctor", cwd=cwd, env=down, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "no orphaned runs" not in out.stdout and "no orphaned Dagster runs or stale leases" in out.stdout
    assert ("MLflow runs not checked: MLflow at http://hive:***@127.0.0.1:1 unreachable ([Errno 111] Connection "
            "refused); run `hive doctor` again once it answers") in out.stdout
    fixed = hive("doctor", "--fix", "--json", cwd=cwd, env=down, timeout=120)
    assert fixed.returncode == 1 and json.loads(fixed.stdout)["mlflow_unreachable"] is True
    assert "s3cret-pw" not in out.stdout + out.stderr + fixed.stdout + fixed.stderr


def test_simulate_with_an_unreachable_registry_says_so_at_once_and_serves_the_heuristic(shell):
    cwd, env = shell
    # it waited out MLflow's retries (254 s) before the same fallback
    out = hive("simulate", "--plans", "30", "--seed", "2", cwd=cwd,
               env={**env, "MLFLOW_TRACKING_URI": "http://hive:s3cret-pw@127.0.0.1:1"}, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert ("hive simulate: MLflow at http://hive:***@127.0.0.1:1 unreachable ([Errno 111] Connection refused): "
            "opinions from the pre-platform heuristic") in out.stderr.splitlines()
    assert "s3cret-pw" not in out.stderr + out.stdout
    from hive_assets.data.store import SQLiteStore

    opinions = SQLiteStore(cwd / HOME_REL / "store.sqlite").find("specialist_opinions")
    assert {o["specialist_version"] for o in opinions} == {"0.0.0-heuristic"}


def _instance_runs(cwd: Path, monkeypatch) -> list:
    import dagster as dg

    home = cwd / HOME_REL / "dagster"
    if not (home / "dagster.yaml").exists():
        return []
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance opened as a user's DAGSTER_HOME opens it
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return instance.get_runs()


@pytest.mark.parametrize("verb", ["collect", "train"])
def test_an_unreachable_audit_topic_is_one_line_at_once_and_launches_no_run(shell, verb, monkeypatch):
    cwd, env = shell
    # the collection step's retries held `hive collect` 2 minutes, then printed Dagster's stack trace
    out = hive(verb, "--specialist", "business", cwd=cwd, env={**env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
               timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout, out.stderr
    errors = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert len(errors) == 1 and errors[0].startswith(f"hive {verb}: error: Kafka at 127.0.0.1:1 unreachable (PLAINTEXT): "), errors
    assert errors[0].endswith("; nothing was collected: run it again when it answers")
    assert _instance_runs(cwd, monkeypatch) == []


def test_a_broker_without_the_audit_topic_is_said_before_any_run(shell, kafka_bootstrap, monkeypatch):
    from confluent_kafka.admin import AdminClient

    if "intentions.audit" in AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics:
        pytest.skip("this broker has an intentions.audit topic (another test made it)")
    cwd, env = shell
    out = hive("collect", "--specialist", "business", cwd=cwd, env={**env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
               timeout=60)
    assert out.returncode == 1, out.stderr
    assert (f"hive collect: error: topic 'intentions.audit' not found on {kafka_bootstrap}; nothing was collected"
            in out.stderr), out.stderr
    assert _instance_runs(cwd, monkeypatch) == []


def test_kafka_that_refuses_the_credentials_is_one_line_naming_them_and_launches_no_run(shell, kafka_secured,
                                                                                       monkeypatch):
    cwd, env = shell
    wrong = "wrong-password-0b7e"
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": kafka_secured["sasl_ssl"], "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
             "KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": kafka_secured["user"],
             "KAFKA_SASL_PASSWORD": wrong, "KAFKA_SSL_CA_LOCATION": f"{kafka_secured['tls_dir']}/ca.crt"}
    out = hive("collect", "--specialist", "business", cwd=cwd, env={**env, **kafka}, timeout=60)
    errors = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert out.returncode == 1 and len(errors) == 1, out.stderr
    assert errors[0].startswith(f"hive collect: error: Kafka at {kafka_secured['sasl_ssl']}: authentication failed "
                                "(SASL_SSL, SCRAM-SHA-512 as 'hive')"), errors
    assert errors[0].endswith("nothing was collected: correct the Kafka settings and run it again")
    assert wrong not in out.stderr + out.stdout and _instance_runs(cwd, monkeypatch) == []
    # the password without the brokers: a mistyped key of the Secret, said before anything is read
    del kafka["KAFKA_BOOTSTRAP_SERVERS"]
    out = hive("collect", "--specialist", "business", cwd=cwd, env={**env, **kafka}, timeout=60)
    assert out.returncode == 2 and wrong not in out.stderr
    assert ("KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, "
            "KAFKA_SSL_CA_LOCATION set but KAFKA_BOOTSTRAP_SERVERS is not") in out.stderr


def test_simulated_audit_events_reach_the_topic_collection_reads(shell, kafka_secured, monkeypatch):
    """With Kafka configured, `hive simulate` wrote its intent audit events into the intentions_audit collection
    only, and collection read the topic: every opinion was filtered for want of an audit event (0 rows). Over
    SASL_SSL, with a topic of this test's own broker listener; a broker away is one line, exit 1."""
    cwd, env = shell
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": kafka_secured["sasl_ssl"], "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
             "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": kafka_secured["user"],
             "KAFKA_SASL_PASSWORD": kafka_secured["password"],
             "KAFKA_SSL_CA_LOCATION": f"{kafka_secured['tls_dir']}/ca.crt"}
    out = hive("simulate", "--plans", "200", "--days", "5", "--seed", "31", "--no-serve", cwd=cwd,
               env={**env, **kafka}, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {}
    for source, extra in (("topic", kafka), ("collection", {})):
        out = hive("collect", "--specialist", "business", "--days", "6", "--json", cwd=cwd, env={**env, **extra},
                   timeout=300)
        assert out.returncode == 0, out.stderr
        [rows[source]] = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    # the topic gives what the intentions_audit collection gives (the simulator leaves ~2 % of intents unaudited)
    topic, collection = rows["topic"], rows["collection"]
    assert topic["rows"] == collection["rows"] > 100 and topic["labelled"] == collection["labelled"], rows
    assert topic["filtered"] == collection["filtered"], rows
    assert topic["filtered"]["no_audit_event"] < 0.1 * topic["rows"], rows
    down = {**kafka, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    out = hive("simulate", "--plans", "20", "--days", "1", "--seed", "32", "--no-serve", cwd=cwd,
               env={**env, **down}, timeout=300)
    errors = [line for line in out.stderr.splitlines() if line.startswith("hive simulate: error:")]
    assert out.returncode == 1 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "Kafka at 127.0.0.1:1 unreachable" in errors[0] and kafka_secured["password"] not in out.stderr

def test_a_registry_behind_basic_auth_is_reached_at_its_host(mlflow_server):
    from hive_assets.cli._dagster import reachable

    # user:password@ is MLflow's basic auth; it was looked up in DNS as part of the host name
    assert reachable(mlflow_server.replace("http://", "http://hive:s3cret-pw@")) is None
    assert reachable(mlflow_server) is None
    down = reachable("http://hive:s3cret-pw@127.0.0.1:1")
    assert down.startswith("MLflow at http://hive:***@127.0.0.1:1 unreachable (") and "s3cret-pw" not in down
    # a scheme in capitals is the same URL (RFC 3986): it was not checked, and MLflow's retries hung the verb
    down = reachable("HTTP://hive:s3cret-pw@127.0.0.1:1")
    assert down.startswith("MLflow at HTTP://hive:***@127.0.0.1:1 unreachable (") and "s3cret-pw" not in down


@pytest.mark.parametrize("verb", [("status",), ("deploy", "list", "--specialist", "business"),
                                  ("train", "--specialist", "business")])
def test_a_registry_that_refuses_the_request_is_one_line_naming_why(shell, mlflow_server, verb):
    cwd, env = shell
    # the server answers (its /health too), but there is no MLflow API under this path: an HTTP 404 (a wrong
    # password is a 401, the same path): it was a 40-line traceback; `train` launched a run that collected and
    # rewrote the partition's outputs, then failed on the registry
    uri = mlflow_server.replace("http://", "http://hive:s3cret-pw@") + "/not/mlflow"
    out = hive(*verb, cwd=cwd, env={**env, "MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
               timeout=120)
    errors = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert len(errors) == 1 and "refused the request (HTTP 404: no MLflow API at this address" in errors[0], errors
    assert "hive:***@" in errors[0] and "s3cret-pw" not in out.stderr + out.stdout
    assert errors[0].endswith("nothing was read or changed: fix MLFLOW_TRACKING_URI"), errors
    assert not (cwd / ".hive" / "assets").exists() and not list((cwd / ".hive" / "dagster").glob("history/runs/*.db"))


@pytest.mark.services
@pytest.mark.parametrize("verb", [("status",), ("deploy", "list", "--specialist", "business")])
def test_a_registry_that_refuses_the_credentials_is_one_line_naming_them(shell, basic_auth_mlflow, verb):
    cwd, env = shell
    # /health needs no login, so wrong credentials passed the check: each verb then ended in a traceback,
    # `RestException: UNAUTHENTICATED` (audit), `hive train` after a minute of its run
    uri = basic_auth_mlflow.with_credentials(USERNAME, "s3cret-pw")
    asked_before = len(basic_auth_mlflow.api_requests())
    out = hive(*verb, cwd=cwd, env={**env, "MLFLOW_TRACKING_URI": uri}, timeout=120)
    errors = [line for line in out.stderr.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout, out.stdout + out.stderr
    prog = " ".join(("hive",) + tuple(w for w in verb if not w.startswith("-") and w != "business"))
    assert errors == [f"{prog}: error: MLflow at http://{USERNAME}:***@127.0.0.1:{basic_auth_mlflow.port} refused the "
                      "request (HTTP 401: the credentials are wrong or missing (MLFLOW_TRACKING_USERNAME / "
                      "MLFLOW_TRACKING_PASSWORD, or user:password in the URI, or MLFLOW_TRACKING_TOKEN)); nothing was "
                      "read or changed: fix the credentials"], errors
    assert "s3cret-pw" not in out.stderr + out.stdout
    # asked once, and refused; then nothing more (the server's access log)
    assert [status for _, _, status in basic_auth_mlflow.api_requests()[asked_before:]] == [401]
    # with the right password in the URI the same verb runs: what was refused was the URI's credentials, sent as
    # MLflow's client sends them (basic auth)
    right = basic_auth_mlflow.with_credentials(USERNAME, PASSWORD)
    out = hive(*verb, cwd=cwd, env={**env, "MLFLOW_TRACKING_URI": right}, timeout=120)
    assert out.returncode == 0 and "refused" not in out.stderr, out.stdout + out.stderr


def mlflow_client_reads(url: str) -> bool:
    """Whether MLflow's own client, with the credentials it finds (variables, ~/.mlflow/credentials, a token), may
    search the registry at `url`; False when the server refuses them (HTTP 401)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(tracking_uri=url, registry_uri=url).search_registered_models(max_results=1)
    except MlflowException as exc:
        if "error code 401" in str(exc):
            return False
        raise
    return True


@pytest.mark.services
def test_the_registry_check_sends_the_credentials_mlflow_s_client_would(basic_auth_mlflow, monkeypatch, tmp_path):
    """The API request authenticates as MLflow's client does, or a right password would be refused (and a
    wrong one pass): MLFLOW_TRACKING_USERNAME / _PASSWORD over the URI's user:password, else those of
    ~/.mlflow/credentials, else a bearer token. Each way, the check and MLflow's own client agree."""
    from hive_assets.reachability import Refusal, reachable

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.mlflow/credentials of the developer's
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = basic_auth_mlflow.url
    # the URI's user:password
    assert reachable(basic_auth_mlflow.with_credentials(USERNAME, PASSWORD)) is None
    assert isinstance(refused := reachable(basic_auth_mlflow.with_credentials(USERNAME, "wrong-pw")), Refusal)
    assert "HTTP 401" in refused and refused.remedy == "fix the credentials" and "wrong-pw" not in refused
    # the variables, over the URI's (as in MLflow: `registry.tracking_target` fills them from the URI only if unset)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USERNAME)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    assert reachable(basic_auth_mlflow.with_credentials(USERNAME, "stale-pw")) is None and mlflow_client_reads(url)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-pw")
    assert isinstance(reachable(basic_auth_mlflow.with_credentials(USERNAME, PASSWORD)), Refusal)
    assert not mlflow_client_reads(url)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    # ~/.mlflow/credentials, when the variables are unset
    credentials = tmp_path / ".mlflow" / "credentials"
    credentials.parent.mkdir()
    credentials.write_text(f"[mlflow]\nmlflow_tracking_username = {USERNAME}\nmlflow_tracking_password = {PASSWORD}\n")
    assert reachable(url) is None and mlflow_client_reads(url)
    credentials.write_text(f"[mlflow]\nmlflow_tracking_username = {USERNAME}\nmlflow_tracking_password = wrong-pw\n")
    assert isinstance(reachable(url), Refusal) and not mlflow_client_reads(url)
    credentials.unlink()
    # a bearer token, without a username and password (the server takes TOKEN as USERNAME's)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    assert reachable(url) is None and mlflow_client_reads(url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "wrong-token")
    assert isinstance(reachable(url), Refusal) and not mlflow_client_reads(url)
    # signed by an auth plugin this request cannot make: left to MLflow's client, never refused here
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "some_plugin")
    assert reachable(url) is None


def test_only_mlflow_giving_up_on_a_silent_server_counts_as_an_outage(mlflow_server, monkeypatch):
    from mlflow.exceptions import MlflowException

    from hive_assets.cli._main import _registry_outage
    from hive_assets.registry import client_for

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(MlflowException) as refused:
        client_for("http://127.0.0.1:1").get_registered_model("business-evaluator")
    with pytest.raises(MlflowException) as answered:  # the server answers: no such model
        client_for(mlflow_server).get_registered_model("no-such-model-evaluator")
    assert _registry_outage(refused.value)
    assert not _registry_outage(answered.value)
    assert not _registry_outage(ConnectionRefusedError("a store's socket, not MLflow's"))


def test_loop_refuses_a_start_before_the_home_s_latest_decision(shell, monkeypatch):
    from hive_assets.data import SQLiteStore
    from hive_assets.registry import record_decision

    cwd, env = shell
    (cwd / HOME_REL).mkdir(parents=True)
    monkeypatch.setenv("HIVE_SIMULATED_NOW", "2026-01-09T12:00:00Z")  # the ledger's clock, in this process
    with SQLiteStore(cwd / HOME_REL / "store.sqlite") as store:
        record_decision(store, "business", "alias_move", actor="test", reason="first model")
    out = hive("loop", "--days", "1", "--start", "2026-01-01T00:00:00Z", cwd=cwd, env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert ("hive loop: error: start 2026-01-01 00:00 UTC is before this home's latest decision (2026-01-09 12:00 "
            "UTC, its ledger)") in out.stderr
    with SQLiteStore(cwd / HOME_REL / "store.sqlite") as store:  # nothing played
        assert store.count("specialist_opinions") == 0 and store.count("model_decisions") == 1
    half = hive("loop", "--days", "0.5", "--retrain-days", "1", cwd=cwd, env=env)
    assert half.returncode == 2 and "(none: a retrain day ends a whole simulated day)" in half.stderr, half.stderr


def test_loop_says_what_to_do_on_an_empty_home_and_refuses_bad_arguments(shell):
    cwd, env = shell
    done = hive("loop", "--days", "1", cwd=cwd, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "no champion registered for business" in done.stderr and "make demo" in done.stderr
    assert "dagster asset materialize" in done.stderr  # how to register one: `hive train` alone does not
    for args, word in ((("--days", "-2"), "--days"), (("--drift-specialist", "finance"), "unknown specialist"),
                       (("--plans-per-hour", "0"), "--plans-per-hour"),
                       (("--days", "0.01"), "the loop plays whole simulated hours"),
                       (("--days", "0.03"), "days must be at least 1/24"),  # was played as an hour
                       (("--log-file", str(cwd)), f"--log-file {cwd}: Is a directory"),  # was a traceback
                       (("--log-file", "afile/loop.log"), "--log-file afile/loop.log: afile is not a directory"),
                       # the arguments first: a bad --days creates no directory for the log
                       (("--days", "0.01", "--log-file", "fresh/sub/loop.log"),
                        "the loop plays whole simulated hours"),
                       # nor does a good one: a log in a directory that is not there was made with its parents
                       (("--log-file", "fresh/sub/loop.log"), "--log-file fresh/sub/loop.log: no such directory "
                                                              "fresh/sub (create it first)"),
                       (("--log-file", "afile/sub/loop.log"), "--log-file afile/sub/loop.log: afile is not a "
                                                              "directory")):
        (cwd / "afile").write_text("a file where a directory should be")
        bad = hive("loop", *args, cwd=cwd, env=env)
        assert bad.returncode == 2 and word in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert not (cwd / "fresh").exists()
    zero = hive("simulate", "--days", "0", cwd=cwd, env=env)
    assert zero.returncode == 2 and "must be a positive number, got '0'" in zero.stderr, zero.stderr


def test_hive_env_on_a_simulated_home_gives_the_drift_and_ab_sensors_a_short_tick(shell):
    """On the demo home the two sensors' daemon tick defaulted to the scenario's 6 h check interval in wall
    time: under `dagster dev`, `hive clock advance 6h` was followed by hours of nothing."""
    cwd, env = shell
    assert hive("clock", "pin", "2026-01-05T00:00:00Z", cwd=cwd, env=env).returncode == 0
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", hive("env", cwd=cwd, env=env).stdout, re.M))
    assert (exports["HIVE_DRIFT_SENSOR_INTERVAL_SECONDS"], exports["HIVE_AB_SENSOR_INTERVAL_SECONDS"]) == ("60", "60")
    mine = dict(re.findall(r"^export (\w+)=(\S+)$", hive("env", cwd=cwd, env={
        **env, "HIVE_AB_SENSOR_INTERVAL_SECONDS": "5"}).stdout, re.M))
    assert "HIVE_AB_SENSOR_INTERVAL_SECONDS" not in mine and mine["HIVE_DRIFT_SENSOR_INTERVAL_SECONDS"] == "60"
    assert hive("clock", "release", cwd=cwd, env=env).returncode == 0
    live = dict(re.findall(r"^export (\w+)=(\S+)$", hive("env", cwd=cwd, env=env).stdout, re.M))
    assert not set(live) & {"HIVE_DRIFT_SENSOR_INTERVAL_SECONDS", "HIVE_AB_SENSOR_INTERVAL_SECONDS"}


def test_train_passes_the_selection_bound_to_the_run_config_and_refuses_a_negative_one(monkeypatch, capsys):
    from hive_assets.cli import _dagster
    from hive_assets.cli._main import build_parser
    from hive_assets.cli._train import cmd_train

    configs = []

    def materialize(selection, specialist, run_config, log_level=None):
        configs.append(run_config["ops"]["trained_model"]["config"])
        raise KeyboardInterrupt  # stop before the outcome is read: only the run config is under test

    monkeypatch.setattr(_dagster, "materialize", materialize)
    with pytest.raises(KeyboardInterrupt):
        cmd_train(build_parser().parse_args(["train", "--specialist", "business", "--selection-max-rows", "2500"]))
    with pytest.raises(KeyboardInterrupt):
        cmd_train(build_parser().parse_args(["train", "--specialist", "business"]))
    assert configs == [{"model_type": "auto", "hyperparameter_tuning": False, "random_state": 0,
                        "selection_max_rows": rows} for rows in (2500, 0)]
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["train", "--specialist", "business", "--selection-max-rows", "-1"])
    assert refused.value.code == 2 and "must be an integer >= 0, got '-1'" in capsys.readouterr().err


def test_the_closing_block_starts_the_uis_where_the_runs_links_point(monkeypatch, tmp_path):
    """`make demo MLFLOW_UI_URL=http://127.0.0.1:5117 DAGSTER_WEBSERVER_URL=...:3117` wrote links to those ports,
    then said to start both UIs on 5000 and 3000."""
    from hive_assets.cli._story import next_steps

    monkeypatch.setenv("MLFLOW_UI_URL", "http://127.0.0.1:5117")
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "http://127.0.0.1:3117/")
    text = next_steps(tmp_path / "home", "sqlite:////x/mlflow.db", [])
    assert "DAGSTER_WEBSERVER_URL=http://127.0.0.1:3117 MLFLOW_UI_URL=http://127.0.0.1:5117" in text
    assert " -p 3117\n" in text and "--port 5117\n" in text and "the Dagster UI on http://127.0.0.1:3117:" in text
    assert "5000" not in text and "3000" not in text
    monkeypatch.delenv("MLFLOW_UI_URL")
    monkeypatch.delenv("DAGSTER_WEBSERVER_URL")
    default = next_steps(tmp_path / "home", "sqlite:////x/mlflow.db", [])
    assert "--port 5000\n" in default and " -p " not in default

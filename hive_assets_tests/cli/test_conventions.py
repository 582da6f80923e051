"""What every `hive` verb shares: `--specialist` names the specialist (old spellings accepted with a note),
`--json` prints parseable JSON (text is the default), a bad specialist is one `error:` line and exit 2, and
the read-only verbs launch no Dagster run.

In process (`main(argv)`), on one small home: a simulated store and a champion registered for business,
so the reading verbs have something to read. The verbs whose --json needs a trained world are covered
where that world exists: `hive loop --json` in simulator/test_closed_loop.py, the registry mutations in
registry/test_deploy_cli.py, ab-test start/expand/stop in rollout/test_ab_cli.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets.cli._main import build_parser, main
from hive_assets.data import SQLiteStore
from hive_assets.simulator import simulate
from hive_assets_tests.monitoring.champion import register_champion, train_small_model

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)

# every verb that acts per specialist -> the other arguments it needs to parse
VERBS: dict[str, list[str]] = {
    "simulate": [], "collect": [], "report": [], "train": [], "validate": [], "loop": [], "status": [], "doctor": [],
    "drift check": ["--once"],
    "ab-test start": ["--new-version", "2"], "ab-test check": [], "ab-test expand": ["--traffic", "25"],
    "ab-test stop": [],
    "deploy register": ["--run-id", "r"], "deploy promote": ["--model-version", "1"], "deploy list": [],
    "deploy rollback": [], "deploy alias": ["--alias", "challenger", "--model-version", "1"], "deploy history": [],
}


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_takes_specialist_and_json(verb):
    args = build_parser().parse_args([*verb.split(), *VERBS[verb], "--specialist", "business", "--json"])
    assert args.specialist in ("business", ["business"]) and args.json is True
    default = build_parser().parse_args([*verb.split(), *VERBS[verb], *(
        ["--specialist", "technical"] if verb.startswith(("ab-test", "deploy")) else [])])
    assert default.json is False  # text unless asked


@pytest.mark.parametrize("verb", [*VERBS, "train --specialist-type", "deploy list --model-type"])
def test_a_bad_specialist_is_one_error_line_and_exit_2(verb, capsys):
    words = verb.split()
    option = words.pop() if words[-1].startswith("--") else "--specialist"
    with pytest.raises(SystemExit) as exited:
        main([*words, *VERBS[" ".join(words)], option, "marketing"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: argument " in err and "unknown specialist(s) 'marketing'" in err, err
    assert "Traceback" not in err


def test_old_spellings_still_work_with_a_note_and_never_mix_up(capsys):
    args = build_parser().parse_args(["train", "--specialist-type", "technical", "--model-type", "random_forest"])
    assert (args.specialist, args.model_type) == (["technical"], "random_forest")
    args = build_parser().parse_args(["deploy", "promote", "--model-type", "business", "--model-version", "3"])
    assert args.specialist == "business"
    notes = capsys.readouterr().err.splitlines()
    assert notes == ["hive train: note: --specialist-type is deprecated here, use --specialist",
                     "hive deploy promote: note: --model-type is deprecated here, use --specialist"]
    # in train, --model-type is the estimator: a specialist's name there is refused with the way out
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["train", "--model-type", "business"])
    assert exited.value.code == 2
    assert "'business' is a specialist: use --specialist business" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["collect", "--days", "100000000"], ["simulate", "--days", "1e9"],
                                  ["loop", "--days", "36501"]])
def test_days_beyond_a_century_are_a_usage_error_not_a_failed_run(argv, capsys):
    """`collect --days 100000000` launched five runs that failed with OverflowError (the window's start
    before year 1); `simulate --days 1e9` ended in a traceback."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and "must be at most 36,500 days" in err, err
    assert build_parser().parse_args([argv[0], "--days", "36500"]).days == 36500  # the bound itself is taken


@pytest.mark.parametrize("argv, message", [
    (["deploy", "history", "--specialist", "business", "--at", "9999-12-31T23:59:59-05:00"], "between the years"),
    (["deploy", "history", "--specialist", "business", "--at", "0001-01-01T00:00:00+05:00"], "between the years"),
    (["clock", "pin", "9999-12-31T23:59:59-05:00"], "between the years"),
    (["clock", "advance", "100000000000000000d"], "at most 36,500 days"),
])
def test_instants_and_durations_out_of_range_are_a_usage_error(argv, message, capsys):
    """Each was an OverflowError traceback (UTC conversion past year 9999 or before year 1, a timedelta
    beyond its range)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and message in err, err


def test_a_clock_advanced_past_its_range_is_one_line(hive_home_clock, capsys):
    assert main(["clock", "pin", "2150-01-01T00:00:00Z"]) == 0
    codes = [main(["clock", "advance", "36500d"]) for _ in range(2)]  # 2249-12-08, then past 2250
    assert codes == [0, 2]
    err = capsys.readouterr().err
    assert "later is past 2250-01-01" in err and "Traceback" not in err
    assert main(["clock", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pinned_at"] == "2249-12-08T00:00:00+00:00"  # the refusal moved nothing


@pytest.mark.parametrize("start, message", [("2249-12-31T00:00:00Z", "6 days from 2249-12-31 00:00 UTC end after 2250"),
                                            ("1960-01-01T00:00:00Z", "between 1970-01-01 and 2250-01-01")])
def test_a_loop_that_would_leave_the_clock_s_range_is_refused_before_its_first_hour(hive_home_clock, capsys,
                                                                                     start, message):
    """It was taken and failed at the hour the clock left its range (or at the first collection)."""
    assert main(["loop", "--start", start, "--days", "6"]) == 2
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if not line.startswith("hive: HIVE_HOME=")]  # the home's notes aside
    assert len(said) == 1 and said[0].startswith("hive loop: error: --start: ") and message in said[0], err
    assert not (hive_home_clock / "clock.json").exists()  # nothing was pinned


@pytest.mark.parametrize("argv, said, unsaid", [
    (["deploy", "register", "--specialist", "business", "--run-id", ""], "must be an MLflow run id", None),
    (["deploy", "register", "--specialist", "business", "--run-id", "runs:/abc/model"], "must be an MLflow run id",
     None),
    (["deploy", "list", "--specialist", "foo"], "choose from business, technical", "'all'"),
    (["ab-test", "stop", "--specialist", "foo"], "choose from business, technical", "'all'"),
    (["collect", "--specialist", "foo"], "or 'all'", None),
])
def test_what_a_usage_error_proposes_is_accepted(argv, said, unsaid, capsys):
    """An empty --run-id launched a run that failed with "no MLflow run ''"; a verb of one specialist proposed
    'all' in its error, then refused it."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and said in err and (unsaid is None or unsaid not in err), err


def test_a_specialist_named_twice_is_one(capsys):
    assert build_parser().parse_args(["collect", "--specialist", "business,technical,business"]).specialist == [
        "business", "technical"]


@pytest.mark.parametrize("argv", [["status", "--specialist", "business", "--specialist", "technical"],
                                  ["train", "--specialist", "business", "--specialist-type", "technical"]])
def test_the_specialist_option_given_twice_is_an_error_not_the_last_one(argv, capsys):
    """`--specialist business --specialist technical` acted on technical alone, without a word."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and f"hive {argv[0]}: error: argument --specialist" in err
    assert "given twice (business, then technical); several go in one comma-separated list" in err


def test_every_verb_s_specialist_option_refuses_being_given_twice():
    """`hive collect` declared its own --specialist and took the last of two, silently: every verb's is the shared
    one (`add_specialist`), which refuses a second."""
    import argparse

    from hive_assets.cli._args import GivenOnce

    def verbs(parser, path=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from verbs(sub, (*path, name))
        yield path, parser

    checked = []
    for path, parser in verbs(build_parser()):
        for action in parser._actions:
            if "--specialist" in action.option_strings:
                assert isinstance(action, GivenOnce), " ".join(path)
                checked.append(" ".join(path))
    assert "collect" in checked and len(checked) >= 10, checked


def test_drift_check_without_once_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["drift", "check", "--specialist", "business"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith("hive drift check: error: ") and "--once" in err


@pytest.fixture
def hive_home_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("HIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    monkeypatch.delenv("HIVE_SIMULATED_NOW", raising=False)
    monkeypatch.delenv("HIVE_ENV", raising=False)
    # a fresh home's embedded MLflow: `mlflow.set_tracking_uri` exports MLFLOW_TRACKING_URI for the rest of the
    # process, so an earlier test's server (stopped since) made the loop refuse on it, not on its --start
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    """A store with 300 simulated plans and one registered champion (business) in a local MLflow."""
    home = tmp_path_factory.mktemp("conventions")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    register_champion(uri, "business", train_small_model("business", NOW, n_plans=600), experiment="conventions")
    simulate(SQLiteStore(home / "store.sqlite"), plans=300, days=20, seed=3, now=NOW)
    (home / "dagster").mkdir()
    return home, uri


@pytest.fixture
def home(small_home, monkeypatch):
    path, uri = small_home
    for name in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_UI_URL"):
        monkeypatch.delenv(name, raising=False)
    # main() exports these (and a logging default): set them here so that they are restored afterwards
    monkeypatch.setenv("HIVE_HOME", str(path))
    monkeypatch.setenv("DAGSTER_HOME", str(path / "dagster"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")
    return path


def runs(home) -> list:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return instance.get_runs()


# verb -> argv; each prints JSON on stdout (a document, or one per line)
JSON_VERBS = {
    "env": ["env", "--json"],
    "simulate": ["simulate", "--specialist", "business", "--plans", "20", "--days", "1", "--seed", "9",
                 "--now", NOW.isoformat(), "--no-serve", "--json"],
    "report": ["report", "--specialist", "business", "--json"],
    "deploy list": ["deploy", "list", "--specialist", "business", "--json"],
    "deploy history": ["deploy", "history", "--specialist", "business", "--json"],
    "drift check": ["drift", "check", "--once", "--dry-run", "--specialist", "business,technical", "--json"],
    "validate": ["validate", "--specialist", "technical", "--json"],
}


@pytest.mark.parametrize("verb", list(JSON_VERBS))
def test_json_is_parseable_and_reading_launches_no_run(verb, home, capsys):
    before = len(runs(home))
    code = main(JSON_VERBS[verb])
    out = capsys.readouterr().out
    parsed = [json.loads(line) for line in out.splitlines() if line.strip()] if verb != "simulate" else [json.loads(out)]
    assert parsed, out
    if verb in ("validate",):  # nothing trained in this instance: a JSON record saying so, exit 1
        assert code == 1 and parsed[0]["success"] is False and "hive train --specialist technical" in parsed[0]["error"]
    else:
        assert code == 0
    assert len(runs(home)) == before  # none of these launches a Dagster run
    if verb == "simulate":  # one specialist's opinions on the 20 plans, not five
        assert parsed[0]["written"]["specialist_opinions"] == 20
    if verb == "deploy list":
        (listed,) = parsed
        assert listed["run_id"] is None and [v["aliases"] for v in listed["result"]] == [["champion"]]
    if verb == "drift check":
        assert [c["specialist"] for c in parsed[0]] == ["business", "technical"]
        assert parsed[0][1]["status"] != "ok" and parsed[0][0]["dry_run"] is True


def test_deploy_list_reads_without_a_run_and_prints_text_by_default(home, capsys):
    assert main(["deploy", "list", "--specialist", "business"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["version", "aliases", "stage", "gate", "macro-F1", "run"]
    assert lines[1].split()[:2] == ["1", "champion"]
    assert runs(home) == []  # no run record, not even a failed one


def test_deploy_list_keeps_its_columns_under_their_headers_whatever_the_aliases(capsys):
    """A version holding champion, challenger and its test's alias ran into the stage column (28 characters)."""
    from hive_assets.cli._deploy import _print_result

    row = {"stage": None, "gate": "passed", "macro_f1": 0.81234, "run_id": "r12"}
    _print_result([{**row, "version": "12", "aliases": ["ab-test-v12", "challenger", "champion"]},
                   {**row, "version": "3", "aliases": [], "macro_f1": None, "run_id": "r3"}])
    header, *rows = capsys.readouterr().out.splitlines()
    starts = [header.index(name) for name in ("aliases", "stage", "gate", "macro-F1", "run")]
    for line, cells in zip(rows, (["ab-test-v12,challenger,champion", "-", "passed", "0.8123", "r12"],
                                  ["-", "-", "passed", "-", "r3"])):
        assert [line[start:].split()[0] for start in starts] == cells, line
        assert all(line[start - 1] == " " for start in starts), line


def test_the_text_report_keeps_its_columns_apart_whatever_the_version_label(home, tmp_path, monkeypatch, capsys):
    """A version's label is as long as its model name, number and alias make it ("architecture-evaluator v12
    (challenger)" ran into the champion column): the column widens, and the champion (the registry alias:
    business's v1 in this home, none for architecture) stays a column of its own, under its header."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    partitions = dg.StaticPartitionsDefinition(["business", "architecture"])
    registered = {"business": ("business-evaluator", 3, "champion"), "architecture": ("architecture-evaluator", 12, "challenger")}

    def reported(name: str, metadata):  # an asset of the report's name whose run records `metadata(specialist)`
        @dg.asset(name=name, partitions_def=partitions)
        def _asset(context):
            return dg.MaterializeResult(metadata=metadata(context.partition_key))
        return _asset

    graph = [
        reported("raw_production_data", lambda s: {"rows": 900, "quarantined_total": 7}),
        reported("validation_report", lambda s: {
            "gate_passed": True, "n_test": 135, "test_metrics": {"accuracy": 0.9, "macro_f1": 0.88, "confidence_mean": 0.8},
            "intervals": {"accuracy": [0.85, 0.94], "macro_f1": [0.83, 0.92]}}),
        reported("registered_model_version", lambda s: dict(zip(("model", "version", "alias"), registered[s]))),
    ]
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        for specialist in registered:
            assert dg.materialize(graph, partition_key=specialist, instance=instance).success
    assert main(["report", "--specialist", "business,architecture"]) == 0
    header, _, *rows = capsys.readouterr().out.splitlines()
    column = header.index("champion")
    for row, (specialist, (model, version, alias)) in zip(rows, registered.items(), strict=True):
        assert f"{model} v{version} ({alias})" in row[:column]
        assert row[column - 2:column] == "  " and row[column:].split() == ["v1" if specialist == "business" else "none"]


def test_the_report_names_a_version_registered_after_its_validation_run(home, tmp_path, monkeypatch, capsys):
    """A validated run registered in a run of its own (`hive deploy register`, then promoted) was reported
    "not registered", and `--strict` failed, while that version was the champion: the report finds it
    through the validation's gate verdict (the MLflow run it judged) and the registry."""
    import os

    from hive_assets import registry

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("HIVE_HOME", str(tmp_path / "ledger-home"))  # its own ledger: the module's stays as it is
    (tmp_path / "dagster").mkdir()
    (tmp_path / "ledger-home").mkdir()
    partitions = dg.StaticPartitionsDefinition(["business"])

    @dg.asset(name="raw_production_data", partitions_def=partitions)
    def raw(context):
        return dg.MaterializeResult(metadata={"rows": 900, "quarantined_total": 7})

    @dg.asset(name="validation_report", partitions_def=partitions)
    def validation(context):
        return dg.MaterializeResult(metadata={
            "gate_passed": True, "n_test": 135, "test_metrics": {"accuracy": 0.9, "macro_f1": 0.88,
                                                                 "confidence_mean": 0.8},
            "intervals": {"accuracy": [0.85, 0.94], "macro_f1": [0.83, 0.92]}})

    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        result = dg.materialize([raw, validation], partition_key="business", instance=instance)
    assert main(["report", "--specialist", "business", "--strict"]) == 1  # no verdict names a registered run
    out, err = capsys.readouterr()
    # the exit 1 says why, on stderr (it said nothing: CI's reader had to find the row)
    assert "not registered" in out and err.splitlines()[-1] == (
        "hive report: --strict: no registered version from the latest validation of business")
    assert main(["report", "--specialist", "business", "--strict", "--json"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].endswith("latest validation of business")

    champion = registry.alias_version(registry.client_for(os.environ["MLFLOW_TRACKING_URI"]), "business", "champion")
    with SQLiteStore(tmp_path / "ledger-home" / "store.sqlite") as store:
        registry.record_decision(store, "business", "gate_verdict", actor=f"dagster:{result.run_id}", reason="pass",
                                 dagster_run_id=result.run_id,
                                 details={"passed": True, "mlflow_run_id": champion.run_id})
    assert main(["report", "--specialist", "business", "--strict"]) == 0
    out = capsys.readouterr().out
    assert f"business-evaluator v{champion.version} (registered later; now champion)" in out
    assert main(["report", "--specialist", "business", "--strict", "--json"]) == 0


def test_pin_no_earlier_keeps_a_home_that_is_already_later(hive_home_clock, capsys):
    """A second `make demo` pinned its home back to DEMO_START, behind its own ledger: its first registration
    was then refused (rightly: the decision would sort before earlier ones). `--no-earlier` keeps the later of
    the home's clock and its ledger."""
    from datetime import datetime, timezone

    from hive_assets import clock, registry

    assert main(["clock", "pin", "2026-01-05T00:00:00Z", "--no-earlier"]) == 0  # a new home: pinned as asked
    assert clock.now() == datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert main(["clock", "advance", "6d"]) == 0
    assert main(["clock", "pin", "2026-01-05T00:00:00Z", "--no-earlier"]) == 0
    assert clock.now() == datetime(2026, 1, 11, tzinfo=timezone.utc)
    assert "already goes on to 2026-01-11 00:00 UTC" in capsys.readouterr().err
    with SQLiteStore(hive_home_clock / "store.sqlite") as store:  # a ledger beyond the clock
        assert main(["clock", "advance", "2d"]) == 0
        registry.record_decision(store, "business", "gate_verdict", actor="x", reason="y")
    assert main(["clock", "pin", "2026-01-12T00:00:00Z"]) == 0  # by hand, back: allowed, with a note
    assert main(["clock", "pin", "2026-01-05T00:00:00Z", "--no-earlier"]) == 0
    assert clock.now() == datetime(2026, 1, 13, tzinfo=timezone.utc)


@pytest.mark.parametrize("verb", [["check"], ["stop"], ["expand", "--traffic", "25"],
                                  ["start", "--new-version", "2"]])
def test_an_a_b_action_at_a_time_that_has_not_come_is_refused_before_any_run(home, monkeypatch, capsys, verb):
    """`hive ab-test check --now 2100-01-01` launched a run that failed on it ("after the platform clock"): each
    typo left a failed run in the operators' list. The home's clock (pinned here) decides, before any run."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    before = len(runs(home))
    code = main(["ab-test", *verb, "--specialist", "business", "--now", "2026-01-06T00:00:00Z"])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("hive: HIVE_HOME=")]
    assert code == 2 and err == [
        f"hive ab-test {verb[0]}: error: --now 2026-01-06T00:00:00+00:00 is after the home's clock "
        "(2026-01-05T00:00:00+00:00): a decision cannot be taken at a time that has not come; move the clock "
        "(`hive clock advance`) instead"], err
    assert len(runs(home)) == before

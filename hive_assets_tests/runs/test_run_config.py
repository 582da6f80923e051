"""A run's config outside a step's bounds is refused before the first step writes anything."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from hive_assets.cli._dagster import failure_message
from hive_assets.data import SQLiteStore
from hive_assets.defs import build_defs
from hive_assets.defs.runs.run_config import out_of_bounds
from hive_assets.simulator import simulate

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def test_values_outside_their_bounds_are_named_and_the_rest_left_to_dagster():
    assert out_of_bounds({"ops": {
        "raw_production_data": {"config": {"window_days": -3, "min_confidence": 0.5}},
        "trained_model": {"config": {"tuning_candidates": 0, "model_type": "xgbost"}},  # an enum: Dagster's
        "review_queue": {"config": {"random_share": 1.5}},
        "validation_report": {"config": {"anything": -1}},  # no config class of ours: not judged here
    }}) == [
        "ops.raw_production_data.config.window_days must be greater than or equal to 1 (got -3)",
        "ops.trained_model.config.tuning_candidates must be greater than or equal to 1 (got 0)",
        "ops.review_queue.config.random_share must be less than or equal to 1 (got 1.5)",
    ]
    assert out_of_bounds(None) == out_of_bounds({}) == out_of_bounds({"ops": {"trained_model": {}}}) == []


def test_a_retraining_whose_training_config_is_out_of_range_writes_nothing(hive_home, monkeypatch):
    """`trained_model`'s `tuning_candidates: 0` passed the Launchpad ("No errors"); the run collected and
    featurized first, rewriting the partition's stored outputs on a new data snapshot, then failed at training
    with a pydantic traceback."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    simulate(SQLiteStore(hive_home / "store.sqlite"), plans=400, days=20, seed=3, now=NOW, specialists=("business",))
    defs = build_defs()
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster")) as instance:
        result = defs.resolve_job_def("retrain_specialist").execute_in_process(
            partition_key="business", instance=instance, raise_on_error=False,
            run_config={"ops": {"trained_model": {"config": {"tuning_candidates": 0}}}})
        succeeded = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
        materialized = instance.fetch_materializations(dg.AssetKey("raw_production_data"), limit=1).records
    assert not result.success and succeeded == [] and not materialized
    message = failure_message(result)
    assert ("run config out of range: ops.trained_model.config.tuning_candidates must be greater than or equal to 1 "
            "(got 0); nothing was written") in message and "pydantic" not in message
    assert not (hive_home / "assets").exists() or not any((hive_home / "assets").rglob("*.parquet"))


def test_a_refusal_at_setup_is_not_started_again_by_the_deployment_s_run_retries(hive_home, monkeypatch):
    """A refusal while the run's resources are set up is a run exception to Dagster: the deployment's run retries
    (deploy/dagster.yaml: enabled, max_retries 1, step failures spared) started the run again in a new pod, to be
    refused the same way. Here with the deployment's retry settings, read from its dagster.yaml."""
    from pathlib import Path

    import yaml

    deployment = yaml.safe_load((Path(__file__).parents[2] / "deploy" / "dagster.yaml").read_text())
    assert deployment["run_retries"]["enabled"] and deployment["run_retries"]["max_retries"] >= 1
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    defs = build_defs()
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster"),
                              overrides={"run_retries": deployment["run_retries"]}) as instance:
        refused = defs.resolve_job_def("retrain_specialist").execute_in_process(
            partition_key="business", instance=instance, raise_on_error=False,
            run_config={"ops": {"trained_model": {"config": {"tuning_candidates": 0}}}})
        tags = instance.get_run_by_id(refused.run_id).tags
        # its re-execution, config fixed, copies its tags (Dagster omits only its own run-state tags): the
        # limit comes back once setup passes, so a worker dying in this one is retried as in any other run
        copied = {k: v for k, v in tags.items() if k in ("dagster/max_retries", "hive/setup_refused")}
        again = defs.resolve_job_def("retrain_specialist").execute_in_process(
            partition_key="business", instance=instance, raise_on_error=False, tags=copied)
        again_tags = instance.get_run_by_id(again.run_id).tags
    assert not refused.success and tags["dagster/failure_reason"] == "RUN_EXCEPTION"
    assert (tags["dagster/will_retry"], tags["dagster/max_retries"]) == ("false", "0")
    assert copied == {"dagster/max_retries": "0", "hive/setup_refused": "true"}
    assert again_tags["dagster/max_retries"] == str(deployment["run_retries"]["max_retries"])


def test_a_refused_run_s_own_retry_limit_comes_back_with_its_re_execution(hive_home, monkeypatch):
    """A run launched with its own limit (`dagster/max_retries` 3, the instance's 1): refused at setup, its
    limit is 0; its re-execution (tags copied), refused again, then passing, gets 3 back, not the instance's 1."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    defs = build_defs()
    job = defs.resolve_job_def("retrain_specialist")
    out_of_range = {"ops": {"trained_model": {"config": {"tuning_candidates": 0}}}}
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster"),
                              overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        tags = {"dagster/max_retries": "3"}
        for run_config in (out_of_range, out_of_range, {}):
            result = job.execute_in_process(partition_key="business", instance=instance, raise_on_error=False,
                                            run_config=run_config, tags=tags)
            tags = {k: v for k, v in instance.get_run_by_id(result.run_id).tags.items() if k.startswith("hive/")
                    or k == "dagster/max_retries"}
            if run_config:
                assert tags["dagster/max_retries"] == "0"
    assert tags["dagster/max_retries"] == "3" and tags["hive/setup_refused"] == "false"


def test_credentials_typed_into_resources_config_are_named_never_shown():
    from hive_assets.defs.runs.run_config import typed_credentials

    assert typed_credentials({"resources": {
        "document_store": {"config": {"mongodb_uri": "mongodb://hive:s3cret@db:27017/", "database": "hive"}},
        "mlflow": {"config": {"tracking_uri": {"env": "MLFLOW_TRACKING_URI"}}},  # the variable's name: fine
        "io_manager": {"config": {"base": "s3://bucket/hive"}},
        "platform": {"config": {"kafka_bootstrap_servers": "kafka:9092?password=hunter2",
                                "kafka_sasl_username": "hive",  # a name, not a secret
                                "kafka_sasl_password": "hunter2", "kafka_ssl_key_password": {"env": "KEY_PW"}}},
    }}) == ["resources.document_store.config.mongodb_uri", "resources.platform.config.kafka_bootstrap_servers",
            "resources.platform.config.kafka_sasl_password"]
    assert typed_credentials(None) == typed_credentials({"ops": {}}) == []


def test_a_run_whose_config_holds_a_typed_password_is_refused_before_it_reads(hive_home, monkeypatch):
    """The Launchpad took `resources.document_store.config.mongodb_uri: mongodb://hive:<password>@...`: the run
    connected with it, and Dagster kept the password with the run's config, shown to anyone who opens the run."""
    monkeypatch.setenv("HIVE_SIMULATED_NOW", NOW.isoformat())
    defs = build_defs()
    password = "s3cret-typed-in"
    with dg.instance_for_test(temp_dir=str(hive_home / "dagster"),
                              overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        refused = defs.resolve_job_def("retrain_specialist").execute_in_process(
            partition_key="business", instance=instance, raise_on_error=False,
            run_config={"resources": {"document_store": {"config": {
                "mongodb_uri": f"mongodb://hive:{password}@127.0.0.1:1/"}}}})
        tags = instance.get_run_by_id(refused.run_id).tags
        steps = [e for e in refused.all_events if e.event_type_value.startswith("STEP_")]
        # the variable's name instead: taken (the run goes on, and fails later for want of data: not here)
        monkeypatch.setenv("HIVE_TEST_STORE_URI", "")
        taken = defs.resolve_job_def("retrain_specialist").execute_in_process(
            partition_key="business", instance=instance, raise_on_error=False,
            run_config={"resources": {"document_store": {"config": {"mongodb_uri": {"env": "HIVE_TEST_STORE_URI"}}}}})
    message = failure_message(refused)
    assert not refused.success and steps == []
    assert ("resources.document_store.config.mongodb_uri holds a credential typed into the run's config, which "
            "Dagster keeps with the run in plain text") in message and password not in message
    assert message.endswith("nothing was read or written")
    assert tags["dagster/will_retry"] == "false"
    assert "typed into the run's config" not in failure_message(taken)
    assert [e for e in taken.all_events if e.event_type_value == "STEP_START"], failure_message(taken)

"""What the Dagster UI shows of the definitions (issue 15): descriptions on every asset, check, job and
sensor; one group per stage; at most three kinds; owners; and Launchpad config whose every field says
what it is. The expectations are written out here, not read from hive_assets.defs.catalog."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from hive_assets.config import SPECIALISTS
from hive_assets.definitions import defs

# the stage each asset belongs to (ARCHITECTURE.md's table), written independently of the code
EXPECTED_GROUPS = {
    "raw_production_data": "data",
    "enhanced_features": "features",
    "trained_model": "training",
    "validation_report": "evaluation",
    "registered_model_version": "registry",
    "ab_test_outcome": "rollout",
    "review_queue": "review",
    "feedback": "monitoring",
}
PIPELINE = {"raw_production_data", "enhanced_features", "trained_model", "validation_report",
            "registered_model_version", "ab_test_outcome"}
# Dagster's owner syntax: an email address or team:<name>
OWNER = re.compile(r"^(team:[A-Za-z0-9_-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")
OPERATOR_JOBS = {"register_model_version", "promote_model_version", "rollback_champion", "set_model_alias",
                 "list_model_versions", "ab_test_start", "ab_test_expand", "ab_test_stop"}


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def _assets(graph):
    return {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}


def _job_names() -> list[str]:
    return sorted({job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"})


def test_every_asset_has_description_group_kinds_and_owner(graph):
    assets = _assets(graph)
    # ui-metadata may add monitoring specs (e.g. `drift`): every asset is checked, the known ones by name
    assert PIPELINE <= set(assets)
    for name, node in assets.items():
        assert node.description and len(node.description) > 20, name
        assert node.group_name == EXPECTED_GROUPS.get(name, "monitoring"), (name, node.group_name)
        assert 1 <= len(node.kinds) <= 3, (name, node.kinds)
        assert node.owners and all(OWNER.match(o) for o in node.owners), (name, node.owners)
    assert assets["trained_model"].kinds == {"xgboost", "scikitlearn", "mlflow"}
    assert "mlflow" in assets["registered_model_version"].kinds


def test_every_check_has_a_description(graph):
    specs = [spec for assets_def in graph.assets_defs for spec in assets_def.check_specs]
    names = {spec.name for spec in specs}
    assert {"enough_samples", "trainable", "minimum_metrics", "calibration", "champion_non_inferiority"} <= names
    for spec in specs:
        assert spec.description and len(spec.description) > 15, spec.name


def test_every_job_and_sensor_has_a_description():
    names = _job_names()
    assert {"retrain_specialist", "ab_test_check"} | OPERATOR_JOBS <= set(names)
    for name in names:
        job = defs.resolve_job_def(name)
        assert job.description and len(job.description) > 15, name
        for node in job.graph.node_defs:
            if not node.name.startswith("__"):  # asset ops carry the asset's description
                assert node.description, (name, node.name)
    sensors = defs.sensors
    assert len(sensors) >= 7
    for sensor in sensors:
        assert sensor.description and len(sensor.description) > 15, sensor.name


def test_retrain_specialist_materializes_the_six_pipeline_assets():
    job = defs.resolve_job_def("retrain_specialist")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == PIPELINE


def _config_fields(config_type, path=()):
    """(path, field) of every leaf field under a run-config type (what the Launchpad lists)."""
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        sub = field.config_type
        if getattr(sub, "fields", None):
            yield from _config_fields(sub, path + (name,))
        else:
            yield path + (name,), field


def _user_config(job_name: str):
    """Every field of the ops' and assets' own config in the job's run-config schema."""
    ops = defs.resolve_job_def(job_name).run_config_schema.config_type.fields["ops"].config_type
    for op_name, op_field in ops.fields.items():
        config = op_field.config_type.fields.get("config")
        if config is not None:
            yield from _config_fields(config.config_type, (op_name,))


@pytest.mark.parametrize("job_name", sorted(OPERATOR_JOBS | {"retrain_specialist", "ab_test_check"}))
def test_launchpad_config_fields_are_described(job_name):
    fields = list(_user_config(job_name))
    assert fields, f"{job_name} has no config"
    for path, field in fields:
        assert field.description and len(field.description) > 5, (job_name, path)
        # a field an operator may leave out has a default; only the identifiers of what to act on are required
        if field.is_required:
            assert path[-1] in {"specialist", "run_id", "model_version", "new_version", "alias",
                                "traffic"}, (job_name, path)


def test_specialist_fields_are_an_enum_of_the_five_specialists():
    fields = dict(_user_config("rollback_champion"))
    specialist = fields[("rollback_op", "specialist")]
    assert specialist.config_type.kind == dg._config.ConfigTypeKind.ENUM
    assert sorted(v.config_value for v in specialist.config_type.enum_values) == sorted(SPECIALISTS)
    assert "business" in specialist.description
    for name in ("target_version", "force", "reason"):
        assert not fields[("rollback_op", name)].is_required
    start = dict(_user_config("ab_test_start"))[("start_ab_test", "specialist")]
    assert start.config_type.kind == dg._config.ConfigTypeKind.ENUM
    # an unknown specialist is refused by config validation, before any run starts
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(defs.resolve_job_def("rollback_champion"),
                               {"ops": {"rollback_op": {"config": {"specialist": "marketing"}}}})


@pytest.mark.parametrize("job_name", sorted(OPERATOR_JOBS | {"ab_test_check"}))
def test_every_operator_job_names_the_specialist_field_specialist(job_name):
    # the registry jobs called it `model_type`, the name `trained_model` gives the model family (xgboost, ...):
    # the Launchpad asked for `model_type: business` in one job and `model_type: xgboost` in the next
    enums = [path for path, field in _user_config(job_name)
             if field.config_type.kind == dg._config.ConfigTypeKind.ENUM
             and {v.config_value for v in field.config_type.enum_values} == set(SPECIALISTS)]
    names = {path[-1] for path, _ in _user_config(job_name)}
    assert all(path[-1] == "specialist" for path in enums) and "model_type" not in names, (job_name, names)

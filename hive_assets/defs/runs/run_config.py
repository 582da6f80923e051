"""A run's config checked against every step's bounds before its first step writes anything.

Dagster's config schema carries types and enums, not pydantic's bounds (`ge`, `le`, `gt`...): the Launchpad
says "No errors" for `window_days: -3`, and each step validates only its own config when it starts, so a
retraining whose `trained_model` config was out of range collected and rewrote the partition's outputs
first, then failed with a pydantic traceback. The run's lease (every asset binds it) checks the whole run's
config when the first step sets up its resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# pydantic's error types for a value of the right type outside a field's bounds: the only ones judged here
# (types and enums are Dagster's to judge at launch, with the values it converts first)
BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of",
                          "too_short", "too_long", "string_too_short", "string_too_long"})


STEP_CONFIGS: dict[str, type] = {}  # op name -> its config class, filled by `step_config` where assets are defined


def step_config(step: str):
    """Registers the decorated config class as step `step`'s, for `out_of_bounds` (the assets' modules import
    the run lease, so the lease cannot import them to find their classes)."""
    def register(cls: type) -> type:
        STEP_CONFIGS[step] = cls
        return cls
    return register


def out_of_bounds(run_config: Mapping[str, Any] | None) -> list[str]:
    """`ops.<step>.config.<field> must be ... (got ...)` for every value of the run's config outside its
    field's bounds, in step order as configured; [] when all are within."""
    import pydantic

    ops = (run_config or {}).get("ops") or {}
    problems = []
    for step, settings in ops.items():
        config = settings.get("config") if isinstance(settings, Mapping) else None
        if step not in STEP_CONFIGS or not isinstance(config, Mapping):
            continue
        try:
            STEP_CONFIGS[step](**config)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                if error["type"] in BOUND_ERRORS:
                    field = ".".join(str(part) for part in error["loc"])
                    bound = error["msg"].replace("Input should be", "must be")
                    problems.append(f"ops.{step}.config.{field} {bound} (got {error['input']!r})")
    return problems


def typed_credentials(run_config: Mapping[str, Any] | None) -> list[str]:
    """`resources.<key>.config.<field>` of every value of the run's resources config that holds a credential
    typed in as text (a URI's password, a `password=` or `token=` parameter, any value of a field named
    `*password`, such as Kafka's SASL password), rather than read from the
    environment (`{env: VAR}`, which Dagster stores as the variable's name). Dagster keeps a run's config with
    the run and shows it to anyone who can see the run (its Launchpad, `dagster run` output, the run storage)."""
    from hive_assets.config import redact_secrets

    resources = (run_config or {}).get("resources") or {}
    found = []
    for key, settings in resources.items():
        config = settings.get("config") if isinstance(settings, Mapping) else None
        for field, value in (config.items() if isinstance(config, Mapping) else ()):
            if isinstance(value, str) and (redact_secrets(value) != value
                                           or (value.strip() and field.endswith("password"))):
                found.append(f"resources.{key}.config.{field}")
    return found

"""Metadata values the Dagster UI renders well: tables, images embedded in markdown, links, and numbers
rounded for a person (DISPLAY_DIGITS significant digits; the full precision stays in MLflow)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from hive_assets.figures import png_markdown

NO_UI = ("no MLflow UI link: set MLFLOW_UI_URL to the MLflow UI's address (e.g. http://127.0.0.1:5000 for "
         "`mlflow ui` on the local store)")


DISPLAY_DIGITS = 4


def rounded(value: float | None, digits: int = DISPLAY_DIGITS) -> float | None:
    """`value` to `digits` significant digits (0.8512773143602025 -> 0.8513); None stays None."""
    if value is None:
        return None
    value = float(value)
    return float(f"{value:.{digits}g}") if math.isfinite(value) else value


def for_display(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata` with every plain float (and float metadata value) rounded for display, the floats inside a
    JSON value too (a report's metrics and intervals showed 17 digits)."""
    out = {}
    for key, value in metadata.items():
        if isinstance(value, float):
            value = rounded(value)
        elif isinstance(value, dg.FloatMetadataValue) and value.value is not None:
            value = dg.MetadataValue.float(rounded(value.value))
        elif isinstance(value, dg.JsonMetadataValue) and value.data is not None:
            value = dg.MetadataValue.json(_rounded_inside(value.data))
        out[key] = value
    return out


def _rounded_inside(data: Any) -> Any:
    if isinstance(data, float):
        return rounded(data)
    if isinstance(data, Mapping):
        return {k: _rounded_inside(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_rounded_inside(v) for v in data]
    return data


def check_result(specialist: str, *, description: str, metadata: Mapping[str, Any],
                 **fields: Any) -> dg.AssetCheckResult:
    """An asset check's result that says whose it is: the checks are not partitioned (Dagster's partitioned
    checks are a preview), so a check's page shows the latest result of any specialist. The description
    starts with the specialist, and the metadata has `specialist`."""
    return dg.AssetCheckResult(description=f"{specialist}: {description}",
                               metadata={"specialist": specialist, **metadata}, **fields)


def link(url: str | None) -> dg.MetadataValue:
    """A url value, or a text saying why there is none (never a link that cannot open)."""
    return dg.MetadataValue.url(url) if url else dg.MetadataValue.text(NO_UI)


def image(png: bytes, alt: str, url: str | None, link_text: str = "open the MLflow run") -> dg.MetadataValue:
    """Markdown with `png` inline and, under it, a link to `url` (or the reason there is none)."""
    return dg.MetadataValue.md(png_markdown(png, alt, url, link_text, note=None if url else NO_UI))


def table(columns: Sequence[tuple[str, str, str]], rows: Iterable[Mapping[str, Any]]) -> dg.TableMetadataValue:
    """A table with a schema of (name, type, description) columns; an empty table keeps its schema."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, type, description) for name, type, description in columns])
    return dg.MetadataValue.table(records=[dg.TableRecord(for_display(row)) for row in rows], schema=schema)

"""Metadata values the Dagster UI renders well: tables, images embedded in markdown, links."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from hive_assets.figures import png_markdown

NO_UI = "no MLflow UI: the tracking store is a local sqlite/file store"


def link(url: str | None) -> dg.MetadataValue:
    """A url value, or a text saying why there is none (never a link that cannot open)."""
    return dg.MetadataValue.url(url) if url else dg.MetadataValue.text(NO_UI)


def image(png: bytes, alt: str, url: str | None, link_text: str = "open the MLflow run") -> dg.MetadataValue:
    """Markdown with `png` inline and, under it, a link to `url` (or the reason there is none)."""
    return dg.MetadataValue.md(png_markdown(png, alt, url, link_text, note=None if url else NO_UI))


def table(columns: Sequence[tuple[str, str, str]], rows: Iterable[Mapping[str, Any]]) -> dg.TableMetadataValue:
    """A table with a schema of (name, type, description) columns; an empty table keeps its schema."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, type, description) for name, type, description in columns])
    return dg.MetadataValue.table(records=[dg.TableRecord(dict(row)) for row in rows], schema=schema)

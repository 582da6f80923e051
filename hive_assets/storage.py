"""Open file formats for asset outputs, so that anyone can read them without this code.

- FRAME: a pandas DataFrame as one Parquet file (pyarrow). `frame.attrs` go where pandas itself puts them
  (the `PANDAS_ATTRS` schema metadata), so `pd.read_parquet` restores them; a column of nested values
  (dicts, lists: a quarantined document) is stored as JSON text and named in the `hive.json_columns`
  metadata, and read back as values. `pd.read_parquet(path)` or DuckDB's `SELECT * FROM 'path.parquet'`
  open it.
- COLLECTION: a `CollectResult` as a directory: `rows.parquet`, `quarantine.parquet` (FRAMEs) and
  `summary.json` (specialist and counts). The rows' `plan` column is already JSON text (collection keeps
  plans so): stored and read back as text; an output written before that names it in `hive.json_columns`.
- JSON: anything else (dicts, dataclasses; numpy scalars and arrays become numbers and lists, datetimes
  ISO-8601 text). Models are not stored here: a model asset's value is its MLflow reference.

The codecs write through a small `Files` object (bytes in and out, by name inside a COLLECTION) so that
the storage itself (local disk, S3, GCS) is the wiring's business (`hive_assets.defs.storage`).
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any, Protocol

import orjson
import pandas as pd

from hive_assets.cyclic_gc import cyclic_gc_paused
from hive_assets.data import CollectResult, jsonable

FRAME, COLLECTION, JSON = "parquet", "collection", "json"
SUFFIXES = {FRAME: ".parquet", COLLECTION: "", JSON: ".json"}
ATTRS_KEY = b"PANDAS_ATTRS"  # where pandas' own to_parquet keeps DataFrame.attrs
JSON_COLUMNS_KEY = b"hive.json_columns"


class Files(Protocol):
    """One stored output: a single file (`name` None) or a directory of named files."""

    def write(self, data: bytes, name: str | None = None) -> None: ...

    def read(self, name: str | None = None) -> bytes: ...


class StorageFormatError(TypeError):
    """An output whose value does not fit its asset's format."""


def to_json(value: Any) -> bytes:
    return json.dumps(value, default=jsonable, indent=1, sort_keys=False).encode()


def from_json(data: bytes) -> Any:
    return json.loads(data)


def _is_nested(value: Any) -> bool:
    return isinstance(value, (dict, list, tuple))


def _nested_columns(frame: pd.DataFrame) -> list[str]:
    """Object columns holding a dict or a list in any row. A column may mix them with text (the quarantine
    keeps a document JSON cannot encode as its `repr`): its text is then written as a JSON string, and read
    back as the same text."""
    out = []
    for name in frame.columns:
        if frame[name].dtype == object and any(map(_is_nested, frame[name])):
            out.append(name)
    return out


def _is_null(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _row_ids(frame: pd.DataFrame, row: int) -> str:
    """The row's ids (its columns named `id` or `*_id`) for a message: `opinion_id='op-1', feedback_id=7`."""
    values = frame.iloc[row]
    ids = [f"{name}={value!r}"[:120] for name, value in zip(frame.columns, values)
           if isinstance(name, str) and (name == "id" or name.endswith("_id")) and not _is_null(value)]
    return ", ".join(ids) or "no id column"


def _mixed_column_problem(frame: pd.DataFrame) -> str | None:
    """What makes `frame` unwritable, when it is an object column whose values Parquet cannot hold in one
    column (text beside numbers): the column, its types and the first row of each type but the most common
    one, with that row's ids. None when no object column mixes types (pyarrow's own error then stands)."""
    import pyarrow as pa

    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        if column.dtype != object:
            continue
        try:
            pa.array(column, from_pandas=True)
            continue
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
        first_row: dict[str, int] = {}
        kinds: dict[str, int] = {}
        for row, value in enumerate(column):
            if _is_null(value):
                continue
            kind = type(value).__name__
            kinds[kind] = kinds.get(kind, 0) + 1
            first_row.setdefault(kind, row)
        if len(kinds) < 2:  # one type pyarrow refuses for another reason (an integer beyond 64 bits)
            continue
        common = max(kinds, key=lambda kind: (kinds[kind], -first_row[kind]))
        found = ", ".join(f"{kind} in {n:,} row{'s' if n > 1 else ''}"
                          for kind, n in sorted(kinds.items(), key=lambda item: -item[1]))
        others = "; ".join(f"first {kind} at row {first_row[kind]} ({_row_ids(frame, first_row[kind])})"
                           for kind in sorted(kinds, key=first_row.get) if kind != common)
        return f"column {name!r} holds values of types Parquet cannot store in one column ({found}): {others}"
    return None


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Raises StorageFormatError, naming the column and the first rows at fault, for a column holding values
    of types one Parquet column cannot hold (text beside numbers): written as they are or not at all, never
    turned into text behind the reader's back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    nested = _nested_columns(frame)
    flat = frame.copy(deep=False) if nested else frame
    for name in nested:  # orjson: a demo partition's plans are tens of MB of JSON
        flat[name] = [None if v is None else orjson.dumps(v, default=jsonable, option=orjson.OPT_SERIALIZE_NUMPY
                                                          ).decode() for v in frame[name]]
    try:
        table = pa.Table.from_pandas(flat)
    except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
        problem = _mixed_column_problem(flat)
        if problem is None:  # not a column of mixed values: pyarrow's own error says more than a guess would
            raise
        raise StorageFormatError(f"{problem}; nothing was written") from error
    metadata = dict(table.schema.metadata or {})
    metadata[JSON_COLUMNS_KEY] = json.dumps(nested).encode()
    if frame.attrs:
        metadata[ATTRS_KEY] = json.dumps(frame.attrs, default=jsonable).encode()
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), buffer)
    return buffer.getvalue()


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    metadata = table.schema.metadata or {}
    frame = table.to_pandas()
    for name in json.loads(metadata.get(JSON_COLUMNS_KEY, b"[]")):
        with cyclic_gc_paused():  # thousands of plans: 6x faster (hive_assets.cyclic_gc)
            frame[name] = [None if v is None else orjson.loads(v) for v in frame[name]]
    if ATTRS_KEY in metadata:
        frame.attrs = json.loads(metadata[ATTRS_KEY])
    return frame


COLLECTION_FRAMES = ("rows.parquet", "quarantine.parquet")


class HalfWrittenOutput(ValueError):
    """A COLLECTION whose files are not one write's: a write that failed part-way (a full disk, a lost
    connection) replaced some of them and not the summary that describes them."""


def _collection_to_files(result: CollectResult, files: Files) -> None:
    written = {}
    for name, frame in zip(COLLECTION_FRAMES, (result.frame, result.quarantine)):
        data = frame_to_parquet(frame)
        files.write(data, name)
        written[name] = hashlib.sha256(data).hexdigest()
    # the summary last, with the digests of the frames it describes: a reader checks that it has them
    # and the data snapshot hash: the next step reads it instead of hashing every row again
    files.write(to_json({"specialist": result.specialist, "counts": result.counts, "sha256": written,
                         "data_snapshot_hash": result.snapshot_hash()}), "summary.json")


def _collection_from_files(files: Files) -> CollectResult:
    summary = from_json(files.read("summary.json"))
    frames = {}
    for name in COLLECTION_FRAMES:
        data = files.read(name)
        expected = (summary.get("sha256") or {}).get(name)  # absent in outputs written before the digests
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise HalfWrittenOutput(f"{name} is not the file its summary.json describes (a write of this output "
                                    "failed part-way): materialize it again")
        frames[name] = frame_from_parquet(data)
    return CollectResult(specialist=summary["specialist"], frame=frames["rows.parquet"],
                         quarantine=frames["quarantine.parquet"], counts=summary["counts"],
                         # of these very frames (their digests are checked above); older outputs: computed
                         snapshot=summary.get("data_snapshot_hash"))


def write(fmt: str, value: Any, files: Files) -> None:
    """Store `value` in format `fmt`; StorageFormatError when the value cannot be stored that way."""
    if fmt == FRAME:
        if not isinstance(value, pd.DataFrame):
            raise StorageFormatError(f"a {FRAME} output must be a pandas DataFrame, got {type(value).__name__}")
        files.write(frame_to_parquet(value))
    elif fmt == COLLECTION:
        if not isinstance(value, CollectResult):
            raise StorageFormatError(f"a {COLLECTION} output must be a CollectResult, got {type(value).__name__}")
        _collection_to_files(value, files)
    elif fmt == JSON:
        if isinstance(value, pd.DataFrame):
            raise StorageFormatError("a DataFrame output needs the parquet format (hive_assets.defs.storage.FORMATS)")
        files.write(to_json(value))
    else:
        raise ValueError(f"unknown storage format {fmt!r}")


def read(fmt: str, files: Files) -> Any:
    """The value `write(fmt, ...)` stored."""
    if fmt == FRAME:
        return frame_from_parquet(files.read())
    if fmt == COLLECTION:
        return _collection_from_files(files)
    if fmt == JSON:
        return from_json(files.read())
    raise ValueError(f"unknown storage format {fmt!r}")


__all__ = ["COLLECTION", "FRAME", "JSON", "SUFFIXES", "Files", "HalfWrittenOutput", "StorageFormatError",
           "frame_from_parquet", "frame_to_parquet", "from_json", "read", "to_json", "write"]

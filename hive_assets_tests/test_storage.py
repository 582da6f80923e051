"""hive_assets.storage: the open formats of asset outputs, read back by pyarrow/pandas/json on their own."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hive_assets import storage
from hive_assets.data import CollectResult


class MemoryFiles:
    def __init__(self):
        self.files: dict[str | None, bytes] = {}

    def write(self, data: bytes, name: str | None = None) -> None:
        self.files[name] = data

    def read(self, name: str | None = None) -> bytes:
        return self.files[name]


def _frame() -> pd.DataFrame:
    frame = pd.DataFrame({
        "opinion_id": ["o-1", "o-2", "o-3"],
        "evaluated_at": pd.to_datetime(["2026-01-01T10:00:00Z", "2026-01-02T11:30:00Z", "2026-01-03T00:00:00Z"]),
        "confidence_score": [0.9, np.nan, 0.75],
        "label": ["approve", None, "reject"],
        "feedback_id": ["f-1", None, "f-3"],
        "plan": [{"tasks": [{"id": "t1", "deps": []}], "risk": 0.2}, None, {"tasks": [], "meta": {"k": [1, 2]}}],
    })
    frame.attrs["data_snapshot_hash"] = "abc123"
    return frame


def test_a_frame_is_parquet_that_pandas_and_pyarrow_read_without_this_code():
    frame = _frame()
    files = MemoryFiles()
    storage.write(storage.FRAME, frame, files)
    data = files.read()

    independent = pd.read_parquet(io.BytesIO(data))  # what a data scientist does
    assert independent.attrs == {"data_snapshot_hash": "abc123"}
    pd.testing.assert_frame_equal(independent.drop(columns=["plan"]), frame.drop(columns=["plan"]))
    # the nested column is JSON text, named in the schema metadata
    assert [None if v is None else json.loads(v) for v in independent["plan"]] == list(frame["plan"])
    schema = pq.read_schema(io.BytesIO(data))
    assert json.loads(schema.metadata[b"hive.json_columns"]) == ["plan"]

    back = storage.read(storage.FRAME, files)
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs == frame.attrs


def test_a_collection_is_two_frames_and_a_summary():
    result = CollectResult(specialist="business", frame=_frame(),
                           quarantine=pd.DataFrame({"reason": ["bad_json"], "document_chars": [12]}),
                           counts={"rows": 3, "labelled": 2, "feedback_dropped": {"denied_source": 1}})
    files = MemoryFiles()
    storage.write(storage.COLLECTION, result, files)
    assert set(files.files) == {"rows.parquet", "quarantine.parquet", "summary.json"}
    digests = {name: hashlib.sha256(files.read(name)).hexdigest() for name in ("rows.parquet", "quarantine.parquet")}
    assert json.loads(files.read("summary.json")) == {"specialist": "business", "counts": result.counts,
                                                      "sha256": digests, "data_snapshot_hash": result.snapshot_hash()}

    back = storage.read(storage.COLLECTION, files)
    pd.testing.assert_frame_equal(back.frame, result.frame)
    pd.testing.assert_frame_equal(back.quarantine, result.quarantine)
    assert back.counts == result.counts and back.specialist == "business"
    assert back.snapshot_hash() == result.snapshot_hash()
    # the frames read back hash to the stored value (timestamps, plans and all survive the round trip)
    recomputed = CollectResult(specialist="business", frame=back.frame, quarantine=back.quarantine)
    assert recomputed.snapshot is None and recomputed.snapshot_hash() == result.snapshot_hash()


class FailingFiles(MemoryFiles):
    """A store that refuses one file: a full disk or a lost connection part-way through a write."""

    def __init__(self, files: dict, refused: str):
        super().__init__()
        self.files, self.refused = files, refused

    def write(self, data: bytes, name: str | None = None) -> None:
        if name == self.refused:
            raise OSError(28, "No space left on device")
        super().write(data, name)


def test_a_collection_whose_write_failed_part_way_is_refused_not_read_as_its_summary_says():
    old = CollectResult(specialist="business", frame=_frame(), quarantine=pd.DataFrame({"reason": []}),
                        counts={"rows": 3})
    files = MemoryFiles()
    storage.write(storage.COLLECTION, old, files)
    newer = CollectResult(specialist="business", frame=_frame().iloc[:1], quarantine=pd.DataFrame({"reason": []}),
                          counts={"rows": 1})
    with pytest.raises(OSError):
        storage.write(storage.COLLECTION, newer, FailingFiles(files.files, "summary.json"))
    assert json.loads(files.read("summary.json"))["counts"] == {"rows": 3}  # the old summary, the new rows
    with pytest.raises(storage.HalfWrittenOutput, match="rows.parquet is not the file its summary.json describes"):
        storage.read(storage.COLLECTION, files)
    storage.write(storage.COLLECTION, newer, files)  # written again whole: read as written
    assert len(storage.read(storage.COLLECTION, files).frame) == 1
    # an output written before the summary carried digests is read as before
    files.files["summary.json"] = json.dumps({"specialist": "business", "counts": {"rows": 1}}).encode()
    assert len(storage.read(storage.COLLECTION, files).frame) == 1


def test_json_takes_numpy_and_datetimes_and_reads_back_as_plain_values():
    value = {"n": np.int64(3), "x": np.float32(0.5), "arr": np.array([1.0, 2.0]), "interval": (0.1, 0.2),
             "at": datetime(2026, 1, 5, tzinfo=timezone.utc), "nan": float("nan")}
    files = MemoryFiles()
    storage.write(storage.JSON, value, files)
    back = json.loads(files.read())  # the standard library alone
    assert back["n"] == 3 and back["x"] == 0.5 and back["arr"] == [1.0, 2.0] and back["interval"] == [0.1, 0.2]
    assert back["at"] == "2026-01-05T00:00:00+00:00"
    assert np.isnan(back["nan"])
    assert storage.read(storage.JSON, files)["n"] == 3


@pytest.mark.parametrize("fmt, value, expected", [
    (storage.FRAME, {"a": 1}, "must be a pandas DataFrame, got dict"),
    (storage.COLLECTION, pd.DataFrame(), "must be a CollectResult, got DataFrame"),
    (storage.JSON, pd.DataFrame(), "needs the parquet format"),
    (storage.JSON, object(), "object is not JSON serializable"),
])
def test_a_value_that_does_not_fit_its_format_is_a_clear_error_and_writes_nothing(fmt, value, expected):
    files = MemoryFiles()
    with pytest.raises(TypeError, match=expected):
        storage.write(fmt, value, files)
    assert files.files == {}


def test_collected_plans_stay_json_text_and_an_output_of_decoded_plans_reads_the_same(tmp_path):
    """`collect` keeps each plan as its JSON text: stored as such (pandas reads the text, no metadata
    needed), read back as text. An output written when plans were kept decoded (named in
    `hive.json_columns`, read back as dicts) gives the same data snapshot hash and the same features."""
    from hive_assets.data import SQLiteStore, collect
    from hive_assets.features import features_frame
    from hive_assets.simulator import simulate

    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    store = SQLiteStore(tmp_path / "store.sqlite")
    simulate(store, plans=80, days=5, seed=5, now=now)
    new = collect(store, "business", now=now, window_days=30)
    assert len(new.frame) > 20 and all(isinstance(p, str) for p in new.frame["plan"])
    old = CollectResult(specialist="business", frame=new.frame.assign(plan=[json.loads(p) for p in new.frame["plan"]]),
                        quarantine=new.quarantine, counts=new.counts)
    read = {}
    for name, result in (("new", new), ("old", old)):
        files = MemoryFiles()
        storage.write(storage.COLLECTION, result, files)
        schema = pq.read_schema(io.BytesIO(files.read("rows.parquet")))
        assert json.loads(schema.metadata[b"hive.json_columns"]) == ([] if name == "new" else ["plan"])
        independent = pd.read_parquet(io.BytesIO(files.read("rows.parquet")))
        assert [json.loads(p) for p in independent["plan"]] == list(old.frame["plan"])
        read[name] = storage.read(storage.COLLECTION, files)
        read[name].snapshot = None  # computed again from the rows read back
    assert read["new"].frame["plan"].tolist() == new.frame["plan"].tolist()
    assert read["old"].frame["plan"].tolist() == old.frame["plan"].tolist()
    assert read["new"].snapshot_hash() == read["old"].snapshot_hash() == new.snapshot_hash() == old.snapshot_hash()
    pd.testing.assert_frame_equal(features_frame(read["new"].frame["plan"]), features_frame(read["old"].frame["plan"]))


def test_a_column_mixing_text_and_documents_round_trips_whichever_comes_first():
    """The quarantine keeps a document JSON cannot encode (BSON binary) as its text, beside documents kept
    whole. The first value used to decide whether the column was JSON: text first, and pyarrow refused the
    dicts after it, failing the run at the write."""
    for documents in (["b'\\x00' in a plan", {"plan_id": "p-1", "tasks": []}, None],
                      [{"plan_id": "p-1", "tasks": []}, "b'\\x00' in a plan", None]):
        frame = pd.DataFrame({"reason": ["wrong_type", "invalid_plan", "missing_plan"], "document": documents})
        back = storage.frame_from_parquet(storage.frame_to_parquet(frame))
        assert back["document"].tolist() == documents


def test_a_column_of_text_and_numbers_is_refused_naming_the_column_and_the_rows_not_stringified():
    """A number among text (a numeric feedback_id) failed the write with pyarrow's "Conversion failed for
    column feedback_id", naming no document. Collection's validation keeps such values out; should one get
    through, the error names the column, its types and the first row of each unusual type by its ids, and
    nothing is written (turning 778 into "778" would store what no document holds)."""
    frame = pd.DataFrame({"opinion_id": ["op-1", "op-2", "op-3", "op-4"], "feedback_id": ["fb-1", 778, None, 779],
                          "score": [0.1, 0.2, 0.3, 0.4]})
    files = MemoryFiles()
    with pytest.raises(storage.StorageFormatError) as refused:
        storage.write(storage.FRAME, frame, files)
    assert str(refused.value) == (
        "column 'feedback_id' holds values of types Parquet cannot store in one column (int in 2 rows, str in 1 row): "
        "first str at row 0 (opinion_id='op-1', feedback_id='fb-1'); nothing was written")
    assert files.files == {}
    # without id columns, and with a third type; a column that converts (numbers and NaN) is not at fault
    mixed = pd.DataFrame({"version": ["v1", 3, True, "v2"], "n": [1, 2.5, float("nan"), 4]})
    with pytest.raises(storage.StorageFormatError, match=r"column 'version' .*\(str in 2 rows, int in 1 row, bool in "
                                                         r"1 row\): first int at row 1 \(no id column\); first bool "
                                                         r"at row 2 \(no id column\); nothing was written"):
        storage.frame_to_parquet(mixed)

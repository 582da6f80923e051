"""Import `mongoexport` JSON-lines files into a document store (SQLite or MongoDB).

    python -m hive_assets.data.store.importer COLLECTION FILE.jsonl[.gz] [...]

One JSON document per line, in MongoDB extended JSON, relaxed or canonical mode:
  {"$oid": "..."}                                  -> the hex string
  {"$date": "2026-01-02T03:04:05.123Z"}            -> timezone-aware UTC datetime (any ISO-8601 offset;
  {"$date": {"$numberLong": "1767323045123"}}         no offset means UTC; a number is epoch ms)
  {"$numberLong": "42"}, {"$numberInt": "7"}       -> int
  {"$numberDouble": "0.5"} (also "NaN", "Infinity") -> float (both stores keep non-finite values;
                                                       validation quarantines them as out_of_range)
  {"$numberDecimal": "1.10"}                       -> float (the stores keep JSON / BSON doubles)
  {"$timestamp": {"t": s, "i": n}}                 -> datetime of t
  {"$undefined": true}                             -> None
Anything else (`$binary`, `$regex`, ...) is kept as the dict it is.

The top-level `_id` is dropped: documents are keyed by the SPEC ids (`plan_id`, `opinion_id`, ...),
upserted in batches, so importing the same file twice changes nothing. A document without its key is
written all the same (an empty key counts as none), under its source `_id` (or a hash of its content when
the line has none), so a second import replaces it instead of adding a copy; collection quarantines such
feedback as `missing_field` (an opinion or plan without its id is never reached from a label).

A line that is not UTF-8, not JSON, not a JSON object, holds an undecodable extended-JSON value, or is
nested deeper than the store can encode is counted in `bad_lines` and reported (line number and message;
the first `MAX_ERRORS`) and never aborts the import. A UTF-8 byte-order mark is skipped; blank lines are
skipped and not counted. Errors of the store itself (StoreUnavailable, ...) abort, and so does a file that
cannot be read on (UnreadableFile: a `.gz` that is not gzip, a truncated archive), after writing what was
read before it.

A key keeps its JSON type, as in MongoDB: `5`, `5.0` and `"5"` are two documents (`5` and `5.0` one), `true`
and `"True"` two (the SQLite store indexes them apart: `base.stored_key`). Lines of the file with the same key
(or the same source `_id`, without one) are one document: the last line's.

Result: `{"read": non-blank lines, "written": documents of this file the store holds after it (each once,
new or replacing a stored one), "duplicate_lines": lines whose key an earlier line of the file had (the
later one replaced it), "bad_lines": n, "missing_key": documents without the collection's unique key
(written all the same, once), "errors": [{"line": n, "error": "..."}]}`. So `written + duplicate_lines +
bad_lines == read`. The keys written are remembered for the count (about 100 bytes each).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import sys
import zlib
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hive_assets.data.store.base import DocumentStore, UnstorableDocument, key_field, stored_key

MAX_ERRORS = 20
DEFAULT_BATCH = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ExtendedJSONError(ValueError):
    """An extended-JSON wrapper whose content cannot be decoded."""


def _from_millis(ms: Any) -> datetime:
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        raise ExtendedJSONError(f"epoch milliseconds expected, got {ms!r}")
    return _EPOCH + timedelta(milliseconds=ms)


def parse_iso_datetime(text: str) -> datetime:
    """ISO-8601 to an aware UTC datetime ('Z' or any offset; none means UTC)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ExtendedJSONError(f"not an ISO-8601 date: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _number(text: Any, kind: str) -> int | float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    if not isinstance(text, str):
        raise ExtendedJSONError(f"{kind} expects a string, got {text!r}")
    try:
        if kind in ("$numberLong", "$numberInt"):
            return int(text)
        if kind == "$numberDouble":
            return float(text)  # accepts "NaN", "Infinity", "-Infinity"
        value = Decimal(text)
        return float(value) if not value.is_nan() else math.nan
    except (ValueError, InvalidOperation):
        raise ExtendedJSONError(f"bad {kind} value {text!r}") from None


def _decode_wrapper(obj: dict[str, Any]) -> Any:
    """object_hook: turn one extended-JSON wrapper into a Python value (inner wrappers come first)."""
    if len(obj) != 1:
        return obj
    (tag, value), = obj.items()
    if tag == "$oid":
        if not isinstance(value, str):
            raise ExtendedJSONError(f"$oid expects a string, got {value!r}")
        return value
    if tag == "$date":
        if isinstance(value, str):
            return parse_iso_datetime(value)
        return _from_millis(value)  # {"$numberLong": ...} was already decoded to an int
    if tag in ("$numberLong", "$numberInt", "$numberDouble", "$numberDecimal"):
        return _number(value, tag)
    if tag == "$timestamp" and isinstance(value, dict) and "t" in value:
        if isinstance(value["t"], bool) or not isinstance(value["t"], int):
            raise ExtendedJSONError(f"$timestamp expects integer seconds t, got {value['t']!r}")
        return _EPOCH + timedelta(seconds=value["t"])
    if tag == "$undefined":
        return None
    return obj


def decode_line(line: str) -> dict[str, Any]:
    """One mongoexport line as a plain document (without `_id`). Raises ValueError if it is not one."""
    return _decode(line)[0]


def _decode(line: str) -> tuple[dict[str, Any], Any]:
    doc = json.loads(line, object_hook=_decode_wrapper)
    if not isinstance(doc, dict):
        raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
    return doc, doc.pop("_id", None)


def keyless_identity(doc: Mapping[str, Any], source_id: Any) -> str:
    """Where a document without the collection's key is kept, so that importing it again replaces it:
    its source `_id` (every mongoexport line has one), else a hash of its content."""
    if source_id is not None:
        return "id:" + json.dumps(source_id, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class UnreadableFile(ValueError):
    """The file itself cannot be read on (a file named .gz that is not gzip, a truncated archive); `result`:
    what the import did before it (set by `import_jsonl` before it re-raises)."""

    result: dict[str, Any]


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _lines(path: Path) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
    """(line number, text) per line; text that is not UTF-8 comes as the error, never replaced: two keys that
    differ only in their broken bytes would otherwise become one document."""
    number = 0
    try:
        with _open(path) as fh:
            for number, raw in enumerate(fh, start=1):
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (UTF-8 with BOM)
                    raw = raw[3:]
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield number, exc
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise UnreadableFile(f"{path}: unreadable after line {number} ({type(exc).__name__}: {exc})") from None


def import_jsonl(
    store: DocumentStore,
    collection: str,
    path: str | Path,
    batch_size: int = DEFAULT_BATCH,
) -> dict[str, Any]:
    """Upsert every document of a mongoexport JSON-lines file into `collection` (see module doc)."""
    key = key_field(collection)  # unknown collection -> ValueError before reading anything
    path = Path(path)
    result: dict[str, Any] = {"read": 0, "written": 0, "duplicate_lines": 0, "bad_lines": 0, "missing_key": 0,
                              "errors": []}
    batch: list[tuple[int, dict[str, Any]]] = []  # (line number, document)
    keyless: list[tuple[int, tuple[str, dict[str, Any]]]] = []
    written: set[Any] = set()  # the identity (key or keyless identity) of every document written

    def identity(item: Any) -> Any:
        return ("keyless", item[0]) if isinstance(item, tuple) else ("key", stored_key(item[key]))

    def count_written(items: list) -> None:
        for item in items:
            ident = identity(item)
            if ident in written:
                result["duplicate_lines"] += 1
            else:
                written.add(ident)
        result["written"] = len(written)

    def bad(number: int, exc: BaseException) -> None:
        result["bad_lines"] += 1
        if len(result["errors"]) < MAX_ERRORS:
            result["errors"].append({"line": number, "error": f"{type(exc).__name__}: {exc}"[:300]})

    def write(entries: list, upsert) -> None:
        if not entries:
            return
        items = [item for _, item in entries]
        try:
            upsert(items)
        except UnstorableDocument:  # rare: find the documents the store cannot hold, write the others
            items = []
            for number, item in entries:
                try:
                    upsert([item])
                    items.append(item)
                except UnstorableDocument as exc:
                    bad(number, exc)
        count_written(items)  # in line order: a key seen before is a duplicate line
        entries.clear()

    def flush() -> None:
        write(batch, lambda docs: store.upsert_many(collection, docs))
        write(keyless, lambda items: store.upsert_keyless(collection, items))

    try:
        for number, line in _lines(path):
            if isinstance(line, UnicodeDecodeError):
                result["read"] += 1
                bad(number, ValueError(f"not UTF-8: byte {line.object[line.start]:#04x} at column {line.start + 1}"))
                continue
            if not line.strip():
                continue
            result["read"] += 1
            try:
                doc, source_id = _decode(line)
            except (ValueError, RecursionError, OverflowError) as exc:  # JSONDecodeError is a ValueError
                bad(number, exc)
                continue
            if doc.get(key) is None or doc.get(key) == "":  # an empty key is no key: it would merge documents
                result["missing_key"] += 1
                keyless.append((number, (keyless_identity(doc, source_id), doc)))
            else:
                batch.append((number, doc))
            if len(batch) + len(keyless) >= batch_size:
                flush()
    except UnreadableFile as exc:  # what was read before the unreadable part is kept (importing again replaces it)
        flush()
        exc.result = result
        raise
    flush()
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse

    from hive_assets.data.store import open_store

    parser = argparse.ArgumentParser(prog="python -m hive_assets.data.store.importer", description=__doc__.split("\n")[0])
    parser.add_argument("collection")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    args = parser.parse_args(argv)
    with open_store() as store:
        print(f"importing into {store.describe()} / {args.collection}", file=sys.stderr)
        bad = 0
        for path in args.files:
            try:
                result = import_jsonl(store, args.collection, path, args.batch_size)
            except UnreadableFile as exc:
                print(f"error: {exc}", file=sys.stderr)
                result = {**exc.result, "bad_lines": exc.result["bad_lines"] + 1}
            bad += result["bad_lines"]
            print(json.dumps({"file": str(path), **result}, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

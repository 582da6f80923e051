"""The `io_manager`: asset outputs as open files under HIVE_ASSET_STORAGE, on local disk or object storage.

Dagster's default IO manager pickles outputs under `$DAGSTER_HOME/storage`, on the run pod's own disk: a
re-execution or a `validation_report` run in a new pod could not load them, and nobody could open them
without this code. This one is a `UPathIOManager` (universal-pathlib over fsspec), so the same code writes
`$HIVE_HOME/assets/...` locally and `s3://bucket/prefix/...` (s3fs) or `gs://...` (gcsfs) in production.
The file formats are `hive_assets.storage`'s; the layout is

    <base>/<asset>/<specialist>.parquet   a frame (enhanced_features)
    <base>/<asset>/<specialist>/          a collection (raw_production_data: rows.parquet, ...)
    <base>/<asset>/<specialist>.json      anything else (reports, references to MLflow models)

Credentials and endpoints never pass through here: s3fs (botocore) and gcsfs read them from the environment
or the workload identity (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, IRSA, AWS_ENDPOINT_URL_S3 for an
S3-compatible store, GOOGLE_APPLICATION_CREDENTIALS...), as pandas or DuckDB do when a person opens the files.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
from upath import UPath

from hive_assets import storage
from hive_assets.config import (
    ABSENT_BUCKET, LOCAL_STORAGE_MARKERS, PRODUCTION, REFUSED_CREDENTIALS, S3_CREDENTIAL_SETTINGS, ConfigError,
    Settings, hive_env, object_storage_problems, redact_uri, s3_credential_settings, s3_refusal,
)
from hive_assets.defs.runs.refusals import not_retried, retries_restored
from hive_assets.reachability import UNREACHABLE_RETRY_WAITS

# The format of each asset's output; an asset not named here is stored as JSON.
FORMATS: dict[str, str] = {
    "raw_production_data": storage.COLLECTION,
    "enhanced_features": storage.FRAME,
}


class OpenFormatIOManager(dg.UPathIOManager):
    """Writes each output in its asset's format (FORMATS) at `<base>/<asset>/<partition><suffix>`."""

    extension = None  # per asset: see _located

    @staticmethod
    def _format(context: dg.InputContext | dg.OutputContext) -> str:
        name = context.asset_key.path[-1] if context.has_asset_key else ""
        return FORMATS.get(name, storage.JSON)

    @staticmethod
    def _located(path: UPath, fmt: str) -> UPath:
        return path.with_name(path.name + storage.SUFFIXES[fmt])

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        fmt = self._format(context)
        target = self._located(path, fmt)
        storage.write(fmt, obj, _Files(target, directory=fmt == storage.COLLECTION))
        self._written = (target, fmt)

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, dg.MetadataValue]:
        # called by handle_output right after dump_to_path: the real location (with its suffix) replaces the
        # suffix-less `path` UPathIOManager records; no credentials are ever part of it
        target, fmt = self._written
        return {"path": dg.MetadataValue.path(str(target)), "format": dg.MetadataValue.text(fmt)}

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        fmt = self._format(context)
        located = self._located(path, fmt)
        try:
            return storage.read(fmt, _Files(located, directory=fmt == storage.COLLECTION))
        except FileNotFoundError:
            upstream = context.upstream_output
            name = upstream.asset_key.to_user_string() if upstream is not None and upstream.has_asset_key else "it"
            partition = f" for partition {context.asset_partition_key}" if context.has_asset_partitions else ""
            raise FileNotFoundError(f"no stored output of {name}{partition} at {located}: materialize {name} "
                                    "first") from None
        except storage.HalfWrittenOutput as exc:
            raise storage.HalfWrittenOutput(f"{located}: {exc}") from None


LOCAL_PROTOCOLS = ("", "file", "local")


#: seconds the bucket check waits for the store to take the connection, then for its answer (one small listing);
#: the io_manager's own reads and writes keep s3fs's timeouts (an upload of a big frame takes longer)
BUCKET_CHECK_TIMEOUT_S = 3


class ObjectStoreUnreachable(Exception):
    """The object store did not answer the bucket check at a run's setup: an outage, not a refusal (a run retry
    in a new pod may find it back, so the run's retry limit is left as it is)."""


def bucket_refusal(path: UPath, setting: str, log=None) -> str | None:
    """Why nothing can be written under the object-store `path`, one line without credentials naming what to
    fix (`setting`: the variable that names the bucket): its bucket does not exist, or the store refused the
    credentials (or none were found). From one request, of BUCKET_CHECK_TIMEOUT_S at most; None for a local
    path, a bucket these credentials may list, or an answer that says neither (AccessDenied: they may still
    write). An S3 store that does not answer is asked again after UNREACHABLE_RETRY_WAITS (each wait a warning
    on `log`), then ObjectStoreUnreachable is raised (about 33 s when every request times out)."""
    if path.protocol in LOCAL_PROTOCOLS:
        return None
    bucket, _, prefix = path.path.partition("/")
    url = f"{path.protocol}://{bucket}"
    absent = f"the bucket {url} does not exist: check {setting} (the platform never creates one)"
    if path.protocol != "s3":  # gs:// (gcsfs): its existence test alone
        try:
            exists = UPath(url, **path.storage_options).exists()
        except (OSError, ValueError):  # no answer, or refused: not a missing bucket
            return None
        return None if exists else absent

    from botocore.exceptions import NoCredentialsError

    fs, prefix = _checking_filesystem(path), prefix.strip("/")
    started, waits = time.monotonic(), UNREACHABLE_RETRY_WAITS
    for attempt in range(len(waits) + 1):
        try:
            answer = _listing_answer(fs, bucket, f"{prefix}/" if prefix else "")
        except NoCredentialsError:  # botocore found none to sign with: every request would fail the same way
            return f"no credentials for the object store at {_endpoint(fs)} ({url}): set {S3_CREDENTIAL_SETTINGS}"
        if not isinstance(answer, _NoAnswer):
            break
        down = f"the object store at {_endpoint(fs)} {answer} ({url})"
        if attempt == len(waits):  # s3fs's own retries, each read waiting 15 s, hung a run for minutes silently
            raise ObjectStoreUnreachable(
                f"{down}, {attempt + 1} times in {time.monotonic() - started:.0f} s: check AWS_ENDPOINT_URL_S3 "
                "and that the store is up; the step wrote nothing")
        if log is not None:
            log.warning(f"{down}: asked again in {waits[attempt]} s (attempt {attempt + 1} of {len(waits) + 1})")
        time.sleep(waits[attempt])
    if answer is None:
        return None
    code = answer.get("Error", {}).get("Code")
    refusal = s3_refusal(code, answer.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    if refusal == ABSENT_BUCKET:
        return absent
    if refusal == REFUSED_CREDENTIALS:
        return (f"the object store at {_endpoint(fs)} refused the credentials for {url} ({code}): check "
                f"{s3_credential_settings(code)}")
    return None


class _NoAnswer(str):
    """Why a request got no answer from the store (refused, timed out, cut), in words without the URL."""


def _checking_filesystem(path: UPath):
    """A filesystem of its own for the bucket check (not s3fs's cached one, which the reads and writes use):
    one attempt per request, BUCKET_CHECK_TIMEOUT_S to connect and to read, the same endpoint and credentials."""
    options = dict(path.storage_options)
    config = {**options.pop("config_kwargs", {}), "connect_timeout": BUCKET_CHECK_TIMEOUT_S,
              "read_timeout": BUCKET_CHECK_TIMEOUT_S, "retries": {"total_max_attempts": 1}}
    fs = type(path.fs)(**options, config_kwargs=config, skip_instance_cache=True)
    fs.retries = 1  # s3fs's own retry loop around botocore's (5 times each: a frozen store hung it over 7 minutes)
    return fs


def _listing_answer(fs, bucket: str, prefix: str) -> dict | _NoAnswer | None:
    """None when the listing succeeded, botocore's parsed error answer (a dict), or _NoAnswer (NoCredentialsError
    raised: none to sign with). A listing, not HEAD bucket: a HEAD answer has no body, so its 403 cannot tell
    a wrong key from a policy without ListBucket (s3fs's bucket `exists()` said False for both, and for a store
    that did not answer)."""
    from botocore.exceptions import (
        ConnectionError as NoConnection, ConnectTimeoutError, HTTPClientError, NoCredentialsError, ReadTimeoutError,
    )

    try:
        fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return None
    except NoCredentialsError:
        raise
    except Exception as exc:  # noqa: BLE001 - s3fs raises an answer as OSError & co. with botocore's error as
        # its cause. The server's message (a key id, on some stores) is never shown, nor botocore's (the URL)
        answer = getattr(exc.__cause__, "response", None) or getattr(exc, "response", None)
        if isinstance(answer, dict):
            return answer
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
            return _NoAnswer(f"did not answer within {BUCKET_CHECK_TIMEOUT_S} s")
        if isinstance(exc, NoConnection):
            return _NoAnswer(f"could not be reached ({type(exc).__name__})")
        if isinstance(exc, (HTTPClientError, ConnectionError)):
            return _NoAnswer(f"dropped the connection without an answer ({type(exc).__name__})")
        return {}  # anything else (a malformed answer...): the writes' own error says it


def _endpoint(fs) -> str:
    """The S3 endpoint s3fs's client calls (AWS_ENDPOINT_URL_S3, or AWS's own for the region)."""
    endpoint = getattr(getattr(getattr(fs, "s3", None), "meta", None), "endpoint_url", None)
    return redact_uri(endpoint) if endpoint else "the S3 endpoint"


class _Files:
    """The byte reader/writer `hive_assets.storage` codecs use, over one UPath (a file, or a directory of them)."""

    def __init__(self, path: UPath, directory: bool):
        self.path, self.directory = path, directory

    def _at(self, name: str | None) -> UPath:
        return self.path / name if self.directory and name else self.path

    def write(self, data: bytes, name: str | None = None) -> None:
        target = self._at(name)
        if target.protocol in LOCAL_PROTOCOLS:
            target.parent.mkdir(parents=True, exist_ok=True)
            # a local file written in place is truncated by a crash or a full disk: replace it whole (an object
            # store's put is already all or nothing)
            local = Path(target.path)
            partial = local.with_name(f".{local.name}.{uuid.uuid4().hex}.partial")
            try:
                partial.write_bytes(data)
                os.replace(partial, local)
            finally:
                partial.unlink(missing_ok=True)
            return
        # an object store has no directories to make (s3fs's mkdir of the prefix creates a missing bucket)
        target.write_bytes(data)

    def read(self, name: str | None = None) -> bytes:
        return self._at(name).read_bytes()


class AssetStorage(dg.ConfigurableIOManagerFactory):
    """The `io_manager` resource. `base` defaults to HIVE_ASSET_STORAGE (else `$HIVE_HOME/assets`)."""

    base: str = ""

    def create_io_manager(self, context) -> OpenFormatIOManager:
        try:
            io_manager = self._io_manager(context)
        except ConfigError:  # a setting, a bucket, credentials: the same in the new pod a run retry would start
            not_retried(context)
            raise
        retries_restored(context)
        return io_manager

    def _io_manager(self, context) -> OpenFormatIOManager:
        settings = Settings.from_env()  # HIVE_ENV=production: a ConfigError rather than local disk
        if hive_env() == PRODUCTION:
            problems = object_storage_problems("the io_manager's base", self.base) if self.base else []
            if why := local_instance(getattr(context, "instance", None)):
                problems.append(why)
            if problems:  # a run's config, or a `dagster` CLI on a pod's own instance: the outputs would overwrite
                # the partition's latest where the deployment's UI, sensors and run history never see the run
                raise ConfigError(f"HIVE_ENV=production refuses {'; '.join(problems)}; nothing was written")
        base = UPath(replace(settings, asset_storage_uri=self.base).asset_storage if self.base
                     else settings.asset_storage)
        setting = "HIVE_ASSET_STORAGE" if self.base in ("", os.environ.get("HIVE_ASSET_STORAGE")) else \
            "the io_manager's base"  # (the deployment's base is HIVE_ASSET_STORAGE, an EnvVar)
        # a typo in the bucket's name: s3fs (and SeaweedFS on a put) created a new, unconfigured bucket (on AWS:
        # without the real one's encryption, lifecycle or versioning), the run wrote there, and a read said to
        # materialize the upstream asset first, into that same typo. Wrong credentials: the step ran, its write
        # failed with botocore's traceback, and its retry policy ran it twice more (then a HEAD bucket called
        # them an absent bucket)
        if refusal := bucket_refusal(base, setting, getattr(context, "log", None)):
            raise ConfigError(f"{refusal}; nothing was written")
        return OpenFormatIOManager(base)


def local_instance(instance: dg.DagsterInstance | None) -> str | None:
    """Why a run's Dagster instance is not a deployment's (it keeps runs or events on this disk), or None (a
    PostgreSQL instance; or none, as in a bare `build_resources`)."""
    if instance is None:
        return None
    if instance.is_ephemeral:
        return "an ephemeral Dagster instance (DAGSTER_HOME is not set: point it at the deployment's instance)"
    kinds = sorted({type(instance.run_storage).__name__, type(instance.event_log_storage).__name__})
    if on_disk := [k for k in kinds if any(marker in k.lower() for marker in LOCAL_STORAGE_MARKERS)]:
        return (f"a Dagster instance that keeps runs on this disk ({', '.join(on_disk)}, DAGSTER_HOME="
                f"{os.environ.get('DAGSTER_HOME', '')}): use the deployment's instance (PostgreSQL: "
                "deploy/dagster.yaml)")
    return None

"""Resources: the document store, MLflow, and the platform's settings (Kafka's connection among them).

Credentials (MONGODB_URI, MLFLOW_TRACKING_URI, KAFKA_BOOTSTRAP_SERVERS, KAFKA_SASL_USERNAME,
KAFKA_SASL_PASSWORD, KAFKA_SSL_KEY_PASSWORD) are bound with `dg.EnvVar` when set, so Dagster shows the
variable's name, never its value (a credential typed into a run's resources config instead is refused: Dagster
would keep it with the run). Unset means the embedded default, except under HIVE_ENV=production where
`Settings.from_env()` refuses it. The `io_manager` stores asset outputs as open files under HIVE_ASSET_STORAGE
(`defs/storage.py`).
"""


import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import urlsplit

import dagster as dg

from hive_assets.config import (
    DEFAULT_EXPERIMENT_NAME, DEFAULT_MONGODB_DATABASE, KAFKA_CREDENTIALS, KAFKA_SECURITY_ENV, PRODUCTION, ConfigError,
    KafkaSecurity, Settings, hive_env, mongodb_uri_problems, redact_uri, registry_uri_problems,
)
from hive_assets.data import DocumentStore, StoreUnavailable, open_store
from hive_assets.defs.runs.refusals import not_retried
from hive_assets.defs.runs.run_config import typed_credentials
from hive_assets.defs.storage import AssetStorage
from hive_assets.reachability import UNREACHABLE_RETRY_WAITS, Refusal, registry_down

#: seconds before each retry of a step whose document store stopped answering: a restart or failover of about a
#: minute is ridden out (attempts at about 0, 15, 40 and 85 s, each failing after the store's 5 s timeout)
STORE_DOWN_RETRY_WAITS = (10, 20, 40)


def retried_while_down(context: dg.OpExecutionContext | dg.AssetExecutionContext, down: str,
                       waits: tuple[int, ...]) -> NoReturn:
    """Request the step's retry after `waits[attempt]` seconds, then, at the last attempt, fail it: in one line,
    `down` (a message with no credential), the attempt's number after it. Whatever the step's own retry policy:
    the outage is the cause, and each side effect of a step is idempotent, so a retry completes the work."""
    attempt = getattr(context, "retry_number", 0)  # a step invoked directly (a test's context) has no retries
    failure = dg.Failure(f"{down} (attempt {attempt + 1} of {len(waits) + 1})", allow_retries=False)
    if attempt >= len(waits):  # the last: the cause itself ends the step (the run's failure said only
        raise failure          # "Exceeded max_retries of 3", with a stack trace)
    raise dg.RetryRequested(max_retries=len(waits), seconds_to_wait=waits[attempt]) from failure


def _env_or_default(name: str) -> str | dg.EnvVar:
    return dg.EnvVar(name) if os.environ.get(name) else ""


def refuse_local_fallback(problems: list[str], instead: str) -> None:
    """Under HIVE_ENV=production, a resource's config that names no production service (a run's config left
    the store's URI empty, or named a `sqlite:` registry): a ConfigError, before anything is read or written.
    It ran on `instead` and overwrote the partition's outputs in the asset storage with what it found there."""
    if problems and hive_env() == PRODUCTION:
        raise ConfigError(f"HIVE_ENV=production refuses {'; '.join(problems)}: the run would use {instead}; "
                          "nothing was read or written")


def refuse_typed_credentials(context: dg.InitResourceContext) -> None:
    """Refuse a run whose resources config holds a credential typed in as text, before it reads anything:
    Dagster stores the run's config with the run, in plain text, shown in the UI (run_config.typed_credentials)."""
    run = getattr(context, "dagster_run", None)
    if run is None or not (typed := typed_credentials(run.run_config)):
        return
    not_retried(context)
    raise ConfigError(f"{', '.join(typed)} holds a credential typed into the run's config, which Dagster keeps "
                      "with the run in plain text for anyone who can see it: give the field as {env: VARIABLE} "
                      "(or leave it out: the deployment reads the environment) and change that credential; "
                      "nothing was read or written")


class DocumentStoreResource(dg.ConfigurableResource):
    """MongoDB/FerretDB when `mongodb_uri` is set, else the embedded SQLite store under HIVE_HOME."""

    mongodb_uri: str = ""
    database: str = DEFAULT_MONGODB_DATABASE

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        refuse_typed_credentials(context)
        try:
            self.settings()
        except ConfigError:  # the same in the pod a retry would start
            not_retried(context)
            raise

    def settings(self) -> Settings:
        base = Settings.from_env()
        # stripped as Settings strips it (an EnvVar keeps a trailing space, which pymongo took for a database name)
        uri = self.mongodb_uri.strip()
        refuse_local_fallback(mongodb_uri_problems("the document_store resource's mongodb_uri", uri),
                              "the embedded SQLite store on the run pod's disk")
        return Settings(**{**base.__dict__, "mongodb_uri": uri, "mongodb_database": self.database})

    def open(self) -> DocumentStore:
        """The store, for a sensor (which skips its tick when the store is down); a step uses `opened_in_step`."""
        return open_store(self.settings())

    @contextmanager
    def opened_in_step(self, context: dg.OpExecutionContext | dg.AssetExecutionContext) -> Iterator[DocumentStore]:
        """The store, for an asset or op: when it stops answering inside the block (StoreUnavailable), the step
        is retried after STORE_DOWN_RETRY_WAITS, then fails, in one line naming the store, never the password.
        It failed at once with a stack trace, and steps without a retry policy (validation, A/B looks) failed
        the run."""
        with self.outage_retried(context), self.open() as store:
            yield store

    @contextmanager
    def outage_retried(self, context: dg.OpExecutionContext | dg.AssetExecutionContext) -> Iterator[None]:
        """As `opened_in_step`, around a block that reaches the store otherwise too (a run lease's take and
        release read MONGODB_URI)."""
        try:
            yield
        except StoreUnavailable as exc:
            down = " ".join(str(exc).split())  # names host and port only (`MongoStore._unavailable`)
        else:
            return
        retried_while_down(context, f"document store {self.describe()} stopped answering: {down}",
                           STORE_DOWN_RETRY_WAITS)

    def describe(self) -> str:
        uri = self.mongodb_uri.strip()
        return redact_uri(uri) if uri else f"sqlite:{self.settings().store_path}"


class MlflowResource(dg.ConfigurableResource):
    """One MlflowClient per run; the experiment is created on first use with a HIVE_HOME artifact root."""

    tracking_uri: str = ""
    experiment_name: str = DEFAULT_EXPERIMENT_NAME

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        refuse_typed_credentials(context)
        try:
            self.uri  # noqa: B018 - its checks, before the step writes anything
        except ConfigError:
            not_retried(context)
            raise

    @property
    def uri(self) -> str:
        if self.tracking_uri:  # a run's config may name another registry than MLFLOW_TRACKING_URI
            problems = registry_uri_problems("the mlflow resource's tracking_uri", self.tracking_uri.strip())
            refuse_local_fallback(problems, "a registry that is no MLflow server (on the run pod's disk)")
        return self.tracking_uri or Settings.from_env().mlflow_uri

    def client(self):
        from hive_assets.registry import client_for, moved_home_problem

        # a moved home: the run would read the old place's files and write new ones there
        if not self.tracking_uri and (moved := moved_home_problem(Settings.from_env())):
            raise ConfigError(f"{moved}: run `hive doctor --fix`")
        return client_for(self.uri)

    def require_reachable(self, context: dg.OpExecutionContext | dg.AssetExecutionContext) -> None:
        """Call first in a step that uses MLflow, before it writes anything: when MLflow does not answer one
        health request (3 s, no credential sent), the step is retried after UNREACHABLE_RETRY_WAITS, then fails
        in one line naming the host, never the password. Retried whatever the step's own policy: nothing was
        done yet, and steps without one (validation, A/B looks) survived a short outage by MLflow's own retries.
        When it answers, one API request with the client's credentials: a refusal (wrong credentials, no API
        at the URI's path) fails the step at once. An outage later in the step is MLflow's client's to retry."""
        if (down := registry_down(self.uri)) is None:
            return
        if isinstance(down, Refusal):  # an answer (credentials refused, no API at this path): no retry helps
            raise dg.Failure(f"{down}; the step wrote nothing: {down.remedy}", allow_retries=False)
        # "the step wrote nothing" was wrong after an attempt that MLflow left mid-way (its MLflow run left RUNNING)
        wrote = "the step wrote nothing" if getattr(context, "retry_number", 0) == 0 else (
            "this attempt wrote nothing (an earlier one, cut by the outage, may have left its MLflow run RUNNING: "
            "`hive doctor` lists it)")
        retried_while_down(context, f"{down}; {wrote}", UNREACHABLE_RETRY_WAITS)

    def experiment_id(self, client) -> str:
        from hive_assets.registry import ensure_experiment

        # a server keeps its own artifact root; the scheme's case does not matter (production accepts
        # `HTTPS://`, which got a file:// root on the run pod's disk)
        server = urlsplit(self.tracking_uri).scheme.lower() in ("http", "https")
        root = None if server else Settings.from_env().mlflow_artifact_root
        return ensure_experiment(client, self.experiment_name, root)


class PlatformSettings(dg.ConfigurableResource):
    """Knobs of SPEC section 9, and the Kafka connection (its credentials bound with `dg.EnvVar`)."""

    ab_testing_enabled: bool = True
    ab_test_default_traffic: float = 10.0
    data_collection_days: int = 90
    min_confidence: float = 0.7
    kafka_bootstrap_servers: str = ""
    kafka_timeout_s: float = 30.0  # each wait for the broker (connect, offsets, next messages): a down one fails
    # TLS and SASL (hive_assets.config.KafkaSecurity); empty: PLAINTEXT
    kafka_security_protocol: str = ""
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_ca_location: str = ""
    kafka_ssl_certificate_location: str = ""
    kafka_ssl_key_location: str = ""
    kafka_ssl_key_password: str = ""

    def kafka_security(self) -> KafkaSecurity:
        """The Kafka client's security settings; ConfigError naming each variable that is wrong."""
        return KafkaSecurity.from_values(**{name: getattr(self, f"kafka_{name}") for name in KAFKA_SECURITY_ENV})

    @classmethod
    def from_env(cls):
        s = Settings.from_env()  # validates the Kafka settings too: a wrong one fails the code location's load
        kafka = {f"kafka_{name}": (_env_or_default(variable) if name in KAFKA_CREDENTIALS
                                   else getattr(s.kafka_security, name) if os.environ.get(variable, "").strip()
                                   else "")
                 for name, variable in KAFKA_SECURITY_ENV.items()}
        return cls(
            ab_testing_enabled=s.ab_testing_enabled,
            ab_test_default_traffic=s.ab_test_default_traffic,
            data_collection_days=s.data_collection_days,
            min_confidence=s.min_confidence,
            kafka_bootstrap_servers=_env_or_default("KAFKA_BOOTSTRAP_SERVERS"),
            **kafka,
        )


def default_resources() -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManagerFactory]:
    return {
        "io_manager": AssetStorage(base=_env_or_default("HIVE_ASSET_STORAGE")),
        "document_store": DocumentStoreResource(
            mongodb_uri=_env_or_default("MONGODB_URI"),
            database=Settings.from_env().mongodb_database,
        ),
        "mlflow": MlflowResource(
            tracking_uri=_env_or_default("MLFLOW_TRACKING_URI"),
            experiment_name=Settings.from_env().mlflow_experiment_name,
        ),
        "platform": PlatformSettings.from_env(),
    }

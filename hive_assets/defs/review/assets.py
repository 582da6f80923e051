"""review_queue: per specialist, the opinions whose human label should teach the champion the most."""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from hive_assets import clock, registry, review
from hive_assets.config import review_queue_daily_budgets
from hive_assets.data import TrustPolicy
from hive_assets.defs import _ui
from hive_assets.defs.catalog import OWNERS, REVIEW
from hive_assets.defs.data.assets import audit_reader_for
from hive_assets.defs.partitions import specialist_partitions
from hive_assets.defs.resources import DocumentStoreResource, MlflowResource, PlatformSettings
from hive_assets.defs.runs.lease import RUN_LEASE, RunLeaseResource
from hive_assets.defs.runs.run_config import step_config
from hive_assets.rollout import running_test

QUEUE_SHOWN = 20  # rows of the open queue in the asset's metadata table


@step_config("review_queue")
class ReviewQueueConfig(dg.Config):
    """The queue's budget and shape, per run (a run is one specialist)."""

    daily_budget: int | None = Field(
        None, ge=0, description="Review requests per specialist per UTC day (0: request nothing). Unset: "
                                "REVIEW_QUEUE_DAILY_BUDGET for this specialist, as the daily sensor's runs "
                                "(default 100).")
    random_share: float = Field(review.DEFAULT_RANDOM_SHARE, ge=0.0, le=1.0,
                                description="Share of each day's budget drawn at random, whatever the opinion's "
                                            "difficulty (marked `random`): the only requested labels metrics, "
                                            "gates and A/B tests use.")
    # bounded: 10 years past the latest clock (2250) is still a time the readers can read (to 2260); beyond,
    # the run wrote requests every reader calls malformed, or failed on a timedelta overflow
    expiry_hours: float = Field(review.DEFAULT_EXPIRY / timedelta(hours=1), gt=0, le=87_600,
                                description="Hours after which an unanswered request expires (at most 87,600: "
                                            "10 years).")
    candidate_days: int = Field(2, ge=1, le=36_500, description="Unlabelled opinions of the last N days are "
                                                                "candidates (1 to 36,500).")


QUEUE_COLUMNS = [
    ("rank", "int", "position in its day's queue"), ("opinion_id", "string", "the opinion to label"),
    ("score", "float", "priority (uncertainty + disagreement + drift)"), ("reason", "string", "largest term, or random"),
    ("selection", "string", "active (chosen) or random (uniform share)"), ("expires_at", "string", "UTC"),
]


@dg.asset(partitions_def=specialist_partitions, group_name=REVIEW, kinds={"python", "mlflow"}, owners=OWNERS,
          resource_defs={"run_lease": RUN_LEASE})  # one refresh of a specialist's queue at a time
def review_queue(context: dg.AssetExecutionContext, config: ReviewQueueConfig, document_store: DocumentStoreResource,
                 mlflow: MlflowResource, platform: PlatformSettings,
                 run_lease: RunLeaseResource) -> dg.MaterializeResult:
    """Links answered review requests, expires old ones, and requests today's remaining budget of labels
    (`review_requests` documents) for the recent unlabelled opinions the champion is least sure of, the
    champion and challenger disagree on while a test runs, or that fall where drift was seen, spread out so
    near-duplicates are asked once; a fixed share drawn uniformly at random. Without a champion it links
    and expires only."""
    specialist, now = context.partition_key, clock.now()
    # a manual run without config spends what the daily sensor's runs spend (a malformed setting fails here)
    daily_budget = config.daily_budget if config.daily_budget is not None else review_queue_daily_budgets()[specialist]
    mlflow.require_reachable(context)  # before answers are linked, requests expired or asked for
    client = mlflow.client()
    with document_store.opened_in_step(context) as store:
        # first, whatever follows (no champion, a version that cannot be loaded): answers and expiries move on
        linked = review.link_answers(store, specialist, now, TrustPolicy())
        expired = review.expire(store, specialist, now)
        champion_version = registry.alias_version(client, specialist, registry.CHAMPION)
        champion, skipped = None, "no champion registered"
        if champion_version is not None:
            champion, skipped = _load(client, champion_version, "champion")
        if champion is None:  # nothing to score the opinions with: no request
            read = review.read_open_queue(store, specialist, now)
            say = context.log.info if champion_version is None else context.log.warning  # no champion: a normal state
            say(f"{specialist}: {skipped}, no review request; {linked} answered, {expired} expired; "
                f"{len(read.requests)} open")
            _warn_malformed(context, specialist, read)
            return dg.MaterializeResult(metadata={
                "requested": 0, "skipped": skipped, "answered_since_last": linked, "expired_since_last": expired,
                "open": len(read.requests), **_malformed_metadata(read)})
        test = running_test(store, specialist)
        challenger, not_scored = None, None
        if test is not None:
            challenger, not_scored = _load_challenger(client, specialist, str(test["challenger_version"]))
        if not_scored:  # the A/B look stops such a test; until then the queue goes on as without a test
            context.log.warning(f"{specialist}: {not_scored}; review requests scored with champion "
                                f"v{champion_version.version} only (no disagreement term)")
        result = review.refresh_from_store(
            store, specialist, now, champion, challenger=challenger, model_version=str(champion_version.version),
            candidate_days=config.candidate_days, min_confidence=platform.min_confidence, trust=TrustPolicy(),
            audit_reader=audit_reader_for(platform, store), daily_budget=daily_budget,
            random_share=config.random_share, expiry=timedelta(hours=config.expiry_hours),
            before_write=run_lease.check)  # a run that lost its lease must not spend the budget beside the new holder
        read = review.read_open_queue(store, specialist, now)
    queue = read.requests
    linked, expired = linked + result.linked, expired + result.expired
    context.log.info(f"{specialist}: {result.requested} requested ({result.by_reason}), {linked} answered, "
                     f"{expired} expired; {len(queue)} open")
    _warn_malformed(context, specialist, read)
    return dg.MaterializeResult(metadata=_ui.for_display({
        "requested": result.requested, "answered_since_last": linked, "expired_since_last": expired,
        "open": len(queue), "candidates": result.candidates, "budget_left_before": result.budget_left,
        "by_reason": dg.MetadataValue.json(result.by_reason),
        "challenger_version": str(test["challenger_version"]) if test is not None else None,
        **({"challenger_not_scored": not_scored} if not_scored else {}), **_malformed_metadata(read),
        "queue": _ui.table(QUEUE_COLUMNS, [
            {"rank": d["rank"], "opinion_id": d["opinion_id"], "score": float(d["score"]), "reason": d["reason"],
             "selection": d["selection"], "expires_at": str(d["expires_at"])} for d in queue[:QUEUE_SHOWN]]),
    }))


def _load(client, version, role: str):
    """(the model, None), or (None, why it cannot be loaded) in one line: as the drift check and the
    validation report treat a version that fails to load, this refresh's concern only."""
    from hive_assets.training import SchemaMismatch

    try:
        return registry.load_version_model(client, version), None
    except (SchemaMismatch, registry.ArtifactError) as exc:
        return None, f"{role} {exc}"


def _load_challenger(client, specialist: str, number: str):
    version = registry.model_version(client, specialist, number)
    if version is None:  # deleted by hand while its test runs (`stop_if_arms_changed` stops the test at its look)
        return None, f"challenger v{number} of the running test was deleted from the registry"
    return _load(client, version, "challenger")


def _malformed_metadata(read: review.OpenQueue) -> dict:
    return {"malformed_left_out": len(read.malformed)} if read.malformed else {}


def _warn_malformed(context: dg.AssetExecutionContext, specialist: str, read: review.OpenQueue) -> None:
    if read.malformed:
        context.log.warning(f"{specialist}: {review.describe_malformed(read.malformed)}")

"""Refusals at a run's setup that no retry of the run changes: a setting, a bucket, run config out of range, a
lease another run holds. Raised while resources are set up, before any step, Dagster records them as a run
exception, which the deployment's run retries (deploy/dagster.yaml `run_retries`, `retry_on_asset_or_op_failure:
false` spares only step failures) started again in a new pod, to be refused the same way in one more run."""

from __future__ import annotations

import dagster as dg

# Dagster's run tag for the run's own retry limit (dagster._core.storage.tags.MAX_RETRIES_TAG); it reads the run's
# tags again when the run fails, so a tag set before the refusal is raised decides `dagster/will_retry`
MAX_RETRIES_TAG = "dagster/max_retries"
# why this run's limit is 0: a re-execution copies the run's tags, this one included, and gets the limit back
# when its own setup passes (`retries_restored`)
SETUP_REFUSED_TAG = "hive/setup_refused"
# the run's own limit before a refusal set it to 0 (a run launched with `dagster/max_retries`), given back
# instead of the instance's default
MAX_RETRIES_BEFORE_TAG = "hive/max_retries_before_refusal"


def not_retried(context: dg.InitResourceContext) -> None:
    """Set the run's retry limit to 0 (shown with its tags in the UI) before a setup refusal is raised."""
    run, instance = getattr(context, "dagster_run", None), getattr(context, "instance", None)
    if run is not None and instance is not None:
        tags = {MAX_RETRIES_TAG: "0", SETUP_REFUSED_TAG: "true"}
        # a refused re-execution carries the first refusal's 0: the limit to give back is still the one before
        if run.tags.get(SETUP_REFUSED_TAG) != "true" and MAX_RETRIES_TAG in run.tags:
            tags[MAX_RETRIES_BEFORE_TAG] = run.tags[MAX_RETRIES_TAG]
        instance.add_run_tags(run.run_id, tags)


def retries_restored(context: dg.InitResourceContext) -> None:
    """A setup that passed, in a re-execution of a refused run (its tags copied): the run's retry limit back (its
    own, else the instance's), so a worker that dies in this run is retried as any other's."""
    run, instance = getattr(context, "dagster_run", None), getattr(context, "instance", None)
    if run is not None and instance is not None and run.tags.get(SETUP_REFUSED_TAG) == "true":
        limit = run.tags.get(MAX_RETRIES_BEFORE_TAG) or str(instance.run_retries_max_retries)
        instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: limit, SETUP_REFUSED_TAG: "false"})

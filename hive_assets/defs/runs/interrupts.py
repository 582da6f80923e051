"""A step with a retry policy under the `hive` command: Ctrl-C fails it instead of retrying it
(`hive_assets.interrupts` says why)."""

from __future__ import annotations

import dagster as dg

from hive_assets.interrupts import signalled


def no_retry_after_ctrl_c() -> None:
    """Fail this attempt, without a retry, once the `hive` command running it was told to stop."""
    if signalled():
        raise dg.Failure("interrupted (Ctrl-C or SIGTERM): the command stops, this step is not retried",
                         allow_retries=False)

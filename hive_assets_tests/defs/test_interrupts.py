"""Ctrl-C during an in-process run stops the command (`hive loop`'s daemon, the CLI's runs), not only the run:
real runs that send the process a real SIGINT, against runs that fail for another reason."""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import datetime, timezone

import dagster as dg
import pytest

from hive_assets import interrupts
from hive_assets.defs.runs.interrupts import no_retry_after_ctrl_c
from hive_assets.interrupts import stop_if_interrupted, was_interrupted
from hive_assets.defs.simulator.daemon import InProcessDaemon


@dg.op
def pressed_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends; Dagster raises it in the step
    time.sleep(30)
    raise AssertionError("the interrupt never arrived")


@dg.op
def broken() -> None:
    raise ValueError("a bug, not an interrupt")


@dg.job
def interrupted_job():
    pressed_ctrl_c()


@dg.job
def failing_job():
    broken()


class _CtrlCAtTheEnd(logging.Handler):
    """Ctrl-C while Dagster writes the run's last event: framework code, where Dagster only records a SIGINT
    (user code raises it), and forgets it when the run ends."""

    def emit(self, record):
        if "Finished execution of run" in record.getMessage():
            os.kill(os.getpid(), signal.SIGINT)


@dg.logger
def ctrl_c_at_the_end(_):
    log = logging.getLogger("ctrl-c-at-the-end")
    log.setLevel(logging.DEBUG)
    log.handlers = [_CtrlCAtTheEnd()]
    return log


@dg.op
def quick() -> None:
    pass


@dg.job(logger_defs={"ctrl_c": ctrl_c_at_the_end})
def interrupted_at_the_end():
    quick()


@dg.op(retry_policy=dg.RetryPolicy(max_retries=2, delay=0))
def retried(context) -> int:
    no_retry_after_ctrl_c()  # as the assets with a retry policy begin
    if context.retry_number == 0:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
    return context.retry_number


@dg.job
def retried_after_ctrl_c():
    retried()


AT_THE_END = {"loggers": {"ctrl_c": {}}}
DEFS = dg.Definitions(jobs=[interrupted_job, failing_job, interrupted_at_the_end])


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_an_interrupted_run_is_told_from_a_failed_one(instance):
    started = time.monotonic()
    interrupted = interrupted_job.execute_in_process(instance=instance, raise_on_error=False)
    assert time.monotonic() - started < 20  # the signal ended the step; it did not sleep it out
    assert not interrupted.success and was_interrupted(interrupted)
    failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success and not was_interrupted(failed)
    assert stop_if_interrupted(failed) is failed
    with pytest.raises(KeyboardInterrupt):
        stop_if_interrupted(interrupted)
    # the interrupted run is recorded as failed, not left open for `hive doctor`
    assert instance.get_run_by_id(interrupted.run_id).status == dg.DagsterRunStatus.FAILURE


def test_the_loop_s_daemon_stops_at_an_interrupted_run_and_goes_on_after_a_failed_one(instance):
    daemon = InProcessDaemon(instance, DEFS)
    now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    run = daemon.launch(now, "failing_job", dg.RunRequest())
    assert run is not None and not run.success
    with pytest.raises(KeyboardInterrupt):
        daemon.launch(now, "interrupted_job", dg.RunRequest())
    runs = instance.get_runs(dg.RunsFilter(job_name="interrupted_job"))
    assert [r.status for r in runs] == [dg.DagsterRunStatus.FAILURE]


def _unwatch() -> None:
    signal.set_wakeup_fd(-1)
    for fd in interrupts._pipe.values():  # noqa: SLF001
        os.close(fd)
    interrupts._pipe.clear()  # noqa: SLF001
    interrupts._pending["stop"] = False  # noqa: SLF001


@pytest.fixture
def watching():
    """`interrupts.watch()` as the console script arms it, undone afterwards (it is process-wide)."""
    assert interrupts.watch()
    yield
    _unwatch()


def test_a_signal_dagster_records_but_never_raises_still_stops_the_command(instance, watching):
    result = interrupted_at_the_end.execute_in_process(instance=instance, raise_on_error=False, run_config=AT_THE_END)
    assert result.success and not was_interrupted(result)  # Dagster forgot it: the run succeeded
    with pytest.raises(KeyboardInterrupt):
        stop_if_interrupted(result)
    again = interrupted_at_the_end.execute_in_process(instance=instance, raise_on_error=False, run_config=AT_THE_END)
    with pytest.raises(KeyboardInterrupt):  # each signal is seen once, by the run it arrived in
        stop_if_interrupted(again)
    calm = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert stop_if_interrupted(calm) is calm


def test_dagster_retries_an_interrupted_step_but_not_under_hive(instance):
    """Dagster retries a step with a retry policy that an interrupt cut short (a preempted pod's run carries
    on): without `watch()` that stands; under the `hive` command, Ctrl-C fails the retry and the run."""
    carried_on = retried_after_ctrl_c.execute_in_process(instance=instance, raise_on_error=False)
    assert carried_on.success and carried_on.output_for_node("retried") == 1
    assert interrupts.watch()
    try:
        started = time.monotonic()
        stopped = retried_after_ctrl_c.execute_in_process(instance=instance, raise_on_error=False)
        assert time.monotonic() - started < 20
        assert not stopped.success
        failure = stopped.get_step_failure_events()[-1].step_failure_data.user_failure_data
        assert "this step is not retried" in failure.description
        with pytest.raises(KeyboardInterrupt):
            stop_if_interrupted(stopped)
    finally:
        _unwatch()

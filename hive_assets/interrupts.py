"""Ctrl-C during an in-process run stops the `hive` command, not only that run (no dagster import here: the
CLI loads this before it knows whether the verb needs Dagster).

`execute_in_process` and `dg.materialize` turn SIGINT (and SIGTERM, which Dagster maps to it) into
`DagsterExecutionInterruptedError` inside the run's steps, mark the run failed ("interrupted
unexpectedly") and, with `raise_on_error=False`, return a result instead of raising. A caller that runs
several runs (the CLI over five specialists, `hive loop`'s daemon) would go on to the next one: the user's
Ctrl-C would cost one run and stop nothing. Worse, a signal that arrives while Dagster only records it
(between steps, while it writes events) is forgotten when the run ends, and the run succeeds.

And a step with a retry policy that the interrupt cuts short is retried (Dagster's choice, right for a
preempted pod): the run then goes on for as long as the rest of a retrain takes.

`watch()` (the `hive` console script calls it first) has Python write every handled signal's number to a
pipe of ours (`signal.set_wakeup_fd`: at the C level, whichever Python handler Dagster has installed at the
time). `stop_if_interrupted` raises KeyboardInterrupt after a run that was interrupted or during which SIGINT
or SIGTERM arrived, `stop_if_signalled()` wherever a command may stop (`hive loop` after each hour, the CLI
after its verb), and `hive_assets.defs.runs.interrupts.no_retry_after_ctrl_c()`, first in each asset with a
retry policy, fails the attempt without a retry once one arrived. Without `watch()` (the daemon's runs,
`dagster dev`, Kubernetes) only a run's own result counts, and Dagster's retries stand.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

_INTERRUPTIONS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_pipe: dict[str, int] = {}
_pending = {"stop": False}  # a stop signal was read from the pipe and no KeyboardInterrupt raised for it yet


def watch() -> bool:
    """Record SIGINT and SIGTERM from now on, whoever handles them; False when it cannot (not the main
    thread, or another wakeup fd is set, e.g. an asyncio loop's: then only an interrupted run stops)."""
    if _pipe or threading.current_thread() is not threading.main_thread():
        return bool(_pipe)
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    if signal.set_wakeup_fd(write, warn_on_full_buffer=False) != -1:  # someone else's: give it back
        signal.set_wakeup_fd(-1)
        os.close(read)
        os.close(write)
        return False
    _pipe.update(read=read, write=write)
    return True


def signalled() -> bool:
    """Whether SIGINT or SIGTERM arrived (after `watch()`) and `stop_if_interrupted` has not stopped for it."""
    seen = b""
    while "read" in _pipe:
        try:
            chunk = os.read(_pipe["read"], 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        seen += chunk
    if any(number in _STOP_SIGNALS for number in seen):
        _pending["stop"] = True
    return _pending["stop"]


def was_interrupted(result: Any) -> bool:
    """Whether the in-process run of `result` ended because the process was interrupted."""
    if result.success:
        return False
    failures = result.filter_events(lambda event: event.is_run_failure)
    data = failures[0].event_specific_data if failures else None
    error = getattr(data, "error", None)
    reason = getattr(getattr(data, "failure_reason", None), "value", None)  # dagster's RunFailureReason
    return (reason == "UNEXPECTED_TERMINATION"
            or (error is not None and error.cls_name in _INTERRUPTIONS))


def stop_if_interrupted(result: Any) -> Any:
    """`result`, unless its run was interrupted or a stop signal arrived meanwhile: then KeyboardInterrupt, so
    the command stops there."""
    if signalled() or was_interrupted(result):
        _pending["stop"] = False
        raise KeyboardInterrupt(f"interrupted during run {result.run_id}")
    return result


def stop_if_signalled() -> None:
    """KeyboardInterrupt if a stop signal arrived that nothing has stopped for: Python runs its handler at
    the next bytecode, which may be in a finalizer or weakref callback, where the KeyboardInterrupt is
    printed as "Exception ignored" and dropped (seen in `hive loop`)."""
    if signalled():
        _pending["stop"] = False
        raise KeyboardInterrupt("interrupted")

"""Pausing CPython's cyclic garbage collector around work that builds many containers at once.

Plans and documents are trees: reference counting frees them, the cyclic collector finds nothing in
them. But while thousands of them are alive, every allocation burst makes it re-traverse them (and, in a
Dagster process, the whole heap of Dagster, MLflow and scikit-learn). Measured on a closed-loop home
(6,028 plans of business, 29 MB of JSON), decoding them from the stored collection took 0.70-0.82 s with
the collector on and 0.12 s paused, and the features step that loads them 2.4 s before, 1.1 s after;
collection paused is 2.5-4x faster (issue 23). The features' own walk (C flattener) gains nothing.

When the pause ends, what was built meanwhile is moved to the oldest generation (`gc.freeze()` then
`gc.unfreeze()`: two list splices, no traversal). Left in the youngest, the decoded plans were traversed
by the next young collections that any allocation triggers, once per generation, while the features and
the training steps ran: the five retrains' steps of a closed-loop home took 32.2 s of CPU as of day 1 and
48.1 s as of day 6 with the plain pause, 24.8 s and 40.5 s with the move (BENCHMARKS.md, issue 23)."""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def cyclic_gc_paused(move_to_oldest: bool = True):
    """Usable as a context manager or a decorator; restores the collector's state (nested uses keep it
    paused until the outermost one ends) and moves what is alive to the oldest generation. Nothing is
    lost: cycles made meanwhile are collected by the next full collection. A process that froze objects
    itself (a pre-fork server) keeps them frozen: the move is skipped then, since unfreezing is global.
    `move_to_oldest=False` only pauses: for short-lived trees on a path a long-lived server takes per
    request, whose young garbage the move would keep from the young collections."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if move_to_oldest and gc.get_freeze_count() == 0:
                gc.freeze()  # every tracked object to the permanent generation...
                gc.unfreeze()  # ...and back into the oldest one
            gc.enable()

"""A/B routing shared by serving pods, the simulator and the platform (SPEC section 7).

A unit's bucket is a deterministic hash of (test salt, intent_id) into [0, 100); it is in the
challenger arm when its bucket is under the challenger's traffic share. The bucket never changes,
so growing the share only ever moves units from champion to challenger (monotone expansion).
"""

from __future__ import annotations

import hashlib

CHAMPION = "champion"
CHALLENGER = "challenger"
#: the smallest challenger share a bucket can tell apart (1 unit in a million): a smaller one routes nobody
#: more than it would, so a test refuses to open there
MIN_TRAFFIC_PERCENT = 0.0001


def bucket(salt: str, intent_id: str) -> float:
    """Position of a unit in [0, 100), with MIN_TRAFFIC_PERCENT resolution."""
    digest = hashlib.sha256(f"{salt}\x1f{intent_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") % 1_000_000) / 10_000.0


def assign_arm(salt: str, intent_id: str, challenger_traffic_percent: float) -> str:
    return CHALLENGER if bucket(salt, intent_id) < challenger_traffic_percent else CHAMPION

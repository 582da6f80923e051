"""The grouped temporal split (SPEC section 4): 70/15/15 by time, a plan never in two splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")


def temporal_group_split(
    frame: pd.DataFrame, fractions: tuple[float, float] = (0.70, 0.85), time_col: str = "evaluated_at",
    group_col: str = "plan_id",
) -> pd.Series:
    """70/15/15 by time, grouped: every row of a plan lands in the split of the plan's first row."""
    if not len(frame):
        return pd.Series([], dtype=object, index=frame.index)
    groups = (
        frame.groupby(group_col, sort=False)
        .agg(first=(time_col, "min"), size=(time_col, "size"))
        .reset_index()
        .sort_values(["first", group_col], kind="stable")
    )
    start = groups["size"].cumsum() - groups["size"]
    total = len(frame)
    groups["split"] = np.where(start < fractions[0] * total, "train",
                               np.where(start < fractions[1] * total, "validation", "test"))
    return frame[group_col].map(dict(zip(groups[group_col], groups["split"]))).rename("split")

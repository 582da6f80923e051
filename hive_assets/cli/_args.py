"""Argument types shared by the verbs."""

from __future__ import annotations

from hive_assets.config import SPECIALISTS


def specialists(value: str) -> list[str]:
    if value == "all":
        return list(SPECIALISTS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in SPECIALISTS]
    if unknown:
        raise SystemExit(f"unknown specialist(s) {unknown}; choose from {', '.join(SPECIALISTS)} or 'all'")
    return names

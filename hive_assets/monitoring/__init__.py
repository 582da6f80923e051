"""Monitoring (SPEC section 8): drift statistics against the champion's training reference, and the
trigger rules the feedback and drift sensors apply."""

__all__: list[str] = []

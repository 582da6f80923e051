"""A/B rollout (SPEC section 7): test records in `ab_tests`, the statistics, and the controller.

Routing itself (`assign_arm`) lives in `hive_assets.routing`, a light module serving pods import.
"""

from hive_assets.rollout._records import RUNNING, SUPERSEDED, open_test, running_test, test_id_for

__all__ = ["RUNNING", "SUPERSEDED", "open_test", "running_test", "test_id_for"]

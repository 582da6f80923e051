"""The serving client for the specialist services (stable import path, SPEC section 9; no Dagster).

    from hive_assets.serving import SpecialistRouter, opinion_document

    router = SpecialistRouter("business", "http://mlflow:5000")   # refreshes every 30 s in a thread
    opinion = router.evaluate(plan)          # champion or challenger, as the running A/B test routes it;
                                             # InvalidPlan for a plan that collection would quarantine
    doc = opinion_document(opinion, plan)    # the `specialist_opinions` document, A/B tags included

The router follows the registry: `champion` and `challenger` aliases and the split the rollout
controller mirrors to registered-model tags; it keeps serving its last good models when MLflow is
unreachable or a version does not load (`health()` says so). Importing this module loads neither
MLflow nor a model library: they load with the first refresh.
"""

from hive_assets.serving._opinion import Opinion, opinion_document
from hive_assets.serving._router import DEFAULT_REFRESH_SECONDS, InvalidPlan, SpecialistRouter, routers_for
from hive_assets.serving._split import Serving, Split, serving_from

__all__ = ["DEFAULT_REFRESH_SECONDS", "InvalidPlan", "Opinion", "Serving", "SpecialistRouter", "Split",
           "opinion_document", "routers_for", "serving_from"]

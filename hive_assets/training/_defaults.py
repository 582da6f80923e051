"""Training's defaults, which the code location's run config shows before anything is fitted (no
scikit-learn import: see `_schema`)."""

DEFAULT_TUNING_CANDIDATES = 27  # with halving factor 3: rungs of 27, 9, 3, 1 candidates
# Seconds model selection may spend: no further candidate family is started after this (the first always is).
DEFAULT_TIME_BUDGET_SECONDS = 300.0
# model_type auto: the families are compared on at most this many training rows; 0 (the default): on all of
# them. A bound trades quality for time (module docstring); one at or above MLP_ADAM_MIN_ROWS keeps the sample's
# MLP the kind the full fit will be.
DEFAULT_SELECTION_MAX_ROWS = 0

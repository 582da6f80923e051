"""Run coordination wiring: the run lease every retraining and operator run takes (`lease`), and the
orphan check behind `hive doctor` and every leased run's start (`doctor`). No definitions of its own:
the lease is a resource the other stages' assets bind, and the operator ops' context manager."""

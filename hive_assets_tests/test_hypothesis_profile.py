"""Hypothesis is derandomized in CI (CI=true or HIVE_REQUIRE_SERVICES=1), random elsewhere. (Hypothesis
itself treats any CI variable, even CI=false, as CI.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import hive_assets_tests.conftest; from hypothesis import settings; print(settings.default.derandomize)"


@pytest.mark.parametrize("env, derandomized", [
    ({"CI": "true"}, True), ({"HIVE_REQUIRE_SERVICES": "1"}, True), ({}, False),
])
def test_hypothesis_is_derandomized_in_ci(env, derandomized):
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "HIVE_REQUIRE_SERVICES")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == str(derandomized)

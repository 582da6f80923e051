"""Build hook for the optional C flattener; all metadata lives in pyproject.toml.

`optional=True`: without a compiler the build is skipped and `hive_assets.features._batch` uses
its pure-Python flattening (same results, about half the throughput).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("hive_assets.features._flatten", ["hive_assets/features/_flatten.c"], optional=True)])

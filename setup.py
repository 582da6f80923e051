"""Build hook for the optional C flattener; all metadata lives in pyproject.toml.

`optional=True`: without a compiler the build is skipped and `hive_assets._feature_kernels` uses
its pure-Python flattening (same results, about half the throughput).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("hive_assets._flatten", ["hive_assets/_flatten.c"], optional=True)])

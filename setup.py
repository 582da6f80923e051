"""Build hook for the optional C extensions; all metadata lives in pyproject.toml.

`optional=True`: without a compiler the build is skipped and the pure-Python paths run (same results):
`hive_assets.features._batch`'s flattening (about half the throughput) and `hive_assets.data._documents`'
structure check (collection takes about 1.4x the CPU).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("hive_assets.features._flatten", ["hive_assets/features/_flatten.c"], optional=True),
    Extension("hive_assets.data._structure", ["hive_assets/data/_structure.c"], optional=True),
])

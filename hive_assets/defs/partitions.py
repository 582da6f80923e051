import dagster as dg

from hive_assets.config import SPECIALISTS

specialist_partitions = dg.StaticPartitionsDefinition(list(SPECIALISTS))

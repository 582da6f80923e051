"""The review queue: the `review_queue` asset, its job and its daily sensor."""

import dagster as dg

from hive_assets.defs.review.assets import review_queue
from hive_assets.defs.review.sensors import refresh_review_queue, review_queue_sensor

defs = dg.Definitions(assets=[review_queue], jobs=[refresh_review_queue], sensors=[review_queue_sensor])

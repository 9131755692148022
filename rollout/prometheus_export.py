"""Hands the request-metrics store's batches to the Prometheus counters.

`metrics_store.push()` calls `export_batch` with the tallies it is about to
store, at most once a second per process: the per-rollout request, error and
latency figures are the very numbers the health verdicts are computed from,
and nothing is added to a request's own path."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from common import metrics
from rollout.histogram import bucket_value

logger = logging.getLogger(__name__)

_keys: dict[int, str] = {}
_keys_lock = threading.Lock()
# log-bucket index of the store -> index of metrics.LATENCY_BUCKETS_SECONDS
_bucket_map: dict[int, int] = {}


def prometheus_bucket(index: int) -> int:
    """The Prometheus bucket of the store's log bucket `index`, by the value the
    health verdict reports for that bucket (within 1 %), so that "P95 under
    100 ms" means the same in both."""
    found = _bucket_map.get(index)
    if found is None:
        found = _bucket_map[index] = metrics.latency_bucket_of(bucket_value(index) / 1000.0)
    return found


def _rollout_keys(ids: set[int]) -> dict[int, str]:
    missing = ids - _keys.keys()
    if missing:
        from rollout.models import Rollout

        found = dict(Rollout.objects.filter(id__in=missing).values_list("id", "key"))
        with _keys_lock:
            _keys.update(found)
    return _keys


def export_batch(batch: Mapping[tuple[int, str, int], Any]) -> None:
    """Add a batch of `metrics_store._Pending` tallies keyed by (rollout id,
    version, minute). Never raises: metrics must not cost the store its data."""
    try:
        keys = _rollout_keys({rollout_id for rollout_id, _, _ in batch})
        for (rollout_id, version, _minute), entry in batch.items():
            key = keys.get(rollout_id)
            if key is None:  # deleted meanwhile
                continue
            counts: dict[int, int] = {}
            for index, count in entry.buckets.items():
                target = prometheus_bucket(index)
                counts[target] = counts.get(target, 0) + count
            metrics.add_rollout_batch(
                rollout=key,
                version=version,
                requests=entry.requests,
                errors=entry.errors,
                latency_counts=counts,
                latency_sum_seconds=entry.sum_ms / 1000.0,
            )
    except Exception:
        logger.exception("exporting request metrics to Prometheus failed")

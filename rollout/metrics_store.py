"""Per-version request metrics, cheap on the request path.

Each process adds requests into an in-process tally per (rollout, version,
minute) and pushes the tallies at most once a second: into Redis hashes
(HINCRBY, so every process adds into the same numbers) when Redis is
configured, straight into MetricWindow rows otherwise (the embedded mode).
A beat task copies the Redis totals of recent minutes into MetricWindow
rows; it writes totals, not increments, so running it twice or in two
workers never double counts. Never a database row per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F

from rollout import prometheus_export
from rollout.histogram import LatencyHistogram, RequestTally, bucket_index

PUSH_INTERVAL_SECONDS = 1.0
PUSH_PENDING_LIMIT = 1000
KEEP_IN_REDIS_SECONDS = 2 * 3600
FLUSH_MINUTES_BACK = 3
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


@dataclass
class _Pending:
    requests: int = 0
    errors: int = 0
    unavailable: int = 0
    sum_ms: float = 0.0
    buckets: dict[int, int] = field(default_factory=dict)


_pending: dict[tuple[int, str, int], _Pending] = {}
_pending_count = 0
_last_push = time.monotonic()
_lock = threading.Lock()


def _minute(at: float) -> int:
    return int(at // 60) * 60


def record(
    rollout_id: int,
    version: str,
    latency_ms: float | None,
    status: int,
    *,
    at: float | None = None,
) -> None:
    """Count one request of `version`; an error is a 5xx (an unhandled
    exception arrives here as a 500), unavailable a 502/503/504 or 0 (no answer)."""
    global _pending_count
    key = (rollout_id, version, _minute(at if at is not None else time.time()))
    index = bucket_index(latency_ms) if latency_ms is not None else None
    with _lock:
        entry = _pending.get(key)
        if entry is None:
            entry = _pending[key] = _Pending()
        entry.requests += 1
        if status >= 500 or status == 0:
            entry.errors += 1
            if status in UNAVAILABLE_STATUSES or status == 0:
                entry.unavailable += 1
        if index is not None:
            entry.sum_ms += latency_ms  # type: ignore[operator]
            entry.buckets[index] = entry.buckets.get(index, 0) + 1
        _pending_count += 1


def maybe_push() -> None:
    """Push when a second has passed or many requests wait (called after each request)."""
    if (
        _pending_count >= PUSH_PENDING_LIMIT
        or time.monotonic() - _last_push >= PUSH_INTERVAL_SECONDS
    ):
        push()


def push() -> None:
    global _pending, _pending_count, _last_push
    with _lock:
        batch, _pending, _pending_count = _pending, {}, 0
        _last_push = time.monotonic()
    if not batch:
        return
    prometheus_export.export_batch(batch)
    if settings.REDIS_URL:
        _push_to_redis(batch)
    else:
        _add_to_database(batch)


def _redis():
    from django.core.cache import cache

    # The cache's own client: one connection pool per process.
    return cache._cache.get_client(write=True)  # type: ignore[attr-defined]


def _window_key(rollout_id: int, version: str, minute: int) -> str:
    # Under the cache's key prefix, so that deployments (and test runs) sharing
    # one Redis never mix their numbers.
    from django.core.cache import cache

    return cache.make_key(f"rollout:window:{rollout_id}:{version}:{minute}")


def _index_key() -> str:
    from django.core.cache import cache

    return cache.make_key("rollout:windows")


def _push_to_redis(batch: dict[tuple[int, str, int], _Pending]) -> None:
    client = _redis()
    pipe = client.pipeline(transaction=False)
    for (rollout_id, version, minute), entry in batch.items():
        key = _window_key(rollout_id, version, minute)
        pipe.hincrby(key, "requests", entry.requests)
        if entry.errors:
            pipe.hincrby(key, "errors", entry.errors)
        if entry.unavailable:
            pipe.hincrby(key, "unavailable", entry.unavailable)
        if entry.sum_ms:
            pipe.hincrbyfloat(key, "sum_ms", entry.sum_ms)
        for index, count in entry.buckets.items():
            pipe.hincrby(key, f"b{index}", count)
        pipe.expire(key, KEEP_IN_REDIS_SECONDS)
        pipe.sadd(_index_key(), key)
    pipe.execute()


def _add_to_database(batch: dict[tuple[int, str, int], _Pending]) -> None:
    from rollout.models import MetricWindow

    for (rollout_id, version, minute), entry in batch.items():
        at = datetime.fromtimestamp(minute, tz=UTC)
        with transaction.atomic():
            window, _ = MetricWindow.objects.select_for_update().get_or_create(
                rollout_id=rollout_id, version=version, minute=at
            )
            counts = (
                LatencyHistogram.from_dict(window.histogram).to_counts()
                if window.histogram.get("buckets")
                else {}
            )
            for index, count in entry.buckets.items():
                counts[index] = counts.get(index, 0) + count
            MetricWindow.objects.filter(id=window.id).update(
                requests=F("requests") + entry.requests,
                errors=F("errors") + entry.errors,
                unavailable=F("unavailable") + entry.unavailable,
                latency_sum_ms=F("latency_sum_ms") + entry.sum_ms,
                histogram=LatencyHistogram.from_counts(
                    counts, sum_ms=window.latency_sum_ms + entry.sum_ms
                ).to_dict()
                if counts
                else {},
            )


def flush_to_database(now: float | None = None) -> int:
    """Copy the Redis totals of every recent window into MetricWindow rows;
    forget windows older than FLUSH_MINUTES_BACK minutes once copied. Returns
    the number of windows written."""
    if not settings.REDIS_URL:
        push()
        return 0
    from rollout.models import MetricWindow

    push()
    client = _redis()
    now = now if now is not None else time.time()
    index_key = _index_key()
    keys = sorted(k.decode() if isinstance(k, bytes) else k for k in client.smembers(index_key))
    written = 0
    for key in keys:
        rollout_id, version, minute = key.rsplit(":", 3)[1:]
        raw = client.hgetall(key)
        if not raw:
            client.srem(index_key, key)
            continue
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
        buckets = {int(k[1:]): int(v) for k, v in fields.items() if k.startswith("b")}
        sum_ms = float(fields.get("sum_ms", 0))
        requests, errors = int(fields.get("requests", 0)), int(fields.get("errors", 0))
        unavailable = int(fields.get("unavailable", 0))
        histogram = (
            LatencyHistogram.from_counts(buckets, sum_ms=sum_ms).to_dict() if buckets else {}
        )
        MetricWindow.objects.update_or_create(
            rollout_id=int(rollout_id),
            version=version,
            minute=datetime.fromtimestamp(int(minute), tz=UTC),
            defaults={
                "requests": requests,
                "errors": errors,
                "unavailable": unavailable,
                "latency_sum_ms": sum_ms,
                "histogram": histogram,
            },
        )
        written += 1
        if int(minute) < _minute(now) - FLUSH_MINUTES_BACK * 60:
            client.srem(index_key, key)
    return written


def tally_of(windows: Iterable) -> RequestTally:
    """Merge MetricWindow rows into one tally."""
    total = RequestTally()
    for window in windows:
        total.merge(
            RequestTally(
                requests=window.requests,
                errors=window.errors,
                unavailable=window.unavailable,
                histogram=LatencyHistogram.from_dict(window.histogram)
                if window.histogram
                else LatencyHistogram(),
            )
        )
    return total


def forget_pending() -> None:
    global _pending, _pending_count
    with _lock:
        _pending, _pending_count = {}, 0

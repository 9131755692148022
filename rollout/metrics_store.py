"""Per-version request metrics, cheap on the request path and durable.

Each process adds requests into an in-process tally per (rollout, version,
minute) and writes it into the MetricWindow rows at most once a second (or
as soon as PUSH_PENDING_LIMIT requests wait): one transaction that adds this
process's increments to each row. Never a database row per request: one row
update per (rollout, version, minute) per process and second.

Exactly once, whatever fails:
- A tally leaves the process only through a committed transaction. A push
  takes the batch out of the tally and writes it; when the transaction fails
  (the database unavailable) the batch is merged back into the tally and
  written with the next push. So a counted request is stored once: not lost,
  not doubled. (The one gap: a commit whose acknowledgement is lost with the
  connection is written again; PostgreSQL makes that a matter of a network
  failure in the last round trip of the push.)
- Samples posted to the request-metrics endpoint are written by their own
  transaction before the endpoint answers (`write`): an acknowledged sample is
  stored; a failed write answers an error and stores none of the batch, so the
  client's retry never double counts.
- Rows are locked in one order (rollout, version, minute), so processes
  pushing at the same moment wait for each other and never deadlock.

Redis plays no part. The tallies used to be added into Redis hashes and copied
into the rows by a beat task; a sample then lived only in Redis until the next
copy (up to the beat interval, 10 s) and was lost when Redis died, and after a
restart the copy of Redis's new, smaller totals would have overwritten the rows.
Adding each process's increments straight into the rows costs one short
transaction per process and second (bench/README.md) and survives any cache
outage.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from django.conf import settings
from django.db import Error as DatabaseFailure
from django.db import connection, transaction
from django.db.models import Q

from rollout import prometheus_export
from rollout.histogram import LatencyHistogram, RequestTally, bucket_index

logger = logging.getLogger(__name__)

PUSH_INTERVAL_SECONDS = 1.0
PUSH_PENDING_LIMIT = 1000
LOG_EVERY_SECONDS = 60.0
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})

WindowKey = tuple[int, str, int]  # rollout id, version, minute (epoch seconds)


@dataclass
class _Counts:
    requests: int = 0
    errors: int = 0
    unavailable: int = 0
    sum_ms: float = 0.0
    buckets: dict[int, int] = field(default_factory=dict)

    def merge(self, other: _Counts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.unavailable += other.unavailable
        self.sum_ms += other.sum_ms
        for index, count in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count


class Batch:
    """Requests counted per (rollout, version, minute), not yet stored."""

    def __init__(self) -> None:
        self.windows: dict[WindowKey, _Counts] = {}
        self.requests = 0

    def add(
        self,
        rollout_id: int,
        version: str,
        latency_ms: float | None,
        status: int,
        *,
        at: float | None = None,
    ) -> None:
        """Count one request of `version`; an error is a 5xx (an unhandled
        exception arrives here as a 500), unavailable a 502/503/504 or 0 (no answer)."""
        key = (rollout_id, version, _minute(at if at is not None else time.time()))
        entry = self.windows.get(key)
        if entry is None:
            entry = self.windows[key] = _Counts()
        entry.requests += 1
        if status >= 500 or status == 0:
            entry.errors += 1
            if status in UNAVAILABLE_STATUSES or status == 0:
                entry.unavailable += 1
        if latency_ms is not None:
            index = bucket_index(latency_ms)
            entry.sum_ms += latency_ms
            entry.buckets[index] = entry.buckets.get(index, 0) + 1
        self.requests += 1

    def merge(self, other: Batch) -> None:
        for key, counts in other.windows.items():
            entry = self.windows.get(key)
            if entry is None:
                entry = self.windows[key] = _Counts()
            entry.merge(counts)
        self.requests += other.requests

    def __bool__(self) -> bool:
        return bool(self.windows)


_pending = Batch()
_last_push = time.monotonic()
_last_failure_logged = -LOG_EVERY_SECONDS
_lock = threading.Lock()
_pusher_pid = 0  # the process whose idle pusher runs (0: none yet)


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
    """Count one request of this process (see `Batch.add`); stored by the next push."""
    with _lock:
        _pending.add(rollout_id, version, latency_ms, status, at=at)
    if _pusher_pid != os.getpid() and settings.REQUEST_METRICS_IDLE_PUSH:
        _start_idle_pusher()


def _start_idle_pusher() -> None:
    """A daemon thread per process that pushes what waits once a second, so
    the last requests before a quiet spell reach the rows (and the health
    verdict) without waiting for the next request. Started on the first
    request counted, and again in a forked child (the thread does not survive
    a fork)."""
    global _pusher_pid
    with _lock:
        if _pusher_pid == os.getpid():
            return
        _pusher_pid = os.getpid()
    threading.Thread(target=_push_while_alive, name="request-metrics-push", daemon=True).start()


def _push_while_alive() -> None:
    from django.db import close_old_connections

    while True:
        time.sleep(PUSH_INTERVAL_SECONDS)
        if _pending:
            maybe_push(by_request=False)
            close_old_connections()


def maybe_push(*, by_request: bool = True) -> None:
    """Push when a second has passed or many requests wait (called after each
    request, and by the idle pusher). Where the idle pusher runs, a request
    pushes only when many requests wait, so requests rarely pay for a push. A
    push that fails keeps the tally for the next one and is logged, at most
    once a minute: the request it follows is not failed for it."""
    global _last_failure_logged
    if _pending.requests < PUSH_PENDING_LIMIT and (
        (by_request and _pusher_pid == os.getpid())
        or time.monotonic() - _last_push < PUSH_INTERVAL_SECONDS
    ):
        return
    try:
        push()
    except DatabaseFailure as exc:
        now = time.monotonic()
        if now - _last_failure_logged >= LOG_EVERY_SECONDS:
            _last_failure_logged = now
            logger.warning(
                "request metrics kept in process, the database refused them "
                "(retried every %.0f s; logged at most once a minute): %s",
                PUSH_INTERVAL_SECONDS,
                exc,
            )


def push() -> int:
    """Write this process's tally into the rows now; returns the number of
    windows written. On failure the tally is kept (merged back) and the
    error raised."""
    global _pending, _last_push
    with _lock:
        batch, _pending = _pending, Batch()
        _last_push = time.monotonic()
    if not batch:
        return 0
    try:
        write(batch, durable=False)
    except BaseException:
        with _lock:
            batch.merge(_pending)
            _pending = batch
        raise
    return len(batch.windows)


def write(batch: Batch, *, durable: bool = True) -> None:
    """Add `batch` to its MetricWindow rows in one transaction: all of it or
    none of it is stored. `durable=False` (the once-a-second push of what this
    process counted) lets PostgreSQL acknowledge the commit before its WAL
    flush, as an exposure's write does: waiting for it was most of a push's
    time, and a PostgreSQL crash in the next fraction of a second loses the
    same second that a crash of this process would. Samples acknowledged to a
    client are written durably."""
    from rollout.models import MetricWindow

    keys = sorted(batch.windows)
    if not keys:
        return
    at = {key: datetime.fromtimestamp(key[2], tz=UTC) for key in keys}
    # Inside a caller's transaction the setting would be that transaction's: leave it.
    relaxed = not durable and connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if relaxed:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # Create the missing rows first, then lock them all, both in key order.
        MetricWindow.objects.bulk_create(
            [MetricWindow(rollout_id=r, version=v, minute=at[(r, v, m)]) for r, v, m in keys],
            ignore_conflicts=True,
        )
        wanted = Q()
        for rollout_id, version, minute in keys:
            wanted |= Q(
                rollout_id=rollout_id, version=version, minute=at[(rollout_id, version, minute)]
            )
        windows = list(
            MetricWindow.objects.select_for_update()
            .filter(wanted)
            .order_by("rollout_id", "version", "minute")
        )
        for window in windows:
            entry = batch.windows[
                (window.rollout_id, window.version, int(window.minute.timestamp()))
            ]
            counts = (
                LatencyHistogram.from_dict(window.histogram).to_counts()
                if window.histogram.get("buckets")
                else {}
            )
            for index, count in entry.buckets.items():
                counts[index] = counts.get(index, 0) + count
            window.requests += entry.requests
            window.errors += entry.errors
            window.unavailable += entry.unavailable
            window.latency_sum_ms += entry.sum_ms
            window.histogram = (
                LatencyHistogram.from_counts(counts, sum_ms=window.latency_sum_ms).to_dict()
                if counts
                else {}
            )
        MetricWindow.objects.bulk_update(
            windows, ["requests", "errors", "unavailable", "latency_sum_ms", "histogram"]
        )
    # Prometheus counts what was stored, once: a refused write is counted when
    # its retry commits (inside a caller's transaction, when that one commits).
    transaction.on_commit(partial(prometheus_export.export_batch, batch.windows))


def push_at_exit() -> None:
    """What the process counted and has not stored yet, stored as it exits
    (registered with atexit by the app); a failure is logged, not raised."""
    try:
        push()
    except Exception as exc:  # at exit there is nobody left to raise to
        logger.warning("request metrics of this process lost at exit: %s", exc)


def flush_to_database() -> int:
    """Store what this process has counted (the beat calls this before it
    evaluates, for the requests its own process counted); every other process
    writes its own tally within a second. Returns the number of windows written."""
    return push()


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
    global _pending
    with _lock:
        _pending = Batch()

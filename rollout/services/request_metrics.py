"""Request samples sent by services outside this process, fed into the same
store as the middleware. Each sample is validated on its own; the accepted
ones are stored in one transaction before the endpoint answers, so an
acknowledged sample is in the database (rollout.metrics_store)."""

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.utils import timezone

from common.errors import DomainError
from experiments.services.ingestion import IngestResult, parse_timestamp
from rollout import metrics_store
from rollout.models import Rollout

MAX_SAMPLES = 10_000
MAX_AGE = timedelta(hours=1)
# A latency beyond an hour is a broken clock, not a slow request; bounding it
# keeps the histogram's sums finite.
MAX_LATENCY_MS = 3_600_000.0


def ingest_samples(*, rollout: Rollout, items: Sequence[Any]) -> IngestResult:
    if len(items) > MAX_SAMPLES:
        raise DomainError(
            f"A batch holds at most {MAX_SAMPLES} samples (got {len(items)}).", field="samples"
        )
    now = timezone.now()
    result = IngestResult()
    batch = metrics_store.Batch()
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            result.reject(index, {"non_field_errors": ["Each sample must be a JSON object."]})
            continue
        errors: dict[str, list[str]] = {}
        version = item.get("version")
        if version not in ("stable", "canary"):
            errors["version"] = ["Must be 'stable' or 'canary'."]
        status = item.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 599:
            errors["status"] = ["Must be an HTTP status code (0 for no answer)."]
        latency = item.get("latency_ms")
        if latency is not None and (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency < 0
            or latency > MAX_LATENCY_MS
        ):
            errors["latency_ms"] = [
                f"Must be a finite number of milliseconds from 0 to {MAX_LATENCY_MS:.0f}."
            ]
        at = now
        if item.get("timestamp") is not None:
            try:
                at = parse_timestamp(item["timestamp"], now=now)
                if at < now - MAX_AGE:
                    raise ValueError("is more than an hour old")
            except ValueError as exc:
                errors["timestamp"] = [f"Timestamp {exc}."]
        if errors:
            result.reject(index, errors)
            continue
        batch.add(rollout.id, version, latency, status, at=at.timestamp())
        result.accepted += 1
    metrics_store.write(batch)
    return result

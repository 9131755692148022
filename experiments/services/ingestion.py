"""Exactly-once ingestion of metric events and externally decided exposures.

Every item is validated on its own: an invalid item lands in `rejected` with
its index and the reasons, the valid ones are stored. What one call stores is
one transaction: all of its valid items or, if the process dies, none.

Every field goes through common.validation, the one boundary: text without
NUL bytes within the column, values finite and within ±1e15, timestamps within
[2000-01-01, now + 1 day], attributes at most 20 levels deep. What it refuses
is never stored, so nothing stored can break an analysis later.

Event identity: an event's `event_id` is unique; sending it again (in the
same batch or later) stores nothing and counts as a duplicate. An event sent
without `event_id` gets one derived from its content (see `derive_event_id`),
so that a retried identical batch is not counted twice.

Concurrency: rows are written in one order (by event id; exposures by
experiment and unit), so overlapping batches wait for each other instead of
deadlocking, and a deadlock or serialization failure that happens anyway is
retried a few times inside the service (the insert is idempotent).
"""

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from common import metrics, validation
from common.errors import DomainError
from common.validation import Invalid, parse_timestamp
from experiments import config_cache
from experiments.models import (
    EVENT_ID_MAX_LENGTH,
    KEY_MAX_LENGTH,
    UNIT_ID_MAX_LENGTH,
    Event,
    Exposure,
    Metric,
)

MAX_EVENTS_PER_BATCH = 10_000
MAX_EXPOSURES_PER_BATCH = 10_000
MAX_FUTURE = validation.MAX_FUTURE
DERIVED_ID_PREFIX = "auto-"
# Deadlocks and serialization failures: the write is tried this many times.
WRITE_ATTEMPTS = 5
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure

logger = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["IngestResult", "ingest_events", "ingest_exposures", "parse_timestamp"]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, errors: dict[str, list[str]]) -> None:
        self.rejected.append({"index": index, "errors": errors})

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


# --- field parsing (common.validation; a refusal lands in the item's errors) ---------


def _text(item: Mapping[str, Any], name: str, max_length: int, errors: dict[str, list[str]]) -> str:
    try:
        # numeric user ids are common; their text form is the id
        return validation.check_text(item.get(name), max_length=max_length, numbers_as_text=True)
    except Invalid as exc:
        errors[name] = [exc.message]
        return ""


def _timestamp(raw: Any, *, now: datetime, errors: dict[str, list[str]]) -> datetime:
    if raw is None:
        return now
    try:
        return parse_timestamp(raw, now=now)
    except Invalid as exc:
        errors["timestamp"] = [f"Timestamp {exc.message}."]
        return now


def _retrying(write: Callable[[], T], *, what: str) -> T:
    """Run `write` (which opens its own transaction) again after a deadlock or
    a serialization failure, up to WRITE_ATTEMPTS times with a short, jittered
    pause. Only for idempotent writes: the failed attempt was rolled back."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return write()
        except OperationalError as exc:
            sqlstate = getattr(exc.__cause__, "sqlstate", None)
            if sqlstate not in _RETRYABLE_SQLSTATES or attempt == WRITE_ATTEMPTS:
                raise
            logger.info("%s: %s on attempt %d, retrying", what, sqlstate, attempt)
            time.sleep(0.01 * 2**attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


def derive_event_id(
    unit_id: str, metric: str, value: float, timestamp: Any, occurrence: int
) -> str:
    """Id of an event sent without one: sha256 over the unit, the metric, the
    value, the timestamp exactly as sent (empty when absent) and the item's
    occurrence among identical items of the same batch. A retried identical
    batch therefore maps to the same ids, while two identical items inside one
    batch stay two events."""
    material = f"{unit_id}\x1f{metric}\x1f{value!r}\x1f{timestamp if timestamp is not None else ''}"
    digest = hashlib.sha256(f"{material}\x1f{occurrence}".encode()).hexdigest()
    return DERIVED_ID_PREFIX + digest[:48]


# --- metrics by key, cached in process -------------------------------------------------

_metric_ids: dict[str, int] = {}
_metric_ids_expiry = 0.0
_metric_lock = threading.Lock()
METRIC_MAP_TTL_SECONDS = 5.0


def _metric_id_map(*, refresh: bool = False) -> dict[str, int]:
    global _metric_ids, _metric_ids_expiry
    now = time.monotonic()
    if refresh or now >= _metric_ids_expiry:
        # A ratio metric has no events of its own: its numerator and denominator do.
        fresh = dict(Metric.objects.exclude(kind=Metric.Kind.RATIO).values_list("key", "id"))
        with _metric_lock:
            _metric_ids, _metric_ids_expiry = fresh, now + METRIC_MAP_TTL_SECONDS
    return _metric_ids


def forget_metric_cache() -> None:
    global _metric_ids_expiry
    _metric_ids_expiry = 0.0


# --- events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EventRow:
    event_id: str
    unit_id: str
    metric_id: int
    value: float
    timestamp: datetime


def ingest_events(items: Sequence[Any], *, now: datetime | None = None) -> IngestResult:
    """Validate and store a batch of events; see the module docstring."""
    if len(items) > MAX_EVENTS_PER_BATCH:
        raise DomainError(
            f"A batch holds at most {MAX_EVENTS_PER_BATCH} events (got {len(items)}).",
            field="events",
        )
    now = now or timezone.now()
    result = IngestResult()
    metric_ids = _metric_id_map()
    rows: dict[str, _EventRow] = {}
    occurrences: dict[tuple[str, str, float, Any], int] = {}
    refreshed = False

    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            result.reject(index, {"non_field_errors": ["Each event must be a JSON object."]})
            continue
        errors: dict[str, list[str]] = {}
        unit_id = _text(item, "unit_id", UNIT_ID_MAX_LENGTH, errors)
        metric_key = _text(item, "metric", KEY_MAX_LENGTH, errors)
        metric_id = metric_ids.get(metric_key) if metric_key else None
        if metric_key and metric_id is None and not refreshed:
            metric_ids, refreshed = _metric_id_map(refresh=True), True
            metric_id = metric_ids.get(metric_key)
        if metric_key and metric_id is None:
            errors["metric"] = [f"Unknown metric '{metric_key}'."]

        value = 0.0
        try:
            value = validation.check_number(item.get("value", 1))
        except Invalid as exc:
            errors["value"] = [exc.message]

        raw_timestamp = item.get("timestamp")
        timestamp = _timestamp(raw_timestamp, now=now, errors=errors)

        raw_event_id = item.get("event_id")
        event_id = ""
        if raw_event_id is not None:
            event_id = _text(item, "event_id", EVENT_ID_MAX_LENGTH, errors)

        if errors:
            result.reject(index, errors)
            continue
        if not event_id:
            content = (unit_id, metric_key, value, raw_timestamp)
            occurrence = occurrences.get(content, 0)
            occurrences[content] = occurrence + 1
            event_id = derive_event_id(unit_id, metric_key, value, raw_timestamp, occurrence)
        if event_id in rows:
            result.duplicates += 1
            continue
        rows[event_id] = _EventRow(event_id, unit_id, metric_id, value, timestamp)  # type: ignore[arg-type]

    if rows:
        # One order for every batch: overlapping batches then wait, not deadlock.
        ordered = [rows[event_id] for event_id in sorted(rows)]
        inserted = _retrying(lambda: _store_events(ordered, received_at=now), what="storing events")
        result.accepted = inserted
        result.duplicates += len(rows) - inserted
    metrics.count_ingested_events(
        accepted=result.accepted, duplicates=result.duplicates, rejected=len(result.rejected)
    )
    return result


def _store_events(rows: list[_EventRow], *, received_at: datetime) -> int:
    """Insert the rows whose event_id is new; return how many were inserted."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _store_events_postgresql(rows, received_at)
        return _store_events_generic(rows, received_at)


_STAGING_DDL = f"""
CREATE TEMP TABLE IF NOT EXISTS experiments_event_staging (
    event_id varchar({EVENT_ID_MAX_LENGTH}) NOT NULL,
    unit_id varchar({UNIT_ID_MAX_LENGTH}) NOT NULL,
    metric_id bigint NOT NULL,
    value double precision NOT NULL,
    "timestamp" timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""


def _store_events_postgresql(rows: list[_EventRow], received_at: datetime) -> int:
    # COPY into a per-connection staging table, then one INSERT … ON CONFLICT:
    # COPY is ~6x faster than INSERT and the conflict clause keeps ids unique.
    with connection.cursor() as cursor:
        cursor.execute(_STAGING_DDL)
        raw = cursor.cursor
        with raw.copy(
            'COPY experiments_event_staging (event_id, unit_id, metric_id, value, "timestamp") '
            "FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row((row.event_id, row.unit_id, row.metric_id, row.value, row.timestamp))
        cursor.execute(
            'INSERT INTO experiments_event (event_id, unit_id, metric_id, value, "timestamp", '
            "received_at) "
            'SELECT event_id, unit_id, metric_id, value, "timestamp", %s '
            "FROM experiments_event_staging ORDER BY event_id "
            "ON CONFLICT (event_id) DO NOTHING",
            [received_at],
        )
        inserted = cursor.rowcount
        cursor.execute("TRUNCATE experiments_event_staging")
    return inserted


def _existing_event_ids(event_ids: Iterable[str]) -> set[str]:
    ids = list(event_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(Event.objects.filter(event_id__in=chunk).values_list("event_id", flat=True))
    return found


def _store_events_generic(rows: list[_EventRow], received_at: datetime) -> int:
    existing = _existing_event_ids(row.event_id for row in rows)
    new = [row for row in rows if row.event_id not in existing]
    Event.objects.bulk_create(
        (
            Event(
                event_id=row.event_id,
                unit_id=row.unit_id,
                metric_id=row.metric_id,
                value=row.value,
                timestamp=row.timestamp,
                received_at=received_at,
            )
            for row in new
        ),
        batch_size=1000,
        ignore_conflicts=True,
    )
    return len(new)


# --- exposures decided outside (e.g. by an SDK) --------------------------------------


def ingest_exposures(items: Sequence[Any], *, now: datetime | None = None) -> IngestResult:
    """Record exposures whose variant was decided outside the platform.

    A unit already exposed to the same variant is a duplicate; one exposed to
    another variant is rejected for that item (a unit sees one variant)."""
    if len(items) > MAX_EXPOSURES_PER_BATCH:
        raise DomainError(
            f"A batch holds at most {MAX_EXPOSURES_PER_BATCH} exposures (got {len(items)}).",
            field="exposures",
        )
    now = now or timezone.now()
    result = IngestResult()
    wanted: dict[tuple[int, str], tuple[int, int, datetime, dict[str, Any]]] = {}
    labels: dict[int, tuple[str, dict[int, str]]] = {}

    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            result.reject(index, {"non_field_errors": ["Each exposure must be a JSON object."]})
            continue
        errors: dict[str, list[str]] = {}
        experiment_key = ""
        try:
            experiment_key = validation.check_key(item.get("experiment"), max_length=KEY_MAX_LENGTH)
        except Invalid as exc:
            errors["experiment"] = [exc.message]
        unit_id = _text(item, "unit_id", UNIT_ID_MAX_LENGTH, errors)
        variant_key = _text(item, "variant", KEY_MAX_LENGTH, errors)
        compiled = config_cache.get_experiment(experiment_key) if experiment_key else None
        variant = None
        if experiment_key and compiled is None:
            errors["experiment"] = [f"Unknown experiment '{experiment_key}'."]
        elif compiled is not None:
            if not compiled.config.is_running:
                errors["experiment"] = [
                    f"Experiment '{experiment_key}' is {compiled.config.status}, not running."
                ]
            variant = compiled.variant_by_key.get(variant_key) if variant_key else None
            if variant_key and variant is None:
                known = ", ".join(compiled.variant_by_key)
                errors["variant"] = [
                    f"Experiment '{experiment_key}' has no variant '{variant_key}' ({known})."
                ]
        timestamp = _timestamp(item.get("timestamp"), now=now, errors=errors)
        attributes = item.get("attributes")
        if attributes is None:
            attributes = {}
        elif not isinstance(attributes, dict):
            errors["attributes"] = ["Must be a JSON object."]
        else:
            try:
                validation.check_json(attributes)
            except Invalid as exc:
                errors["attributes"] = [exc.message]
        if errors or compiled is None or variant is None:
            result.reject(index, errors)
            continue
        labels[compiled.config.id] = (
            experiment_key,
            {v.id: v.key for v in compiled.config.variants},
        )
        key = (compiled.config.id, unit_id)
        if key in wanted:
            if wanted[key][1] != variant.id:
                conflict = _conflict(unit_id, wanted[key][1], labels, exp_id=key[0])
                result.reject(index, {"variant": [conflict]})
            else:
                result.duplicates += 1
            continue
        wanted[key] = (index, variant.id, timestamp, attributes)

    if not wanted:
        return result
    before, after = _retrying(lambda: _store_exposures(wanted), what="storing exposures")
    for key, (index, variant_id, _, _) in sorted(wanted.items(), key=lambda kv: kv[1][0]):
        stored = after.get(key)
        if stored != variant_id:
            result.reject(index, {"variant": [_conflict(key[1], stored, labels, exp_id=key[0])]})
        elif key in before:
            result.duplicates += 1
        else:
            result.accepted += 1
            metrics.count_exposures(labels[key[0]][0], source="ingested")
    result.rejected.sort(key=lambda r: r["index"])
    return result


def _store_exposures(
    wanted: dict[tuple[int, str], tuple[int, int, datetime, dict[str, Any]]],
) -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]:
    """Insert the new exposures in (experiment, unit) order, one transaction;
    return the stored variants before and after."""
    with transaction.atomic():
        before = _stored_variants(wanted.keys())
        Exposure.objects.bulk_create(
            (
                Exposure(
                    experiment_id=exp_id,
                    unit_id=unit_id,
                    variant_id=variant_id,
                    exposed_at=timestamp,
                    attributes=attributes,
                )
                for (exp_id, unit_id), (_, variant_id, timestamp, attributes) in sorted(
                    wanted.items()
                )
                if (exp_id, unit_id) not in before
            ),
            batch_size=1000,
            ignore_conflicts=True,
        )
        after = _stored_variants(wanted.keys()) if len(before) < len(wanted) else before
    return before, after


def _stored_variants(keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    by_experiment: dict[int, list[str]] = {}
    for exp_id, unit_id in keys:
        by_experiment.setdefault(exp_id, []).append(unit_id)
    stored: dict[tuple[int, str], int] = {}
    for exp_id, unit_ids in by_experiment.items():
        for start in range(0, len(unit_ids), 500):
            rows = Exposure.objects.filter(
                experiment_id=exp_id, unit_id__in=unit_ids[start : start + 500]
            ).values_list("unit_id", "variant_id")
            stored.update({(exp_id, unit_id): variant_id for unit_id, variant_id in rows})
    return stored


def _conflict(
    unit_id: str,
    stored_variant_id: int | None,
    labels: dict[int, tuple[str, dict[int, str]]],
    *,
    exp_id: int,
) -> str:
    experiment_key, names = labels[exp_id]
    stored = names.get(stored_variant_id or -1, "another variant")
    return (
        f"Unit '{unit_id}' was already exposed to variant '{stored}' of experiment "
        f"'{experiment_key}'; a unit sees one variant, so this exposure is refused."
    )

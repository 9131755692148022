"""Exactly-once ingestion of metric events and externally decided exposures.

Every item is validated on its own: an invalid item lands in `rejected` with
its index and the reasons, the valid ones are stored. What one call stores is
one transaction: all of its valid items or, if the process dies, none.

Event identity: an event's `event_id` is unique; sending it again (in the
same batch or later) stores nothing and counts as a duplicate. An event sent
without `event_id` gets one derived from its content (see `derive_event_id`),
so that a retried identical batch is not counted twice.
"""

import hashlib
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from common.errors import DomainError
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
MAX_FUTURE = timedelta(hours=24)
DERIVED_ID_PREFIX = "auto-"


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, errors: dict[str, list[str]]) -> None:
        self.rejected.append({"index": index, "errors": errors})

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


# --- field parsing -------------------------------------------------------------------


def parse_timestamp(raw: Any, *, now: datetime) -> datetime:
    """ISO 8601 text (a missing offset means UTC) or seconds since the epoch."""
    if isinstance(raw, bool):
        raise ValueError("must be an ISO 8601 date-time or seconds since the epoch")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("must be a finite number of seconds since the epoch")
        try:
            value = datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError("is out of range") from exc
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise ValueError(f"'{raw[:40]}' is not an ISO 8601 date-time") from exc
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    else:
        raise ValueError("must be an ISO 8601 date-time or seconds since the epoch")
    if value > now + MAX_FUTURE:
        raise ValueError("is more than 24 hours in the future")
    return value


def _text(item: Mapping[str, Any], name: str, max_length: int, errors: dict[str, list[str]]) -> str:
    raw = item.get(name)
    if raw is None or raw == "":
        errors[name] = ["This field is required."]
        return ""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)  # numeric user ids are common; their text form is the id
    if not isinstance(raw, str):
        errors[name] = ["Must be a string."]
        return ""
    if len(raw) > max_length:
        errors[name] = [f"Must be at most {max_length} characters (got {len(raw)})."]
        return ""
    return raw


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
        fresh = dict(Metric.objects.values_list("key", "id"))
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

        raw_value = item.get("value", 1)
        value = 0.0
        if isinstance(raw_value, bool) or not isinstance(raw_value, int | float):
            errors["value"] = ["Must be a number."]
        elif not math.isfinite(raw_value):
            errors["value"] = ["Must be a finite number (not NaN or infinite)."]
        else:
            value = float(raw_value)

        raw_timestamp = item.get("timestamp")
        timestamp = now
        if raw_timestamp is not None:
            try:
                timestamp = parse_timestamp(raw_timestamp, now=now)
            except ValueError as exc:
                errors["timestamp"] = [f"Timestamp {exc}."]

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
        inserted = _store_events(list(rows.values()), received_at=now)
        result.accepted = inserted
        result.duplicates += len(rows) - inserted
    return result


def _store_events(rows: list[_EventRow], *, received_at: datetime) -> int:
    """Insert the rows whose event_id is new; return how many were inserted."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _store_events_postgresql(rows, received_at)
        return _store_events_generic(rows, received_at)


_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS experiments_event_staging (
    event_id varchar(128) NOT NULL,
    unit_id varchar(200) NOT NULL,
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
            "FROM experiments_event_staging ON CONFLICT (event_id) DO NOTHING",
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
        experiment_key = _text(item, "experiment", KEY_MAX_LENGTH, errors)
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
        timestamp = now
        if item.get("timestamp") is not None:
            try:
                timestamp = parse_timestamp(item["timestamp"], now=now)
            except ValueError as exc:
                errors["timestamp"] = [f"Timestamp {exc}."]
        attributes = item.get("attributes") or {}
        if not isinstance(attributes, dict):
            errors["attributes"] = ["Must be a JSON object."]
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
                for (exp_id, unit_id), (_, variant_id, timestamp, attributes) in wanted.items()
                if (exp_id, unit_id) not in before
            ),
            batch_size=1000,
            ignore_conflicts=True,
        )
        after = _stored_variants(wanted.keys()) if len(before) < len(wanted) else before
    for key, (index, variant_id, _, _) in sorted(wanted.items(), key=lambda kv: kv[1][0]):
        stored = after.get(key)
        if stored != variant_id:
            result.reject(index, {"variant": [_conflict(key[1], stored, labels, exp_id=key[0])]})
        elif key in before:
            result.duplicates += 1
        else:
            result.accepted += 1
    result.rejected.sort(key=lambda r: r["index"])
    return result


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

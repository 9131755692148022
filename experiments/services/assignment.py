"""Which variant a unit gets, decided by the GrowthBook-compatible hash of the
experiment's seed and the unit id, from cached configuration. The first
assignment of a unit while the experiment runs records its exposure."""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from common import metrics
from common.errors import DomainError
from experiments import config_cache
from experiments.config_cache import CompiledExperiment
from experiments.models import Exposure

MAX_BATCH_UNITS = 1000
# Units this process has already recorded, so a repeat call writes nothing.
# Cleared when full: forgetting only costs one INSERT … ON CONFLICT DO NOTHING.
_RECORDED_LIMIT = 200_000
_recorded: set[tuple[int, str]] = set()
_recorded_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment: str
    unit_id: str
    in_experiment: bool
    variant: str | None
    payload: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "unit_id": self.unit_id,
            "in_experiment": self.in_experiment,
            "variant": self.variant,
            "payload": self.payload,
        }


def get_compiled(experiment_key: str) -> CompiledExperiment:
    compiled = config_cache.get_experiment(experiment_key)
    if compiled is None:
        raise DomainError(f"Unknown experiment '{experiment_key}'.", code="not_found")
    return compiled


def _decide(compiled: CompiledExperiment, unit_id: str) -> tuple[bool, Any]:
    if not compiled.config.is_running:
        return False, None
    index = compiled.assigner.assign(unit_id)
    if index is None:
        return False, None
    return True, compiled.config.variants[index]


def assign_unit(
    *,
    experiment_key: str,
    unit_id: str,
    attributes: dict[str, Any] | None = None,
    record_exposure: bool = True,
    stage: str = "",
    at: datetime | None = None,
) -> Assignment:
    """The variant of `unit_id`; units outside the experiment (not running,
    outside the traffic share) get `in_experiment: false` and no variant."""
    compiled = get_compiled(experiment_key)
    in_experiment, variant = _decide(compiled, unit_id)
    metrics.count_assignment(experiment_key, in_experiment=in_experiment)
    if not in_experiment:
        return Assignment(experiment_key, unit_id, False, None, None)
    if record_exposure:
        record_exposure_once(
            experiment_key=experiment_key,
            experiment_id=compiled.config.id,
            variant_id=variant.id,
            unit_id=unit_id,
            attributes=attributes or {},
            stage=stage,
            at=at,
        )
    return Assignment(experiment_key, unit_id, True, variant.key, variant.payload)


def assign_units(*, experiment_key: str, unit_ids: Sequence[str]) -> list[Assignment]:
    """Assignments for up to MAX_BATCH_UNITS units, without recording exposures
    (a batch answers "what would they get"; exposure happens when a unit is served)."""
    if len(unit_ids) > MAX_BATCH_UNITS:
        raise DomainError(
            f"A batch holds at most {MAX_BATCH_UNITS} units (got {len(unit_ids)}).",
            field="unit_ids",
        )
    compiled = get_compiled(experiment_key)
    answers = []
    for unit_id in unit_ids:
        in_experiment, variant = _decide(compiled, unit_id)
        answers.append(
            Assignment(
                experiment_key,
                unit_id,
                in_experiment,
                variant.key if in_experiment else None,
                variant.payload if in_experiment else None,
            )
        )
    return answers


def record_exposure_once(
    *,
    experiment_key: str,
    experiment_id: int,
    variant_id: int,
    unit_id: str,
    attributes: dict[str, Any],
    stage: str = "",
    at: datetime | None = None,
) -> None:
    """Write the unit's first exposure; later calls write nothing (in this
    process: not even a query; elsewhere: an INSERT that conflicts)."""
    key = (experiment_id, unit_id)
    if key in _recorded:
        return
    exposure = Exposure(
        experiment_id=experiment_id,
        unit_id=unit_id,
        variant_id=variant_id,
        exposed_at=at or timezone.now(),
        attributes=attributes,
        stage=stage,
    )
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # On its own, the write is its own transaction, and waiting for the WAL
        # flush would be most of the request's time (~3 ms of ~3.3 ms here). An
        # exposure is replayable by nature: if PostgreSQL crashed in the next
        # fraction of a second, the unit's next visit writes it again.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            Exposure.objects.bulk_create([exposure], ignore_conflicts=True)
    else:
        Exposure.objects.bulk_create([exposure], ignore_conflicts=True)
    metrics.count_exposures(experiment_key, source="served")
    # Remembered only once committed: a rolled-back exposure must be written again.
    transaction.on_commit(lambda: _remember(key))


def _remember(key: tuple[int, str]) -> None:
    with _recorded_lock:
        if len(_recorded) >= _RECORDED_LIMIT:
            _recorded.clear()
        _recorded.add(key)


def forget_recorded_exposures() -> None:
    with _recorded_lock:
        _recorded.clear()

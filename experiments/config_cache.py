"""Experiment configuration for the request path.

An assignment must read no configuration from the database. The compiled
configuration lives in the Django cache (Redis in production), keyed by the
experiment key and dropped whenever the experiment or its variants change, and
in a per-process dictionary for at most LOCAL_TTL_SECONDS, so a change reaches
every process within that time while a busy process asks Redis about once a
second per experiment.
"""

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from experiments.hashing import Assigner

LOCAL_TTL_SECONDS = 1.0
SHARED_TTL_SECONDS = 300


@dataclass(frozen=True, slots=True)
class VariantConfig:
    id: int
    key: str
    weight: float
    is_control: bool
    payload: Any


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    id: int
    key: str
    status: str
    seed: str
    coverage: float
    variants: tuple[VariantConfig, ...]

    @property
    def is_running(self) -> bool:
        return self.status == "running"

    def to_cache(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "status": self.status,
            "seed": self.seed,
            "coverage": self.coverage,
            "variants": [[v.id, v.key, v.weight, v.is_control, v.payload] for v in self.variants],
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> "ExperimentConfig":
        return cls(
            id=data["id"],
            key=data["key"],
            status=data["status"],
            seed=data["seed"],
            coverage=data["coverage"],
            variants=tuple(VariantConfig(*row) for row in data["variants"]),
        )


@dataclass(frozen=True, slots=True)
class CompiledExperiment:
    config: ExperimentConfig
    assigner: Assigner
    variant_by_key: dict[str, VariantConfig]


_local: dict[str, tuple[float, CompiledExperiment | None]] = {}
_lock = threading.Lock()


def _cache_key(experiment_key: str) -> str:
    return f"experiments:config:{experiment_key}"


def _load_from_database(experiment_key: str) -> ExperimentConfig | None:
    from experiments.models import Experiment

    experiment = Experiment.objects.filter(key=experiment_key).first()
    if experiment is None:
        return None
    variants = tuple(
        VariantConfig(v.id, v.key, v.weight, v.is_control, v.payload)
        for v in experiment.variants.order_by("position", "id")
    )
    return ExperimentConfig(
        id=experiment.id,
        key=experiment.key,
        status=experiment.status,
        seed=experiment.seed,
        coverage=experiment.coverage,
        variants=variants,
    )


def _compile(config: ExperimentConfig) -> CompiledExperiment:
    assigner = Assigner(config.seed, [v.weight for v in config.variants], config.coverage)
    return CompiledExperiment(
        config=config, assigner=assigner, variant_by_key={v.key: v for v in config.variants}
    )


# The shared cache remembers unknown keys too, so a flood of requests for a
# mistyped key does not become a flood of database queries.
_MISSING = {"missing": True}


def get_experiment(experiment_key: str) -> CompiledExperiment | None:
    """The compiled configuration of an experiment, or None when no such key exists."""
    now = time.monotonic()
    hit = _local.get(experiment_key)
    if hit is not None and hit[0] > now:
        return hit[1]
    data = cache.get(_cache_key(experiment_key))
    if data is None:
        config = _load_from_database(experiment_key)
        data = config.to_cache() if config else _MISSING
        cache.set(_cache_key(experiment_key), data, SHARED_TTL_SECONDS)
    compiled = None
    if not data.get("missing"):
        config = ExperimentConfig.from_cache(data)
        previous = hit[1] if hit is not None else None
        # Building the bucket table costs milliseconds: reuse it while nothing changed.
        compiled = previous if previous and previous.config == config else _compile(config)
    with _lock:
        _local[experiment_key] = (now + LOCAL_TTL_SECONDS, compiled)
    return compiled


def invalidate(experiment_key: str) -> None:
    """Forget the configuration everywhere: the shared cache now, every other
    process's copy within LOCAL_TTL_SECONDS."""
    cache.delete(_cache_key(experiment_key))
    with _lock:
        _local.pop(experiment_key, None)


def clear_local() -> None:
    with _lock:
        _local.clear()

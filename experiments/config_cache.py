"""Experiment configuration for the request path.

An assignment must read no configuration from the database. The compiled
configuration lives in the Django cache (Redis in production), keyed by the
experiment key and dropped whenever the experiment or its variants change, and
in each process for at most LOCAL_TTL_SECONDS, so a change reaches every
process within that time while a busy process asks Redis about once a second
per experiment (see common.tiered_cache).
"""

from dataclasses import dataclass
from typing import Any

from common.tiered_cache import TieredCache
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


def _load(experiment_key: str) -> dict[str, Any] | None:
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
    ).to_cache()


def _build(data: dict[str, Any], previous: CompiledExperiment | None) -> CompiledExperiment:
    config = ExperimentConfig.from_cache(data)
    # Building the bucket table costs milliseconds: reuse it while nothing changed.
    if previous is not None and previous.config == config:
        return previous
    assigner = Assigner(config.seed, [v.weight for v in config.variants], config.coverage)
    return CompiledExperiment(
        config=config, assigner=assigner, variant_by_key={v.key: v for v in config.variants}
    )


_experiments: TieredCache[CompiledExperiment] = TieredCache(
    "experiments:config",
    load=_load,
    build=_build,
    local_ttl=LOCAL_TTL_SECONDS,
    shared_ttl=SHARED_TTL_SECONDS,
)


def get_experiment(experiment_key: str) -> CompiledExperiment | None:
    """The compiled configuration of an experiment, or None when no such key exists."""
    return _experiments.get(experiment_key)


def invalidate(experiment_key: str) -> None:
    """Forget the configuration everywhere: the shared cache now, every other
    process's copy within LOCAL_TTL_SECONDS."""
    _experiments.invalidate(experiment_key)


def clear_local() -> None:
    _experiments.clear_local()

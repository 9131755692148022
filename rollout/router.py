"""Which version of a feature a unit gets: stable or canary, by the role of
the rollout's current stage (`rollout.plan.Role`), never by its name.

- staff_only (0 %): the canary only for staff and allow-listed units;
- canary: by the rollout's own salt, bucket(salt, unit) < share × 100 with
  the GrowthBook-compatible hash — raising the share only adds units, never
  moves a canary unit back;
- experiment, with the linked experiment running: its assignment decides
  (control → stable, any treatment → canary) and records the exposure; units
  outside the experiment fall back to the share;
- full (100 %), and a completed rollout: the new version for every unit;
- rolled back: stable for everyone. A paused rollout routes as its stage does.
During a canary stage a canary unit of a linked running experiment is
recorded as exposed with stage "canary", so the A/B analysis can leave it out
(carryover).
"""

from dataclasses import dataclass
from datetime import datetime

from experiments.hashing import BUCKETS, bucket
from experiments.services.assignment import assign_unit, get_compiled, record_exposure_once
from rollout import config_cache
from rollout.config_cache import RolloutConfig
from rollout.plan import Role

STABLE, CANARY = "stable", "canary"
STAFF_ONLY, CANARY_ROLE, EXPERIMENT, FULL = (r.value for r in Role)


@dataclass(frozen=True, slots=True)
class Route:
    rollout: str | None
    version: str
    stage: str | None = None
    variant: str | None = None
    rollout_id: int | None = None


def _by_share(config: RolloutConfig, unit_id: str) -> bool:
    return bucket(config.salt, unit_id) < config.canary_percent / 100 * BUCKETS


def route_unit(
    config: RolloutConfig,
    unit_id: str,
    *,
    is_staff: bool = False,
    at: datetime | None = None,
    attributes: dict | None = None,
) -> Route:
    """`at`: when the request happened (default now); exposures carry it and
    the unit's `attributes` (platform, country, … for segment analysis)."""
    if config.state == "rolled_back":
        return Route(config.key, STABLE, config.stage, rollout_id=config.id)
    if config.state == "completed" or config.role == FULL:
        return Route(config.key, CANARY, config.stage, rollout_id=config.id)
    if config.role == STAFF_ONLY:
        canary = is_staff or unit_id in config.allow_list
        return Route(config.key, CANARY if canary else STABLE, config.stage, rollout_id=config.id)
    if config.role == EXPERIMENT and config.experiment_key:
        answer = assign_unit(
            experiment_key=config.experiment_key,
            unit_id=unit_id,
            # Labels of the role, not stage names: the analysis leaves out
            # "canary" (carryover) exposures whatever the stages are called.
            stage="ab",
            at=at,
            attributes=attributes,
        )
        if answer.in_experiment:
            control = next(
                v.key for v in get_compiled(config.experiment_key).config.variants if v.is_control
            )
            version = STABLE if answer.variant == control else CANARY
            return Route(config.key, version, config.stage, answer.variant, config.id)
    canary = _by_share(config, unit_id)
    if canary and config.role == CANARY_ROLE and config.experiment_key:
        _mark_carryover(config.experiment_key, unit_id, at)
    return Route(config.key, CANARY if canary else STABLE, config.stage, rollout_id=config.id)


def _mark_carryover(experiment_key: str, unit_id: str, at: datetime | None) -> None:
    compiled = get_compiled(experiment_key)
    if not compiled.config.is_running:
        return
    treatment = next((v for v in compiled.config.variants if not v.is_control), None)
    if treatment is not None:
        record_exposure_once(
            experiment_key=experiment_key,
            experiment_id=compiled.config.id,
            variant_id=treatment.id,
            unit_id=unit_id,
            attributes={},
            stage="canary",
            at=at,
        )


def route(rollout_key: str, unit_id: str, *, is_staff: bool = False) -> Route | None:
    config = config_cache.get_rollout(rollout_key)
    return route_unit(config, unit_id, is_staff=is_staff) if config else None


def route_feature(feature: str, unit_id: str, *, is_staff: bool = False) -> Route:
    """The version of `feature` for this unit; stable when no rollout runs."""
    config = config_cache.rollout_for_feature(feature)
    if config is None:
        return Route(None, STABLE)
    return route_unit(config, unit_id, is_staff=is_staff)

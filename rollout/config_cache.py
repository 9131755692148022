"""Rollout routing configuration for the request path.

Kept in the shared cache (Redis in production) and for at most
LOCAL_TTL_SECONDS in each process. A change is written through to the shared
cache when its transaction commits, so a rollback reaches every web and worker
process within LOCAL_TTL_SECONDS (1 s).
"""

from dataclasses import dataclass
from typing import Any

from common.tiered_cache import TieredCache

LOCAL_TTL_SECONDS = 1.0
SHARED_TTL_SECONDS = 300


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    id: int
    key: str
    feature: str
    state: str
    stage: str
    # The current stage's role (rollout.plan.Role): routing follows the role,
    # never the stage's name.
    role: str
    canary_percent: float
    salt: str
    allow_list: frozenset[str]
    experiment_key: str | None

    def to_cache(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "feature": self.feature,
            "state": self.state,
            "stage": self.stage,
            "role": self.role,
            "canary_percent": self.canary_percent,
            "salt": self.salt,
            "allow_list": sorted(self.allow_list),
            "experiment_key": self.experiment_key,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> "RolloutConfig":
        return cls(**{**data, "allow_list": frozenset(data["allow_list"])})


def config_of(rollout: Any) -> RolloutConfig:
    return RolloutConfig(
        id=rollout.id,
        key=rollout.key,
        feature=rollout.feature,
        state=rollout.state,
        stage=rollout.stage,
        role=rollout.current_stage().role.value,
        canary_percent=rollout.canary_percent,
        salt=rollout.salt,
        allow_list=frozenset(str(u) for u in rollout.allow_list or []),
        experiment_key=rollout.experiment.key if rollout.experiment_id else None,
    )


def _load(rollout_key: str) -> dict[str, Any] | None:
    from rollout.models import Rollout

    rollout = Rollout.objects.select_related("experiment").filter(key=rollout_key).first()
    return config_of(rollout).to_cache() if rollout else None


def _load_feature(feature: str) -> dict[str, Any]:
    from rollout.models import Rollout

    # The feature's newest rollout decides, completed ones included: after a
    # rollout completes, its new version stays served to every unit until the
    # next rollout of the feature starts.
    key = (
        Rollout.objects.filter(feature=feature)
        .order_by("-created_at", "-id")
        .values_list("key", flat=True)
        .first()
    )
    return {"key": key or ""}


_rollouts: TieredCache[RolloutConfig] = TieredCache(
    "rollout:config",
    load=_load,
    build=lambda data, previous: RolloutConfig.from_cache(data),
    local_ttl=LOCAL_TTL_SECONDS,
    shared_ttl=SHARED_TTL_SECONDS,
)
_features: TieredCache[str] = TieredCache(
    "rollout:feature",
    load=_load_feature,
    build=lambda data, previous: data["key"],
    local_ttl=LOCAL_TTL_SECONDS,
    shared_ttl=SHARED_TTL_SECONDS,
)


def get_rollout(rollout_key: str) -> RolloutConfig | None:
    return _rollouts.get(rollout_key)


def rollout_for_feature(feature: str) -> RolloutConfig | None:
    """The feature's newest rollout (in any state), if any."""
    key = _features.get(feature)
    return get_rollout(key) if key else None


def publish(rollout: Any) -> None:
    """Write the rollout's current configuration to the shared cache (call on
    commit) and drop this process's copies."""
    _rollouts.publish(rollout.key, config_of(rollout).to_cache())
    _features.publish(rollout.feature, _load_feature(rollout.feature))


def clear_local() -> None:
    _rollouts.clear_local()
    _features.clear_local()

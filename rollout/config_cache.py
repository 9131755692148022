"""Rollout routing configuration for the request path.

Kept in the shared cache (Redis in production) and for at most
LOCAL_TTL_SECONDS in each process. A change is written through to the shared
cache when its transaction commits, so a rollback reaches every web and worker
process within LOCAL_TTL_SECONDS (1 s).
"""

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

LOCAL_TTL_SECONDS = 1.0
SHARED_TTL_SECONDS = 300


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    id: int
    key: str
    feature: str
    state: str
    stage: str
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
            "canary_percent": self.canary_percent,
            "salt": self.salt,
            "allow_list": sorted(self.allow_list),
            "experiment_key": self.experiment_key,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> "RolloutConfig":
        return cls(**{**data, "allow_list": frozenset(data["allow_list"])})


_local: dict[str, tuple[float, RolloutConfig | None]] = {}
_lock = threading.Lock()
_MISSING = {"missing": True}


def _key(rollout_key: str) -> str:
    return f"rollout:config:{rollout_key}"


def _feature_key(feature: str) -> str:
    return f"rollout:feature:{feature}"


def config_of(rollout: Any) -> RolloutConfig:
    return RolloutConfig(
        id=rollout.id,
        key=rollout.key,
        feature=rollout.feature,
        state=rollout.state,
        stage=rollout.stage,
        canary_percent=rollout.canary_percent,
        salt=rollout.salt,
        allow_list=frozenset(str(u) for u in rollout.allow_list or []),
        experiment_key=rollout.experiment.key if rollout.experiment_id else None,
    )


def _load(rollout_key: str) -> RolloutConfig | None:
    from rollout.models import Rollout

    rollout = Rollout.objects.select_related("experiment").filter(key=rollout_key).first()
    return config_of(rollout) if rollout else None


def get_rollout(rollout_key: str) -> RolloutConfig | None:
    now = time.monotonic()
    hit = _local.get(rollout_key)
    if hit is not None and hit[0] > now:
        return hit[1]
    data = cache.get(_key(rollout_key))
    if data is None:
        config = _load(rollout_key)
        data = config.to_cache() if config else _MISSING
        cache.set(_key(rollout_key), data, SHARED_TTL_SECONDS)
    config = None if data.get("missing") else RolloutConfig.from_cache(data)
    with _lock:
        _local[rollout_key] = (now + LOCAL_TTL_SECONDS, config)
    return config


def rollout_key_for_feature(feature: str) -> str | None:
    """The key of the feature's current rollout (active or paused), if any."""
    now = time.monotonic()
    local_key = f"feature:{feature}"
    hit = _local.get(local_key)
    if hit is not None and hit[0] > now:
        return hit[1].key if hit[1] else None
    key = cache.get(_feature_key(feature))
    if key is None:
        from rollout.models import Rollout

        key = (
            Rollout.objects.filter(feature=feature)
            .exclude(state=Rollout.State.COMPLETED)
            .order_by("-created_at")
            .values_list("key", flat=True)
            .first()
        ) or ""
        cache.set(_feature_key(feature), key, SHARED_TTL_SECONDS)
    config = get_rollout(key) if key else None
    with _lock:
        _local[local_key] = (now + LOCAL_TTL_SECONDS, config)
    return config.key if config else None


def publish(rollout: Any) -> None:
    """Write the rollout's current configuration to the shared cache (call on
    commit) and drop this process's copies."""
    cache.set(_key(rollout.key), config_of(rollout).to_cache(), SHARED_TTL_SECONDS)
    cache.delete(_feature_key(rollout.feature))
    with _lock:
        _local.pop(rollout.key, None)
        _local.pop(f"feature:{rollout.feature}", None)


def clear_local() -> None:
    with _lock:
        _local.clear()

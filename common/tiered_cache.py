"""Configuration read on every request: kept in the shared cache (Redis in
production) and, for at most `local_ttl` seconds, in each process.

A change is published to the shared cache (or the entry dropped) when its
transaction commits, so it reaches every process within `local_ttl`. Unknown
keys are remembered too, so a flood of requests for a mistyped key does not
become a flood of database queries.

While the shared cache is unavailable its reads miss and its writes are
dropped (common.resilient_cache): each process then reads the database once
per key and `local_ttl`, and a change still reaches every process within
`local_ttl`.
"""

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.cache import cache

T = TypeVar("T")
_MISSING: dict[str, Any] = {"missing": True}


class TieredCache(Generic[T]):
    def __init__(
        self,
        name: str,
        *,
        load: Callable[[str], dict[str, Any] | None],
        build: Callable[[dict[str, Any], T | None], T],
        local_ttl: float = 1.0,
        shared_ttl: int = 300,
    ) -> None:
        """`load(key)` reads the data from the database (None: no such key);
        `build(data, previous)` turns it into the value handed out, and may
        return `previous` when nothing changed (to keep expensive work)."""
        self.name = name
        self.local_ttl = local_ttl
        self.shared_ttl = shared_ttl
        self._load = load
        self._build = build
        self._local: dict[str, tuple[float, T | None]] = {}
        self._lock = threading.Lock()

    def _shared_key(self, key: str) -> str:
        return f"{self.name}:{key}"

    def get(self, key: str) -> T | None:
        now = time.monotonic()
        hit = self._local.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        data = cache.get(self._shared_key(key))
        if data is None:
            data = self._load(key) or _MISSING
            cache.set(self._shared_key(key), data, self.shared_ttl)
        value = None if data.get("missing") else self._build(data, hit[1] if hit else None)
        with self._lock:
            self._local[key] = (now + self.local_ttl, value)
        return value

    def publish(self, key: str, data: dict[str, Any]) -> None:
        cache.set(self._shared_key(key), data, self.shared_ttl)
        self.forget_local(key)

    def invalidate(self, key: str) -> None:
        cache.delete(self._shared_key(key))
        self.forget_local(key)

    def forget_local(self, key: str) -> None:
        with self._lock:
            self._local.pop(key, None)

    def clear_local(self) -> None:
        with self._lock:
            self._local.clear()

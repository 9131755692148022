"""Django's Redis cache backend, made a cache and not a single point of failure.

`ResilientRedisCache` is Django's own `RedisCache` with every operation
guarded in one place: when Redis does not answer (refused, reset, timed out)
the operation answers as an empty cache that keeps nothing would, and the
caller carries on from its in-process copy and the database:

- `get`, `get_many`, `has_key`: a miss (`default`, `{}`, False); callers read
  the database;
- `set`, `set_many`, `delete`, `delete_many`, `touch`: nothing is written;
- `add`: True, as on an empty cache (nothing is written);
- `incr`: `delta`, a counter that starts again in this process, so the API
  rate limits (common.throttling) fail open instead of refusing everyone.

Only connection-level failures fall back (`redis.ConnectionError`,
`redis.TimeoutError`); a wrong command or a serialisation error still raises.
The backend is picked in config/settings.py; the file cache of the embedded
default needs none of this.

Cost of a dead Redis: after a failure the backend does not try Redis again
for `RETRY_AFTER_SECONDS` (each operation then falls back without a network
round trip); a refused connection costs well under a millisecond, a Redis that
hangs costs at most the socket timeouts of settings.CACHES once per process
per `RETRY_AFTER_SECONDS`.

Every fallback increments `ion_cache_fallbacks_total{cache, operation}`
(`cache`: the family of the key, such as `rollout:config` or `throttle:api`);
the log gets one line when Redis becomes unavailable (at most one a minute per
process) and one when it answers again.

Writes that fell back are remembered (up to `MAX_MISSED_KEYS` keys): when
Redis answers again those keys are deleted there, so a configuration change
published while Redis was unreachable but not restarted (a network partition
rather than a crash) is not hidden behind the value Redis kept from before;
readers then load it from the database.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.metrics import CACHE_FALLBACKS

logger = logging.getLogger(__name__)

UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)
RETRY_AFTER_SECONDS = 1.0
LOG_EVERY_SECONDS = 60.0
MAX_MISSED_KEYS = 10_000
_FAMILY_PART = re.compile(r"[A-Za-z_-]{1,40}")

F = TypeVar("F", bound=Callable[..., Any])


class _Unavailable(Exception):
    """Raised inside the backend while it is not trying Redis again yet."""


def key_family(key: Any) -> str:
    """The label of a key in the fallback counter: its leading name parts
    (`rollout:config:recommendations` → `rollout:config`), never an id, so
    the counter's label set stays small."""
    parts = []
    for part in str(key).split(":")[:2]:
        if not _FAMILY_PART.fullmatch(part):
            break
        parts.append(part)
    return ":".join(parts) or "other"


class _Availability:
    """Whether this process is falling back from one Redis server, shared by
    every thread's backend object (Django makes one per thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_until = 0.0
        self.down_since: float | None = None
        self.last_logged = -LOG_EVERY_SECONDS
        self.missed: set[str] = set()  # full cache keys (prefix and version included)


_availability: dict[str, _Availability] = {}
_availability_lock = threading.Lock()


def _availability_of(location: str) -> _Availability:
    with _availability_lock:
        return _availability.setdefault(location, _Availability())


def _guarded(fallback: Callable[..., Any], *, writes: bool = False) -> Callable[[F], F]:
    """Run the operation against Redis; when Redis is unavailable answer
    `fallback(*args, **kwargs)` instead (and, for a write, remember its keys)."""

    def decorate(method: F) -> F:
        operation = method.__name__

        @functools.wraps(method)
        def wrapper(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
            state = self._state
            strict = getattr(self._strict, "on", False)
            keys = _keys_of(args[0]) if args else ["other"]
            try:
                if not strict and state.down_until > time.monotonic():
                    raise _Unavailable
                result = method(self, *args, **kwargs)
            except (*UNAVAILABLE, _Unavailable) as exc:
                if not isinstance(exc, _Unavailable):
                    self._became_unavailable(exc)
                if strict:
                    raise
                if writes:
                    self._remember_missed(keys, kwargs.get("version"))
                CACHE_FALLBACKS.labels(cache=key_family(keys[0]), operation=operation).inc()
                return fallback(*args, **kwargs)
            if state.down_since is not None:
                missed = self._became_available()
                if not writes and any(
                    self.make_key(k, kwargs.get("version")) in missed for k in keys
                ):
                    # Read before the stale entries were dropped: answer a miss.
                    return fallback(*args, **kwargs)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _keys_of(first: Any) -> list[Any]:
    many = isinstance(first, dict | list | tuple | set | frozenset)
    return (list(first) if many else [first]) or ["other"]


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


class ResilientRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._state = _availability_of(",".join(self._servers))
        self._strict = threading.local()

    # --- the state of the connection --------------------------------------------------

    @property
    def available(self) -> bool:
        """False while this process is falling back (until the next retry)."""
        return self._state.down_since is None

    @contextmanager
    def errors_raised(self) -> Iterator[None]:
        """Within the block, operations of this thread try Redis even while
        falling back, and raise instead of falling back: the health check wants
        the truth, and its success ends the fallback."""
        self._strict.on = True
        try:
            yield
        finally:
            self._strict.on = False

    def _became_unavailable(self, exc: BaseException) -> None:
        state = self._state
        now = time.monotonic()
        with state.lock:
            state.down_until = now + RETRY_AFTER_SECONDS
            first = state.down_since is None
            if first:
                state.down_since = now
            log = first and now - state.last_logged >= LOG_EVERY_SECONDS
            if log:
                state.last_logged = now
        if log:
            logger.warning(
                "cache unavailable, serving from the in-process copies and the database "
                "(next attempt in %.0f s; logged at most once a minute): %s: %s",
                RETRY_AFTER_SECONDS,
                type(exc).__name__,
                exc,
            )

    def _became_available(self) -> set[str]:
        """End the fallback; answers the (full) keys whose writes it had missed."""
        state = self._state
        with state.lock:
            since, state.down_since = state.down_since, None
            missed, state.missed = state.missed, set()
        if since is None:
            return set()
        logger.warning(
            "cache available again after %.1f s; dropping %d entries written while it was not",
            time.monotonic() - since,
            len(missed),
        )
        if missed:
            # Best effort: failing here only means the old entries expire on their own.
            try:
                self._cache.delete_many(list(missed))
            except UNAVAILABLE:
                logger.warning("cache unavailable again while dropping stale entries")
        return missed

    def _remember_missed(self, keys: list[Any], version: int | None) -> None:
        state = self._state
        with state.lock:
            if len(state.missed) + len(keys) <= MAX_MISSED_KEYS:
                state.missed.update(self.make_key(k, version) for k in keys)

    # --- the operations ---------------------------------------------------------------

    @_guarded(lambda key, default=None, version=None: default)
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return super().get(key, default, version)

    @_guarded(lambda keys, version=None: {})
    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return super().get_many(keys, version)

    @_guarded(lambda key, version=None: False)
    def has_key(self, key: Any, version: int | None = None) -> bool:
        return super().has_key(key, version)

    @_guarded(lambda *args, **kwargs: True, writes=True)
    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return super().add(key, value, timeout, version)

    @_guarded(_nothing, writes=True)
    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        super().set(key, value, timeout, version)

    @_guarded(lambda *args, **kwargs: [], writes=True)
    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        return super().set_many(data, timeout, version)

    @_guarded(lambda *args, **kwargs: False, writes=True)
    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return super().touch(key, timeout, version)

    @_guarded(lambda *args, **kwargs: False, writes=True)
    def delete(self, key: Any, version: int | None = None) -> bool:
        return super().delete(key, version)

    @_guarded(_nothing, writes=True)
    def delete_many(self, keys: Any, version: int | None = None) -> None:
        super().delete_many(keys, version)

    @_guarded(lambda key, delta=1, version=None: delta)
    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        return super().incr(key, delta, version)

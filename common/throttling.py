"""API rate limits: per token (the user it belongs to) and, for anonymous
requests, per client address; one client-address rule for these limits and
for the login lock-out (django-axes, `AXES_CLIENT_IP_CALLABLE`).

The limits are fixed windows counted in the shared cache (Redis in
production), so every process of a set-up counts against the same total. A
process does not touch the cache on every request: it leases a slice of the
window's allowance (1 % of the rate, at least one request) with one atomic
`incr` and serves from it until it is used up. So the cost is one cache round
trip per slice, the total admitted in a window never exceeds the rate, and a
client can at most be refused a little early while another process still
holds an unused slice (at most 1 % of the rate per process). At low rates
(under 200 a window) every request is counted in the cache, exactly.

A fixed window lets a client send up to twice the rate across a window
boundary; the rate is a ceiling against runaway clients, not an exact quota.
The answer over the limit is DRF's: 429 with `Retry-After` (seconds until the
window ends).

While Redis is unavailable the limits fail open: the cache backend
(common.resilient_cache) answers a lease's `incr` as a fresh counter, so every
lease is granted; the fallback is logged and counted there. A rate limit is a
guard against runaway clients, not a reason to refuse everyone.

On the embedded default's file cache `incr` is a read and a write, not atomic
across processes: concurrent leases may both succeed, so the embedded set-up
can admit somewhat more than the rate. Redis counts exactly.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

LEASE_FRACTION = 100  # a process leases 1 % of a window's allowance at a time
_MAX_LEASES = 10_000

# identity → (window number, rate, requests left in this process's lease; -1: the
# window's allowance is used up, refuse without asking the cache again)
_leases: dict[str, tuple[int, str, int]] = {}
_lock = threading.Lock()


def client_address(request: Any) -> str | None:
    """The address a request comes from (None when unknown): REMOTE_ADDR, or with
    `TRUSTED_PROXY_COUNT` = n > 0 reverse proxies in front of the app, the
    address the outermost of them saw (the n-th entry from the right of
    X-Forwarded-For). Proxies append to that header, so entries further left
    are whatever the client wrote and are never trusted."""
    meta = request.META
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return meta.get("REMOTE_ADDR") or None


def forget_leases() -> None:
    """Drop this process's unused slices (tests start each case without them)."""
    with _lock:
        _leases.clear()


class LeasedRateThrottle(SimpleRateThrottle):
    """A fixed-window rate limit counted in the shared cache by leased slices.
    Subclasses name the `scope` (a key of `DEFAULT_THROTTLE_RATES`) and say
    whom a request is counted against (`identity`, None: not this throttle's
    business)."""

    def get_rate(self) -> str | None:
        # Read at every request (not at import, as DRF's class attribute is):
        # settings changed in tests or by an operator's reload take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def identity(self, request: Any) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        who = self.identity(request)
        return None if who is None else f"throttle:{self.scope}:{who}"

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        with _lock:
            held = _leases.get(key)
            if held is not None and held[0] == window and held[1] == self.rate:
                if held[2] < 0:
                    return False
                if held[2] > 0:
                    _leases[key] = (window, self.rate, held[2] - 1)
                    return True
        granted = self._lease(f"{key}:{window}")
        with _lock:
            if len(_leases) >= _MAX_LEASES:
                _leases.clear()
            _leases[key] = (window, self.rate, granted - 1 if granted > 0 else -1)
        return granted > 0

    def _lease(self, counter: str) -> int:
        """Take up to one slice of the window's allowance from the shared counter;
        answers how many requests were granted (0 when the window is used up)."""
        slice_size = max(1, self.num_requests // LEASE_FRACTION)
        timeout = int(self.duration) + 5
        for _ in range(2):
            cache.add(counter, 0, timeout)
            try:
                total = cache.incr(counter, slice_size)
            except ValueError:  # evicted between add and incr: add it again
                continue
            return slice_size - max(0, total - self.num_requests)
        return 0

    def wait(self) -> float:
        return max(1.0, self.window_ends - self.now)


class TokenRateThrottle(LeasedRateThrottle):
    """`API_THROTTLE_RATE` per authenticated caller: a token's user (DRF
    tokens are one per user) or a logged-in person."""

    scope = "api"

    def identity(self, request: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return str(user.pk)


class AnonymousRateThrottle(LeasedRateThrottle):
    """`API_ANON_THROTTLE_RATE` per client address, for requests without
    credentials (most answer 401 anyway; the schema and docs do not)."""

    scope = "anon"

    def identity(self, request: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return None
        return client_address(request) or "unknown"  # all such requests share one limit


class AssignmentRateThrottle(TokenRateThrottle):
    """`ASSIGNMENT_THROTTLE_RATE` per caller on the lean assignment endpoint,
    which answers far more requests than the rest of the API."""

    scope = "assignments"

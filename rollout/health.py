"""Canary health evaluation: a pure function from two request tallies to a verdict.

Pure module (standard library + ``rollout.histogram``), no Django: the same code judges live
rollouts, replays frozen evidence and runs in benchmarks.

Rules
-----
Three rules compare the canary with two ``Thresholds`` sets, the SLA (what a healthy version
meets) and the rollback thresholds (what justifies an automatic rollback):

* error rate: ``errors / requests``; an error is any 5xx answer or an unhandled exception
  (does the version work?);
* availability: ``1 - unavailable / requests``, the SRE measure (was the service there to
  answer?). A request is *unavailable* when it was answered 502, 503 or 504 or got no answer
  at all (connection refused or reset, timeout); every other answer, a 500 from a bug
  included, counts as available. Unavailable requests are a subset of the errors, so a
  canary throwing 500s fails the error-rate rule while its availability stays 100 %, and one
  answering 503s fails both. The rule is judged on the unavailable share against
  ``1 - min_availability``: with the seed defaults at most 0.05 % unavailable for the SLA
  (99.95 %) and 1 % for the rollback threshold (99 %), next to at most 0.5 % / 1 % errors of
  any kind;
* p95 latency, from the merged ``LatencyHistogram`` (1 % relative accuracy).

A threshold is crossed when the value is strictly worse than it (equality is within).

Verdicts, by precedence
-----------------------
``failing``
    a rollback threshold is crossed *significantly* on at least ``min_requests`` samples:
    the exact one-sided binomial test of "true rate > rollback limit" rejects at
    ``policy.confidence`` (equivalently, the Clopper-Pearson lower bound of the canary rate
    is above the limit). The tested rate is the error rate, the unavailable share
    (``1 - availability``, so the bound shown is an upper bound of the availability) or, for
    p95, the fraction of requests slower than ``rollback.max_p95_ms``, which exceeds 5 % when
    the p95 exceeds that latency (up to the histogram's one-bucket, 1 % resolution).
    Action ``rollback``, or ``alert`` on a global incident (below).
``degraded``
    outside the SLA, or past a rollback threshold without significance yet. Action ``hold``.
``insufficient_data``
    fewer canary requests (or latency samples) than ``min_requests``: promotion is blocked
    and a rollback is never recommended. Action ``hold``, or ``alert`` when the few
    requests already significantly exceed a rollback threshold.
``healthy``
    every rule within the SLA on enough data. Action ``none``.

Why the exact test and not a Wilson bound: for rare events on small samples the Wilson
interval is anti-conservative. With 2 errors in 50 requests its 95 % lower bound is 1.33 %,
above a 1 % rollback threshold, although ``P(X >= 2 | n=50, p=1 %) = 8.9 %`` is not
significant (Clopper-Pearson lower bound 0.72 %). With 120 errors in 4 000 requests (3 %)
both agree the excess is overwhelming (p = 7e-25).

Minimum requests (``derive_min_requests``)
------------------------------------------
For a rate rule with SLA limit ``p0`` and rollback limit ``p1 > p0``, ``min_requests`` is the
smallest number of requests ``n`` at which the two limits are statistically distinguishable:
the exact one-sided binomial test of "rate = p0" at level ``alpha = 1 - confidence``
(reject when the count of errors, or of unavailable requests, is ``>= k``, ``k`` the
smallest count with ``P(X >= k | n, p0) <= alpha``)
rejects with probability ``>= power`` when the true rate is ``p1``. So at ``min_requests`` a
canary sitting at the SLA limit looks past it at most ``alpha`` of the time, and one sitting
at the rollback limit is told apart from it at least ``power`` of the time.

Seed defaults (confidence 95 %, power 80 %): error rate 0.5 % vs 1 % -> 1 811 requests
(critical count 15 errors; exact level 4.3 %, power 80.0 %); availability 99.95 % vs 99 %,
i.e. 0.05 % vs 1 % unavailable -> 299 (critical count 2 unavailable). The availability
limits are twenty times apart where the error-rate ones are two, so the availability rule
needs far fewer requests and the error-rate rule sets the requirement. The textbook normal
approximation ``((z_(1-alpha) sqrt(p0 q0) + z_power sqrt(p1 q1)) / (p1 - p0))**2`` gives
1 597 and 161, whose exact power is only 72 % and 48 %: at these small rates the binomial is
too skewed for it, hence the exact search. Exact power is saw-toothed in ``n`` (a few points
either way just above the minimum); the count keeps growing during a rollout, so that does
not matter.

The p95 thresholds are latencies, not two limits on one rate, so they give no effect size.
The p95 instead needs enough samples for the sample to reach the true p95 with
``confidence``: ``P(all n samples below p95) = 0.95**n <= 1 - confidence``, i.e.
``n >= log(1 - confidence) / log(0.95)`` -> 59 (the classic 95/95 rule).

The requirement is the largest of these and of ``policy.min_requests`` (a configured floor
that can only raise it): 1 811 requests with the seed defaults. The decision tests (exact,
against the rollback limit) are separate from this gate: the gate says when the thresholds
mean something at all, the tests say whether a breach is real.

Stable with little data, and global incidents
---------------------------------------------
A rule the canary breaches is attributed to a *global incident* when stable has at least
``min_requests`` samples, stable itself crosses the same threshold (point estimate), and the
canary is not significantly worse than stable (one-sided pooled two-proportion z-test at
``policy.confidence``, on the error counts, the unavailable counts or the counts slower than
the threshold). The
verdict is unchanged, ``global_incident`` is set when every breached rule of the verdict's
level is so attributed, and ``failing`` then recommends ``alert`` instead of ``rollback``
unless ``policy.blame_canary_on_global_incident``. When stable has too few requests a global
incident cannot be established, so the canary is judged on the absolute thresholds alone:
stable's lack of traffic never blocks or softens the canary's evaluation.

Canary versus stable: see ``rollout.comparison``; ``evaluate_health`` lifts the verdict to
``degraded`` when the canary is significantly worse than stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from statistics import NormalDist
from typing import Any, Final

from rollout.comparison import (
    DEFAULT_COMPARISON,
    Comparison,
    ComparisonPolicy,
    compare_canary_with_stable,
)
from rollout.histogram import RequestTally
from rollout.wording import count as _count
from rollout.wording import limit_ms as _limit_ms
from rollout.wording import ms as _ms
from rollout.wording import percent as _percent
from rollout.wording import percents as _percents

P95: Final = 0.95
_TAIL: Final = 1.0 - P95
_STANDARD_NORMAL: Final = NormalDist()


class Verdict(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    INSUFFICIENT_DATA = "insufficient_data"


class Action(StrEnum):
    NONE = "none"
    HOLD = "hold"
    ALERT = "alert"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Thresholds:
    """Limits for one level (SLA or rollback); crossing means strictly worse than the limit."""

    max_error_rate: float
    max_p95_ms: float
    min_availability: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_error_rate < 1.0:
            raise ValueError(f"max_error_rate must be in [0, 1), got {self.max_error_rate}")
        if not 0.0 <= self.min_availability < 1.0:
            raise ValueError(f"min_availability must be in [0, 1), got {self.min_availability}")
        if not (self.max_p95_ms > 0.0 and math.isfinite(self.max_p95_ms)):
            raise ValueError(f"max_p95_ms must be positive and finite, got {self.max_p95_ms}")

    def to_dict(self) -> dict[str, float]:
        return {
            "max_error_rate": self.max_error_rate,
            "max_p95_ms": self.max_p95_ms,
            "min_availability": self.min_availability,
        }


DEFAULT_SLA: Final = Thresholds(max_error_rate=0.005, max_p95_ms=100.0, min_availability=0.9995)
DEFAULT_ROLLBACK: Final = Thresholds(max_error_rate=0.01, max_p95_ms=200.0, min_availability=0.99)


@dataclass(frozen=True)
class HealthPolicy:
    """Statistical knobs of the evaluation.

    ``confidence``: one-sided confidence of every significance decision (rollback, global
    incident) and ``1 - alpha`` of the minimum-request derivation. ``power``: probability
    that ``min_requests`` requests reveal a canary sitting at the rollback threshold.
    ``min_requests``: floor that can only raise the derived minimum.
    """

    confidence: float = 0.95
    power: float = 0.80
    min_requests: int = 0
    blame_canary_on_global_incident: bool = False

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if not 0.5 <= self.power < 1.0:
            raise ValueError(f"power must be in [0.5, 1), got {self.power}")
        if self.min_requests < 0:
            raise ValueError(f"min_requests must be >= 0, got {self.min_requests}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": self.confidence,
            "power": self.power,
            "min_requests": self.min_requests,
            "blame_canary_on_global_incident": self.blame_canary_on_global_incident,
        }


# -- statistics ----------------------------------------------------------------------------


def sample_size_one_sided(p0: float, p1: float, *, confidence: float, power: float) -> int:
    """Smallest n at which the exact one-sided binomial test tells rate ``p1`` from ``p0``.

    The test rejects "rate = p0" when ``X >= k``, ``k`` the smallest count with
    ``P(X >= k | n, p0) <= 1 - confidence``; the result is the smallest ``n`` for which it
    rejects with probability ``>= power`` when the rate is ``p1``. Requires
    ``0 <= p0 < p1 <= 1``.
    """
    if not 0.0 <= p0 < p1 <= 1.0:
        raise ValueError(f"need 0 <= p0 < p1 <= 1, got p0={p0}, p1={p1}")
    alpha = 1.0 - confidence
    if p0 == 0.0:
        # No false positive is possible, so one event suffices: P(X >= 1 | n, p1) >= power.
        return max(1, math.ceil(math.log1p(-power) / math.log1p(-p1)))
    # For a fixed critical count k the level and the power both grow with n, and k is the
    # critical count exactly for n in (largest_n(k - 1), largest_n(k)]. Walking k upwards and
    # bisecting inside the first range that reaches the power gives the smallest n without
    # scanning every n (power is saw-toothed in n, so plain bisection on n would be wrong).
    previous = 0
    k = 1
    while True:
        largest = _largest_n_at_level(k, p0, alpha, previous + 1)
        low = max(previous + 1, k)
        if low <= largest and binomial_upper_tail(k, largest, p1) >= power:
            high = largest
            while low < high:
                middle = (low + high) // 2
                if binomial_upper_tail(k, middle, p1) >= power:
                    high = middle
                else:
                    low = middle + 1
            return low
        previous = max(previous, largest)
        k += 1


def _largest_n_at_level(k: int, p: float, alpha: float, start: int) -> int:
    """Largest n (>= start - 1) with ``P(X >= k | n, p) <= alpha``; that tail grows with n."""
    low = max(start, k)
    if binomial_upper_tail(k, low, p) > alpha:
        return low - 1
    step = max(1, int(1.0 / p))
    high = low + step
    while binomial_upper_tail(k, high, p) <= alpha:
        low, high = high, high + step
        step *= 2
    while high - low > 1:
        middle = (low + high) // 2
        if binomial_upper_tail(k, middle, p) <= alpha:
            low = middle
        else:
            high = middle
    return low


def _betainc_continued_fraction(a: float, b: float, x: float) -> float:
    # Modified Lentz evaluation (Numerical Recipes "betacf"); it needs O(sqrt(max(a, b)))
    # iterations, hence the size-dependent cap rather than the book's fixed 100.
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000 + 20 * math.isqrt(int(max(a, b)) + 1)):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)`` for ``a, b > 0``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betainc_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betainc_continued_fraction(b, a, 1.0 - x) / b


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """Exact ``P(X >= k)`` for ``X ~ Binomial(n, p)``: the one-sided p-value of ``k`` events."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return _betainc(float(k), float(n - k + 1), p)


def clopper_pearson_lower(k: int, n: int, confidence: float) -> float:
    """One-sided exact (Clopper-Pearson) lower confidence bound of a binomial rate."""
    if n <= 0 or k <= 0:
        return 0.0
    alpha = 1.0 - confidence
    low, high = 0.0, k / n
    # The tail probability grows with p, so bisection converges; 1e-6 relative is far finer
    # than the two decimals the bound is reported with.
    while high - low > 1e-6 * high:
        middle = (low + high) / 2.0
        if binomial_upper_tail(k, n, middle) > alpha:
            high = middle
        else:
            low = middle
    return low


def _z_greater(k1: int, n1: int, k2: int, n2: int) -> float:
    """Pooled two-proportion z statistic for "rate 1 > rate 2" (0 when both rates are 0)."""
    pooled = (k1 + k2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    difference = k1 / n1 - k2 / n2
    if variance <= 0.0:
        return 0.0 if difference <= 0.0 else math.inf
    return difference / math.sqrt(variance)


def _exceeds(value: float, limit: float) -> bool:
    # 1 - 0.9995 is not 0.0005 in binary; without the tolerance a rate exactly at an
    # availability limit would count as crossing it.
    return value > limit and not math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-15)


# -- minimum requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class MinRequests:
    """Per-rule minimum sample sizes; ``required`` is what the evaluation enforces."""

    error_rate: int
    availability: int
    p95: int
    floor: int

    @property
    def required(self) -> int:
        return max(1, self.error_rate, self.availability, self.p95, self.floor)

    def to_dict(self) -> dict[str, int]:
        return {
            "error_rate": self.error_rate,
            "availability": self.availability,
            "p95": self.p95,
            "floor": self.floor,
            "required": self.required,
        }


def _check_threshold_order(sla: Thresholds, rollback: Thresholds) -> None:
    if not sla.max_error_rate < rollback.max_error_rate:
        raise ValueError("SLA max_error_rate must be below the rollback max_error_rate")
    if not sla.min_availability > rollback.min_availability:
        raise ValueError("SLA min_availability must be above the rollback min_availability")
    if not sla.max_p95_ms < rollback.max_p95_ms:
        raise ValueError("SLA max_p95_ms must be below the rollback max_p95_ms")


def derive_min_requests(sla: Thresholds, rollback: Thresholds, policy: HealthPolicy) -> MinRequests:
    """Minimum canary requests per rule, derived from the thresholds (module docstring)."""
    _check_threshold_order(sla, rollback)
    return MinRequests(
        error_rate=sample_size_one_sided(
            sla.max_error_rate,
            rollback.max_error_rate,
            confidence=policy.confidence,
            power=policy.power,
        ),
        availability=sample_size_one_sided(
            1.0 - sla.min_availability,
            1.0 - rollback.min_availability,
            confidence=policy.confidence,
            power=policy.power,
        ),
        p95=math.ceil(math.log1p(-policy.confidence) / math.log(P95)),
        floor=policy.min_requests,
    )


# -- report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionStats:
    """Numbers of one version as evaluated; rates and latencies are ``None`` without data.

    ``availability`` is ``1 - unavailable / requests`` (see ``RequestTally``).
    """

    requests: int
    errors: int
    error_rate: float | None
    availability: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    latency_samples: int
    # Last, with a default, so that existing positional or keyword construction keeps working.
    unavailable: int = 0

    @classmethod
    def from_tally(cls, tally: RequestTally) -> VersionStats:
        p50 = p95 = p99 = None
        if tally.histogram.count:
            p50, p95, p99 = tally.histogram.quantiles((0.50, P95, 0.99))
        return cls(
            requests=tally.requests,
            errors=tally.errors,
            unavailable=tally.unavailable,
            error_rate=tally.error_rate,
            availability=tally.availability,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            latency_samples=tally.histogram.count,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "unavailable": self.unavailable,
            "error_rate": self.error_rate,
            "availability": self.availability,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "latency_samples": self.latency_samples,
        }


@dataclass(frozen=True)
class HealthReport:
    """Result of ``evaluate_health``; ``to_dict`` is the frozen evidence / REST payload."""

    verdict: Verdict
    action: Action
    reasons: list[str]
    stable: VersionStats
    canary: VersionStats
    min_requests: int
    global_incident: bool
    min_requests_basis: MinRequests
    sla: Thresholds
    rollback: Thresholds
    policy: HealthPolicy
    # Last, with a default, so that existing construction keeps working; None when the
    # comparison with stable was switched off.
    comparison: Comparison | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "action": self.action.value,
            "global_incident": self.global_incident,
            "reasons": list(self.reasons),
            "min_requests": self.min_requests,
            "min_requests_basis": self.min_requests_basis.to_dict(),
            "versions": {"stable": self.stable.to_dict(), "canary": self.canary.to_dict()},
            "thresholds": {"sla": self.sla.to_dict(), "rollback": self.rollback.to_dict()},
            "policy": self.policy.to_dict(),
            "comparison": self.comparison.to_dict() if self.comparison is not None else None,
        }


# -- rules ---------------------------------------------------------------------------------


class _Level(IntEnum):
    OK = 0
    UNKNOWN = 1
    SLA = 2
    ROLLBACK = 3


@dataclass
class _Outcome:
    level: _Level
    reasons: list[str] = field(default_factory=list)
    explained_by_stable: bool = False
    significant_on_little_data: bool = False


@dataclass(frozen=True)
class _RateView:
    """How a rate rule counts, reads and words its numbers (error rate or availability)."""

    label: str
    events: Callable[[RequestTally], int]  # the counted bad requests
    noun: str  # how those are named after a count: "120 errors", "60 unavailable"
    shown: Callable[[float], float]  # rate of bad requests -> displayed value
    worse: str  # comparison shown when crossing a limit
    better: str
    bound: str  # the confidence bound that matters, named in display space


_ERROR_RATE_VIEW: Final = _RateView(
    "error rate", lambda t: t.errors, "errors", lambda r: r, ">", "<=", "lower"
)
_AVAILABILITY_VIEW: Final = _RateView(
    "availability", lambda t: t.unavailable, "unavailable", lambda r: 1.0 - r, "<", ">=", "upper"
)


def _rate_rule(
    view: _RateView,
    *,
    canary: RequestTally,
    stable: RequestTally,
    sla_limit: float,
    rollback_limit: float,
    min_requests: int,
    policy: HealthPolicy,
) -> _Outcome:
    """Judge one rate rule; limits are rates of bad requests (availability = 1 - rate)."""
    alpha = 1.0 - policy.confidence
    conf = f"{policy.confidence * 100:g} %"
    n, k = canary.requests, view.events(canary)
    counted = f"{_count(k)} {view.noun}"
    rate = k / n if n else 0.0

    def shown_pair(value: float, limit: float) -> tuple[str, str]:
        return _percents(view.shown(value), view.shown(limit))

    def significance() -> tuple[bool, str]:
        significant = binomial_upper_tail(k, n, rollback_limit) <= alpha
        bound = view.shown(clopper_pearson_lower(k, n, policy.confidence))
        return significant, f"{conf} {view.bound} bound {_percent(bound)}"

    if n < min_requests:
        outcome = _Outcome(_Level.UNKNOWN)
        if n == 0:
            outcome.reasons.append(
                f"canary {view.label}: no requests yet (< {_count(min_requests)} needed)"
            )
            return outcome
        value, limit = shown_pair(rate, sla_limit)
        _, rollback_shown = shown_pair(rate, rollback_limit)
        reason = (
            f"canary {view.label} {value} on only {_count(n)} requests ({counted}) "
            f"< {_count(min_requests)} needed to tell SLA {limit} from rollback threshold "
            f"{rollback_shown}: not judged yet"
        )
        if _exceeds(rate, rollback_limit):
            significant, bound = significance()
            if significant:
                outcome.significant_on_little_data = True
                reason += (
                    f"; already significantly past the rollback threshold ({bound}): alerting, "
                    f"rollback waits for {_count(min_requests)} requests"
                )
        outcome.reasons.append(reason)
        return outcome

    if _exceeds(rate, rollback_limit):
        value, limit = shown_pair(rate, rollback_limit)
        significant, bound = significance()
        numbers = f"{_count(n)} requests, {counted}; {bound}"
        if significant:
            outcome = _Outcome(_Level.ROLLBACK)
            outcome.reasons.append(
                f"canary {view.label} {value} {view.worse} rollback threshold {limit} ({numbers})"
            )
            level_limit = rollback_limit
        else:
            outcome = _Outcome(_Level.SLA)
            outcome.reasons.append(
                f"canary {view.label} {value} {view.worse} rollback threshold {limit} but not "
                f"significantly ({numbers}): holding instead of rolling back"
            )
            level_limit = sla_limit
    elif _exceeds(rate, sla_limit):
        value, limit = shown_pair(rate, sla_limit)
        outcome = _Outcome(_Level.SLA)
        outcome.reasons.append(
            f"canary {view.label} {value} {view.worse} SLA threshold {limit} "
            f"({_count(n)} requests, {counted})"
        )
        level_limit = sla_limit
    else:
        value, limit = shown_pair(rate, sla_limit)
        return _Outcome(
            _Level.OK,
            [
                f"canary {view.label} {value} {view.better} SLA threshold {limit} "
                f"({_count(n)} requests, {counted})"
            ],
        )

    level_name = "rollback threshold" if outcome.level is _Level.ROLLBACK else "SLA threshold"
    stable_k = view.events(stable)
    _compare_with_stable(
        outcome,
        label=view.label,
        canary_k=k,
        canary_n=n,
        stable_k=stable_k,
        stable_n=stable.requests,
        stable_crosses=stable.requests > 0 and _exceeds(stable_k / stable.requests, level_limit),
        stable_shown=(
            _percents(view.shown(stable_k / stable.requests), view.shown(level_limit))[0]
            if stable.requests
            else "n/a"
        ),
        limit_shown=f"{view.worse} {level_name} {_percent(view.shown(level_limit))}",
        unit="requests",
        min_requests=min_requests,
        policy=policy,
    )
    return outcome


def _p95_rule(
    *,
    canary: RequestTally,
    stable: RequestTally,
    sla: Thresholds,
    rollback: Thresholds,
    min_requests: int,
    policy: HealthPolicy,
) -> _Outcome:
    """Judge the p95 rule; significance is tested on the fraction slower than the limit."""
    alpha = 1.0 - policy.confidence
    conf = f"{policy.confidence * 100:g} %"
    histogram = canary.histogram
    n = histogram.count
    if n == 0:
        return _Outcome(
            _Level.UNKNOWN,
            [f"canary p95: no latency samples yet (< {_count(min_requests)} needed)"],
        )
    p95 = histogram.quantile(P95)
    slow = histogram.count_above(rollback.max_p95_ms)

    def significance() -> tuple[bool, str]:
        significant = binomial_upper_tail(slow, n, _TAIL) <= alpha
        bound = clopper_pearson_lower(slow, n, policy.confidence)
        return significant, (
            f"{_percent(slow / n)} of requests slower than {_limit_ms(rollback.max_p95_ms)}, "
            f"{conf} lower bound {_percent(bound)} vs {_percent(_TAIL)} allowed"
        )

    if n < min_requests:
        outcome = _Outcome(_Level.UNKNOWN)
        reason = (
            f"canary p95 {_ms(p95)} on only {_count(n)} latency samples "
            f"< {_count(min_requests)} needed: not judged yet"
        )
        if p95 > rollback.max_p95_ms:
            significant, detail = significance()
            if significant:
                outcome.significant_on_little_data = True
                reason += (
                    f"; already significantly past the rollback threshold "
                    f"{_limit_ms(rollback.max_p95_ms)} ({detail}): alerting, rollback waits "
                    f"for {_count(min_requests)} samples"
                )
        outcome.reasons.append(reason)
        return outcome

    if p95 > rollback.max_p95_ms:
        significant, detail = significance()
        numbers = f"{_count(n)} samples; {detail}"
        if significant:
            outcome = _Outcome(_Level.ROLLBACK)
            outcome.reasons.append(
                f"canary p95 {_ms(p95)} > rollback threshold "
                f"{_limit_ms(rollback.max_p95_ms)} ({numbers})"
            )
            level_limit = rollback.max_p95_ms
        else:
            outcome = _Outcome(_Level.SLA)
            outcome.reasons.append(
                f"canary p95 {_ms(p95)} > rollback threshold {_limit_ms(rollback.max_p95_ms)} "
                f"but not significantly ({numbers}): holding instead of rolling back"
            )
            level_limit = sla.max_p95_ms
    elif p95 > sla.max_p95_ms:
        outcome = _Outcome(_Level.SLA)
        outcome.reasons.append(
            f"canary p95 {_ms(p95)} > SLA threshold {_limit_ms(sla.max_p95_ms)} "
            f"({_count(n)} samples)"
        )
        level_limit = sla.max_p95_ms
    else:
        return _Outcome(
            _Level.OK,
            [
                f"canary p95 {_ms(p95)} <= SLA threshold {_limit_ms(sla.max_p95_ms)} "
                f"({_count(n)} samples)"
            ],
        )

    level_name = "rollback threshold" if outcome.level is _Level.ROLLBACK else "SLA threshold"
    stable_n = stable.histogram.count
    stable_p95 = stable.histogram.quantile(P95) if stable_n else None
    _compare_with_stable(
        outcome,
        label="p95",
        canary_k=histogram.count_above(level_limit),
        canary_n=n,
        stable_k=stable.histogram.count_above(level_limit) if stable_n else 0,
        stable_n=stable_n,
        stable_crosses=stable_p95 is not None and stable_p95 > level_limit,
        stable_shown=_ms(stable_p95) if stable_p95 is not None else "n/a",
        limit_shown=f"> {level_name} {_limit_ms(level_limit)}",
        unit="latency samples",
        min_requests=min_requests,
        policy=policy,
    )
    return outcome


def _compare_with_stable(
    outcome: _Outcome,
    *,
    label: str,
    canary_k: int,
    canary_n: int,
    stable_k: int,
    stable_n: int,
    stable_crosses: bool,
    stable_shown: str,
    limit_shown: str,
    unit: str,
    min_requests: int,
    policy: HealthPolicy,
) -> None:
    """Decide whether stable shares the canary's breach, and say why (global incident)."""
    if stable_n < min_requests:
        outcome.reasons.append(
            f"stable has only {_count(stable_n)} {unit} (< {_count(min_requests)}): a global "
            f"incident cannot be established, the canary {label} is judged on its own"
        )
        return
    if not stable_crosses:
        outcome.reasons.append(
            f"stable {label} {stable_shown} is not {limit_shown} "
            f"({_count(stable_n)} {unit}): the breach is specific to the canary"
        )
        return
    z = _z_greater(canary_k, canary_n, stable_k, stable_n)
    z_critical = _STANDARD_NORMAL.inv_cdf(policy.confidence)
    if z > z_critical:
        outcome.reasons.append(
            f"stable {label} {stable_shown} is also {limit_shown} ({_count(stable_n)} {unit}) "
            f"but the canary is significantly worse (z = {z:.2f} > {z_critical:.2f})"
        )
        return
    outcome.explained_by_stable = True
    outcome.reasons.append(
        f"stable {label} {stable_shown} is also {limit_shown} ({_count(stable_n)} {unit}) and "
        f"the canary is not significantly worse (z = {z:.2f} <= {z_critical:.2f}): "
        f"global incident"
    )


# -- evaluation ----------------------------------------------------------------------------


def evaluate_health(
    *,
    stable: RequestTally,
    canary: RequestTally,
    sla: Thresholds = DEFAULT_SLA,
    rollback: Thresholds = DEFAULT_ROLLBACK,
    policy: HealthPolicy | None = None,
    comparison: ComparisonPolicy | None = DEFAULT_COMPARISON,
) -> HealthReport:
    """Judge the canary against the SLA and rollback thresholds, comparing it with stable.

    Pure and deterministic; see the module docstring for the rules, the derivation of
    ``min_requests``, the global-incident logic and the comparison with stable. A canary
    significantly worse than stable (``comparison``, ``None`` switches it off) is at least
    ``degraded``: it lifts ``healthy`` and ``insufficient_data`` to ``degraded`` and leaves
    ``degraded`` and ``failing`` as they are, so it never causes a rollback. ``ValueError``
    when the SLA is not strictly stricter than the rollback thresholds on every rule.
    """
    policy = policy if policy is not None else HealthPolicy()
    basis = derive_min_requests(sla, rollback, policy)
    min_requests = basis.required
    common: dict[str, Any] = {
        "canary": canary,
        "stable": stable,
        "min_requests": min_requests,
        "policy": policy,
    }
    outcomes = [
        _rate_rule(
            _ERROR_RATE_VIEW,
            sla_limit=sla.max_error_rate,
            rollback_limit=rollback.max_error_rate,
            **common,
        ),
        _rate_rule(
            _AVAILABILITY_VIEW,
            sla_limit=1.0 - sla.min_availability,
            rollback_limit=1.0 - rollback.min_availability,
            **common,
        ),
        _p95_rule(sla=sla, rollback=rollback, **common),
    ]
    compared = (
        compare_canary_with_stable(stable=stable, canary=canary, policy=comparison)
        if comparison is not None
        else None
    )
    if compared is not None:
        # Worse than stable is a breach at the SLA level that stable does not share, so it
        # also rules out a global incident at that level.
        outcomes.append(
            _Outcome(_Level.SLA if compared.worse else _Level.OK, list(compared.reasons))
        )
    worst = max(outcome.level for outcome in outcomes)
    breached = [outcome for outcome in outcomes if outcome.level == worst]
    global_incident = worst >= _Level.SLA and all(o.explained_by_stable for o in breached)

    reasons: list[str] = []
    if worst is _Level.ROLLBACK:
        verdict = Verdict.FAILING
        if global_incident and not policy.blame_canary_on_global_incident:
            action = Action.ALERT
            reasons.append(
                "global incident: stable is just as bad, alerting instead of rolling back "
                "(blame_canary_on_global_incident is off)"
            )
        else:
            action = Action.ROLLBACK
            if global_incident:
                reasons.append(
                    "global incident, rolling back anyway (blame_canary_on_global_incident is on)"
                )
    elif worst is _Level.SLA:
        verdict, action = Verdict.DEGRADED, Action.HOLD
        if any(outcome.significant_on_little_data for outcome in outcomes):
            # A comparison with stable can lift insufficient_data to degraded; the alert
            # already owed to a rule significantly past its rollback threshold on few
            # requests (whose reason says "alerting") must survive that.
            action = Action.ALERT
        if global_incident:
            reasons.append("global incident: stable is outside the SLA as well, holding")
    elif worst is _Level.UNKNOWN:
        verdict = Verdict.INSUFFICIENT_DATA
        alert = any(outcome.significant_on_little_data for outcome in outcomes)
        action = Action.ALERT if alert else Action.HOLD
    else:
        verdict, action = Verdict.HEALTHY, Action.NONE

    for outcome in sorted(outcomes, key=lambda o: o.level, reverse=True):
        reasons.extend(outcome.reasons)
    return HealthReport(
        verdict=verdict,
        action=action,
        reasons=reasons,
        stable=VersionStats.from_tally(stable),
        canary=VersionStats.from_tally(canary),
        min_requests=min_requests,
        global_incident=global_incident,
        min_requests_basis=basis,
        sla=sla,
        rollback=rollback,
        policy=policy,
        comparison=compared,
    )

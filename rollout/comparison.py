"""Canary versus stable: is the new version significantly worse than its
baseline, beyond a margin?

Pure module (standard library + ``rollout.histogram``), no Django; ``rollout.health`` calls it
from ``evaluate_health``.

Canary versus stable (``ComparisonPolicy``, ``compare_canary_with_stable``)
-----------------------------------------------------------------------------
The thresholds alone call a canary at 0.45 % errors healthy next to a stable at 0.05 %. So,
as Kayenta judges a canary against its baseline, two one-sided tests ask whether the canary
is *worse than stable* beyond a margin; when either rejects, the verdict is at least
``degraded`` (action ``hold``; a ``failing`` verdict stays failing, and the comparison never
causes a rollback). Each test runs at ``alpha = (1 - confidence) / 2`` (Bonferroni), so an
identical canary is flagged by either at most ``1 - confidence`` of the time. A test is *not
judged* (neither worse nor fine, no effect on the verdict) until both versions have
``min_requests`` requests (error rate) or latency samples (latency).

Error rate, canary ``x1`` errors in ``n1`` requests, stable ``x2`` in ``n2``,
``p_i = x_i / n_i``, absolute margin ``delta``; H0 ``p_canary <= p_stable + delta``:

* ``delta = 0``: pooled two-proportion z-test,
  ``z = (p1 - p2) / sqrt(pbar (1 - pbar) (1/n1 + 1/n2))`` with ``pbar = (x1 + x2) / (n1 + n2)``;
* ``delta > 0``: Wald test of the shifted null with unpooled variance,
  ``z = (p1 - p2 - delta) / sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2)``;

one-sided ``p = 1 - Phi(z)``, worse when ``p <= alpha``. The pooled variance is the exact
null variance only at ``delta = 0``. For ``delta > 0`` the Wald test was preferred to the
Farrington-Manning score test (variance at the MLE constrained to ``p1 - p2 = delta``) because
of what errors look like here: rare, and counted on a canary that gets a small share of the
traffic. The canary's error count is then right-skewed, which makes a test whose variance does
not move with the canary's own count anti-conservative in the "canary worse" direction; the
unpooled variance grows with ``p1`` and offsets the skew. Exact sizes (complete enumeration
of both binomials) at nominal 0.5 %, margin 0.1 pp, 1 000 canary vs 19 000 stable requests
(a 5 % canary): Farrington-Manning 2.0 %, 1.4 %, 1.0 % at 0.02 %, 0.1 %, 0.5 % stable errors,
Wald 0.00 %, 0.00 %, 0.03 %; on 5 000 vs 5 000 requests Farrington-Manning 0.76 %, 0.55 %,
0.49 %, Wald 0.06 %, 0.24 %, 0.44 %. Wald costs a little power when the canary share is small
(+0.5 pp from 0.1 %: 93 % vs 99 % on 5 000 vs 95 000 requests, 99.4 % vs 99.5 % on 10 000
vs 10 000). When both observed rates are 0 or 1 the variance is 0: not worse (``z`` is
``None``), except a canary failing every request next to a stable failing none.

Known limit of ``delta = 0``: the pooled z-test shares that skew problem. It holds its level
on balanced traffic (exact size <= 0.5 % at every rate on 1 000 vs 1 000 and 4 000 vs 4 000
requests) but not on a 5 % canary with few errors: 3.4 %, 1.7 %, 1.1 %, 0.72 % at 0.02 %,
0.1 %, 0.5 %, 3 % errors on 1 000 vs 19 000 requests, 1.1 %, 0.78 %, 0.63 %, 0.55 % on
20 000 vs 380 000. With the default margin an identical canary sits far inside the null and
is practically never flagged (``bench/bench_canary_comparison.py``).

Latency: Mann-Whitney U on the two histograms. Every sample of a bucket is a tie at the
bucket's value; with ``c_i`` canary and ``s_i`` stable samples in bucket ``i``,
``t_i = c_i + s_i``, ``n1 = sum c_i``, ``n2 = sum s_i``, ``N = n1 + n2``:
``U = sum_i c_i (sum_{j < i} s_j + s_i / 2)``, ``E[U] = n1 n2 / 2``,
``Var[U] = n1 n2 / 12 ((N + 1) - sum_i (t_i**3 - t_i) / (N (N - 1)))`` (tie-corrected),
``z = (U - n1 n2 / 2) / sqrt(Var[U])`` without continuity correction, ``p = 1 - Phi(z)``
("canary slower"). It tests stochastic order (``P(canary > stable) > 1/2``), the median
region more than the tail; the p95s are shown as context and the tail has its own absolute
rule. The relative margin ``m`` shifts every canary bucket down by
``k = ceil(log(1 + m) / log(gamma))`` buckets, which on the fixed bucket grid is exactly
dividing each canary latency by ``gamma**k``; the test is then of "canary more than
``gamma**k - 1`` slower". A bucket is ``gamma = 1.0202`` wide (2.02 %, twice the 1 % relative
accuracy), so the margin is rounded *up* to whole buckets: 1 % -> 1 bucket (2.02 %),
5 % -> 3 (6.18 %), 10 % -> 5 (10.52 %). Rounding up keeps the stated margin inside the null,
so a canary exactly ``m`` slower is flagged at most ``alpha`` of the time; rounding down would
flag it with a probability growing to 1 with traffic. The price is at most one bucket of
insensitivity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Final

from rollout.histogram import GAMMA, ZERO_BUCKET, RequestTally
from rollout.wording import count as _count
from rollout.wording import ms as _ms
from rollout.wording import percent as _percent
from rollout.wording import percents as _percents

_STANDARD_NORMAL: Final = NormalDist()
P95: Final = 0.95


@dataclass(frozen=True)
class ComparisonPolicy:
    """Knobs of the canary-versus-stable comparison (module docstring, "Canary versus stable").

    ``confidence``: family-wise one-sided confidence of the two tests together; each runs at
    ``alpha = (1 - confidence) / 2`` (Bonferroni), so an identical canary is flagged worse by
    either at most ``1 - confidence`` of the time.
    ``error_rate_margin``: absolute margin ``delta`` in rate units (0.001 = 0.1 percentage
    point); the error test rejects "canary rate <= stable rate + delta".
    ``latency_margin``: relative margin ``m`` (0.05 = 5 %); the latency test rejects "canary
    at most ``m`` slower", on whole buckets: ``latency_margin_buckets = ceil(log(1 + m) /
    log(gamma))`` and ``effective_latency_margin = gamma**k - 1 >= m``.
    ``min_requests``: requests (error test) or latency samples (latency test) that *each*
    version needs before that test is judged; below it the test is "not judged", never
    "worse".

    Default ``min_requests = 1 000``. The latency test does not set it (the normal
    approximation of U is good from a few dozen samples per version); the error test does,
    because it reads rates from error counts. 1 000 requests expect 5 errors per version at
    the seed SLA error rate of 0.5 %, the usual ``n p >= 5`` for a normal approximation of a
    proportion, and on 1 000 vs 1 000 requests the exact size of both error tests stays within
    0.51 % of a nominal 0.5 % at every rate from 0.02 % to 30 % (complete enumeration; below
    0.5 % errors it is far smaller). Fewer requests would rarely reject anyway, but on a
    handful of errors.
    """

    confidence: float = 0.99
    error_rate_margin: float = 0.001
    latency_margin: float = 0.05
    min_requests: int = 1_000

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if not 0.0 <= self.error_rate_margin < 1.0:
            raise ValueError(
                f"error_rate_margin must be in [0, 1) (a rate), got {self.error_rate_margin}"
            )
        if not (self.latency_margin >= 0.0 and math.isfinite(self.latency_margin)):
            raise ValueError(
                f"latency_margin must be >= 0 and finite (relative), got {self.latency_margin}"
            )
        if self.min_requests < 1:
            raise ValueError(f"min_requests must be >= 1, got {self.min_requests}")

    @property
    def alpha_per_test(self) -> float:
        # Rounded so that 0.99 gives 0.005 and not 0.0050000000000000044 in the evidence.
        return float(f"{(1.0 - self.confidence) / 2.0:.12g}")

    @property
    def latency_margin_buckets(self) -> int:
        return latency_margin_buckets(self.latency_margin)

    @property
    def effective_latency_margin(self) -> float:
        return float(GAMMA**self.latency_margin_buckets - 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": self.confidence,
            "error_rate_margin": self.error_rate_margin,
            "latency_margin": self.latency_margin,
            "min_requests": self.min_requests,
            "alpha_per_test": self.alpha_per_test,
            "latency_margin_buckets": self.latency_margin_buckets,
            "effective_latency_margin": self.effective_latency_margin,
        }


DEFAULT_COMPARISON: Final = ComparisonPolicy()


def normal_sf(z: float) -> float:
    """``1 - Phi(z)``, accurate far into the upper tail (``erfc``, no cancellation)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def error_rate_z(
    canary_errors: int,
    canary_requests: int,
    stable_errors: int,
    stable_requests: int,
    *,
    margin: float = 0.0,
) -> float | None:
    """z statistic of "canary error rate > stable error rate + margin" (module docstring).

    ``margin == 0``: pooled z, ``(p1 - p2) / sqrt(pbar (1 - pbar) (1/n1 + 1/n2))``.
    ``margin > 0``: Wald z with unpooled variance,
    ``(p1 - p2 - margin) / sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2)``.
    ``None`` when the variance is 0 (both rates 0 or 1). ``ValueError`` without requests.
    """
    n1, x1, n2, x2 = canary_requests, canary_errors, stable_requests, stable_errors
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"need requests in both versions, got {n1} and {n2}")
    if not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError(f"errors must be within [0, requests], got {x1}/{n1} and {x2}/{n2}")
    p1, p2 = x1 / n1, x2 / n2
    if margin == 0.0:
        pooled = (x1 + x2) / (n1 + n2)
        variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    else:
        variance = p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2
    if variance <= 0.0:
        return None
    return (p1 - p2 - margin) / math.sqrt(variance)


def latency_margin_buckets(margin: float) -> int:
    """Whole buckets a relative latency margin is rounded *up* to: ``ceil(log(1+m)/log(gamma))``.

    The 1e-9 keeps a margin of exactly ``gamma**k - 1`` at ``k`` despite float rounding.
    """
    if not (margin >= 0.0 and math.isfinite(margin)):
        raise ValueError(f"margin must be >= 0 and finite, got {margin}")
    return max(0, math.ceil(math.log1p(margin) / math.log(GAMMA) - 1e-9))


def mann_whitney_z(
    canary: Mapping[int, int], stable: Mapping[int, int], *, shift_buckets: int = 0
) -> tuple[float, float | None]:
    """``(U, z)`` of the one-sided Mann-Whitney test "canary slower" on bucket counts.

    ``canary`` and ``stable`` map bucket index to count (``LatencyHistogram.to_counts``).
    Every canary bucket ``i`` is first moved to ``i - shift_buckets`` (the relative margin;
    the zero bucket stays, and nothing moves below it). Then, with ``c_i`` and ``s_i`` the
    counts in bucket ``i`` and ``t_i = c_i + s_i``:
    ``U = sum_i c_i (sum_{j < i} s_j + s_i / 2)`` and
    ``z = (U - n1 n2 / 2) / sqrt(n1 n2 / 12 ((N + 1) - sum_i (t_i**3 - t_i) / (N (N - 1))))``,
    no continuity correction. The sums are done in integers, so the all-ties case is exactly
    variance 0: ``z`` is then ``None``. ``ValueError`` when a version has no samples.
    """
    shifted: dict[int, int] = {}
    for index, count in canary.items():
        if count > 0:
            target = index if index == ZERO_BUCKET else max(index - shift_buckets, ZERO_BUCKET)
            shifted[target] = shifted.get(target, 0) + count
    baseline = {index: count for index, count in stable.items() if count > 0}
    n1, n2 = sum(shifted.values()), sum(baseline.values())
    if n1 == 0 or n2 == 0:
        raise ValueError(f"need latency samples in both versions, got {n1} and {n2}")
    twice_u = 0
    ties = 0
    below = 0
    for index in sorted(shifted.keys() | baseline.keys()):
        c, s = shifted.get(index, 0), baseline.get(index, 0)
        twice_u += c * (2 * below + s)
        t = c + s
        ties += t * t * t - t
        below += s
    total = n1 + n2
    # 12 N (N - 1) Var[U] / (n1 n2), an exact integer.
    scaled = (total + 1) * total * (total - 1) - ties
    u = twice_u / 2
    if scaled <= 0:
        return u, None
    variance = n1 * n2 * scaled / (12 * total * (total - 1))
    return u, (twice_u - n1 * n2) / 2 / math.sqrt(variance)


@dataclass(frozen=True)
class ComparisonCheck:
    """One test of the comparison; ``to_dict`` gives its evidence (all floats finite).

    ``z`` and ``p_value`` are ``None`` when the test is not judged or has no variance.
    ``canary`` / ``stable`` hold the figures compared; ``extra`` the test-specific ones
    (margins, U). ``detail`` is a full sentence, ``summary`` the clause used in the
    combined "not worse" / "not judged" reasons.
    """

    name: str
    method: str
    judged: bool
    worse: bool
    z: float | None
    p_value: float | None
    alpha: float
    canary: dict[str, Any]
    stable: dict[str, Any]
    detail: str
    summary: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "judged": self.judged,
            "worse": self.worse,
            "z": self.z,
            "p_value": self.p_value,
            "alpha": self.alpha,
            **self.extra,
            "canary": dict(self.canary),
            "stable": dict(self.stable),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Comparison:
    """Result of ``compare_canary_with_stable``: the error-rate and the latency check.

    ``judged``: at least one check was judged. ``worse``: at least one check found the canary
    significantly worse than stable.
    """

    policy: ComparisonPolicy
    checks: tuple[ComparisonCheck, ...]

    @property
    def judged(self) -> bool:
        return any(check.judged for check in self.checks)

    @property
    def worse(self) -> bool:
        return any(check.worse for check in self.checks)

    def check(self, name: str) -> ComparisonCheck:
        return next(check for check in self.checks if check.name == name)

    @property
    def reasons(self) -> list[str]:
        """One reason per worse check, then one for the rest, then one for the unjudged."""
        reasons = [check.detail for check in self.checks if check.worse]
        fine = [check.summary for check in self.checks if check.judged and not check.worse]
        if fine:
            policy = self.policy
            margins = (
                f"margins {_pp(policy.error_rate_margin)} on errors, "
                f"{policy.latency_margin * 100:g} % on latency"
            )
            reasons.append(
                f"canary not significantly worse than stable ({margins}, "
                f"{policy.confidence * 100:g} % confidence): " + "; ".join(fine)
            )
        unjudged = [check.summary for check in self.checks if not check.judged]
        if unjudged:
            reasons.append(
                "canary vs stable not judged yet: "
                + "; ".join(unjudged)
                + f" (< {_count(self.policy.min_requests)} per version)"
            )
        return reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "judged": self.judged,
            "worse": self.worse,
            "policy": self.policy.to_dict(),
            "checks": [check.to_dict() for check in self.checks],
        }


def _p_value(p: float) -> str:
    """``"p = 0.34"``, ``"p = 8.9e-18"``; ``"p < 1e-300"`` once the tail underflows."""
    if p == 0.0:
        return "p < 1e-300"
    if p >= 1e-3:
        return f"p = {p:.2g}"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"p = {mantissa.removesuffix('.0')}e{int(exponent)}"


def _pp(rate: float) -> str:
    points = rate * 100.0
    return f"{points:.2f} pp" if points >= 0.01 else f"{points:.2g} pp"


def _error_rate_check(
    *, canary: RequestTally, stable: RequestTally, policy: ComparisonPolicy
) -> ComparisonCheck:
    n1, x1, n2, x2 = canary.requests, canary.errors, stable.requests, stable.errors
    margin = policy.error_rate_margin
    alpha = policy.alpha_per_test
    method = (
        "pooled two-proportion z-test"
        if margin == 0.0
        else "Wald two-proportion z-test, unpooled variance, shifted null"
    )
    rate1, rate2 = canary.error_rate, stable.error_rate
    if rate1 is not None and rate2 is not None:
        shown1, shown2 = _percents(rate1, rate2)
    else:
        shown1 = _percent(rate1) if rate1 is not None else "n/a"
        shown2 = _percent(rate2) if rate2 is not None else "n/a"
    figures = (
        f"canary error rate {shown1} vs stable {shown2} ({_count(n1)} vs {_count(n2)} requests)"
    )
    beyond = f" beyond the {_pp(margin)} margin" if margin else ""

    def result(
        judged: bool, worse: bool, z: float | None, p: float | None, detail: str, summary: str
    ) -> ComparisonCheck:
        return ComparisonCheck(
            name="error_rate",
            method=method,
            judged=judged,
            worse=worse,
            z=z,
            p_value=p,
            alpha=alpha,
            canary={"requests": n1, "errors": x1, "error_rate": rate1},
            stable={"requests": n2, "errors": x2, "error_rate": rate2},
            detail=detail,
            summary=summary,
            extra={"margin": margin},
        )

    needed = policy.min_requests
    if n1 < needed or n2 < needed:
        return result(
            False,
            False,
            None,
            None,
            f"{figures}: not judged yet, the comparison needs {_count(needed)} requests per "
            f"version",
            f"error rate on {_count(n1)} canary vs {_count(n2)} stable requests",
        )
    z = error_rate_z(x1, n1, x2, n2, margin=margin)
    if z is None:
        # Both rates are 0 or 1: worse only for a canary failing everything next to a stable
        # failing nothing (the difference 1 then exceeds any margin < 1).
        worse = x1 == n1 and x2 == 0
        what = (
            "every canary request failed and no stable request did"
            if worse
            else "no variance to test"
        )
        verdict = "worse than stable" if worse else "not worse than stable"
        return result(
            True,
            worse,
            None,
            None,
            f"{figures}: {what}, {verdict}",
            f"error rate {shown1} vs {shown2} ({what})",
        )
    p = normal_sf(z)
    stat = f"z = {z:.2f}, one-sided {_p_value(p)}"
    if p <= alpha:
        return result(
            True,
            True,
            z,
            p,
            f"{figures}: significantly worse than stable{beyond} ({stat} <= {alpha:g})",
            f"error rate {shown1} vs {shown2} ({stat})",
        )
    return result(
        True,
        False,
        z,
        p,
        f"{figures}: not significantly worse than stable{beyond} ({stat} > {alpha:g})",
        f"error rate {shown1} vs {shown2} ({stat})",
    )


def _latency_check(
    *, canary: RequestTally, stable: RequestTally, policy: ComparisonPolicy
) -> ComparisonCheck:
    h1, h2 = canary.histogram, stable.histogram
    n1, n2 = h1.count, h2.count
    alpha = policy.alpha_per_test
    shift = policy.latency_margin_buckets
    effective = policy.effective_latency_margin
    p50_1, p95_1 = h1.quantiles((0.50, P95)) if n1 else (None, None)
    p50_2, p95_2 = h2.quantiles((0.50, P95)) if n2 else (None, None)

    def ms(value: float | None) -> str:
        return _ms(value) if value is not None else "n/a"

    figures = (
        f"canary latency p95 {ms(p95_1)} vs stable {ms(p95_2)}, median {ms(p50_1)} vs "
        f"{ms(p50_2)} ({_count(n1)} vs {_count(n2)} latency samples)"
    )
    short = f"latency p95 {ms(p95_1)} vs {ms(p95_2)}"
    margin = policy.latency_margin
    beyond = (
        f" beyond the {margin * 100:g} % margin, tested as {effective * 100:.2f} % "
        f"= {shift} buckets of {(GAMMA - 1.0) * 100:.2f} %"
        if margin
        else ""
    )

    def result(
        judged: bool,
        worse: bool,
        u: float | None,
        z: float | None,
        p: float | None,
        detail: str,
        summary: str,
    ) -> ComparisonCheck:
        return ComparisonCheck(
            name="latency",
            method="Mann-Whitney U, bucket ties, tie-corrected variance, normal approximation",
            judged=judged,
            worse=worse,
            z=z,
            p_value=p,
            alpha=alpha,
            canary={"samples": n1, "p50_ms": p50_1, "p95_ms": p95_1},
            stable={"samples": n2, "p50_ms": p50_2, "p95_ms": p95_2},
            detail=detail,
            summary=summary,
            extra={
                "margin": margin,
                "margin_buckets": shift,
                "effective_margin": effective,
                "u": u,
            },
        )

    needed = policy.min_requests
    if n1 < needed or n2 < needed:
        return result(
            False,
            False,
            None,
            None,
            None,
            f"{figures}: not judged yet, the comparison needs {_count(needed)} latency "
            f"samples per version",
            f"latency on {_count(n1)} canary vs {_count(n2)} stable samples",
        )
    u, z = mann_whitney_z(h1.to_counts(), h2.to_counts(), shift_buckets=shift)
    if z is None:
        return result(
            True,
            False,
            u,
            None,
            None,
            f"{figures}: every sample in one bucket, no variance to test, not worse than stable",
            f"{short} (every sample in one bucket)",
        )
    p = normal_sf(z)
    stat = f"Mann-Whitney z = {z:.2f}, one-sided {_p_value(p)}"
    if p <= alpha:
        return result(
            True,
            True,
            u,
            z,
            p,
            f"{figures}: significantly slower than stable{beyond} ({stat} <= {alpha:g})",
            f"{short} ({stat})",
        )
    return result(
        True,
        False,
        u,
        z,
        p,
        f"{figures}: not significantly slower than stable{beyond} ({stat} > {alpha:g})",
        f"{short} ({stat})",
    )


def compare_canary_with_stable(
    *,
    stable: RequestTally,
    canary: RequestTally,
    policy: ComparisonPolicy = DEFAULT_COMPARISON,
) -> Comparison:
    """Is the canary significantly worse than stable? Error-rate test, then latency test.

    Pure and deterministic, never raises on tallies (empty ones included): a test without
    ``policy.min_requests`` per version is "not judged". Formulas in the module docstring.
    """
    return Comparison(
        policy=policy,
        checks=(
            _error_rate_check(canary=canary, stable=stable, policy=policy),
            _latency_check(canary=canary, stable=stable, policy=policy),
        ),
    )

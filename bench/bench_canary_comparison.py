"""Measure the canary-vs-stable comparison: false alarms, power, exact size, cost.

Usage: .venv/bin/python bench/bench_canary_comparison.py [--windows 5000] [--seed 0]

Prints:
* the A/A false-alarm rate (identical versions, log-normal latency with median 40 ms and
  sigma 0.5, 0.2 % errors) over ``--windows`` simulated windows, at the default policy and at
  margin 0, on balanced traffic (4 000 requests per version) and on a 5 % canary
  (2 000 canary vs 38 000 stable requests), with its Monte-Carlo standard error;
* the power at a few effect sizes (error-rate increases, latency slowdowns) at the defaults;
* the exact size of the error-rate test (complete enumeration of both binomials, through
  ``error_rate_z`` itself) at the edge of its null, where simulation is too coarse;
* the time of one ``evaluate_health`` call with and without the comparison, and of the
  comparison alone.

Windows are drawn bucket by bucket: a multinomial over the histogram buckets' log-normal
probabilities is, in distribution, exactly the histogram of that many recorded latencies.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rollout.comparison import (
    DEFAULT_COMPARISON,
    ComparisonPolicy,
    compare_canary_with_stable,
    error_rate_z,
    normal_sf,
)
from rollout.health import (
    evaluate_health,
)
from rollout.histogram import GAMMA, LatencyHistogram, RequestTally

LOG_GAMMA = math.log(GAMMA)
MARGIN_ZERO = ComparisonPolicy(error_rate_margin=0.0, latency_margin=0.0)


def bucket_probabilities(median_ms: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    mu = math.log(median_ms)
    low = math.floor((mu - 9 * sigma) / LOG_GAMMA)
    high = math.ceil((mu + 9 * sigma) / LOG_GAMMA)
    edges = stats.norm.cdf((np.arange(low - 1, high + 1) * LOG_GAMMA - mu) / sigma)
    probabilities = np.diff(edges)
    return np.arange(low, high + 1), probabilities / probabilities.sum()


@dataclass(frozen=True)
class Scenario:
    name: str
    canary_requests: int
    stable_requests: int
    stable_rate: float
    canary_rate: float
    slowdown: float = 1.0
    median_ms: float = 40.0
    sigma: float = 0.5


Window = tuple[RequestTally, RequestTally]  # (stable, canary)


def windows_of(scenario: Scenario, count: int, seed: int) -> list[Window]:
    rng = np.random.default_rng(seed)
    stable_buckets = bucket_probabilities(scenario.median_ms, scenario.sigma)
    canary_buckets = bucket_probabilities(scenario.median_ms * scenario.slowdown, scenario.sigma)

    def tally(n: int, rate: float, buckets: tuple[np.ndarray, np.ndarray]) -> RequestTally:
        indices, probabilities = buckets
        counts = rng.multinomial(n, probabilities)
        nonzero = counts.nonzero()[0]
        histogram = LatencyHistogram.from_counts(
            dict(zip(indices[nonzero].tolist(), counts[nonzero].tolist(), strict=True))
        )
        return RequestTally(requests=n, errors=int(rng.binomial(n, rate)), histogram=histogram)

    return [
        (
            tally(scenario.stable_requests, scenario.stable_rate, stable_buckets),
            tally(scenario.canary_requests, scenario.canary_rate, canary_buckets),
        )
        for _ in range(count)
    ]


def flag_rates(windows: list[Window], policy: ComparisonPolicy) -> tuple[float, float, float]:
    flags = np.zeros((len(windows), 2), dtype=bool)
    for w, (stable, canary) in enumerate(windows):
        comparison = compare_canary_with_stable(stable=stable, canary=canary, policy=policy)
        flags[w] = [comparison.check("error_rate").worse, comparison.check("latency").worse]
    return float(flags[:, 0].mean()), float(flags[:, 1].mean()), float(flags.any(axis=1).mean())


def false_alarms(count: int, seed: int) -> None:
    print(f"A/A false alarms over {count} windows (nominal: 1 % either, 0.5 % per test)")
    mc_se = math.sqrt(0.01 * 0.99 / count)
    print(f"  Monte-Carlo standard error at 1 %: {mc_se * 100:.2f} pp")
    scenarios = [
        Scenario("balanced 4 000 vs 4 000, 0.2 % errors", 4_000, 4_000, 0.002, 0.002),
        Scenario("5 % canary 2 000 vs 38 000, 0.2 % errors", 2_000, 38_000, 0.002, 0.002),
        Scenario("5 % canary 2 000 vs 38 000, 0.05 % errors", 2_000, 38_000, 0.0005, 0.0005),
    ]
    for index, scenario in enumerate(scenarios):
        windows = windows_of(scenario, count, seed + index)
        for label, policy in (("defaults", DEFAULT_COMPARISON), ("margin 0", MARGIN_ZERO)):
            errors, latency, either = flag_rates(windows, policy)
            print(
                f"  {scenario.name:44s} {label:8s}: either {either * 100:5.2f} % "
                f"(errors {errors * 100:5.2f} %, latency {latency * 100:5.2f} %)"
            )


def power(count: int, seed: int) -> None:
    print(f"\npower at the defaults over {count} windows (0.1 % stable errors, median 40 ms)")
    scenarios = [
        Scenario("+0.2 pp errors, 10 000 vs 10 000", 10_000, 10_000, 0.001, 0.003),
        Scenario("+0.5 pp errors,  4 000 vs  4 000", 4_000, 4_000, 0.001, 0.006),
        Scenario("+0.5 pp errors, 10 000 vs 10 000", 10_000, 10_000, 0.001, 0.006),
        Scenario("+0.5 pp errors,  5 000 vs 95 000", 5_000, 95_000, 0.001, 0.006),
        Scenario("+1.0 pp errors,  4 000 vs  4 000", 4_000, 4_000, 0.001, 0.011),
        Scenario("5 % slower,      4 000 vs  4 000", 4_000, 4_000, 0.001, 0.001, 1.05),
        Scenario("10 % slower,     4 000 vs  4 000", 4_000, 4_000, 0.001, 0.001, 1.10),
        Scenario("10 % slower,     1 000 vs 19 000", 1_000, 19_000, 0.001, 0.001, 1.10),
        Scenario("20 % slower,     1 000 vs  1 000", 1_000, 1_000, 0.001, 0.001, 1.20),
        Scenario("20 % slower,     4 000 vs  4 000", 4_000, 4_000, 0.001, 0.001, 1.20),
    ]
    for index, scenario in enumerate(scenarios):
        windows = windows_of(scenario, count, seed + 100 + index)
        errors, latency, either = flag_rates(windows, DEFAULT_COMPARISON)
        tested = errors if scenario.slowdown == 1.0 else latency
        print(f"  {scenario.name}: flagged {tested * 100:6.2f} % (either {either * 100:.2f} %)")


def exact_size(n1: int, n2: int, p2: float, margin: float, alpha: float) -> float:
    """P(the error test rejects) when the canary rate is exactly ``p2 + margin``."""
    p1 = p2 + margin
    k1 = range(int(stats.binom.ppf(1e-12, n1, p1)), int(stats.binom.isf(1e-12, n1, p1)) + 2)
    k2 = range(int(stats.binom.ppf(1e-12, n2, p2)), int(stats.binom.isf(1e-12, n2, p2)) + 2)
    w1 = stats.binom.pmf(np.array(k1), n1, p1)
    w2 = stats.binom.pmf(np.array(k2), n2, p2)
    size = 0.0
    for x1, weight1 in zip(k1, w1, strict=True):
        for x2, weight2 in zip(k2, w2, strict=True):
            z = error_rate_z(x1, n1, x2, n2, margin=margin)
            # Without variance only "every canary request failed, no stable one" is worse,
            # as in the evaluator.
            worse = normal_sf(z) <= alpha if z is not None else x1 == n1 and x2 == 0
            if worse:
                size += weight1 * weight2
    return size


def sizes() -> None:
    alpha = DEFAULT_COMPARISON.alpha_per_test
    rates = (0.0002, 0.001, 0.005, 0.03)
    print(
        f"\nexact size of the error-rate test at the edge of its null (nominal {alpha * 100:g} %),"
        f" stable error rate {', '.join(f'{r * 100:g} %' for r in rates)}"
    )
    for margin in (0.0, DEFAULT_COMPARISON.error_rate_margin):
        name = "pooled z, margin 0" if margin == 0.0 else f"Wald, margin {margin * 100:g} pp"
        for n1, n2 in ((1_000, 1_000), (4_000, 4_000), (1_000, 19_000), (5_000, 95_000)):
            shown = ", ".join(f"{exact_size(n1, n2, p, margin, alpha) * 100:5.2f} %" for p in rates)
            split = f"{n1:>6,} vs {n2:>7,}".replace(",", " ")
            print(f"  {name:22s} {split}: {shown}")


def timed(fn: Callable[[], object], repeat: int = 200) -> float:
    """Median wall time in ms."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def timing(seed: int) -> None:
    scenario = Scenario("", 40_000, 40_000, 0.0005, 0.0045)
    ((stable, canary),) = windows_of(scenario, 1, seed)
    wide = Scenario("", 40_000, 760_000, 0.0005, 0.0005, sigma=1.2)
    ((wide_stable, wide_canary),) = windows_of(wide, 1, seed + 1)
    print("\ncost (median of 200 calls)")
    for label, (s, c) in (
        ("40 000 vs 40 000, sigma 0.5", (stable, canary)),
        ("40 000 vs 760 000, sigma 1.2", (wide_stable, wide_canary)),
    ):
        buckets = len(s.histogram.to_counts()) + len(c.histogram.to_counts())
        with_ms = timed(lambda s=s, c=c: evaluate_health(stable=s, canary=c))
        without_ms = timed(lambda s=s, c=c: evaluate_health(stable=s, canary=c, comparison=None))
        alone_ms = timed(lambda s=s, c=c: compare_canary_with_stable(stable=s, canary=c))
        print(
            f"  {label} ({buckets} buckets): evaluate_health {with_ms:.2f} ms with the "
            f"comparison, {without_ms:.2f} ms without; the comparison alone {alone_ms:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--windows", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-exact", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    false_alarms(args.windows, args.seed)
    power(max(1_000, args.windows // 5), args.seed)
    if not args.skip_exact:
        sizes()
    timing(args.seed)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

"""Benchmark the per-request and per-evaluation costs of rollout health.

Usage: .venv/bin/python bench/bench_health.py [--days 30] [--stable-rpm 100] [--canary-rpm 10]

Prints:
* ``bucket_index`` cost per call (the hot path run on every HTTP request), also
  ``LatencyHistogram.add`` and ``RequestTally.record`` (plain, and for an unavailable request);
* for a rollout with one row per version and minute over ``--days`` days (43 200 windows per
  version for 30 days): decoding the stored JSON rows, merging them and ``evaluate_health``,
  for a healthy canary, one failing with HTTP 500s (error rate only) and one failing with
  HTTP 503s (error rate and availability).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rollout.health import (
    DEFAULT_ROLLBACK,
    DEFAULT_SLA,
    HealthPolicy,
    evaluate_health,
)
from rollout.histogram import LatencyHistogram, RequestTally, bucket_index

T = TypeVar("T")


def per_call_ns(statement: str, setup_globals: dict[str, object], n: int = 1_000_000) -> float:
    """Best of 5 runs, minus the cost of the bare loop over the same inputs."""
    loop = "for x in xs: pass"
    body = f"for x in xs: {statement}"
    cost = min(timeit.repeat(body, globals=setup_globals, number=1, repeat=5))
    baseline = min(timeit.repeat(loop, globals=setup_globals, number=1, repeat=5))
    return (cost - baseline) / n * 1e9


def bench_hot_path() -> None:
    rng = np.random.default_rng(0)
    xs = [float(x) for x in rng.lognormal(math.log(40.0), 0.8, size=1_000_000)]
    histogram = LatencyHistogram()
    tally = RequestTally()
    env: dict[str, object] = {
        "xs": xs,
        "bucket_index": bucket_index,
        "histogram": histogram,
        "tally": tally,
    }
    print("hot path (1 000 000 log-normal latencies, best of 5, loop overhead subtracted)")
    print(f"  bucket_index(x)        {per_call_ns('bucket_index(x)', env):7.1f} ns/call")
    print(f"  LatencyHistogram.add   {per_call_ns('histogram.add(x)', env):7.1f} ns/call")
    print(f"  RequestTally.record    {per_call_ns('tally.record(x)', env):7.1f} ns/call")
    unavailable = per_call_ns("tally.record(x, unavailable=True)", env)
    print(f"    (unavailable=True)   {unavailable:7.1f} ns/call")


def make_rows(
    windows: int,
    rpm: int,
    error_rate: float,
    median_ms: float,
    seed: int,
    unavailable_share: float = 0.0,
) -> list[str]:
    """One JSON row per minute window, as a flush would store them.

    ``unavailable_share`` of the errors are 502/503/504 or unanswered, the rest HTTP 500s.
    """
    rng = np.random.default_rng(seed)
    latencies = rng.lognormal(math.log(median_ms), 0.6, size=windows * rpm).tolist()
    errors = rng.binomial(rpm, error_rate, size=windows)
    unavailable = rng.binomial(errors, unavailable_share).tolist()
    rows = []
    for w in range(windows):
        histogram = LatencyHistogram()
        for x in latencies[w * rpm : (w + 1) * rpm]:
            histogram.add(x)
        tally = RequestTally(
            requests=rpm, errors=int(errors[w]), unavailable=unavailable[w], histogram=histogram
        )
        rows.append(json.dumps(tally.to_dict()))
    return rows


def timed(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Median wall time in seconds over ``repeat`` runs, and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def decode(rows: list[str]) -> list[RequestTally]:
    return [RequestTally.from_dict(json.loads(row)) for row in rows]


def bench_evaluation(days: int, stable_rpm: int, canary_rpm: int) -> None:
    windows = days * 24 * 60
    print(
        f"\n{days} days of minute windows: {windows} windows per version, "
        f"stable {stable_rpm} req/min, canary {canary_rpm} req/min"
    )
    start = time.perf_counter()
    stable_rows = make_rows(windows, stable_rpm, 0.001, 30.0, seed=1, unavailable_share=0.2)
    scenarios = {
        "healthy canary (0.02 % errors)": make_rows(
            windows, canary_rpm, 0.0002, 30.0, seed=2, unavailable_share=0.5
        ),
        "failing canary (3 % HTTP 500) ": make_rows(windows, canary_rpm, 0.03, 30.0, seed=3),
        "failing canary (2 % HTTP 503) ": make_rows(
            windows, canary_rpm, 0.02, 30.0, seed=4, unavailable_share=1.0
        ),
    }
    print(f"  (setup: rows generated in {time.perf_counter() - start:.1f} s, not timed below)")

    decode_s, stable_windows = timed(partial(decode, stable_rows), repeat=1)
    stable_merge_s, stable = timed(partial(RequestTally.merged, stable_windows))
    print(
        f"  stable: decode JSON rows {decode_s * 1e3:7.1f} ms, merge {stable_merge_s * 1e3:6.1f} ms"
        f" ({stable.requests} requests, {stable.unavailable} unavailable, "
        f"{len(stable.histogram.to_counts())} buckets)"
    )
    policy = HealthPolicy()
    for name, rows in scenarios.items():
        decode_s, canary_windows = timed(partial(decode, rows), repeat=1)
        merge_s, canary = timed(partial(RequestTally.merged, canary_windows))
        evaluate = partial(
            evaluate_health,
            stable=stable,
            canary=canary,
            sla=DEFAULT_SLA,
            rollback=DEFAULT_ROLLBACK,
            policy=policy,
        )
        evaluate_s, report = timed(evaluate, repeat=20)
        print(
            f"  {name}: decode {decode_s * 1e3:7.1f} ms, merge {merge_s * 1e3:6.1f} ms, "
            f"evaluate {evaluate_s * 1e3:5.2f} ms -> {report.verdict}/{report.action}; "
            f"merge both + evaluate {(stable_merge_s + merge_s + evaluate_s) * 1e3:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--stable-rpm", type=int, default=100)
    parser.add_argument("--canary-rpm", type=int, default=10)
    parser.add_argument("--skip-hot-path", action="store_true")
    args = parser.parse_args()
    if not args.skip_hot_path:
        bench_hot_path()
    bench_evaluation(args.days, args.stable_rpm, args.canary_rpm)


if __name__ == "__main__":
    main()

"""Mergeable log-bucket latency histogram and per-version request tallies.

Pure module: standard library only, no Django, so it can run in the request path, in
Celery workers and in offline analysis alike.

Bucket layout (DDSketch-style, fixed for the whole platform)
------------------------------------------------------------
With relative accuracy ``a = RELATIVE_ACCURACY = 0.01`` and ``gamma = (1 + a) / (1 - a)``,
a latency ``x > MIN_VALUE_MS`` goes to bucket ``i = ceil(log(x) / log(gamma))``, i.e. bucket
``i`` holds ``gamma**(i - 1) < x <= gamma**i``. Every latency ``x <= MIN_VALUE_MS`` (including
zero and negative values from clock skew) goes to the single ``ZERO_BUCKET``.

A bucket is reported as ``2 * gamma**i / (gamma + 1)``, whose relative distance to both bucket
edges is exactly ``(gamma - 1) / (gamma + 1) = a``. Hence:

Error bound
    For any ``q``, ``quantile(q)`` differs from the exact sample quantile (the ``"linear"``
    definition of ``numpy.quantile``: interpolation between order statistics at rank
    ``q * (n - 1)``) by at most ``a = 1 %`` of its value, plus at most ``MIN_VALUE_MS``
    absolute when one of the two interpolated order statistics is ``<= MIN_VALUE_MS``
    (those are reported as 0). Both interpolated order statistics are each estimated within
    ``a`` relative, and a convex combination of them keeps that bound. Floating-point rounding
    adds ~1e-15 relative. ``sum`` is exact when built with ``add``; when rebuilt from bucket
    counts alone it is an estimate within the same ``a`` relative bound.

Because the layout is fixed, histograms recorded by different processes merge by adding
bucket counts, which is also what lets many processes ``HINCRBY`` the field
``str(bucket_index(latency_ms))`` of one shared Redis hash (see ``from_counts``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import ceil, log
from typing import Any, Final

RELATIVE_ACCURACY: Final = 0.01
GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
MIN_VALUE_MS: Final = 0.01

_LOG_GAMMA: Final = math.log(GAMMA)
# Multiplying by a precomputed reciprocal is cheaper than a division on every request; the
# bucket edges move by ~1 ulp, far inside the 1 % accuracy budget.
_INV_LOG_GAMMA: Final = 1.0 / _LOG_GAMMA
# One below the bucket of MIN_VALUE_MS itself: no value above MIN_VALUE_MS can land there, so
# the sentinel can never collide with a real bucket (-231 with the constants above).
ZERO_BUCKET: Final = math.ceil(math.log(MIN_VALUE_MS) * _INV_LOG_GAMMA) - 1
MAX_BUCKET: Final = math.ceil(math.log(1.7976931348623157e308) * _INV_LOG_GAMMA)

_FORMAT_VERSION: Final = 1
# int() would silently truncate 1.5 or accept True as a count.
_NOT_INTEGERS: Final = (float, bool)

CountsLike = Mapping[int, int] | Mapping[str, int] | Mapping[str, str] | Mapping[bytes, bytes]


def bucket_index(latency_ms: float) -> int:
    """Return the bucket of ``latency_ms``; hot path, called once per HTTP request.

    ``ZERO_BUCKET`` for ``latency_ms <= MIN_VALUE_MS`` (including negative values). Raises
    ``ValueError`` for NaN or infinite input, which would otherwise poison a shared hash.
    """
    if latency_ms <= MIN_VALUE_MS:
        return ZERO_BUCKET
    try:
        return ceil(log(latency_ms) * _INV_LOG_GAMMA)
    except (ValueError, OverflowError):
        raise ValueError(f"latency must be a finite number, got {latency_ms!r}") from None


def bucket_value(index: int) -> float:
    """Representative latency of bucket ``index``: within ``RELATIVE_ACCURACY`` of any member.

    ``0.0`` for ``ZERO_BUCKET``.
    """
    if index == ZERO_BUCKET:
        return 0.0
    return 2.0 * math.exp(index * _LOG_GAMMA) / (GAMMA + 1.0)


class LatencyHistogram:
    """Sparse log-bucket histogram of latencies in milliseconds.

    Quantiles are within ``RELATIVE_ACCURACY`` (1 %) of the exact sample quantile, see the
    module docstring for the precise bound. ``merge`` is exact: merging histograms equals the
    histogram of the union of their samples (``sum`` up to float rounding).
    """

    __slots__ = ("_count", "_counts", "_sum")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._count = 0
        self._sum = 0.0

    # -- recording -------------------------------------------------------------------------

    def add(self, latency_ms: float, count: int = 1) -> None:
        """Record ``count`` requests of ``latency_ms``. ``count`` must be a non-negative int."""
        if count <= 0:
            if count == 0:
                return
            raise ValueError(f"count must be >= 0, got {count}")
        index = bucket_index(latency_ms)
        counts = self._counts
        counts[index] = counts.get(index, 0) + count
        self._count += count
        # Negative latencies come from clock skew; counting them as 0 keeps the sum consistent
        # with the zero bucket they were put in.
        if latency_ms > 0.0:
            self._sum += latency_ms * count

    def merge(self, other: LatencyHistogram) -> None:
        """Add all of ``other``'s samples to this histogram, in place."""
        counts = self._counts
        get = counts.get
        for index, n in other._counts.items():
            counts[index] = get(index, 0) + n
        self._count += other._count
        self._sum += other._sum

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """Return a new histogram holding the union of ``histograms`` (inputs untouched)."""
        result = cls()
        for histogram in histograms:
            result.merge(histogram)
        return result

    # -- reading ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Number of recorded samples."""
        return self._count

    @property
    def sum(self) -> float:
        """Sum of recorded latencies in ms (estimated if built from bucket counts only)."""
        return self._sum

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def mean(self) -> float:
        """Mean latency in ms; ``ValueError`` when empty."""
        if not self._count:
            raise ValueError("mean of an empty histogram")
        return self._sum / self._count

    def quantile(self, q: float) -> float:
        """Estimated ``q``-quantile (0 <= q <= 1) in ms; ``ValueError`` when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Several quantiles with one sort of the buckets (same contract as ``quantile``)."""
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be within [0, 1], got {q!r}")
        if not self._count:
            raise ValueError("quantile of an empty histogram")
        buckets = sorted(self._counts.items())
        results: list[float] = []
        for q in qs:
            # Same rank definition as numpy.quantile(method="linear"), so that the error bound
            # is stated against the number operators will compare it with.
            rank = q * (self._count - 1)
            lower = math.floor(rank)
            fraction = rank - lower
            low_value = _value_at_rank(buckets, lower)
            if fraction == 0.0:
                results.append(low_value)
            else:
                high_value = _value_at_rank(buckets, lower + 1)
                results.append(low_value + fraction * (high_value - low_value))
        return results

    def count_above(self, threshold_ms: float) -> int:
        """Samples in buckets entirely above the bucket of ``threshold_ms``.

        Resolution is one bucket: samples up to 1 % above the threshold may be counted as not
        above it, never the other way round.
        """
        limit = bucket_index(threshold_ms)
        return sum(n for index, n in self._counts.items() if index > limit)

    def to_counts(self) -> dict[int, int]:
        """Copy of the sparse ``{bucket_index: count}`` map (the Redis hash field layout)."""
        return dict(self._counts)

    # -- (de)serialisation -----------------------------------------------------------------

    @classmethod
    def from_counts(cls, counts: CountsLike, sum_ms: float | None = None) -> LatencyHistogram:
        """Build from ``{bucket_index: count}``, e.g. the ``HGETALL`` of a Redis hash.

        Keys and values may be ints, decimal strings or bytes as returned by Redis clients.
        Zero counts are dropped. Without ``sum_ms`` the sum is estimated from bucket values
        (within ``RELATIVE_ACCURACY``). ``ValueError`` for negative counts or indices that
        ``bucket_index`` cannot produce (a hash written with another layout or corrupted).
        """
        histogram = cls()
        buckets = histogram._counts
        get = buckets.get
        total = 0
        # Inlined rather than calling a helper per field: decoding stored minute rows is the
        # dominant cost of evaluating a long rollout.
        for raw_index, raw_count in counts.items():
            if raw_index.__class__ in _NOT_INTEGERS or raw_count.__class__ in _NOT_INTEGERS:
                raise ValueError(f"bucket {raw_index!r}: {raw_count!r} is not an integer pair")
            try:
                index = int(raw_index)
                n = int(raw_count)
            except (TypeError, ValueError):
                raise ValueError(
                    f"bucket {raw_index!r}: {raw_count!r} is not an integer pair"
                ) from None
            if not ZERO_BUCKET <= index <= MAX_BUCKET:
                raise ValueError(f"bucket index {index} outside [{ZERO_BUCKET}, {MAX_BUCKET}]")
            if n <= 0:
                if n < 0:
                    raise ValueError(f"bucket {index} has negative count {n}")
                continue
            buckets[index] = get(index, 0) + n
            total += n
        histogram._count = total
        if sum_ms is None:
            histogram._sum = sum(bucket_value(index) * n for index, n in buckets.items())
        else:
            if not math.isfinite(sum_ms):
                raise ValueError(f"sum_ms must be finite, got {sum_ms!r}")
            histogram._sum = float(sum_ms)
        return histogram

    def to_dict(self) -> dict[str, Any]:
        """Compact JSON-able form; bucket keys are strings so they survive ``json``.

        The layout constants are included so that ``from_dict`` refuses data recorded with a
        different accuracy instead of silently misreading it.
        """
        return {
            "v": _FORMAT_VERSION,
            "a": RELATIVE_ACCURACY,
            "min_ms": MIN_VALUE_MS,
            "sum_ms": self._sum,
            "buckets": {str(index): n for index, n in sorted(self._counts.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        """Inverse of ``to_dict``; ``ValueError`` for another layout or malformed data."""
        if data.get("v") != _FORMAT_VERSION:
            raise ValueError(f"unsupported histogram format {data.get('v')!r}")
        if data.get("a") != RELATIVE_ACCURACY or data.get("min_ms") != MIN_VALUE_MS:
            raise ValueError(
                f"histogram recorded with a={data.get('a')!r}, min_ms={data.get('min_ms')!r}; "
                f"this build uses a={RELATIVE_ACCURACY}, min_ms={MIN_VALUE_MS}"
            )
        buckets = data.get("buckets")
        if not isinstance(buckets, Mapping):
            raise ValueError("histogram 'buckets' must be a mapping")
        sum_ms = data.get("sum_ms")
        if not isinstance(sum_ms, int | float) or isinstance(sum_ms, bool):
            raise ValueError(f"histogram 'sum_ms' must be a number, got {sum_ms!r}")
        return cls.from_counts(buckets, sum_ms=float(sum_ms))

    # -- comparison ------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        # Sums of the same samples added in another order differ in the last bits.
        return self._counts == other._counts and math.isclose(
            self._sum, other._sum, rel_tol=1e-9, abs_tol=1e-9
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"LatencyHistogram(count={self._count}, sum_ms={self._sum:.3f}, "
            f"buckets={len(self._counts)})"
        )


def _value_at_rank(buckets: Sequence[tuple[int, int]], rank: int) -> float:
    """Representative value of the order statistic ``rank`` (0-based) in sorted buckets."""
    seen = 0
    for index, n in buckets:
        seen += n
        if seen > rank:
            return bucket_value(index)
    return bucket_value(buckets[-1][0])


@dataclass(eq=True)
class RequestTally:
    """Requests, errors, unavailable requests and latencies of one version over a time range.

    Two nested counts, ``unavailable <= errors <= requests``:

    error
        a 5xx answer or an unhandled exception (judged by the error-rate rule); 4xx answers
        are the client's fault and count as successful requests.
    unavailable
        the service was not available to answer: a 502, 503 or 504 answer, or no answer at
        all (connection refused or reset, timeout). Every unavailable request is also an
        error; a 500 from a bug is an error but the service was *available*. ``availability``
        is ``1 - unavailable / requests``, the SRE measure, not ``1 - error_rate``.

    ``histogram.count`` may be lower than ``requests`` when some requests had no measurable
    latency (e.g. aborted before the response). Rates and quantiles are ``None`` when there is
    no data rather than a misleading 0.
    """

    requests: int = 0
    errors: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    # Last so that positional construction ``RequestTally(requests, errors, histogram)`` keeps
    # working; the default keeps tallies built before the counter existed valid.
    unavailable: int = 0

    def __post_init__(self) -> None:
        if self.requests < 0 or self.errors < 0 or self.unavailable < 0:
            raise ValueError(
                f"negative tally: requests={self.requests}, errors={self.errors}, "
                f"unavailable={self.unavailable}"
            )
        if self.errors > self.requests:
            raise ValueError(f"errors ({self.errors}) exceed requests ({self.requests})")
        if self.unavailable > self.errors:
            raise ValueError(
                f"unavailable ({self.unavailable}) exceed errors ({self.errors}): every "
                f"unavailable request is an error"
            )

    def record(
        self, latency_ms: float | None, *, error: bool = False, unavailable: bool = False
    ) -> None:
        """Count one request; ``latency_ms=None`` counts it without a latency sample.

        ``unavailable=True`` (502/503/504 or no answer) implies ``error=True``.
        """
        self.requests += 1
        if error or unavailable:
            self.errors += 1
            if unavailable:
                self.unavailable += 1
        if latency_ms is not None:
            self.histogram.add(latency_ms)

    def merge(self, other: RequestTally) -> None:
        """Add ``other`` into this tally, in place."""
        self.requests += other.requests
        self.errors += other.errors
        self.unavailable += other.unavailable
        self.histogram.merge(other.histogram)

    @classmethod
    def merged(cls, tallies: Iterable[RequestTally]) -> RequestTally:
        """Return a new tally holding the sum of ``tallies`` (inputs untouched)."""
        result = cls()
        for tally in tallies:
            result.merge(tally)
        return result

    @property
    def error_rate(self) -> float | None:
        """``errors / requests``; ``None`` without requests."""
        return self.errors / self.requests if self.requests else None

    @property
    def unavailable_rate(self) -> float | None:
        """``unavailable / requests``; ``None`` without requests."""
        return self.unavailable / self.requests if self.requests else None

    @property
    def availability(self) -> float | None:
        """``1 - unavailable / requests``; ``None`` without requests."""
        rate = self.unavailable_rate
        return None if rate is None else 1.0 - rate

    def latency_quantile(self, q: float) -> float | None:
        """Latency quantile in ms (see ``LatencyHistogram.quantile``); ``None`` if no samples."""
        return self.histogram.quantile(q) if self.histogram.count else None

    @property
    def p50_ms(self) -> float | None:
        return self.latency_quantile(0.50)

    @property
    def p95_ms(self) -> float | None:
        return self.latency_quantile(0.95)

    @property
    def p99_ms(self) -> float | None:
        return self.latency_quantile(0.99)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the histogram in its ``to_dict`` form)."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "unavailable": self.unavailable,
            "histogram": self.histogram.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestTally:
        """Inverse of ``to_dict``; ``ValueError`` on malformed data.

        A missing ``unavailable`` key reads as 0, so rows stored before the counter existed
        stay readable (they then count every error as available).
        """
        requests = data.get("requests")
        errors = data.get("errors")
        unavailable = data.get("unavailable", 0)
        if not isinstance(requests, int) or not isinstance(errors, int):
            raise ValueError(f"requests/errors must be ints, got {requests!r}/{errors!r}")
        if not isinstance(unavailable, int) or isinstance(unavailable, bool):
            raise ValueError(f"unavailable must be an int, got {unavailable!r}")
        return cls(
            requests=requests,
            errors=errors,
            unavailable=unavailable,
            histogram=LatencyHistogram.from_dict(data.get("histogram") or {}),
        )

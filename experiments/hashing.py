"""GrowthBook-compatible assignment hashing and bucketing (standard library only).

This is a from-spec reimplementation of the hashing part of GrowthBook's SDKs, checked
against the SDK test vectors in ``tests/data/growthbook-assignment-cases.json``. A unit
id is bucketed exactly as a GrowthBook SDK would bucket it for an experiment with
``hashVersion: 2`` and ``hashAttribute: "id"``, so assignments made here agree with those
of a GrowthBook SDK configured with the same seed, weights and coverage (for non-ASCII ids,
with those of the JavaScript SDK; see below).

Text encoding: GrowthBook's reference JavaScript SDK feeds FNV-1a one UTF-16 code unit at
a time (``str.charCodeAt(i)``), not one UTF-8 byte at a time. :func:`fnv1a32` does the
same. The published vectors are ASCII-only and cannot tell the choices apart; for non-ASCII
ids the SDKs disagree with each other (the Python SDK XORs whole code points, which agrees
with JavaScript inside the Basic Multilingual Plane only; the Go SDK hashes UTF-8 bytes,
which agrees with neither), and we follow the JavaScript reference.

Module layout: the spec-shaped functions (:func:`gb_hash`, :func:`get_bucket_ranges`,
:func:`choose_variation`, :func:`in_namespace`, ...) mirror the SDK one to one and are
meant for clarity and tests; :class:`Assigner` is the precompiled fast path for request
handling, and :func:`assign` is a cached convenience wrapper around it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

__all__ = [
    "BUCKETS",
    "FNV_OFFSET_BASIS",
    "FNV_PRIME",
    "Assigner",
    "BucketRange",
    "BucketTable",
    "Namespace",
    "assign",
    "bucket",
    "choose_variation",
    "compile_ranges",
    "fnv1a32",
    "gb_hash",
    "get_bucket_ranges",
    "get_equal_weights",
    "in_namespace",
    "normalise_weights",
]

FNV_OFFSET_BASIS: Final = 0x811C9DC5
FNV_PRIME: Final = 0x01000193
_MASK32: Final = 0xFFFFFFFF

#: Number of distinct hash values produced by hash version 2 (``n = bucket / BUCKETS``).
BUCKETS: Final = 10_000
# Hash version 1, used for namespaces, has only 1000 distinct values.
_V1_BUCKETS: Final = 1_000

#: ``[start, end)`` of a variation on the unit interval.
BucketRange = tuple[float, float]
#: ``(namespace id, start, end)``: a unit is in the namespace when its v1 hash is in [start, end).
Namespace = tuple[str, float, float]
#: Variant index (or ``None`` for "not in the experiment") for each of the :data:`BUCKETS`.
BucketTable = tuple[int | None, ...]

# Far above the rounding error of summing thousands of weights, far below a bucket (1e-4).
_UNIT_SUM_TOLERANCE: Final = 1e-9

# Native order so that a memoryview cast to unsigned 16-bit reads back code units.
_UTF16_NATIVE: Final = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"


def _code_units(text: str) -> Sequence[int]:
    """Return the UTF-16 code units of ``text``: what JavaScript's ``charCodeAt`` yields.

    ASCII text (the overwhelmingly common case, and an O(1) check in CPython) is returned as
    its bytes, whose items already are the code units. ``surrogatepass`` lets lone
    surrogates through unchanged, as a JavaScript string would hold them.
    """
    if text.isascii():
        return text.encode("ascii")
    return memoryview(text.encode(_UTF16_NATIVE, "surrogatepass")).cast("H")


def _fnv1a32_update(state: int, units: Sequence[int]) -> int:
    """Continue an FNV-1a 32-bit hash from ``state`` over ``units``.

    FNV-1a is a left-to-right stream: the hash of ``a + b`` is this update over ``b`` from the
    state reached after ``a``. :class:`Assigner` relies on that to hash the seed only once.
    """
    for unit in units:
        state = ((state ^ unit) * FNV_PRIME) & _MASK32
    return state


def fnv1a32(text: str) -> int:
    """FNV-1a 32-bit hash of ``text`` as GrowthBook's JavaScript SDK computes it.

    ``h = 0x811C9DC5; for each UTF-16 code unit u: h = ((h ^ u) * 0x01000193) mod 2**32``.

    For ASCII this is ordinary FNV-1a over the bytes. For other text each UTF-16 code unit
    (not each UTF-8 byte, not each code point) is one step: ``"é"`` is the single step
    ``0xE9`` and ``"😀"`` is the two steps ``0xD83D, 0xDE00``.
    """
    return _fnv1a32_update(FNV_OFFSET_BASIS, _code_units(text))


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash(seed, value, version)``, a float in [0, 1), or ``None``.

    * version 2: ``(fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000``
    * version 1: ``(fnv1a32(value + seed) % 1000) / 1000`` (note the reversed concatenation;
      GrowthBook keeps this biased variant for namespaces and old experiments)
    * any other version: ``None``
    """
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % BUCKETS) / BUCKETS
    if version == 1:
        return (fnv1a32(value + seed) % _V1_BUCKETS) / _V1_BUCKETS
    return None


def bucket(seed: str, unit_id: str) -> int:
    """Integer hash-version-2 bucket of ``unit_id`` under ``seed``, in ``[0, BUCKETS)``.

    ``gb_hash(seed, unit_id, 2) == bucket(seed, unit_id) / BUCKETS`` holds exactly, because
    both sides are the same integer divided by the same integer in IEEE double arithmetic.
    """
    return fnv1a32(str(fnv1a32(seed + unit_id))) % BUCKETS


def get_equal_weights(n: int) -> list[float]:
    """GrowthBook's ``getEqualWeights``: ``n`` copies of ``1 / n``, or ``[]`` when ``n <= 0``."""
    if n <= 0:
        return []
    return [1 / n] * n


def _js_sum(values: Sequence[float]) -> float:
    """Left-to-right float sum, as JavaScript's ``reduce`` computes it.

    ``sum()`` is not used because from Python 3.12 it compensates rounding error, which can
    move a total across GrowthBook's 0.99 / 1.01 validity thresholds.
    """
    total = 0.0
    for value in values:
        total += value
    return total


def get_bucket_ranges(
    num_variations: int,
    coverage: float | None = 1.0,
    weights: Sequence[float] | None = None,
) -> list[BucketRange]:
    """GrowthBook's ``getBucketRanges``: one ``[start, end)`` range per variation.

    * ``coverage`` defaults to 1 when ``None`` and is clamped to [0, 1];
    * ``weights`` fall back to :func:`get_equal_weights` when missing, of the wrong length,
      or summing outside [0.99, 1.01];
    * range ``i`` is ``[c_i, c_i + coverage * w_i)`` with ``c_i = w_0 + ... + w_(i-1)``.

    Because ``c_i`` does not depend on coverage, raising coverage only lengthens each range
    from its fixed start: a unit that was in a variation stays in it.
    """
    if coverage is None:
        coverage = 1.0
    if coverage < 0:
        coverage = 0.0
    elif coverage > 1:
        coverage = 1.0

    equal = get_equal_weights(num_variations)
    chosen: Sequence[float] = equal if weights is None else weights
    if len(chosen) != num_variations:
        chosen = equal
    total = _js_sum(chosen)
    if total < 0.99 or total > 1.01:
        chosen = equal

    ranges: list[BucketRange] = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[BucketRange]) -> int:
    """GrowthBook's ``chooseVariation``: index of the first range with ``start <= n < end``.

    Returns -1 when ``n`` is in no range (the unit is outside the experiment's coverage).
    """
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(unit_id: str, namespace: Namespace) -> bool:
    """GrowthBook's ``inNamespace``: ``start <= gb_hash("__" + id, unit_id, 1) < end``.

    ``namespace`` is ``(id, start, end)``. Experiments in the same namespace with disjoint
    ``[start, end)`` intervals never share a unit.
    """
    namespace_id, start, end = namespace
    n = gb_hash("__" + namespace_id, unit_id, 1)
    return n is not None and start <= n < end


def normalise_weights(weights: Sequence[float]) -> list[float]:
    """Scale ``weights`` to sum to 1: ``w_i / sum(w)``, e.g. ``[1, 1, 2] -> [.25, .25, .5]``.

    Weights whose sum is already 1 up to rounding (within ``_UNIT_SUM_TOLERANCE``) are
    returned unchanged. Dividing them by a total such as ``0.9999999999999999`` (the sum of ten
    0.1s) would perturb their last bits and move the few units whose bucket lies exactly on a
    boundary, so a GrowthBook SDK given the same weights would disagree for those units.

    Raises :class:`ValueError` for a negative or non-finite weight or a zero total, for which
    no distribution exists. (GrowthBook itself would silently fall back to equal weights.)
    """
    values = [float(weight) for weight in weights]
    if any(not math.isfinite(value) or value < 0 for value in values):
        raise ValueError(f"weights must be finite and non-negative, got {list(weights)!r}")
    total = _js_sum(values)
    if math.isinf(total):  # finite weights whose sum overflows (1e308 twice): scale first
        top = max(values)
        values = [value / top for value in values]
        total = _js_sum(values)
    if total <= 0:
        raise ValueError(f"weights must not all be zero, got {list(weights)!r}")
    if abs(total - 1.0) <= _UNIT_SUM_TOLERANCE:
        return values
    return [value / total for value in values]


def compile_ranges(weights: Sequence[float], coverage: float) -> BucketTable:
    """Precompute the variant for every hash-version-2 bucket.

    Returns a tuple ``t`` of length :data:`BUCKETS` with
    ``t[b] == choose_variation(b / BUCKETS, get_bucket_ranges(k, coverage, w))`` (``None``
    instead of -1), where ``w = normalise_weights(weights)`` and ``k = len(w)``. Since a
    version-2 hash can only take the values ``b / BUCKETS``, looking a bucket up in ``t``
    gives exactly the SDK's answer. Fewer than two weights give an all-``None`` table, as
    GrowthBook puts nobody in an experiment with fewer than two variations.
    """
    normalised = normalise_weights(weights)
    return _table_from_ranges(get_bucket_ranges(len(normalised), coverage, normalised))


def _table_from_ranges(ranges: Sequence[BucketRange]) -> BucketTable:
    if len(ranges) < 2:
        return (None,) * BUCKETS
    table: list[int | None] = []
    for b in range(BUCKETS):
        index = choose_variation(b / BUCKETS, ranges)
        table.append(None if index < 0 else index)
    return tuple(table)


class Assigner:
    """One experiment, precompiled so that :meth:`assign` costs two short FNV-1a passes.

    ``Assigner(seed, weights, coverage, namespace).assign(unit_id)`` returns what a
    GrowthBook SDK returns for the experiment ``{variations: len(weights) items, weights:
    normalise_weights(weights), coverage, hashVersion: 2, seed, hashAttribute: "id",
    namespace}`` and the attributes ``{id: unit_id}``: the variation index, or ``None`` when
    the unit is not in the experiment (empty id, outside the namespace, outside coverage).

    What is precomputed: the FNV-1a state after the seed (the version-2 hash is of
    ``seed + unit_id``), the bucket -> variant table (:func:`compile_ranges`), and, with a
    namespace, the v1 bucket -> membership table. Instances are immutable and thread-safe.
    """

    __slots__ = (
        "_namespace_suffix",
        "_namespace_table",
        "_seed_state",
        "_table",
        "coverage",
        "namespace",
        "ranges",
        "seed",
        "weights",
    )

    seed: str
    weights: tuple[float, ...]
    coverage: float
    namespace: Namespace | None
    ranges: tuple[BucketRange, ...]
    _seed_state: int
    _table: BucketTable
    _namespace_suffix: Sequence[int]
    _namespace_table: tuple[bool, ...] | None

    def __init__(
        self,
        seed: str,
        weights: Sequence[float],
        coverage: float = 1.0,
        namespace: Namespace | None = None,
    ) -> None:
        self.seed = seed
        self.weights = tuple(normalise_weights(weights))
        self.coverage = coverage
        self.namespace = namespace
        self.ranges = tuple(get_bucket_ranges(len(self.weights), coverage, self.weights))
        self._seed_state = _fnv1a32_update(FNV_OFFSET_BASIS, _code_units(seed))
        # From self.ranges, not compile_ranges(): normalising twice could change the floats.
        self._table = _table_from_ranges(self.ranges)
        if namespace is None:
            self._namespace_suffix = b""
            self._namespace_table = None
        else:
            namespace_id, start, end = namespace
            # Version 1 hashes unit_id + seed, so the seed "__<id>" is a suffix here.
            self._namespace_suffix = tuple(_code_units("__" + namespace_id))
            self._namespace_table = tuple(
                start <= b / _V1_BUCKETS < end for b in range(_V1_BUCKETS)
            )

    def __repr__(self) -> str:
        return (
            f"Assigner(seed={self.seed!r}, weights={list(self.weights)!r}, "
            f"coverage={self.coverage!r}, namespace={self.namespace!r})"
        )

    def assign(self, unit_id: str) -> int | None:
        """Variant index for ``unit_id``, or ``None`` when the unit is not in the experiment.

        The FNV-1a loops are written out here rather than calling :func:`fnv1a32`: on the
        request path the saved calls and global lookups are a measurable share of the cost.
        """
        if not unit_id:
            # GrowthBook skips units whose hash attribute is empty.
            return None
        # For ASCII, UTF-8 bytes are the code units, and encode() without arguments is the
        # quickest encoder call.
        units = unit_id.encode() if unit_id.isascii() else _code_units(unit_id)

        namespace_table = self._namespace_table
        if namespace_table is not None:
            h = 0x811C9DC5
            for unit in units:
                h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF
            for unit in self._namespace_suffix:
                h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF
            if not namespace_table[h % 1000]:
                return None

        h = self._seed_state
        for unit in units:
            h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF
        # The decimal form of the first hash is ASCII, so its bytes are its code units.
        g = 0x811C9DC5
        for unit in b"%d" % h:
            g = ((g ^ unit) * 0x01000193) & 0xFFFFFFFF
        return self._table[g % 10000]


@lru_cache(maxsize=1024)
def _cached_assigner(
    seed: str,
    weights: tuple[float, ...],
    coverage: float,
    namespace: Namespace | None,
) -> Assigner:
    return Assigner(seed, weights, coverage, namespace)


def assign(
    *,
    seed: str,
    unit_id: str,
    weights: Sequence[float],
    coverage: float,
    namespace: Namespace | None = None,
) -> int | None:
    """Variant index of ``unit_id`` in the experiment, or ``None`` when it is not in it.

    Same contract as :meth:`Assigner.assign`. The compiled :class:`Assigner` is cached per
    ``(seed, weights, coverage, namespace)``, so repeated calls for one experiment pay only
    for the cache lookup on top of the hashing; hold an :class:`Assigner` directly to avoid
    even that.
    """
    # Rebuilt as tuples so that list arguments are hashable cache keys.
    key_namespace = None if namespace is None else (namespace[0], namespace[1], namespace[2])
    return _cached_assigner(seed, tuple(weights), coverage, key_namespace).assign(unit_id)

"""Tests for experiments.hashing against GrowthBook's published SDK vectors and statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import chi2_contingency, chisquare

from experiments.hashing import (
    BUCKETS,
    FNV_OFFSET_BASIS,
    FNV_PRIME,
    Assigner,
    assign,
    bucket,
    choose_variation,
    compile_ranges,
    fnv1a32,
    gb_hash,
    get_bucket_ranges,
    get_equal_weights,
    in_namespace,
    normalise_weights,
)

CASES_PATH = Path(__file__).resolve().parent.parent / "data" / "growthbook-assignment-cases.json"
CASES: dict[str, Any] = json.loads(CASES_PATH.read_text(encoding="utf-8"))

# Rejecting a correct implementation at this level happens once in a thousand runs; the unit
# ids are fixed, so in practice each statistical test either always passes or always fails.
ALPHA = 0.001


def _units(n: int, prefix: str = "user-") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _sdk_assign(
    seed: str,
    unit_id: str,
    weights: list[float],
    coverage: float,
    namespace: tuple[str, float, float] | None = None,
) -> int | None:
    """What a GrowthBook SDK does, spelled out with the spec-shaped functions."""
    if not unit_id:
        return None
    if namespace is not None and not in_namespace(unit_id, namespace):
        return None
    n = gb_hash(seed, unit_id, 2)
    assert n is not None
    ranges = get_bucket_ranges(len(weights), coverage, weights)
    index = choose_variation(n, ranges)
    return None if index < 0 else index


def _fnv1a32_of_units(units: list[int]) -> int:
    h = FNV_OFFSET_BASIS
    for unit in units:
        h = ((h ^ unit) * FNV_PRIME) % 2**32
    return h


# --- GrowthBook's published vectors -------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "value", "version", "expected"),
    CASES["hash"],
    ids=[f"v{c[2]}-{c[0]!r}-{c[1]!r}" for c in CASES["hash"]],
)
def test_hash_matches_growthbook_vectors(
    seed: str, value: str, version: int, expected: float | None
) -> None:
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    CASES["getBucketRange"],
    ids=[c[0] for c in CASES["getBucketRange"]],
)
def test_bucket_ranges_match_growthbook_vectors(
    name: str, args: list[Any], expected: list[list[float]]
) -> None:
    num_variations, coverage, weights = args
    ranges = get_bucket_ranges(num_variations, coverage, weights)
    # The vectors are rounded (0.2 * 0.2 is 0.04000000000000001 in binary floating point).
    assert ranges == [pytest.approx(tuple(r), abs=1e-9) for r in expected]


@pytest.mark.parametrize(
    ("name", "n", "ranges", "expected"),
    CASES["chooseVariation"],
    ids=[c[0] for c in CASES["chooseVariation"]],
)
def test_choose_variation_matches_growthbook_vectors(
    name: str, n: float, ranges: list[list[float]], expected: int
) -> None:
    assert choose_variation(n, [(start, end) for start, end in ranges]) == expected


@pytest.mark.parametrize(
    ("name", "unit_id", "namespace", "expected"),
    CASES["inNamespace"],
    ids=[c[0] for c in CASES["inNamespace"]],
)
def test_in_namespace_matches_growthbook_vectors(
    name: str, unit_id: str, namespace: list[Any], expected: bool
) -> None:
    namespace_id, start, end = namespace
    assert in_namespace(unit_id, (namespace_id, start, end)) is expected


@pytest.mark.parametrize(
    ("n", "expected"),
    CASES["getEqualWeights"],
    ids=[str(c[0]) for c in CASES["getEqualWeights"]],
)
def test_equal_weights_match_growthbook_vectors(n: int, expected: list[float]) -> None:
    # The vectors hold 1/3 truncated to 8 decimals, as GrowthBook's own test compares it.
    assert get_equal_weights(n) == pytest.approx(expected, abs=1e-8)


# --- Hash functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0x811C9DC5), ("a", 0xE40C292C), ("foobar", 0xBF9CF968)],
)
def test_fnv1a32_matches_reference_fnv1a_values(text: str, expected: int) -> None:
    assert fnv1a32(text) == expected


def test_bucket_is_the_version_2_hash_scaled_to_an_integer() -> None:
    cases = [(seed, value) for seed, value, version, _ in CASES["hash"] if version == 2]
    cases += [("exp", unit) for unit in _units(2_000)] + [("exp", "josé"), ("exp", "😀")]
    for seed, value in cases:
        b = bucket(seed, value)
        assert 0 <= b < BUCKETS
        assert gb_hash(seed, value, 2) == b / BUCKETS


# Produced by running GrowthBook's JavaScript hashFnv32a/hash (packages/sdk-js/src/util.ts)
# under Node.js: (text, hashFnv32a(text), hash("exp-seed", text, 2), hash("__ns", text, 1)).
JS_NON_ASCII_CASES = [
    ("é", 1812687940, 0.6643, 0.805),
    ("josé", 1843599586, 0.1044, 0.155),
    ("Zoë-42", 2822854644, 0.1233, 0.541),
    ("用户-42", 1049111761, 0.179, 0.976),
    ("😀", 3409036472, 0.0564, 0.937),
    ("a😀b", 2412414209, 0.3809, 0.888),
    ("😀😁", 3015341306, 0.9719, 0.155),
    ("\ud83d", 931276136, 0.9184, 0.721),
    ("caf\u00e9\u0301", 3552725959, 0.932, 0.782),
]


@pytest.mark.parametrize(
    ("text", "fnv", "hash_v2", "hash_v1"),
    JS_NON_ASCII_CASES,
    ids=lambda value: ascii(value) if isinstance(value, str) else None,
)
def test_non_ascii_ids_hash_like_the_javascript_sdk(
    text: str, fnv: int, hash_v2: float, hash_v1: float
) -> None:
    assert fnv1a32(text) == fnv
    assert gb_hash("exp-seed", text, 2) == hash_v2
    assert gb_hash("__ns", text, 1) == hash_v1


def test_non_ascii_ids_hash_utf16_code_units_not_utf8_bytes() -> None:
    assert fnv1a32("é") == _fnv1a32_of_units([0xE9])
    assert fnv1a32("é") != _fnv1a32_of_units(list("é".encode()))
    # Outside the BMP a character is two code units (a surrogate pair), as in JavaScript.
    assert fnv1a32("😀") == _fnv1a32_of_units([0xD83D, 0xDE00])
    assert fnv1a32("😀") == fnv1a32("\ud83d\ude00")
    # Precomposed and decomposed forms are different strings and may land differently.
    assert fnv1a32("caf\u00e9") != fnv1a32("cafe\u0301")


@pytest.mark.parametrize(
    "unit_id", ["josé", "Zoë-42", "用户-42", "😀", "a😀b", "\ud83d", "cafe\u0301", "ß" * 64]
)
def test_non_ascii_unit_ids_are_assigned_like_the_sdk(unit_id: str) -> None:
    weights = [0.2, 0.3, 0.5]
    assigner = Assigner("exp-seed", weights, 1.0)
    variant = assigner.assign(unit_id)
    assert variant in (0, 1, 2)
    assert variant == _sdk_assign("exp-seed", unit_id, weights, 1.0)
    assert variant == assign(seed="exp-seed", unit_id=unit_id, weights=weights, coverage=1.0)
    namespaced = Assigner("exp-seed", weights, 1.0, ("ns", 0.0, 0.5))
    expected = _sdk_assign("exp-seed", unit_id, weights, 1.0, ("ns", 0.0, 0.5))
    assert namespaced.assign(unit_id) == expected


# --- Assignment -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "coverage", "namespace"),
    [
        ([0.5, 0.5], 1.0, None),
        ([0.2, 0.3, 0.5], 0.37, None),
        ([0.1] * 10, 0.8, None),
        ([0.25, 0.75], 1.0, ("checkout", 0.25, 0.7)),
        ([1 / 3] * 3, 0.0, None),
    ],
)
def test_assigner_agrees_with_the_sdk_functions(
    weights: list[float], coverage: float, namespace: tuple[str, float, float] | None
) -> None:
    assigner = Assigner("exp-seed", weights, coverage, namespace)
    for unit_id in _units(20_000):
        assert assigner.assign(unit_id) == _sdk_assign(
            "exp-seed", unit_id, weights, coverage, namespace
        ), unit_id


def test_compiled_table_holds_the_sdk_choice_for_every_bucket() -> None:
    weights, coverage = [0.2, 0.3, 0.5], 0.6
    table = compile_ranges(weights, coverage)
    ranges = get_bucket_ranges(3, coverage, weights)
    assert len(table) == BUCKETS
    for b, variant in enumerate(table):
        expected = choose_variation(b / BUCKETS, ranges)
        assert variant == (None if expected < 0 else expected)


def test_unit_always_gets_the_same_variant() -> None:
    weights = [0.2, 0.3, 0.5]
    first = Assigner("sticky", weights, 0.7)
    second = Assigner("sticky", list(weights), 0.7)
    for unit_id in _units(5_000):
        variant = first.assign(unit_id)
        assert first.assign(unit_id) == variant
        assert second.assign(unit_id) == variant
        assert assign(seed="sticky", unit_id=unit_id, weights=weights, coverage=0.7) == variant


def test_raising_coverage_never_moves_a_unit_that_was_already_in() -> None:
    weights = [0.2, 0.3, 0.5]
    units = _units(10_000)
    previous: dict[str, int] = {}
    for coverage in (0.1, 0.5, 1.0):
        assigner = Assigner("ramp-up", weights, coverage)
        current = {u: v for u in units if (v := assigner.assign(u)) is not None}
        for unit_id, variant in previous.items():
            assert current.get(unit_id) == variant, unit_id
        # A binomial count within 5 standard deviations of its mean.
        sd = math.sqrt(len(units) * coverage * (1 - coverage))
        assert abs(len(current) - coverage * len(units)) <= 5 * sd
        previous = current
    assert len(previous) == len(units)


def test_variants_split_by_weight() -> None:
    weights = [0.2, 0.3, 0.5]
    assigner = Assigner("split-check", weights, 1.0)
    counts = [0, 0, 0]
    for unit_id in _units(100_000):
        variant = assigner.assign(unit_id)
        assert variant is not None
        counts[variant] += 1
    expected = [w * sum(counts) for w in weights]
    assert chisquare(counts, expected).pvalue > ALPHA


def test_experiments_with_different_seeds_assign_independently() -> None:
    first = Assigner("experiment-a", [0.5, 0.5], 1.0)
    second = Assigner("experiment-b", [0.2, 0.3, 0.5], 1.0)
    table = [[0, 0, 0], [0, 0, 0]]
    for unit_id in _units(100_000):
        a, b = first.assign(unit_id), second.assign(unit_id)
        assert a is not None and b is not None
        table[a][b] += 1
    assert chi2_contingency(table).pvalue > ALPHA


def test_empty_unit_id_is_not_in_the_experiment() -> None:
    assert Assigner("exp", [0.5, 0.5], 1.0).assign("") is None
    assert assign(seed="exp", unit_id="", weights=[0.5, 0.5], coverage=1.0) is None


def test_fewer_than_two_variations_puts_nobody_in() -> None:
    assigner = Assigner("exp", [1.0], 1.0)
    assert all(assigner.assign(u) is None for u in _units(1_000))


def test_zero_coverage_puts_nobody_in_and_coverage_is_clamped() -> None:
    units = _units(2_000)
    zero, negative = Assigner("exp", [0.5, 0.5], 0.0), Assigner("exp", [0.5, 0.5], -0.2)
    assert all(zero.assign(u) is None and negative.assign(u) is None for u in units)
    full, over = Assigner("exp", [0.5, 0.5], 1.0), Assigner("exp", [0.5, 0.5], 1.5)
    assert [full.assign(u) for u in units] == [over.assign(u) for u in units]


def test_weights_are_normalised_to_proportions() -> None:
    assert normalise_weights([1, 1, 2]) == [0.25, 0.25, 0.5]
    raw, proportions = Assigner("exp", [1, 1, 2]), Assigner("exp", [0.25, 0.25, 0.5])
    assert raw.weights == (0.25, 0.25, 0.5)
    assert all(raw.assign(u) == proportions.assign(u) for u in _units(2_000))


def test_weights_already_summing_to_one_match_the_sdk_on_every_boundary() -> None:
    # Ten 0.1s sum to 0.9999999999999999; dividing by that would move boundary buckets.
    weights = [0.1] * 10
    assert normalise_weights(weights) == weights
    for coverage in (1.0, 0.5, 0.3):
        ranges = get_bucket_ranges(10, coverage, weights)
        sdk = [choose_variation(b / BUCKETS, ranges) for b in range(BUCKETS)]
        table = compile_ranges(weights, coverage)
        assert [-1 if v is None else v for v in table] == sdk


@pytest.mark.parametrize("weights", [[0.5, -0.5, 1.0], [0.0, 0.0], [math.nan, 1.0], [math.inf, 1]])
def test_invalid_weights_are_rejected(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        Assigner("exp", weights)


def test_namespace_keeps_units_outside_its_range_out() -> None:
    left = Assigner("exp-left", [0.5, 0.5], 1.0, ("shared", 0.0, 0.5))
    right = Assigner("exp-right", [0.5, 0.5], 1.0, ("shared", 0.5, 1.0))
    for unit_id in _units(5_000):
        in_left, in_right = left.assign(unit_id) is not None, right.assign(unit_id) is not None
        assert in_left != in_right, unit_id
        assert in_left is in_namespace(unit_id, ("shared", 0.0, 0.5))


def test_assign_accepts_lists_for_weights_and_namespace() -> None:
    namespace: Any = ["shared", 0.0, 0.5]
    assigner = Assigner("exp", (0.5, 0.5), 1.0, ("shared", 0.0, 0.5))
    for unit_id in _units(500):
        assert assign(
            seed="exp", unit_id=unit_id, weights=[0.5, 0.5], coverage=1.0, namespace=namespace
        ) == assigner.assign(unit_id)

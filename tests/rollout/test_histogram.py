"""LatencyHistogram / RequestTally: accuracy against numpy, merging and serialisation."""

import json
import math

import numpy as np
import pytest

from rollout.histogram import (
    GAMMA,
    MAX_BUCKET,
    MIN_VALUE_MS,
    RELATIVE_ACCURACY,
    ZERO_BUCKET,
    LatencyHistogram,
    RequestTally,
    bucket_index,
    bucket_value,
)

# The documented bound is RELATIVE_ACCURACY (1 %), the brief allows 2 %; assert the stricter
# one with room for float rounding only.
BOUND = RELATIVE_ACCURACY * (1 + 1e-9)
QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def histogram_of(samples):
    histogram = LatencyHistogram()
    for x in samples:
        histogram.add(float(x))
    return histogram


def samples(kind, n=100_000, seed=7):
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        return rng.lognormal(mean=math.log(40.0), sigma=0.8, size=n)
    if kind == "exponential":
        return rng.exponential(scale=50.0, size=n)
    if kind == "uniform":
        return rng.uniform(1.0, 500.0, size=n)
    raise AssertionError(kind)


def relative_error(estimate, exact):
    return abs(estimate - exact) / exact


# -- bucket layout -------------------------------------------------------------------------


def test_layout_constants():
    assert math.isclose(GAMMA, 1.01 / 0.99)
    # ZERO_BUCKET ends up as a Redis hash field name: pin it so a change is deliberate.
    assert ZERO_BUCKET == -231
    assert bucket_index(MIN_VALUE_MS * 1.0000001) == ZERO_BUCKET + 1
    assert bucket_index(1.7976931348623157e308) == MAX_BUCKET


@pytest.mark.parametrize("x", [0.0, -5.0, MIN_VALUE_MS, MIN_VALUE_MS / 2])
def test_values_at_or_below_minimum_share_the_zero_bucket(x):
    assert bucket_index(x) == ZERO_BUCKET
    assert bucket_value(ZERO_BUCKET) == 0.0


def test_bucket_edges_and_representative_value():
    rng = np.random.default_rng(1)
    for x in np.exp(rng.uniform(math.log(0.011), math.log(1e7), size=20_000)):
        index = bucket_index(float(x))
        assert isinstance(index, int)
        assert GAMMA ** (index - 1) * (1 - 1e-12) < x <= GAMMA**index * (1 + 1e-12)
        assert relative_error(bucket_value(index), x) <= BOUND


def test_bucket_index_is_monotonic():
    xs = np.sort(np.exp(np.random.default_rng(2).uniform(-6, 12, size=10_000)))
    indices = [bucket_index(float(x)) for x in xs]
    assert indices == sorted(indices)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_latency_is_rejected(bad):
    with pytest.raises(ValueError, match="finite"):
        bucket_index(bad)
    with pytest.raises(ValueError):
        LatencyHistogram().add(bad)


# -- quantiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lognormal", "exponential", "uniform"])
def test_quantiles_match_numpy_within_one_percent(kind):
    xs = samples(kind)
    histogram = histogram_of(xs)
    estimates = histogram.quantiles(QUANTILES)
    exact = np.quantile(xs, QUANTILES)
    for q, estimate, truth in zip(QUANTILES, estimates, exact, strict=True):
        assert relative_error(estimate, truth) <= BOUND, (kind, q, estimate, truth)
    for q in (0.5, 0.95, 0.99):
        assert relative_error(histogram.quantile(q), float(np.quantile(xs, q))) <= BOUND


def test_quantiles_on_small_samples_follow_numpy_interpolation():
    xs = [12.0, 15.0, 80.0, 81.0, 300.0]
    histogram = histogram_of(xs)
    for q in np.linspace(0, 1, 41):
        assert relative_error(histogram.quantile(q), float(np.quantile(xs, q))) <= BOUND


def test_single_value_and_extremes():
    histogram = histogram_of([42.0])
    assert relative_error(histogram.quantile(0.0), 42.0) <= BOUND
    assert relative_error(histogram.quantile(1.0), 42.0) <= BOUND


def test_sum_count_and_mean_are_exact_when_recorded():
    xs = samples("lognormal", n=1_000)
    histogram = histogram_of(xs)
    assert histogram.count == len(histogram) == 1_000
    assert math.isclose(histogram.sum, float(np.sum(xs)), rel_tol=1e-12)
    assert math.isclose(histogram.mean(), float(np.mean(xs)), rel_tol=1e-12)


def test_add_with_count_and_invalid_count():
    histogram = LatencyHistogram()
    histogram.add(10.0, count=3)
    histogram.add(10.0, count=0)
    assert histogram.count == 3
    assert histogram.sum == 30.0
    with pytest.raises(ValueError):
        histogram.add(10.0, count=-1)


def test_negative_latency_counts_as_zero():
    histogram = LatencyHistogram()
    histogram.add(-3.0)
    assert histogram.to_counts() == {ZERO_BUCKET: 1}
    assert histogram.sum == 0.0
    assert histogram.quantile(0.5) == 0.0


def test_empty_histogram_and_bad_quantiles():
    histogram = LatencyHistogram()
    assert not histogram
    with pytest.raises(ValueError, match="empty"):
        histogram.quantile(0.5)
    with pytest.raises(ValueError, match="empty"):
        histogram.mean()
    histogram.add(1.0)
    for q in (-0.01, 1.01, math.nan):
        with pytest.raises(ValueError):
            histogram.quantile(q)


def test_count_above():
    histogram = histogram_of([50.0] * 90 + [150.0] * 7 + [250.0] * 3)
    assert histogram.count_above(100.0) == 10
    assert histogram.count_above(200.0) == 3
    assert histogram.count_above(1000.0) == 0
    # Within the threshold's own bucket: counted as not above (documented resolution).
    assert histogram.count_above(250.0 * 0.999) == 0


# -- merging -------------------------------------------------------------------------------


def test_merge_of_two_equals_histogram_of_union():
    a, b = samples("lognormal", n=20_000, seed=3), samples("exponential", n=30_000, seed=4)
    left, right = histogram_of(a), histogram_of(b)
    union = histogram_of(np.concatenate([a, b]))
    left.merge(right)
    assert left.to_counts() == union.to_counts()
    assert left.count == union.count == 50_000
    assert math.isclose(left.sum, union.sum, rel_tol=1e-12)
    assert left == union
    assert left.quantiles(QUANTILES) == union.quantiles(QUANTILES)


def test_merged_classmethod_leaves_inputs_untouched():
    parts = [histogram_of(samples("uniform", n=1_000, seed=seed)) for seed in range(10)]
    before = [p.to_counts() for p in parts]
    total = LatencyHistogram.merged(parts)
    assert total.count == 10_000
    assert [p.to_counts() for p in parts] == before
    everything = np.concatenate([samples("uniform", n=1_000, seed=seed) for seed in range(10)])
    assert total == histogram_of(everything)
    assert LatencyHistogram.merged([]).count == 0


# -- serialisation -------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_through_json():
    histogram = histogram_of(np.concatenate([samples("lognormal", n=5_000), [0.0, -1.0]]))
    encoded = json.dumps(histogram.to_dict())
    data = json.loads(encoded)
    assert all(isinstance(key, str) for key in data["buckets"])
    restored = LatencyHistogram.from_dict(data)
    assert restored == histogram
    assert restored.sum == histogram.sum
    assert restored.quantiles(QUANTILES) == histogram.quantiles(QUANTILES)
    # Compact: one entry per occupied bucket, not per sample.
    assert len(data["buckets"]) < 400


def test_empty_histogram_round_trip():
    assert LatencyHistogram.from_dict(json.loads(json.dumps(LatencyHistogram().to_dict()))) == (
        LatencyHistogram()
    )


@pytest.mark.parametrize(
    "patch",
    [
        {"a": 0.02},
        {"min_ms": 0.1},
        {"v": 99},
        {"buckets": {"abc": 1}},
        {"buckets": {"5": -1}},
        {"buckets": {"5": 1.5}},
        {"buckets": {"5": True}},
        {"buckets": {str(ZERO_BUCKET - 1): 1}},
        {"buckets": [1, 2]},
        {"sum_ms": "12"},
    ],
)
def test_from_dict_rejects_foreign_or_malformed_data(patch):
    data = {**LatencyHistogram().to_dict(), **patch}
    with pytest.raises(ValueError):
        LatencyHistogram.from_dict(data)


def test_from_counts_rebuilds_a_redis_hash_written_with_hincrby():
    xs = samples("exponential", n=10_000, seed=11)
    # What many processes produce with HINCRBY key str(bucket_index(x)) 1; HGETALL returns
    # bytes for both field names and values.
    redis_hash: dict[bytes, bytes] = {}
    for x in xs:
        field = str(bucket_index(float(x))).encode()
        redis_hash[field] = str(int(redis_hash.get(field, b"0")) + 1).encode()
    direct = histogram_of(xs)

    rebuilt = LatencyHistogram.from_counts(redis_hash)
    assert rebuilt.to_counts() == direct.to_counts()
    assert rebuilt.quantiles(QUANTILES) == direct.quantiles(QUANTILES)
    # Without a recorded sum the estimate is within the same relative bound.
    assert relative_error(rebuilt.sum, direct.sum) <= BOUND

    with_sum = LatencyHistogram.from_counts(direct.to_counts(), sum_ms=direct.sum)
    assert with_sum == direct
    assert LatencyHistogram.from_counts({5: 0}).count == 0


# -- RequestTally --------------------------------------------------------------------------


def test_request_tally_rates_and_quantiles():
    tally = RequestTally()
    assert tally.error_rate is None
    assert tally.unavailable_rate is None
    assert tally.availability is None
    assert tally.p95_ms is None
    xs = samples("lognormal", n=2_000)
    recorded = []
    for i, x in enumerate(xs):
        # 20 HTTP 500s (errors, available) and 5 HTTP 503s (errors, unavailable).
        tally.record(float(x), error=i % 100 == 0)
        recorded.append(float(x))
        if i % 400 == 1:
            tally.record(float(x), error=True, unavailable=True)
            recorded.append(float(x))
    tally.record(None, error=True)  # 500 without a latency sample
    tally.record(None, unavailable=True)  # no answer at all: unavailable implies error
    assert tally.requests == 2_007
    assert tally.errors == 27
    assert tally.unavailable == 6
    assert tally.histogram.count == len(recorded) == 2_005
    assert math.isclose(tally.error_rate, 27 / 2_007)
    assert math.isclose(tally.unavailable_rate, 6 / 2_007)
    assert math.isclose(tally.availability, 1 - 6 / 2_007)
    for q, value in ((0.5, tally.p50_ms), (0.95, tally.p95_ms), (0.99, tally.p99_ms)):
        assert relative_error(value, float(np.quantile(recorded, q))) <= BOUND


def test_http_500_is_an_error_but_available():
    tally = RequestTally()
    for i in range(100):
        tally.record(20.0, error=i < 3)
    assert tally.error_rate == 0.03
    assert tally.unavailable == 0
    assert tally.unavailable_rate == 0.0
    assert tally.availability == 1.0


def test_request_tally_merge_and_round_trip():
    a = RequestTally(requests=100, errors=2, unavailable=1, histogram=histogram_of([10.0] * 100))
    b = RequestTally(requests=50, errors=3, unavailable=2, histogram=histogram_of([200.0] * 50))
    total = RequestTally.merged([a, b])
    assert (total.requests, total.errors, total.unavailable, total.histogram.count) == (
        150,
        5,
        3,
        150,
    )
    assert (a.requests, a.unavailable) == (100, 1)
    a.merge(b)
    assert a == total
    assert a.unavailable == 3
    data = json.loads(json.dumps(total.to_dict()))
    assert data["unavailable"] == 3
    restored = RequestTally.from_dict(data)
    assert restored == total
    assert restored.availability == 1 - 3 / 150


def test_request_tally_positional_construction_still_works():
    tally = RequestTally(10, 2, histogram_of([5.0] * 10))
    assert (tally.requests, tally.errors, tally.unavailable) == (10, 2, 0)
    assert tally.availability == 1.0


def test_request_tally_from_dict_without_unavailable_reads_as_zero():
    # Rows stored before the counter existed.
    stored = {"requests": 100, "errors": 4, "histogram": histogram_of([10.0] * 100).to_dict()}
    tally = RequestTally.from_dict(json.loads(json.dumps(stored)))
    assert (tally.requests, tally.errors, tally.unavailable) == (100, 4, 0)
    assert tally.error_rate == 0.04
    assert tally.availability == 1.0
    assert tally.histogram.count == 100
    empty = {"requests": 0, "errors": 0, "histogram": LatencyHistogram().to_dict()}
    assert RequestTally.from_dict(empty) == RequestTally()


EMPTY_HISTOGRAM = LatencyHistogram().to_dict()


def test_request_tally_validation():
    with pytest.raises(ValueError):
        RequestTally(requests=1, errors=2)
    with pytest.raises(ValueError):
        RequestTally(requests=-1)
    with pytest.raises(ValueError, match="negative"):
        RequestTally(requests=5, errors=2, unavailable=-1)
    with pytest.raises(ValueError, match="unavailable"):
        RequestTally(requests=5, errors=2, unavailable=3)
    with pytest.raises(ValueError, match="unavailable"):
        RequestTally(requests=5, unavailable=1)
    RequestTally(requests=5, errors=2, unavailable=2)
    with pytest.raises(ValueError):
        RequestTally.from_dict({"requests": "1", "errors": 0, "histogram": {}})
    with pytest.raises(ValueError, match="unavailable"):
        RequestTally.from_dict(
            {"requests": 5, "errors": 1, "unavailable": 2, "histogram": EMPTY_HISTOGRAM}
        )


@pytest.mark.parametrize("bad", ["1", 1.0, True, None, [1]])
def test_request_tally_from_dict_rejects_a_malformed_unavailable(bad):
    with pytest.raises(ValueError, match="unavailable"):
        RequestTally.from_dict(
            {"requests": 5, "errors": 2, "unavailable": bad, "histogram": EMPTY_HISTOGRAM}
        )

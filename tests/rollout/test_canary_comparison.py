"""Canary versus stable: the error-rate and latency tests, their wiring into the verdict,
their agreement with statsmodels / scipy, and their false-alarm rate and power by simulation."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion as sm_proportion

from rollout.comparison import (
    DEFAULT_COMPARISON,
    ComparisonPolicy,
    compare_canary_with_stable,
    error_rate_z,
    latency_margin_buckets,
    mann_whitney_z,
    normal_sf,
)
from rollout.health import (
    Action,
    Verdict,
    evaluate_health,
)
from rollout.histogram import GAMMA, ZERO_BUCKET, LatencyHistogram, RequestTally, bucket_value

LOG_GAMMA = math.log(GAMMA)


def bucket_probabilities(median_ms, sigma):
    """Probability of each histogram bucket for a log-normal latency (indices, probs).

    Bucket ``i`` holds ``gamma**(i - 1) < x <= gamma**i``, so sampling a multinomial over these
    probabilities is the same, in distribution, as recording log-normal samples one by one.
    """
    mu = math.log(median_ms)
    low = math.floor((mu - 9 * sigma) / LOG_GAMMA)
    high = math.ceil((mu + 9 * sigma) / LOG_GAMMA)
    indices = np.arange(low, high + 1)
    edges = stats.norm.cdf((np.arange(low - 1, high + 1) * LOG_GAMMA - mu) / sigma)
    probabilities = np.diff(edges)
    return indices, probabilities / probabilities.sum()


def histogram_of(rng, n, buckets):
    indices, probabilities = buckets
    counts = rng.multinomial(n, probabilities)
    nonzero = counts.nonzero()[0]
    return LatencyHistogram.from_counts(
        dict(zip(indices[nonzero].tolist(), counts[nonzero].tolist(), strict=True))
    )


def sampled_tally(requests, errors, *, median_ms=40.0, sigma=0.5, seed=0):
    """A tally with log-normal latencies recorded sample by sample (no bucket shortcut)."""
    rng = np.random.default_rng(seed)
    histogram = LatencyHistogram()
    for x in rng.lognormal(math.log(median_ms), sigma, size=requests):
        histogram.add(float(x))
    return RequestTally(requests=requests, errors=errors, histogram=histogram)


def same_latencies(tally, requests, errors):
    """A tally with ``tally``'s latency histogram and other request / error counts."""
    histogram = LatencyHistogram.from_counts(tally.histogram.to_counts())
    return RequestTally(requests=requests, errors=errors, histogram=histogram)


def reasons_text(report):
    return "\n".join(report.reasons)


def finite_json(data):
    """JSON without NaN or infinities (``allow_nan=False`` refuses them)."""
    return json.loads(json.dumps(data, allow_nan=False))


# -- the verdict -----------------------------------------------------------------------------


STABLE_LATENCIES = sampled_tally(40_000, 0, seed=1)


def test_nine_times_the_stable_error_rate_inside_the_sla_is_degraded():
    # 0.45 % is inside the 0.5 % SLA, so the thresholds alone read healthy.
    stable = same_latencies(STABLE_LATENCIES, 40_000, 20)  # 0.05 %
    canary = same_latencies(STABLE_LATENCIES, 40_000, 180)  # 0.45 %
    report = evaluate_health(stable=stable, canary=canary)
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    assert not report.global_incident
    assert report.reasons[0].startswith(
        "canary error rate 0.45 % vs stable 0.05 % (40 000 vs 40 000 requests): significantly "
        "worse than stable beyond the 0.10 pp margin (z = 8.50, one-sided p = 9.3e-18 <= 0.005)"
    )
    assert "canary not significantly worse than stable (margins 0.10 pp on errors, 5 % on " in (
        reasons_text(report)
    )
    assert "latency p95 " in report.reasons[1]
    without = evaluate_health(stable=stable, canary=canary, comparison=None)
    assert without.verdict is Verdict.HEALTHY
    assert without.comparison is None
    assert without.to_dict()["comparison"] is None


def test_a_canary_twenty_percent_slower_is_degraded_with_both_latencies_in_the_reason():
    stable = sampled_tally(20_000, 10, median_ms=30.0, seed=2)
    canary = sampled_tally(20_000, 10, median_ms=36.0, seed=3)  # p95 ~ 82 ms, inside the SLA
    report = evaluate_health(stable=stable, canary=canary)
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    reason = report.reasons[0]
    stats_c, stats_s = report.canary, report.stable
    assert reason.startswith(
        f"canary latency p95 {stats_c.p95_ms:.1f} ms vs stable {stats_s.p95_ms:.1f} ms, "
        f"median {stats_c.p50_ms:.1f} ms vs {stats_s.p50_ms:.1f} ms "
        f"(20 000 vs 20 000 latency samples): significantly slower than stable beyond the 5 % "
        f"margin, tested as 6.18 % = 3 buckets of 2.02 % (Mann-Whitney z = "
    )
    latency = report.comparison.check("latency")
    assert latency.worse and latency.z > 10


def test_a_failing_verdict_stays_failing_and_rolls_back():
    stable = same_latencies(STABLE_LATENCIES, 40_000, 20)
    canary = sampled_tally(4_000, 120, seed=4)  # 3 %
    report = evaluate_health(stable=stable, canary=canary)
    assert report.comparison.worse
    assert report.verdict is Verdict.FAILING
    assert report.action is Action.ROLLBACK


def test_worse_than_stable_lifts_insufficient_data_to_degraded():
    # 1 500 canary requests are below the 1 811 the thresholds need, but above the
    # comparison's 1 000: 1.2 % against 0.05 % is significant (z = 3.73).
    stable = same_latencies(STABLE_LATENCIES, 40_000, 20)
    canary = sampled_tally(1_500, 18, seed=5)
    report = evaluate_health(stable=stable, canary=canary)
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    assert "on only 1 500 requests" in reasons_text(report)
    assert evaluate_health(stable=stable, canary=canary, comparison=None).verdict is (
        Verdict.INSUFFICIENT_DATA
    )


def test_lifting_insufficient_data_keeps_an_alert_for_a_breach_already_significant():
    stable = same_latencies(STABLE_LATENCIES, 40_000, 20)
    canary = sampled_tally(1_500, 75, seed=5)  # 5 %: significantly past the 1 % rollback
    report = evaluate_health(stable=stable, canary=canary)
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.ALERT
    assert "already significantly past the rollback threshold" in reasons_text(report)


def test_stable_with_too_little_data_leaves_the_comparison_not_judged():
    stable = sampled_tally(500, 0, seed=6)
    canary = sampled_tally(10_000, 30, seed=7)
    report = evaluate_health(stable=stable, canary=canary)
    assert report.verdict is Verdict.HEALTHY
    assert not report.comparison.judged
    assert report.reasons[-1] == (
        "canary vs stable not judged yet: error rate on 10 000 canary vs 500 stable requests; "
        "latency on 10 000 canary vs 500 stable samples (< 1 000 per version)"
    )


def test_a_canary_inside_the_latency_margin_is_not_flagged_but_is_without_a_margin():
    # 4 % slower on 40 000 samples each: inside the 5 % margin (tested as 6.18 %), and
    # overwhelmingly significant without a margin.
    stable = sampled_tally(40_000, 20, median_ms=30.0, seed=8)
    canary = sampled_tally(40_000, 20, median_ms=31.2, seed=9)
    assert not compare_canary_with_stable(stable=stable, canary=canary).worse
    strict = ComparisonPolicy(latency_margin=0.0)
    check = compare_canary_with_stable(stable=stable, canary=canary, policy=strict)
    assert check.check("latency").worse
    assert "beyond the" not in check.check("latency").detail


def test_a_small_error_increase_inside_the_margin_is_not_flagged_but_is_without_one():
    stable = same_latencies(STABLE_LATENCIES, 40_000, 20)  # 0.05 %
    canary = same_latencies(STABLE_LATENCIES, 40_000, 48)  # 0.12 %: +0.07 pp
    assert not compare_canary_with_stable(stable=stable, canary=canary).worse
    strict = compare_canary_with_stable(
        stable=stable, canary=canary, policy=ComparisonPolicy(error_rate_margin=0.0)
    )
    check = strict.check("error_rate")
    assert check.worse
    assert check.method == "pooled two-proportion z-test"
    assert check.detail.startswith(
        "canary error rate 0.12 % vs stable 0.05 % (40 000 vs 40 000 requests): significantly "
        "worse than stable (z = "
    )


def test_report_to_dict_keeps_its_keys_and_adds_the_comparison():
    stable = same_latencies(STABLE_LATENCIES, 40_000, 20)
    canary = same_latencies(STABLE_LATENCIES, 40_000, 180)
    data = finite_json(evaluate_health(stable=stable, canary=canary).to_dict())
    assert set(data) == {
        "verdict",
        "action",
        "global_incident",
        "reasons",
        "min_requests",
        "min_requests_basis",
        "versions",
        "thresholds",
        "policy",
        "comparison",
    }
    comparison = data["comparison"]
    assert comparison["judged"] is True
    assert comparison["worse"] is True
    assert comparison["policy"] == {
        "confidence": 0.99,
        "error_rate_margin": 0.001,
        "latency_margin": 0.05,
        "min_requests": 1_000,
        "alpha_per_test": 0.005,
        "latency_margin_buckets": 3,
        "effective_latency_margin": pytest.approx(GAMMA**3 - 1),
    }
    errors, latency = comparison["checks"]
    for check in (errors, latency):
        for key in ("name", "judged", "worse", "z", "p_value", "canary", "stable", "detail"):
            assert key in check
    assert errors["name"] == "error_rate" and errors["worse"] is True
    assert errors["canary"] == {"requests": 40_000, "errors": 180, "error_rate": 0.0045}
    assert errors["stable"] == {"requests": 40_000, "errors": 20, "error_rate": 0.0005}
    assert errors["z"] == pytest.approx(8.50, abs=0.005)
    assert latency["name"] == "latency" and latency["worse"] is False
    assert latency["canary"]["samples"] == 40_000
    assert latency["canary"]["p95_ms"] == latency["stable"]["p95_ms"]
    assert data["reasons"][0] == errors["detail"]


# -- references --------------------------------------------------------------------------------


ERROR_CASES = [
    (180, 40_000, 20, 40_000),
    (30, 2_000, 40, 40_000),
    (7, 1_000, 3, 1_000),
    (0, 5_000, 4, 95_000),
    (120, 4_000, 900, 200_000),
    (500, 1_000, 450, 1_000),
]


@pytest.mark.parametrize("x1, n1, x2, n2", ERROR_CASES)
def test_error_test_at_margin_zero_is_statsmodels_pooled_z_test(x1, n1, x2, n2):
    z_ref, p_ref = sm_proportion.proportions_ztest(
        [x1, x2], [n1, n2], value=0, alternative="larger"
    )
    assert error_rate_z(x1, n1, x2, n2) == pytest.approx(z_ref, rel=1e-9, abs=1e-12)
    canary = RequestTally(requests=n1, errors=x1)
    stable = RequestTally(requests=n2, errors=x2)
    policy = ComparisonPolicy(error_rate_margin=0.0)
    check = compare_canary_with_stable(stable=stable, canary=canary, policy=policy).check(
        "error_rate"
    )
    assert check.z == pytest.approx(z_ref, rel=1e-9, abs=1e-12)
    assert check.p_value == pytest.approx(p_ref, rel=1e-9, abs=1e-300)
    assert check.worse is bool(p_ref <= 0.005)


@pytest.mark.parametrize("margin", [0.001, 0.005, 0.02])
@pytest.mark.parametrize("x1, n1, x2, n2", ERROR_CASES)
def test_error_test_with_a_margin_is_statsmodels_wald_test_of_the_shifted_null(
    x1, n1, x2, n2, margin
):
    reference = sm_proportion.test_proportions_2indep(
        x1, n1, x2, n2, value=margin, method="wald", compare="diff", alternative="larger"
    )
    canary = RequestTally(requests=n1, errors=x1)
    stable = RequestTally(requests=n2, errors=x2)
    policy = ComparisonPolicy(error_rate_margin=margin)
    check = compare_canary_with_stable(stable=stable, canary=canary, policy=policy).check(
        "error_rate"
    )
    assert check.z == pytest.approx(reference.statistic, rel=1e-9, abs=1e-12)
    assert check.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert check.worse is bool(reference.pvalue <= 0.005)


def expanded(histogram, shift=0):
    """The histogram's samples as their bucket values (what scipy sees)."""
    return np.concatenate(
        [
            np.full(n, bucket_value(index if index == ZERO_BUCKET else index - shift))
            for index, n in sorted(histogram.to_counts().items())
        ]
    )


def histogram_from(values):
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(float(value))
    return histogram


def mann_whitney_cases():
    rng = np.random.default_rng(10)
    return {
        "same distribution": (
            rng.lognormal(math.log(40), 0.5, 3_000),
            rng.lognormal(math.log(40), 0.5, 5_000),
        ),
        "canary 3 % slower, unbalanced": (
            rng.lognormal(math.log(41.2), 0.5, 800),
            rng.lognormal(math.log(40), 0.5, 15_200),
        ),
        "canary faster": (
            rng.lognormal(math.log(38), 0.3, 2_000),
            rng.lognormal(math.log(40), 0.3, 2_000),
        ),
        "heavy ties and zeros": (
            np.concatenate([np.full(300, 20.0), np.full(200, 21.0), np.zeros(50), [250.0] * 9]),
            np.concatenate([np.full(400, 20.0), np.full(100, 20.5), np.zeros(80), [0.005] * 7]),
        ),
    }


@pytest.mark.parametrize("case", list(mann_whitney_cases()))
def test_latency_test_is_scipy_mann_whitney_on_the_bucket_values(case):
    canary_values, stable_values = mann_whitney_cases()[case]
    canary, stable = histogram_from(canary_values), histogram_from(stable_values)
    reference = stats.mannwhitneyu(
        expanded(canary),
        expanded(stable),
        alternative="greater",
        use_continuity=False,
        method="asymptotic",
    )
    u, z = mann_whitney_z(canary.to_counts(), stable.to_counts())
    assert u == reference.statistic
    assert normal_sf(z) == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    if 1e-12 < reference.pvalue < 1 - 1e-12:
        assert z == pytest.approx(stats.norm.isf(reference.pvalue), rel=1e-8, abs=1e-9)
    policy = ComparisonPolicy(latency_margin=0.0, min_requests=10)
    check = compare_canary_with_stable(
        stable=RequestTally(requests=stable.count, histogram=stable),
        canary=RequestTally(requests=canary.count, histogram=canary),
        policy=policy,
    ).check("latency")
    assert check.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("shift", [1, 3, 5])
def test_a_margin_of_k_buckets_is_scipy_on_canary_latencies_divided_by_gamma_k(shift):
    rng = np.random.default_rng(11)
    canary_values = rng.lognormal(math.log(44), 0.5, 4_000)
    stable_values = rng.lognormal(math.log(40), 0.5, 6_000)
    canary, stable = histogram_from(canary_values), histogram_from(stable_values)
    # Shifting the buckets is dividing every latency by gamma**k, exactly on the grid: the
    # bucket values of the shifted canary are those scipy gets.
    reference = stats.mannwhitneyu(
        expanded(canary, shift),
        expanded(stable),
        alternative="greater",
        use_continuity=False,
        method="asymptotic",
    )
    u, z = mann_whitney_z(canary.to_counts(), stable.to_counts(), shift_buckets=shift)
    assert u == reference.statistic
    assert normal_sf(z) == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    # And the same as recording every canary latency divided by gamma**k (a latency exactly
    # on a bucket edge could move by one ulp; none of these does).
    rescaled = histogram_from(canary_values / GAMMA**shift)
    assert rescaled.to_counts() == {index - shift: n for index, n in canary.to_counts().items()}
    assert mann_whitney_z(rescaled.to_counts(), stable.to_counts()) == (u, z)


def test_latency_margin_is_rounded_up_to_whole_buckets():
    assert latency_margin_buckets(0.0) == 0
    assert latency_margin_buckets(0.01) == 1
    assert latency_margin_buckets(0.05) == 3
    assert latency_margin_buckets(0.10) == 5
    assert latency_margin_buckets(GAMMA**2 - 1) == 2
    assert GAMMA**2 - 1 < 0.05 <= GAMMA**3 - 1
    assert DEFAULT_COMPARISON.effective_latency_margin == pytest.approx(0.0618, abs=1e-4)


def test_normal_sf_matches_scipy_far_into_the_tail():
    for z in (-5.0, 0.0, 1.0, 2.575829, 8.5, 20.0, 37.0):
        assert normal_sf(z) == pytest.approx(stats.norm.sf(z), rel=1e-12)


# -- the test of the test: false alarms and power, by simulation ------------------------------


WINDOWS = 1_000


def flag_rates(seed, *, windows, n, stable_rate, canary_rate, slowdown, policy):
    """Share of simulated windows flagged worse: (error test, latency test, either)."""
    rng = np.random.default_rng(seed)
    stable_buckets = bucket_probabilities(40.0, 0.5)
    canary_buckets = bucket_probabilities(40.0 * slowdown, 0.5)
    flags = np.zeros((windows, 2), dtype=bool)
    for w in range(windows):
        stable = RequestTally(
            requests=n,
            errors=int(rng.binomial(n, stable_rate)),
            histogram=histogram_of(rng, n, stable_buckets),
        )
        canary = RequestTally(
            requests=n,
            errors=int(rng.binomial(n, canary_rate)),
            histogram=histogram_of(rng, n, canary_buckets),
        )
        comparison = compare_canary_with_stable(stable=stable, canary=canary, policy=policy)
        flags[w] = [comparison.check("error_rate").worse, comparison.check("latency").worse]
    return flags[:, 0].mean(), flags[:, 1].mean(), flags.any(axis=1).mean()


@pytest.mark.parametrize(
    "policy",
    [ComparisonPolicy(error_rate_margin=0.0, latency_margin=0.0), DEFAULT_COMPARISON],
    ids=["margin 0", "defaults"],
)
def test_an_identical_canary_is_flagged_at_most_at_the_nominal_rate(policy):
    # A/A: 4 000 requests per version, 0.2 % errors, log-normal latency (median 40 ms).
    errors, latency, either = flag_rates(
        20,
        windows=WINDOWS,
        n=4_000,
        stable_rate=0.002,
        canary_rate=0.002,
        slowdown=1.0,
        policy=policy,
    )
    nominal = 1 - policy.confidence
    bound = nominal + 3 * math.sqrt(nominal * (1 - nominal) / WINDOWS)
    print(
        f"A/A over {WINDOWS} windows ({policy.error_rate_margin=}, {policy.latency_margin=}): "
        f"flagged {either:.3f} (errors {errors:.3f}, latency {latency:.3f}); nominal "
        f"{nominal:.3f}, bound {bound:.4f}"
    )
    assert either <= bound
    assert errors <= policy.alpha_per_test + 3 * math.sqrt(policy.alpha_per_test / WINDOWS)
    assert latency <= policy.alpha_per_test + 3 * math.sqrt(policy.alpha_per_test / WINDOWS)


def test_a_real_half_point_error_increase_is_flagged_at_the_defaults():
    # 0.1 % -> 0.6 % on 10 000 requests per version (exact power 99.4 %, module docstring).
    errors, _, _ = flag_rates(
        21,
        windows=WINDOWS,
        n=10_000,
        stable_rate=0.001,
        canary_rate=0.006,
        slowdown=1.0,
        policy=DEFAULT_COMPARISON,
    )
    print(f"+0.5 pp errors, 10 000 requests per version: flagged {errors:.3f}")
    assert errors >= 0.95


def test_a_canary_twenty_percent_slower_is_flagged_at_the_defaults():
    _, latency, _ = flag_rates(
        22,
        windows=WINDOWS,
        n=4_000,
        stable_rate=0.001,
        canary_rate=0.001,
        slowdown=1.2,
        policy=DEFAULT_COMPARISON,
    )
    print(f"20 % slower, 4 000 samples per version: flagged {latency:.3f}")
    assert latency >= 0.95


# -- degenerate inputs -------------------------------------------------------------------------


def constant(latency_ms, n):
    histogram = LatencyHistogram()
    histogram.add(latency_ms, n)
    return histogram


DEGENERATE = {
    "both empty": (RequestTally(), RequestTally()),
    "canary empty": (RequestTally(), sampled_tally(5_000, 3, seed=30)),
    "stable empty": (sampled_tally(5_000, 3, seed=31), RequestTally()),
    "no latency samples": (
        RequestTally(requests=5_000, errors=10),
        RequestTally(requests=5_000, errors=2),
    ),
    "no errors anywhere": (sampled_tally(5_000, 0, seed=32), sampled_tally(5_000, 0, seed=33)),
    "all errors in both": (
        RequestTally(requests=5_000, errors=5_000, histogram=constant(3.0, 5_000)),
        RequestTally(requests=5_000, errors=5_000, histogram=constant(3.0, 5_000)),
    ),
    "all canary requests fail, no stable one": (
        RequestTally(requests=5_000, errors=5_000, histogram=constant(3.0, 5_000)),
        RequestTally(requests=5_000, errors=0, histogram=constant(30.0, 5_000)),
    ),
    "one latency bucket in both": (
        RequestTally(requests=5_000, errors=1, histogram=constant(20.0, 5_000)),
        RequestTally(requests=5_000, errors=1, histogram=constant(20.0, 5_000)),
    ),
    "zero latencies": (
        RequestTally(requests=5_000, histogram=constant(0.0, 5_000)),
        RequestTally(requests=5_000, histogram=constant(-1.0, 5_000)),
    ),
    "p-value underflows": (
        RequestTally(requests=200_000, errors=0, histogram=constant(900.0, 200_000)),
        RequestTally(requests=200_000, errors=0, histogram=constant(9.0, 200_000)),
    ),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
@pytest.mark.parametrize(
    "policy",
    [DEFAULT_COMPARISON, ComparisonPolicy(error_rate_margin=0.0, latency_margin=0.0)],
    ids=["defaults", "margin 0"],
)
def test_degenerate_inputs_never_raise_nor_give_nan(case, policy):
    canary, stable = DEGENERATE[case]
    report = evaluate_health(stable=stable, canary=canary, comparison=policy)
    data = finite_json(report.to_dict())
    for check in data["comparison"]["checks"]:
        assert check["detail"]
        if not check["judged"]:
            assert check["worse"] is False
            assert check["z"] is None and check["p_value"] is None
    assert report.reasons


def test_degenerate_verdicts():
    def compared(case):
        canary, stable = DEGENERATE[case]
        return compare_canary_with_stable(stable=stable, canary=canary)

    assert not compared("both empty").judged
    assert not compared("canary empty").judged
    assert not compared("stable empty").judged
    no_latency = compared("no latency samples")
    assert no_latency.check("error_rate").judged
    assert not no_latency.check("latency").judged
    assert not compared("no errors anywhere").worse
    assert not compared("all errors in both").check("error_rate").worse
    failing = compared("all canary requests fail, no stable one")
    assert failing.check("error_rate").worse
    assert failing.check("error_rate").z is None
    assert not failing.check("latency").worse  # its failures answer fast
    assert not compared("one latency bucket in both").worse
    # All tied only without a margin: the 5 % margin moves the canary 3 buckets down.
    canary, stable = DEGENERATE["one latency bucket in both"]
    strict = ComparisonPolicy(latency_margin=0.0)
    tied = compare_canary_with_stable(stable=stable, canary=canary, policy=strict)
    assert tied.check("latency").z is None
    assert not tied.check("latency").worse
    assert "every sample in one bucket" in tied.check("latency").detail
    assert not compared("zero latencies").check("latency").worse
    underflow = compared("p-value underflows").check("latency")
    assert underflow.worse and underflow.p_value == 0.0
    assert "one-sided p < 1e-300" in underflow.detail


@pytest.mark.parametrize(
    "kwargs",
    [
        {"confidence": 0.5},
        {"confidence": 1.0},
        {"error_rate_margin": -0.001},
        {"error_rate_margin": 1.0},
        {"latency_margin": -0.05},
        {"latency_margin": math.inf},
        {"latency_margin": math.nan},
        {"min_requests": 0},
    ],
)
def test_policy_validation(kwargs):
    with pytest.raises(ValueError):
        ComparisonPolicy(**kwargs)


def test_helpers_refuse_empty_versions():
    with pytest.raises(ValueError):
        error_rate_z(0, 0, 1, 10)
    with pytest.raises(ValueError):
        mann_whitney_z({}, {10: 3})

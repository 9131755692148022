"""evaluate_health: verdicts, actions, minimum requests, global incidents, evidence."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from rollout.health import (
    DEFAULT_ROLLBACK,
    DEFAULT_SLA,
    Action,
    HealthPolicy,
    HealthReport,
    Thresholds,
    Verdict,
    binomial_upper_tail,
    clopper_pearson_lower,
    derive_min_requests,
    evaluate_health,
    sample_size_one_sided,
)
from rollout.histogram import LatencyHistogram, RequestTally

Z95 = stats.norm.ppf(0.95)


def tally(requests, errors, *, unavailable=0, p95_ms=60.0, sigma=0.5, latency_samples=None, seed=0):
    """A tally whose latencies are log-normal with the given p95.

    ``unavailable`` of the ``errors`` are 502/503/504 or unanswered, the rest e.g. HTTP 500s.
    """
    rng = np.random.default_rng(seed)
    median = p95_ms / math.exp(Z95 * sigma)
    n = requests if latency_samples is None else latency_samples
    histogram = LatencyHistogram()
    for x in rng.lognormal(math.log(median), sigma, size=n):
        histogram.add(float(x))
    return RequestTally(
        requests=requests, errors=errors, unavailable=unavailable, histogram=histogram
    )


STABLE = tally(200_000, 40, unavailable=20, seed=1)  # 0.02 % errors, 0.01 % unavailable


def evaluate(canary, stable=STABLE, **kwargs):
    policy = kwargs.pop("policy", HealthPolicy())
    return evaluate_health(
        stable=stable,
        canary=canary,
        sla=kwargs.pop("sla", DEFAULT_SLA),
        rollback=kwargs.pop("rollback", DEFAULT_ROLLBACK),
        policy=policy,
        **kwargs,
    )


def reasons_text(report: HealthReport) -> str:
    return "\n".join(report.reasons)


# -- verdicts ------------------------------------------------------------------------------


def test_healthy_canary():
    report = evaluate(tally(10_000, 3, unavailable=2, seed=2))
    assert report.verdict is Verdict.HEALTHY
    assert report.action is Action.NONE
    assert not report.global_incident
    text = reasons_text(report)
    assert "canary error rate 0.03 % <= SLA threshold 0.50 % (10 000 requests, 3 errors)" in text
    assert (
        "canary availability 99.98 % >= SLA threshold 99.95 % (10 000 requests, 2 unavailable)"
        in text
    )
    assert "<= SLA threshold 100 ms" in text


def test_three_percent_http_500_fails_on_error_rate_but_stays_available():
    # A bug answering 500: the service is there to answer, so only the error-rate rule sees it.
    report = evaluate(tally(4_000, 120, unavailable=0, seed=3))
    assert report.verdict is Verdict.FAILING
    assert report.action is Action.ROLLBACK
    assert not report.global_incident
    assert report.canary.availability == 1.0
    assert report.canary.unavailable == 0
    text = reasons_text(report)
    assert "canary error rate 3.00 % > rollback threshold 1.00 % (4 000 requests, 120 errors" in (
        text
    )
    assert "95 % lower bound 2.57 %" in text
    assert "stable error rate 0.02 % is not > rollback threshold 1.00 %" in text
    assert (
        "canary availability 100.00 % >= SLA threshold 99.95 % (4 000 requests, 0 unavailable)"
        in text
    )
    assert "availability" not in report.reasons[0]


def test_two_percent_http_503_fails_on_error_rate_and_availability():
    report = evaluate(tally(4_000, 80, unavailable=80, seed=3))
    assert report.verdict is Verdict.FAILING
    assert report.action is Action.ROLLBACK
    assert not report.global_incident
    assert report.canary.availability == pytest.approx(0.98)
    text = reasons_text(report)
    assert "canary error rate 2.00 % > rollback threshold 1.00 % (4 000 requests, 80 errors;" in (
        text
    )
    assert (
        "canary availability 98.00 % < rollback threshold 99.00 % (4 000 requests, "
        "80 unavailable; 95 % upper bound 98." in text
    )
    assert "stable availability 99.99 % is not < rollback threshold 99.00 %" in text
    # Both rules are at the rollback level, so both come before the p95 reason.
    assert [r.split(" ")[1] for r in report.reasons[:4:2]] == ["error", "availability"]


def test_two_errors_in_50_requests_is_insufficient_data_never_rollback():
    report = evaluate(tally(50, 2, seed=4))
    assert report.verdict is Verdict.INSUFFICIENT_DATA
    assert report.action is Action.HOLD
    text = reasons_text(report)
    assert "canary error rate 4.00 % on only 50 requests (2 errors) < 1 811 needed" in text
    assert "canary availability 100.00 % on only 50 requests (0 unavailable) < 1 811" in text


@pytest.mark.parametrize("errors", range(0, 9))
@pytest.mark.parametrize("blame", [False, True])
def test_small_samples_never_roll_back(errors, blame):
    report = evaluate(
        tally(50, errors, p95_ms=400.0, seed=errors),
        policy=HealthPolicy(blame_canary_on_global_incident=blame),
    )
    assert report.verdict is Verdict.INSUFFICIENT_DATA
    assert report.action is not Action.ROLLBACK


def test_two_in_50_is_not_significant_with_the_exact_test():
    # A Wilson bound would call it significant (lower bound 1.33 % > 1 %): the reason the
    # evaluator uses the exact binomial test.
    assert binomial_upper_tail(2, 50, 0.01) == pytest.approx(0.0894, abs=1e-4)
    assert clopper_pearson_lower(2, 50, 0.95) < 0.01


def test_few_requests_already_significantly_bad_alert_without_rollback():
    report = evaluate(tally(50, 25, seed=5))
    assert report.verdict is Verdict.INSUFFICIENT_DATA
    assert report.action is Action.ALERT
    assert "already significantly past the rollback threshold" in reasons_text(report)


def test_few_requests_already_significantly_unavailable_alert_without_rollback():
    # The error-rate SLA is wide enough to keep 3 errors in 50 insignificant; the availability
    # rollback threshold (1 % unavailable) is not.
    sla = Thresholds(max_error_rate=0.05, max_p95_ms=100.0, min_availability=0.9995)
    rollback = Thresholds(max_error_rate=0.2, max_p95_ms=200.0, min_availability=0.99)
    report = evaluate(tally(50, 3, unavailable=3, seed=5), sla=sla, rollback=rollback)
    assert report.verdict is Verdict.INSUFFICIENT_DATA
    assert report.action is Action.ALERT
    text = reasons_text(report)
    assert "canary availability 94.00 % on only 50 requests (3 unavailable)" in text
    assert "already significantly past the rollback threshold (95 % upper bound" in text


def test_point_seven_percent_with_plenty_of_data_is_degraded_and_held():
    report = evaluate(tally(100_000, 700, seed=6))
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    assert "canary error rate 0.70 % > SLA threshold 0.50 % (100 000 requests, 700 errors)" in (
        reasons_text(report)
    )


def test_past_rollback_threshold_without_significance_holds():
    report = evaluate(tally(2_000, 24, seed=7))  # 1.2 %
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    assert "1.20 % > rollback threshold 1.00 % but not significantly" in reasons_text(report)


def test_p95_of_250_ms_fails():
    report = evaluate(tally(4_000, 0, p95_ms=250.0, seed=8))
    assert report.verdict is Verdict.FAILING
    assert report.action is Action.ROLLBACK
    assert report.canary.p95_ms == pytest.approx(250.0, rel=0.05)
    text = reasons_text(report)
    assert "canary p95 2" in text
    assert "> rollback threshold 200 ms (4 000 samples;" in text
    assert "of requests slower than 200 ms" in text


def test_p95_between_sla_and_rollback_is_degraded():
    report = evaluate(tally(10_000, 0, p95_ms=150.0, seed=9))
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    assert "> SLA threshold 100 ms (10 000 samples)" in reasons_text(report)


def test_missing_latency_samples_block_promotion():
    report = evaluate(tally(10_000, 0, latency_samples=100, seed=10))
    assert report.verdict is Verdict.INSUFFICIENT_DATA
    assert report.action is Action.HOLD
    assert "on only 100 latency samples" in reasons_text(report)


def test_min_requests_boundary():
    needed = derive_min_requests(DEFAULT_SLA, DEFAULT_ROLLBACK, HealthPolicy()).required
    assert evaluate(tally(needed - 1, 0, seed=11)).verdict is Verdict.INSUFFICIENT_DATA
    assert evaluate(tally(needed, 0, seed=11)).verdict is Verdict.HEALTHY


def test_empty_canary():
    report = evaluate(RequestTally())
    assert report.verdict is Verdict.INSUFFICIENT_DATA
    assert report.action is Action.HOLD
    assert report.canary.error_rate is None
    assert report.canary.p95_ms is None


# -- availability --------------------------------------------------------------------------


def test_availability_between_sla_and_rollback_is_degraded():
    # 0.1 % unavailable (all of the 0.1 % errors are 503s): the error rate is well inside its
    # SLA, availability 99.90 % misses its SLA (99.95 %) without crossing the rollback 99 %.
    report = evaluate(tally(100_000, 100, unavailable=100, seed=12))
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    assert not report.global_incident
    assert report.canary.availability == pytest.approx(0.999)
    text = reasons_text(report)
    assert report.reasons[0] == (
        "canary availability 99.90 % < SLA threshold 99.95 % (100 000 requests, 100 unavailable)"
    )
    assert "stable availability 99.99 % is not < SLA threshold 99.95 %" in text
    assert "canary error rate 0.10 % <= SLA threshold 0.50 %" in text
    assert "rollback" not in text


def test_same_error_rate_from_http_500_is_healthy():
    # The same 0.1 % as above, but answered 500 by a bug: available, and within the error SLA.
    report = evaluate(tally(100_000, 100, unavailable=0, seed=12))
    assert report.verdict is Verdict.HEALTHY
    assert "canary availability 100.00 % >= SLA threshold 99.95 %" in reasons_text(report)


def test_availability_past_rollback_without_significance_holds():
    report = evaluate(tally(2_000, 24, unavailable=24, seed=7))  # 1.2 % unavailable
    assert report.verdict is Verdict.DEGRADED
    assert report.action is Action.HOLD
    assert (
        "canary availability 98.80 % < rollback threshold 99.00 % but not significantly "
        "(2 000 requests, 24 unavailable; 95 % upper bound" in reasons_text(report)
    )


def test_availability_rollback_threshold_alone_can_fail():
    sla = Thresholds(max_error_rate=0.02, max_p95_ms=100.0, min_availability=0.9995)
    rollback = Thresholds(max_error_rate=0.05, max_p95_ms=200.0, min_availability=0.99)
    report = evaluate(tally(4_000, 120, unavailable=120, seed=13), sla=sla, rollback=rollback)
    assert report.verdict is Verdict.FAILING
    assert report.action is Action.ROLLBACK
    text = reasons_text(report)
    assert report.reasons[0] == (
        "canary availability 97.00 % < rollback threshold 99.00 % "
        "(4 000 requests, 120 unavailable; 95 % upper bound 97.43 %)"
    )
    assert "canary error rate 3.00 % > SLA threshold 2.00 %" in text


def test_availability_significance_uses_the_exact_binomial_test():
    # 60 unavailable in 4 000 (availability 98.50 %) against a 1 % rollback limit: exact
    # p-value P(X >= 60 | 4 000, 1 %), upper bound 1 - Clopper-Pearson lower bound.
    report = evaluate(tally(4_000, 60, unavailable=60, seed=13))
    p_value = stats.binom.sf(59, 4_000, 0.01)
    assert p_value < 0.05
    upper = 1 - stats.beta.ppf(0.05, 60, 4_000 - 60 + 1)
    assert f"95 % upper bound {upper * 100:.2f} %" in reasons_text(report)
    assert (
        "canary availability 98.50 % < rollback threshold 99.00 % (4 000 requests, "
        "60 unavailable; " in reasons_text(report)
    )
    assert report.verdict is Verdict.FAILING


def test_value_exactly_at_threshold_is_within():
    # Availability exactly 99.95 % (5 unavailable in 10 000).
    report = evaluate(tally(10_000, 5, unavailable=5, seed=14))
    assert report.verdict is Verdict.HEALTHY


def test_global_availability_incident():
    stable = tally(40_000, 800, unavailable=800, seed=15)  # 2 % 503s everywhere
    report = evaluate(tally(4_000, 80, unavailable=80, seed=16), stable=stable)
    assert report.verdict is Verdict.FAILING
    assert report.global_incident
    assert report.action is Action.ALERT
    text = reasons_text(report)
    assert "stable availability 98.00 % is also < rollback threshold 99.00 %" in text


def test_stable_http_500_do_not_explain_a_canary_availability_breach():
    # Stable's errors are 500s (available): the canary's 503s are its own.
    stable = tally(40_000, 800, unavailable=0, seed=15)
    report = evaluate(tally(4_000, 80, unavailable=80, seed=16), stable=stable)
    assert report.verdict is Verdict.FAILING
    assert not report.global_incident
    assert report.action is Action.ROLLBACK
    assert "stable availability 100.00 % is not < rollback threshold 99.00 %" in (
        reasons_text(report)
    )


# -- stable comparison ---------------------------------------------------------------------


def test_stable_and_canary_both_at_five_percent_is_a_global_incident():
    stable = tally(40_000, 2_000, seed=15)
    report = evaluate(tally(4_000, 200, seed=16), stable=stable)
    assert report.verdict is Verdict.FAILING
    assert report.global_incident
    assert report.action is Action.ALERT
    text = reasons_text(report)
    assert "global incident" in report.reasons[0]
    assert "stable error rate 5.00 % is also > rollback threshold 1.00 %" in text
    assert "not significantly worse" in text


def test_global_incident_can_still_blame_the_canary():
    stable = tally(40_000, 2_000, seed=15)
    report = evaluate(
        tally(4_000, 200, seed=16),
        stable=stable,
        policy=HealthPolicy(blame_canary_on_global_incident=True),
    )
    assert report.verdict is Verdict.FAILING
    assert report.global_incident
    assert report.action is Action.ROLLBACK


def test_canary_much_worse_than_a_failing_stable_is_rolled_back():
    stable = tally(40_000, 600, seed=17)  # 1.5 %
    report = evaluate(tally(4_000, 1_200, seed=18), stable=stable)  # 30 %
    assert report.verdict is Verdict.FAILING
    assert not report.global_incident
    assert report.action is Action.ROLLBACK
    assert "canary is significantly worse" in reasons_text(report)


def test_global_latency_incident():
    stable = tally(40_000, 0, p95_ms=260.0, seed=19)
    report = evaluate(tally(4_000, 0, p95_ms=255.0, seed=20), stable=stable)
    assert report.verdict is Verdict.FAILING
    assert report.global_incident
    assert report.action is Action.ALERT


def test_global_degradation_is_flagged_and_held():
    stable = tally(100_000, 700, seed=21)
    report = evaluate(tally(100_000, 700, seed=22), stable=stable)
    assert report.verdict is Verdict.DEGRADED
    assert report.global_incident
    assert report.action is Action.HOLD


@pytest.mark.parametrize("stable_requests, stable_errors", [(0, 0), (20, 1), (20, 0), (500, 25)])
def test_stable_with_too_few_requests_does_not_prevent_canary_evaluation(
    stable_requests, stable_errors
):
    # Decision: without enough stable traffic no global incident can be established, so the
    # canary is judged on the absolute thresholds alone, in both directions.
    stable = tally(stable_requests, stable_errors, seed=23)
    failing = evaluate(tally(4_000, 120, seed=24), stable=stable)
    assert failing.verdict is Verdict.FAILING
    assert failing.action is Action.ROLLBACK
    assert not failing.global_incident
    assert f"stable has only {stable_requests} requests (< 1 811)" in reasons_text(failing)
    assert evaluate(tally(10_000, 2, seed=25), stable=stable).verdict is Verdict.HEALTHY


# -- minimum requests ----------------------------------------------------------------------


def test_min_requests_derivation_with_seed_defaults():
    basis = derive_min_requests(DEFAULT_SLA, DEFAULT_ROLLBACK, HealthPolicy())
    assert basis.error_rate == 1_811
    assert basis.availability == 299
    assert basis.p95 == 59  # 0.95 ** 59 <= 5 % < 0.95 ** 58
    assert 0.95**59 <= 0.05 < 0.95**58
    assert basis.floor == 0
    assert basis.required == 1_811
    assert evaluate(tally(10_000, 2)).min_requests == 1_811


def test_min_requests_floor_only_raises():
    assert (
        derive_min_requests(
            DEFAULT_SLA, DEFAULT_ROLLBACK, HealthPolicy(min_requests=5_000)
        ).required
        == 5_000
    )
    assert (
        derive_min_requests(DEFAULT_SLA, DEFAULT_ROLLBACK, HealthPolicy(min_requests=10)).required
        == 1_811
    )


def test_min_requests_grows_as_thresholds_get_closer_and_confidence_higher():
    def n(p0, p1, confidence=0.95):
        return sample_size_one_sided(p0, p1, confidence=confidence, power=0.8)

    assert n(0.005, 0.01) < n(0.007, 0.01) < n(0.009, 0.01)
    assert n(0.005, 0.01) < n(0.005, 0.01, confidence=0.99)
    assert n(0.005, 0.02) < n(0.005, 0.01)


def exact_power(n, p0, p1, alpha=0.05):
    """Level and power of the exact one-sided test of "rate = p0", computed with scipy."""
    critical = int(stats.binom.isf(alpha, n, p0)) + 1
    while critical > 0 and stats.binom.sf(critical - 2, n, p0) <= alpha:
        critical -= 1
    return stats.binom.sf(critical - 1, n, p0), stats.binom.sf(critical - 1, n, p1)


@pytest.mark.parametrize(
    "p0, p1",
    [(0.005, 0.01), (0.0005, 0.01), (0.001, 0.002), (0.1, 0.2), (0.02, 0.05)],
)
def test_min_requests_is_the_smallest_n_with_the_stated_power(p0, p1):
    n = sample_size_one_sided(p0, p1, confidence=0.95, power=0.8)
    level, power = exact_power(n, p0, p1)
    assert level <= 0.05
    assert power >= 0.8
    assert all(exact_power(m, p0, p1)[1] < 0.8 for m in range(max(1, n - 200), n))


def test_normal_approximation_would_be_underpowered():
    # Why the derivation is exact: the textbook formula gives 1 597 for 0.5 % vs 1 %.
    z_a, z_b = stats.norm.ppf(0.95), stats.norm.ppf(0.80)
    normal = math.ceil(
        ((z_a * math.sqrt(0.005 * 0.995) + z_b * math.sqrt(0.01 * 0.99)) / 0.005) ** 2
    )
    assert normal == 1_597
    assert exact_power(normal, 0.005, 0.01)[1] < 0.75


def test_min_requests_with_a_zero_sla_error_rate():
    n = sample_size_one_sided(0.0, 0.01, confidence=0.95, power=0.8)
    assert 1 - 0.99**n >= 0.8 > 1 - 0.99 ** (n - 1)


# -- statistics helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, n, p",
    [
        (1, 1, 0.5),
        (2, 50, 0.01),
        (120, 4_000, 0.01),
        (40, 4_000, 0.01),
        (0, 10, 0.3),
        (11, 10, 0.3),
        (5, 100, 0.0),
        (5, 100, 1.0),
        (500, 100_000, 0.005),
        (130_000, 4_300_000, 0.01),
        (43_000, 4_300_000, 0.01),
        (10, 10_000_000, 1e-6),
        (2_000_000, 100_000_000, 0.0201),
    ],
)
def test_binomial_upper_tail_matches_scipy(k, n, p):
    expected = float(stats.binom.sf(k - 1, n, p))
    assert binomial_upper_tail(k, n, p) == pytest.approx(expected, rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("k, n", [(1, 10), (2, 50), (120, 4_000), (7, 100_000), (50, 50)])
def test_clopper_pearson_lower_matches_scipy(k, n):
    expected = float(stats.beta.ppf(0.05, k, n - k + 1))
    assert clopper_pearson_lower(k, n, 0.95) == pytest.approx(expected, rel=1e-5)
    assert clopper_pearson_lower(0, n, 0.95) == 0.0


# -- configuration and evidence ------------------------------------------------------------


@pytest.mark.parametrize(
    "sla, rollback",
    [
        (Thresholds(0.01, 100.0, 0.9995), Thresholds(0.01, 200.0, 0.99)),
        (Thresholds(0.005, 200.0, 0.9995), Thresholds(0.01, 200.0, 0.99)),
        (Thresholds(0.005, 100.0, 0.99), Thresholds(0.01, 200.0, 0.995)),
    ],
)
def test_sla_must_be_stricter_than_rollback(sla, rollback):
    with pytest.raises(ValueError):
        evaluate(tally(100, 0), sla=sla, rollback=rollback)


@pytest.mark.parametrize(
    "kwargs",
    [{"confidence": 0.4}, {"confidence": 1.0}, {"power": 0.3}, {"min_requests": -1}],
)
def test_policy_validation(kwargs):
    with pytest.raises(ValueError):
        HealthPolicy(**kwargs)


def test_thresholds_validation():
    with pytest.raises(ValueError):
        Thresholds(max_error_rate=1.5, max_p95_ms=100.0, min_availability=0.99)
    with pytest.raises(ValueError):
        Thresholds(max_error_rate=0.01, max_p95_ms=0.0, min_availability=0.99)


def test_report_to_dict_is_json_evidence():
    report = evaluate(tally(4_000, 120, unavailable=30, seed=26))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "failing"
    assert data["action"] == "rollback"
    assert data["global_incident"] is False
    assert data["min_requests"] == 1_811
    assert data["min_requests_basis"]["error_rate"] == 1_811
    canary = data["versions"]["canary"]
    keys = ("requests", "errors", "unavailable", "error_rate", "availability", "p50_ms")
    for key in (*keys, "p95_ms", "p99_ms", "latency_samples"):
        assert key in canary
        assert key in data["versions"]["stable"]
    assert canary["requests"] == 4_000
    assert canary["errors"] == 120
    assert canary["unavailable"] == 30
    assert canary["error_rate"] == pytest.approx(0.03)
    assert canary["availability"] == pytest.approx(0.9925)
    assert data["versions"]["stable"]["unavailable"] == 20
    assert data["min_requests_basis"]["availability"] == 299
    assert data["thresholds"]["rollback"]["max_error_rate"] == 0.01
    assert data["policy"]["confidence"] == 0.95
    assert data["reasons"] == report.reasons


def test_evaluation_is_pure():
    canary = tally(4_000, 120, unavailable=40, seed=27)
    before = (canary.requests, canary.errors, canary.unavailable, canary.histogram.to_counts())
    first = evaluate(canary).to_dict()
    assert evaluate(canary).to_dict() == first
    after = (canary.requests, canary.errors, canary.unavailable, canary.histogram.to_counts())
    assert after == before

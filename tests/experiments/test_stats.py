"""Unit tests for experiments.stats: gbstats reference cases plus independent oracles
(scipy, statsmodels, direct delta-method computation)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from experiments.stats import (
    Comparison,
    Degeneracy,
    SampleMoments,
    VariantStats,
    adjust_p_values,
    compare,
    cuped_adjust,
    fixed_half_width,
    fixed_p_value,
    minimum_detectable_effect,
    power_from_se,
    sequential_half_width,
    sequential_p_value,
    sequential_rho,
    srm_check,
    statistical_power,
    units_needed,
    welch_df,
)

DATA_DIR = Path(__file__).parent.parent / "data"
REFERENCE = json.loads((DATA_DIR / "gbstats-reference-cases.json").read_text())
REL_TOL = 1e-6
# gbstats computes p = 2·(1 − t.cdf(z)); near 0 that subtraction has an absolute error of
# a few ulp(1.0) ≈ 2.2e-16, so tiny reference p-values are only that accurate in absolute
# terms (case 36: reference 6.8345e-13 vs exact 6.8354e-13). We use t.sf, which is exact.
CDF_CANCELLATION_ABS = 4 * np.finfo(float).eps

SECTIONS = {
    "fixed_absolute": {"relative": False, "sequential": False},
    "fixed_relative": {"relative": True, "sequential": False},
    "sequential_absolute_tuning_5000": {"relative": False, "sequential": True},
    "sequential_relative_tuning_5000": {"relative": True, "sequential": True},
}


def _arms(case: dict[str, Any]) -> tuple[VariantStats, VariantStats]:
    return (
        VariantStats(**case["control"], kind=case["kind"]),
        VariantStats(**case["treatment"], kind=case["kind"]),
    )


def test_reference_file_documents_variance_convention() -> None:
    source = REFERENCE["source"]
    assert "gbstats 0.8.0" in source
    assert "p(1-p)" in source  # binomial variance convention we implement
    assert "(n-1)" in source  # mean metrics use the n − 1 sample variance
    assert len(REFERENCE["cases"]) >= 20
    assert len(REFERENCE["srm"]) >= 10


@pytest.mark.parametrize(
    ("index", "section"),
    [(i, s) for i in range(len(REFERENCE["cases"])) for s in SECTIONS],
    ids=[
        f"case{i:02d}-{c['kind']}-{s}" for i, c in enumerate(REFERENCE["cases"]) for s in SECTIONS
    ],
)
def test_gbstats_reference_case(index: int, section: str) -> None:
    case = REFERENCE["cases"][index]
    expected = case[section]
    control, treatment = _arms(case)
    result = compare(control, treatment, alpha=case["alpha"], tau=5000, **SECTIONS[section])

    assert result.reason is None
    assert result.effect == pytest.approx(expected["expected"], rel=REL_TOL)
    assert result.ci_low == pytest.approx(expected["ci"][0], rel=REL_TOL)
    assert result.ci_high == pytest.approx(expected["ci"][1], rel=REL_TOL)

    ref_p = expected["p_value"]
    if ref_p == 0.0:
        # The reference underflowed: 1 − cdf rounded to 0, i.e. the true p < 2·ulp(1)/2.
        assert 0.0 <= result.p_value < 2.3e-16
        assert result.df is not None and result.effect is not None and result.se is not None
        z = abs(result.effect) / result.se
        assert 2 * (1 - sps.t.cdf(z, result.df)) == 0.0  # reproduces the reference's 0.0
    else:
        assert result.p_value == pytest.approx(ref_p, rel=REL_TOL) or (
            abs(result.p_value - ref_p) <= CDF_CANCELLATION_ABS
        )


def test_reference_p_values_reproduced_with_gbstats_cdf_formula() -> None:
    """The only p mismatch beyond 1e-6 is explained by gbstats' 1 − cdf (checked here)."""
    for case in REFERENCE["cases"]:
        control, treatment = _arms(case)
        for section in ("fixed_absolute", "fixed_relative"):
            res = compare(control, treatment, alpha=case["alpha"], **SECTIONS[section])
            assert res.effect is not None and res.se is not None and res.df is not None
            gb_p = 2 * (1 - sps.t.cdf(abs(res.effect) / res.se, res.df))
            assert gb_p == pytest.approx(case[section]["p_value"], rel=1e-9, abs=0.0)


@pytest.mark.parametrize("index", range(len(REFERENCE["srm"])))
def test_gbstats_reference_srm(index: int) -> None:
    case = REFERENCE["srm"][index]
    result = srm_check(case["users"], case["weights"])
    assert result.p_value == pytest.approx(case["p_value"], rel=REL_TOL)
    assert result.flagged == (case["p_value"] < 0.001)
    assert sum(result.expected) == pytest.approx(sum(case["users"]))


# ----------------------------------------------------------------- VariantStats


def test_variant_stats_moments_and_from_values() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(3.0, 2.0, size=500)
    s = VariantStats.from_values(y)
    assert s.n == 500
    assert s.mean == pytest.approx(y.mean(), rel=1e-12)
    assert s.variance == pytest.approx(y.var(ddof=1), rel=1e-9)

    b = VariantStats.from_values(rng.random(400) < 0.3, kind="binomial")
    m = b.sum / b.n
    assert b.sum == b.sum_squares
    assert b.variance == pytest.approx(m * (1 - m), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1, "sum": 0.0, "sum_squares": 0.0},
        {"n": 2.5, "sum": 0.0, "sum_squares": 0.0},
        {"n": True, "sum": 0.0, "sum_squares": 0.0},
        {"n": 10, "sum": math.nan, "sum_squares": 1.0},
        {"n": 10, "sum": 10.0, "sum_squares": 5.0},  # Σy² < (Σy)²/n is impossible
        {"n": 0, "sum": 1.0, "sum_squares": 1.0},
        {"n": 10, "sum": 11.0, "sum_squares": 11.0, "kind": "binomial"},
        {"n": 10, "sum": 1.0, "sum_squares": 1.0, "kind": "ratio"},
        {"n": 10, "sum": 1.0, "sum_squares": 1.0, "x_sum": 1.0},  # partial covariate
        {"n": 2, "sum": 2.0, "sum_squares": 2.0, "x_sum": 2, "x_sum_squares": 2, "xy_sum": 9},
    ],
)
def test_variant_stats_rejects_impossible_inputs(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        VariantStats(**kwargs)


def test_dataclasses_are_frozen() -> None:
    s = VariantStats(n=10, sum=5.0, sum_squares=5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.n = 11  # type: ignore[misc]
    with pytest.raises(ValueError):
        SampleMoments(n=3, mean=1.0, variance=-1.0)


def test_zero_variance_sums_tolerate_rounding() -> None:
    # Σy² computed in floating point may land a hair below (Σy)²/n for constant data.
    y = np.full(1000, 0.1)
    s = VariantStats.from_values(y)
    assert s.variance == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ Welch test


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_welch_matches_scipy_ttest_ind(seed: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(5, 400, size=2)
    a = rng.normal(10.0, rng.uniform(0.5, 5.0), size=n_a)
    b = rng.normal(10.0 + rng.normal(0, 1), rng.uniform(0.5, 5.0), size=n_b)
    res = compare(VariantStats.from_values(a), VariantStats.from_values(b), alpha=alpha)

    ref = sps.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(confidence_level=1 - alpha)
    assert res.effect == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    assert res.ci_low == pytest.approx(ci.low, rel=1e-7)
    assert res.ci_high == pytest.approx(ci.high, rel=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_binomial_matches_welch_with_plugin_variance(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    a = (rng.random(3000) < 0.10).astype(float)
    b = (rng.random(3300) < 0.115).astype(float)
    res = compare(
        VariantStats.from_values(a, kind="binomial"),
        VariantStats.from_values(b, kind="binomial"),
        alpha=0.05,
    )
    # Binomial kind = Welch with v = p(1 − p), i.e. the ddof=0 standard deviation.
    ref = sps.ttest_ind_from_stats(
        b.mean(), b.std(ddof=0), b.size, a.mean(), a.std(ddof=0), a.size, equal_var=False
    )
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    # On raw 0/1 arrays scipy uses ddof=1: identical up to the n/(n − 1) variance factor.
    raw = sps.ttest_ind(b, a, equal_var=False)
    assert res.p_value == pytest.approx(raw.pvalue, rel=2e-3)
    as_mean = compare(VariantStats.from_values(a), VariantStats.from_values(b), alpha=0.05)
    assert as_mean.p_value == pytest.approx(raw.pvalue, rel=1e-9)
    ci = raw.confidence_interval(0.95)
    assert (as_mean.ci_low, as_mean.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_relative_interval_matches_direct_delta_method(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    a = rng.lognormal(2.0, 0.6, size=800)
    b = rng.lognormal(2.05, 0.6, size=900)
    alpha = 0.05
    res = compare(
        VariantStats.from_values(a), VariantStats.from_values(b), alpha=alpha, relative=True
    )

    # Delta method with a numerically differentiated g(m_a, m_b) = (m_b − m_a)/|m_a|.
    def g(ma: float, mb: float) -> float:
        return (mb - ma) / abs(ma)

    ma, mb = a.mean(), b.mean()
    h = 1e-6
    grad_a = (g(ma + h, mb) - g(ma - h, mb)) / (2 * h)
    grad_b = (g(ma, mb + h) - g(ma, mb - h)) / (2 * h)
    cov = np.diag([a.var(ddof=1) / a.size, b.var(ddof=1) / b.size])
    grad = np.array([grad_a, grad_b])
    se = math.sqrt(grad @ cov @ grad)
    df = welch_df(a.var(ddof=1), a.size, b.var(ddof=1), b.size)
    half = sps.t.ppf(1 - alpha / 2, df) * se

    assert res.effect == pytest.approx(g(ma, mb), rel=1e-12)
    assert res.se == pytest.approx(se, rel=1e-6)
    assert res.ci_low == pytest.approx(g(ma, mb) - half, rel=1e-6)
    assert res.ci_high == pytest.approx(g(ma, mb) + half, rel=1e-6)
    assert res.p_value == pytest.approx(2 * sps.t.sf(abs(g(ma, mb)) / se, df), rel=1e-6)


def test_relative_uses_absolute_control_mean() -> None:
    a = SampleMoments(n=100, mean=-2.0, variance=1.0)
    b = SampleMoments(n=100, mean=-1.0, variance=1.0)
    res = compare(a, b, relative=True)
    assert res.effect == pytest.approx(0.5)  # (−1 − (−2))/|−2|: improvement stays positive


def test_fixed_p_value_keeps_precision_in_the_tail() -> None:
    p = fixed_p_value(10.0, 1.0, 1e6)
    assert 2 * (1 - sps.t.cdf(10.0, 1e6)) == 0.0  # what the 1 − cdf formulation returns
    assert p == pytest.approx(2 * sps.norm.sf(10.0), rel=1e-4)  # ≈ 1.5e-23, df ≈ ∞


def test_fixed_interval_and_p_value_are_dual() -> None:
    se, df, alpha = 0.7, 33.3, 0.05
    half = fixed_half_width(se, df, alpha=alpha)
    assert fixed_p_value(half, se, df) == pytest.approx(alpha, rel=1e-10)


def test_elementwise_helpers_accept_arrays() -> None:
    se = np.array([0.5, 1.0, 2.0])
    n = np.array([100.0, 1000.0, 10000.0])
    effects = np.array([0.1, 3.0, -9.0])
    p = sequential_p_value(effects, se, n, alpha=0.05)
    w = sequential_half_width(se, n, alpha=0.05)
    assert isinstance(p, np.ndarray) and p.shape == (3,)
    for i in range(3):
        assert p[i] == sequential_p_value(float(effects[i]), float(se[i]), float(n[i]), alpha=0.05)
        assert w[i] == sequential_half_width(float(se[i]), float(n[i]), alpha=0.05)
    assert isinstance(fixed_p_value(0.1, 0.5, 10.0), float)


# ------------------------------------------------------------------ sequential


def test_sequential_rho_formula() -> None:
    alpha, tau = 0.05, 5000
    expected = math.sqrt((-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / tau)
    assert sequential_rho(alpha=alpha, tau=tau) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("n_total", [200.0, 5000.0, 1e6])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_sequential_p_value_and_confidence_sequence_are_dual(n_total: float, alpha: float) -> None:
    se = 0.3
    half = sequential_half_width(se, n_total, alpha=alpha)
    assert sequential_p_value(half, se, n_total, alpha=alpha) == pytest.approx(alpha, rel=1e-10)
    # Always wider than the fixed-horizon interval: the price of continuous monitoring.
    assert half > fixed_half_width(se, n_total, alpha=alpha)


def test_sequential_p_value_is_capped_and_does_not_underflow_to_nan() -> None:
    assert sequential_p_value(0.0, 1.0, 1000.0, alpha=0.05) == 1.0
    assert sequential_p_value(1e6, 1.0, 1000.0, alpha=0.05) == 0.0


def test_sequential_tau_changes_the_interval() -> None:
    a = SampleMoments(n=5000, mean=10.0, variance=25.0)
    b = SampleMoments(n=5000, mean=10.3, variance=25.0)
    narrow = compare(a, b, sequential=True, tau=10_000)
    default = compare(a, b, sequential=True)
    assert default.tau == 5000 and narrow.tau == 10_000
    # τ is where the sequence is tightest; N = 10 000 here, so τ = 10 000 fits better.
    assert narrow.ci_high - narrow.ci_low < default.ci_high - default.ci_low


# --------------------------------------------------------------- degeneracies


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize(
    ("control", "treatment", "reason"),
    [
        (VariantStats(0, 0.0, 0.0), VariantStats(10, 5.0, 5.0), Degeneracy.INSUFFICIENT_DATA),
        (VariantStats(1, 3.0, 9.0), VariantStats(10, 5.0, 5.0), Degeneracy.INSUFFICIENT_DATA),
        (VariantStats(10, 5.0, 5.0), VariantStats(1, 1.0, 1.0), Degeneracy.INSUFFICIENT_DATA),
        (VariantStats(5, 10.0, 20.0), VariantStats(5, 15.0, 45.0), Degeneracy.ZERO_VARIANCE),
        (
            VariantStats(5, 0.0, 0.0, kind="binomial"),
            VariantStats(5, 0.0, 0.0, kind="binomial"),
            None,  # filled per relative flag below
        ),
    ],
)
def test_degenerate_inputs_never_raise(
    control: VariantStats,
    treatment: VariantStats,
    reason: Degeneracy | None,
    relative: bool,
    sequential: bool,
) -> None:
    res = compare(control, treatment, relative=relative, sequential=sequential)
    if reason is None:
        reason = Degeneracy.ZERO_CONTROL_MEAN if relative else Degeneracy.ZERO_VARIANCE
    assert res.reason == reason
    assert res.p_value == 1.0
    assert res.ci_low == -math.inf and res.ci_high == math.inf
    assert not res.significant
    for value in (res.effect, res.se, res.df):
        assert value is None or math.isfinite(value)


def test_zero_control_mean_relative_with_variance() -> None:
    a = VariantStats.from_values([-1.0, 1.0, -2.0, 2.0])
    b = VariantStats.from_values([1.0, 2.0, 3.0, 4.0])
    res = compare(a, b, relative=True)
    assert res.reason is Degeneracy.ZERO_CONTROL_MEAN
    assert compare(a, b).reason is None  # the absolute comparison is fine


def test_one_arm_zero_variance_is_not_degenerate() -> None:
    a = VariantStats(10, 0.0, 0.0, kind="binomial")
    b = VariantStats(10, 5.0, 5.0, kind="binomial")
    res = compare(a, b)
    assert res.reason is None
    assert res.df == pytest.approx(9.0)


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0}, {"alpha": 1.0}, {"alpha": math.nan}, {"tau": 0.0}]
)
def test_invalid_settings_raise(kwargs: dict[str, Any]) -> None:
    a = SampleMoments(n=10, mean=1.0, variance=1.0)
    with pytest.raises(ValueError):
        compare(a, a, **kwargs)


def test_mismatched_kinds_raise() -> None:
    with pytest.raises(ValueError, match="kinds differ"):
        compare(VariantStats(10, 5.0, 5.0, kind="binomial"), VariantStats(10, 5.0, 5.0))


def test_comparison_rejects_nan() -> None:
    with pytest.raises(ValueError):
        Comparison(
            effect=math.nan,
            se=1.0,
            ci_low=0.0,
            ci_high=1.0,
            p_value=0.5,
            df=3.0,
            alpha=0.05,
            relative=False,
            sequential=False,
        )


# -------------------------------------------------------------------------- SRM


@pytest.mark.parametrize("seed", range(5))
def test_srm_matches_scipy_chisquare(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    k = int(rng.integers(2, 6))
    weights = rng.dirichlet(np.ones(k)) * 7.0  # weights need not sum to 1
    counts = rng.multinomial(20_000, rng.dirichlet(np.ones(k) * 50))
    res = srm_check(list(counts), list(weights), threshold=0.01)
    expected = counts.sum() * weights / weights.sum()
    ref = sps.chisquare(counts, expected)
    assert res.chi2 == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert res.expected == pytest.approx(tuple(expected))
    assert res.df == k - 1
    assert res.flagged == (ref.pvalue < 0.01)


def test_srm_defaults_and_edges() -> None:
    even = srm_check([5000, 5000])
    assert even.p_value == pytest.approx(1.0) and not even.flagged
    empty = srm_check([0, 0, 0])
    assert empty.p_value == 1.0 and not empty.flagged
    leaked = srm_check([100, 3], [1.0, 0.0])
    assert leaked.flagged and leaked.p_value == 0.0 and leaked.chi2 == math.inf
    unused = srm_check([100, 0, 104], [1.0, 0.0, 1.0])
    assert unused.df == 1
    assert unused.p_value == pytest.approx(sps.chisquare([100, 104]).pvalue)
    single = srm_check([50, 0], [1.0, 0.0])
    assert single.p_value == 1.0 and not single.flagged
    with pytest.raises(ValueError):
        srm_check([10])
    with pytest.raises(ValueError):
        srm_check([10, 10], [1.0, -1.0])


# ------------------------------------------------------------ multiple testing


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("method", "sm_method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_p_values_matches_statsmodels(seed: int, method: str, sm_method: str) -> None:
    rng = np.random.default_rng(400 + seed)
    m = int(rng.integers(1, 30))
    p = np.concatenate([rng.uniform(size=m), rng.uniform(0, 0.01, size=m // 2)])
    p[: m // 3] = p[0]  # ties
    rng.shuffle(p)
    ours = adjust_p_values(list(p), method=method)  # type: ignore[arg-type]
    ref = multipletests(p, method=sm_method)[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)


def test_adjust_p_values_default_is_holm_and_edges() -> None:
    p = [0.01, 0.04, 0.03]
    assert adjust_p_values(p) == adjust_p_values(p, method="holm")
    assert adjust_p_values([]) == []
    assert adjust_p_values([0.2]) == [0.2]
    with pytest.raises(ValueError):
        adjust_p_values([0.1, math.nan])
    with pytest.raises(ValueError):
        adjust_p_values([0.1], method="bonferroni")  # type: ignore[arg-type]


def test_adjusting_sequential_p_values() -> None:
    a = SampleMoments(n=4000, mean=10.0, variance=25.0)
    arms = [SampleMoments(n=4000, mean=10.0 + d, variance=25.0) for d in (0.0, 0.2, 0.6)]
    raw = [compare(a, b, sequential=True).p_value for b in arms]
    adjusted = adjust_p_values(raw, method="holm")
    assert all(adj >= r for adj, r in zip(adjusted, raw, strict=True))
    assert adjusted == pytest.approx(multipletests(raw, method="holm")[1].tolist(), rel=1e-12)


# ------------------------------------------------------------------------ CUPED


def _cuped_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xa, xb = rng.normal(5, 2, size=700), rng.normal(5, 2, size=650)
    ya = 1.5 * xa + rng.normal(0, 2, size=700)
    yb = 1.5 * xb + 0.4 + rng.normal(0, 2, size=650)
    return xa, ya, xb, yb


def test_cuped_matches_direct_computation_on_raw_data() -> None:
    xa, ya, xb, yb = _cuped_data(7)
    a = VariantStats.from_values(ya, covariate=xa)
    b = VariantStats.from_values(yb, covariate=xb)
    adj = cuped_adjust(a, b)

    x, y = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    theta = np.cov(x, y, ddof=1)[0, 1] / x.var(ddof=1)
    assert adj.theta == pytest.approx(theta, rel=1e-9)
    ya_adj = ya - theta * (xa - x.mean())
    yb_adj = yb - theta * (xb - x.mean())
    assert adj.control.mean == pytest.approx(ya_adj.mean(), rel=1e-9)
    assert adj.treatment.mean == pytest.approx(yb_adj.mean(), rel=1e-9)
    assert adj.control.variance == pytest.approx(ya_adj.var(ddof=1), rel=1e-8)
    assert adj.treatment.variance == pytest.approx(yb_adj.var(ddof=1), rel=1e-8)

    res = compare(a, b, cuped=True)
    ref = sps.ttest_ind(yb_adj, ya_adj, equal_var=False)
    assert res.theta == pytest.approx(theta, rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    ci = ref.confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-7)
    assert min(adj.variance_reduction) > 0.5


def test_cuped_sequential_and_relative_run_on_adjusted_stats() -> None:
    xa, ya, xb, yb = _cuped_data(8)
    a = VariantStats.from_values(ya, covariate=xa)
    b = VariantStats.from_values(yb, covariate=xb)
    adj = cuped_adjust(a, b)
    for relative in (False, True):
        direct = compare(adj.control, adj.treatment, sequential=True, relative=relative)
        via = compare(a, b, sequential=True, relative=relative, cuped=True)
        assert (via.effect, via.ci_low, via.ci_high, via.p_value) == (
            direct.effect,
            direct.ci_low,
            direct.ci_high,
            direct.p_value,
        )


def test_cuped_degenerate_covariate_falls_back_to_no_adjustment() -> None:
    y = np.array([1.0, 2.0, 4.0, 3.0])
    a = VariantStats.from_values(y, covariate=np.ones(4))
    b = VariantStats.from_values(y + 1, covariate=np.ones(4))
    adj = cuped_adjust(a, b)
    assert adj.theta == 0.0 and adj.note is not None
    plain = compare(a, b)
    with_cuped = compare(a, b, cuped=True)
    assert with_cuped.p_value == pytest.approx(plain.p_value)
    tiny = cuped_adjust(VariantStats.from_values([1.0], covariate=[2.0]), a)
    assert compare(tiny.control, tiny.treatment).reason is Degeneracy.INSUFFICIENT_DATA


def test_cuped_requires_covariates() -> None:
    a = VariantStats(10, 5.0, 5.0)
    with pytest.raises(ValueError):
        cuped_adjust(a, a)
    with pytest.raises(ValueError):
        compare(SampleMoments(n=10, mean=1.0, variance=1.0), a, cuped=True)


# ------------------------------------------------------------------------ power


@pytest.mark.parametrize(("n_a", "n_b"), [(500, 500), (1200, 800), (10_000, 10_000)])
@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_power_and_mde_match_statsmodels(n_a: int, n_b: int, alpha: float) -> None:
    sigma = 3.0
    a = SampleMoments(n=n_a, mean=10.0, variance=sigma**2)
    b = SampleMoments(n=n_b, mean=10.0, variance=sigma**2)
    delta = 2.5 * sigma * math.sqrt(1 / n_a + 1 / n_b)  # mid-range power, away from 0/1
    ratio = n_b / n_a
    ref_power = NormalIndPower().power(
        effect_size=delta / sigma, nobs1=n_a, alpha=alpha, ratio=ratio
    )
    ours = statistical_power(a, b, effect=delta, alpha=alpha)
    assert ours == pytest.approx(ref_power, rel=1e-9)
    # The normal approximation stays close to the t-based power at these sizes.
    t_power = TTestIndPower().power(effect_size=delta / sigma, nobs1=n_a, alpha=alpha, ratio=ratio)
    assert ours == pytest.approx(t_power, abs=2e-3)

    mde = minimum_detectable_effect(a, b, alpha=alpha, power=0.8)
    ref_es = NormalIndPower().solve_power(
        effect_size=None, nobs1=n_a, alpha=alpha, power=0.8, ratio=ratio
    )
    assert mde is not None
    # statsmodels' root finder stops at |power − 0.8| ≈ 1e-6, hence rel 1e-4 here; the
    # next line checks our MDE inverts the power function to 1e-9.
    assert mde == pytest.approx(ref_es * sigma, rel=1e-4)
    assert statistical_power(a, b, effect=mde, alpha=alpha) == pytest.approx(0.8, rel=1e-9)


def test_power_degenerate_and_formula_edges() -> None:
    tiny = SampleMoments(n=1, mean=0.0, variance=0.0)
    ok = SampleMoments(n=100, mean=0.0, variance=1.0)
    assert statistical_power(tiny, ok, effect=1.0) is None
    assert minimum_detectable_effect(ok, tiny) is None
    assert power_from_se(effect=0.0, se=1.0, alpha=0.05) == pytest.approx(0.05)
    assert power_from_se(effect=1.0, se=0.0) == 1.0


@pytest.mark.parametrize("fraction", [0.5, 0.3])
@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_units_needed_matches_statsmodels(fraction: float, alpha: float) -> None:
    sigma, delta = 5.0, 0.25
    est = units_needed(
        variance=sigma**2,
        min_effect=delta,
        alpha=alpha,
        treatment_fraction=fraction,
        daily_units=1500,
    )
    ratio = fraction / (1 - fraction)
    n_control = NormalIndPower().solve_power(
        effect_size=delta / sigma, nobs1=None, alpha=alpha, power=0.8, ratio=ratio
    )
    assert est.control_units == math.ceil(n_control)
    assert est.treatment_units == math.ceil(n_control * ratio)
    assert est.days == pytest.approx(est.total_units / 1500)
    # The rounded-up sample reaches the target power.
    se = sigma * math.sqrt(1 / est.control_units + 1 / est.treatment_units)
    assert power_from_se(effect=delta, se=se, alpha=alpha) >= 0.8


def test_units_needed_closed_form_and_validation() -> None:
    est = units_needed(variance=25.0, min_effect=0.5)
    closed = (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) ** 2 * 25.0 * 4 / 0.25
    assert est.total_units == pytest.approx(closed, abs=2)
    assert est.days is None
    assert units_needed(variance=25.0, min_effect=-0.5) == est  # direction does not matter
    for bad in ({"variance": 0.0}, {"min_effect": 0.0}, {"treatment_fraction": 1.0}):
        kwargs: dict[str, Any] = {"variance": 25.0, "min_effect": 0.5, **bad}
        with pytest.raises(ValueError):
            units_needed(**kwargs)

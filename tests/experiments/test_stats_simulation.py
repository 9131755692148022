"""Monte-Carlo properties of experiments.stats: peeking-safe sequential inference,
power, SRM detection and CUPED variance reduction.

Vectorised over experiments × looks with the module's elementwise helpers (the same
functions ``compare`` calls), and spot-checked against ``compare`` itself. Seeded, so the
figures printed with ``pytest -s`` are reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.stats import (
    VariantStats,
    compare,
    fixed_p_value,
    sequential_p_value,
    srm_check,
    welch_df,
)

ALPHA = 0.05


def _looks_from_batches(
    sums: np.ndarray, squares: np.ndarray, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (n, mean, sample variance) per look from per-batch sums (..., looks)."""
    cum_sum = np.cumsum(sums, axis=-1)
    cum_sq = np.cumsum(squares, axis=-1)
    n = batch * np.arange(1, sums.shape[-1] + 1, dtype=np.float64)
    mean = cum_sum / n
    var = np.maximum((cum_sq - cum_sum**2 / n) / (n - 1), 0.0)
    return np.broadcast_to(n, mean.shape), mean, var


def _peeking_rates(
    mean_a: np.ndarray,
    var_a: np.ndarray,
    mean_b: np.ndarray,
    var_b: np.ndarray,
    n: np.ndarray,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Share of experiments with p < α at *any* look, sequential and fixed-horizon."""
    effect = mean_b - mean_a
    se = np.sqrt(var_a / n + var_b / n)
    df = welch_df(var_a, n, var_b, n)
    p_fixed = fixed_p_value(effect, se, df)
    p_seq = sequential_p_value(effect, se, 2 * n, alpha=ALPHA)
    seq_rate = float(np.mean((p_seq < ALPHA).any(axis=-1)))
    fixed_rate = float(np.mean((p_fixed < ALPHA).any(axis=-1)))
    return seq_rate, fixed_rate, p_seq, p_fixed


def test_aa_normal_sequential_controls_peeking_fixed_horizon_does_not() -> None:
    rng = np.random.default_rng(20240601)
    experiments, looks, batch = 1000, 50, 100
    # (experiments, arm, look, unit): 100 new units per arm per look, cumulative analysis.
    y = rng.normal(10.0, 5.0, size=(experiments, 2, looks, batch))
    n, mean, var = _looks_from_batches(y.sum(axis=-1), (y**2).sum(axis=-1), batch)
    seq_rate, fixed_rate, p_seq, p_fixed = _peeking_rates(
        mean[:, 0], var[:, 0], mean[:, 1], var[:, 1], n[:, 0]
    )
    final_fixed = float(np.mean(p_fixed[:, -1] < ALPHA))
    print(
        f"\nA/A normal, {experiments} experiments x {looks} looks: "
        f"sequential any-look FPR={seq_rate:.4f}, fixed-horizon any-look FPR={fixed_rate:.4f}, "
        f"fixed-horizon single final look FPR={final_fixed:.4f}"
    )
    assert seq_rate <= ALPHA + 0.015
    assert fixed_rate > 0.10  # peeking at a fixed-horizon test inflates the error rate
    assert abs(final_fixed - ALPHA) < 0.025  # one pre-planned look is still calibrated

    # The vectorised path agrees with the scalar API on a few experiment/look cells.
    for e, look in [(0, 0), (3, 17), (999, 49)]:
        a = VariantStats.from_values(y[e, 0, : look + 1].ravel())
        b = VariantStats.from_values(y[e, 1, : look + 1].ravel())
        seq = compare(a, b, alpha=ALPHA, sequential=True)
        fixed = compare(a, b, alpha=ALPHA)
        assert seq.p_value == pytest.approx(p_seq[e, look], rel=1e-6, abs=1e-12)
        assert fixed.p_value == pytest.approx(p_fixed[e, look], rel=1e-6, abs=1e-12)


def test_aa_bernoulli_sequential_controls_peeking() -> None:
    rng = np.random.default_rng(7)
    experiments, looks, batch, rate = 2000, 50, 100, 0.1
    conversions = rng.binomial(batch, rate, size=(experiments, 2, looks)).astype(np.float64)
    cum = np.cumsum(conversions, axis=-1)
    n = batch * np.arange(1, looks + 1, dtype=np.float64)
    mean = cum / n
    var = mean * (1 - mean)  # binomial kind: v = p(1 − p)
    seq_rate, fixed_rate, _, _ = _peeking_rates(mean[:, 0], var[:, 0], mean[:, 1], var[:, 1], n)
    print(
        f"\nA/A Bernoulli(0.1), {experiments} experiments x {looks} looks: "
        f"sequential any-look FPR={seq_rate:.4f}, fixed-horizon any-look FPR={fixed_rate:.4f}"
    )
    assert seq_rate <= ALPHA + 0.015
    assert fixed_rate > 0.10


def test_sequential_detects_planted_five_percent_lift() -> None:
    rng = np.random.default_rng(11)
    experiments, looks, batch = 200, 10, 1000  # 10 000 units per arm at the last look
    # Session-duration-like metric: log-normal with mean 10 and sd 5.
    sigma_log = math.sqrt(math.log(1 + (5.0 / 10.0) ** 2))
    mu_log = math.log(10.0) - sigma_log**2 / 2
    y = rng.lognormal(mu_log, sigma_log, size=(experiments, 2, looks, batch))
    y[:, 1] *= 1.05  # +5 % relative effect on the treatment mean
    n, mean, var = _looks_from_batches(y.sum(axis=-1), (y**2).sum(axis=-1), batch)

    detected_final = 0
    estimates = []
    for e in range(experiments):
        a = VariantStats.from_values(y[e, 0])
        b = VariantStats.from_values(y[e, 1])
        res = compare(a, b, alpha=ALPHA, relative=True, sequential=True)
        detected_final += res.significant and res.ci_low > 0
        assert res.effect is not None
        estimates.append(res.effect)
    power_final = detected_final / experiments

    # Relative-lift sequential p-values at every look (delta-method se, N = n_a + n_b).
    ma, mb, va, vb, nn = mean[:, 0], mean[:, 1], var[:, 0], var[:, 1], n[:, 0]
    rel = (mb - ma) / np.abs(ma)
    se_rel = np.sqrt(vb / (nn * ma**2) + va * mb**2 / (nn * ma**4))
    p_seq = sequential_p_value(rel, se_rel, 2 * nn, alpha=ALPHA)
    power_any = float(np.mean((p_seq < ALPHA).any(axis=-1)))
    first_look = np.argmax(p_seq < ALPHA, axis=-1)[(p_seq < ALPHA).any(axis=-1)] + 1
    print(
        f"\nPlanted +5% lift, log-normal mean 10 sd 5, 10 000 units/arm, {experiments} "
        f"experiments: sequential power at final look={power_final:.3f}, "
        f"at any of {looks} looks={power_any:.3f}, "
        f"median first detection at {int(np.median(first_look)) * batch} units/arm; "
        f"mean estimate={np.mean(estimates):.4f}"
    )
    assert power_final >= 0.8
    assert abs(np.mean(estimates) - 0.05) < 0.005


def test_srm_flags_52_48_split() -> None:
    result = srm_check([10_400, 9_600], [0.5, 0.5])
    assert result.flagged and result.p_value < 1e-6

    rng = np.random.default_rng(3)
    skewed = rng.binomial(20_000, 0.52, size=500)
    flagged = [srm_check([int(t), 20_000 - int(t)]).flagged for t in skewed]
    balanced = rng.binomial(20_000, 0.50, size=2000)
    false_flags = [srm_check([int(t), 20_000 - int(t)]).flagged for t in balanced]
    print(
        f"\nSRM, 20 000 units: 52/48 flagged in {np.mean(flagged):.3f} of runs; "
        f"50/50 falsely flagged in {np.mean(false_flags):.4f}"
    )
    # Theory: |T − 10 000| must exceed 3.29·70.7 ≈ 233 while it averages 400 ± 70.7,
    # so a random 52/48 assignment is flagged with probability ≈ 0.991.
    assert np.mean(flagged) >= 0.97
    assert np.mean(false_flags) <= 0.005


CUPED_LIFT = 0.3


def _cuped_width_ratios(correlation: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per simulated A/B experiment: CUPED/unadjusted CI-width ratio and CUPED estimate."""
    rng = np.random.default_rng(seed)
    experiments, n = 200, 5000
    ratios = np.empty(experiments)
    effects = np.empty(experiments)
    for e in range(experiments):
        arms = []
        for lift in (0.0, CUPED_LIFT):
            x = rng.normal(10.0, 3.0, size=n)  # pre-exposure value of the same metric
            noise = rng.normal(0.0, 3.0, size=n)
            y = 10.0 + lift + correlation * (x - 10.0) + math.sqrt(1 - correlation**2) * noise
            arms.append(VariantStats.from_values(y, covariate=x))
        plain = compare(arms[0], arms[1], alpha=ALPHA)
        adjusted = compare(arms[0], arms[1], alpha=ALPHA, cuped=True)
        ratios[e] = (adjusted.ci_high - adjusted.ci_low) / (plain.ci_high - plain.ci_low)
        assert adjusted.effect is not None
        effects[e] = adjusted.effect
    return ratios, effects


def test_cuped_correlation_06_gives_the_theoretical_20_percent() -> None:
    # Var(y − θx) = Var(y)(1 − ρ²), so widths shrink by √(1 − 0.36) = 0.8: 20 %, not 30 %.
    ratios, effects = _cuped_width_ratios(0.6, seed=21)
    print(f"\nCUPED rho=0.6: mean width ratio={ratios.mean():.4f} (theory 0.8000)")
    assert ratios.mean() == pytest.approx(math.sqrt(1 - 0.6**2), abs=0.01)
    assert ratios.max() < 0.85
    assert effects.mean() == pytest.approx(CUPED_LIFT, abs=0.015)  # adjustment is unbiased


def test_cuped_correlation_075_narrows_by_at_least_30_percent() -> None:
    # ≥ 30 % narrowing needs √(1 − ρ²) ≤ 0.7, i.e. ρ ≥ 0.714; 0.75 gives 0.661.
    ratios, effects = _cuped_width_ratios(0.75, seed=22)
    theory = math.sqrt(1 - 0.75**2)
    print(f"\nCUPED rho=0.75: mean width ratio={ratios.mean():.4f} (theory {theory:.4f})")
    assert ratios.mean() <= 0.70
    assert np.quantile(ratios, 0.95) <= 0.70
    assert effects.mean() == pytest.approx(CUPED_LIFT, abs=0.015)


def test_cuped_keeps_false_positive_rate() -> None:
    rng = np.random.default_rng(31)
    experiments, n, rho = 2000, 2000, 0.7
    rejections = plain_rejections = 0
    for _ in range(experiments):
        arms = []
        for _arm in range(2):
            x = rng.normal(0.0, 1.0, size=n)
            y = rho * x + math.sqrt(1 - rho**2) * rng.normal(0.0, 1.0, size=n)
            arms.append(VariantStats.from_values(y, covariate=x))
        rejections += compare(arms[0], arms[1], alpha=ALPHA, cuped=True).significant
        plain_rejections += compare(arms[0], arms[1], alpha=ALPHA).significant
    rate = rejections / experiments
    print(
        f"\nA/A fixed-horizon FPR, {experiments} experiments: CUPED={rate:.4f}, "
        f"unadjusted on the same data={plain_rejections / experiments:.4f}"
    )
    assert abs(rate - ALPHA) < 0.02

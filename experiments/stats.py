"""Pure statistics for experiment analysis (numpy/scipy only, no Django).

Everything here works on *sufficient statistics* (n, Σy, Σy², and optionally the
pre-exposure covariate sums used by CUPED), so results can be computed from aggregated
warehouse rows without touching unit-level data.

Conventions reproduce GrowthBook's stats engine (gbstats 0.8.0), which the reference
cases in ``tests/data/gbstats-reference-cases.json`` were generated with:

* mean metrics:     v = (Σy² − (Σy)²/n) / (n − 1)      (sample variance)
* binomial metrics: v = m (1 − m), m = Σy / n           (plug-in Bernoulli variance)
* Welch–Satterthwaite degrees of freedom, also for relative lifts (computed from the
  unscaled variances).
* relative lift (m_b − m_a)/|m_a| with a delta-method standard error.
* sequential testing with the asymptotic confidence sequence of Waudby-Smith et al.
  (arXiv:2103.06476, eqs. 155/161) and tuning parameter τ (default 5000).

The one deliberate deviation: p-values use the survival function (``t.sf``) instead of
``1 − t.cdf``, so very small p-values stay accurate instead of collapsing to 0.0.

Elementwise helpers (``welch_df``, ``fixed_p_value``, ``sequential_p_value`` …) accept
floats or numpy arrays so simulations can be vectorised over experiments and looks; the
scalar ``compare`` path calls exactly the same helpers.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, overload

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

__all__ = [
    "DEFAULT_SRM_THRESHOLD",
    "DEFAULT_TAU",
    "ArmStats",
    "BayesianResult",
    "Comparison",
    "CorrectionMethod",
    "CupedAdjustment",
    "Degeneracy",
    "GaussianPrior",
    "MetricKind",
    "SampleMoments",
    "SampleSizeEstimate",
    "SrmResult",
    "VariantStats",
    "adjust_p_values",
    "bayesian_compare",
    "compare",
    "cuped_adjust",
    "fixed_half_width",
    "fixed_p_value",
    "fixed_p_value_one_sided",
    "minimum_detectable_effect",
    "power_from_se",
    "ratio_moments",
    "running_sequential",
    "sequential_half_width",
    "sequential_p_value",
    "sequential_p_value_one_sided",
    "sequential_power",
    "sequential_rho",
    "sequential_units_needed",
    "sequential_z_critical",
    "srm_check",
    "statistical_power",
    "units_needed",
    "welch_df",
]

FloatArray = npt.NDArray[np.float64]
MetricKind = Literal["mean", "binomial"]
CorrectionMethod = Literal["holm", "bh"]

DEFAULT_TAU = 5000.0
DEFAULT_SRM_THRESHOLD = 0.001

# Relative slack for the Cauchy–Schwarz check Σy² ≥ (Σy)²/n: aggregated sums are
# floating point, so exact equality (zero variance) may round either way.
_CS_RTOL = 1e-9


class Degeneracy(StrEnum):
    """Why a comparison could not be computed (``Comparison.reason``).

    In every degenerate case ``compare`` returns p = 1 and the interval (−∞, +∞)
    instead of raising, because these states arise from data, not from caller bugs.
    """

    #: An arm has fewer than 2 units: no variance estimate, Welch df undefined.
    INSUFFICIENT_DATA = "insufficient_data"
    #: Both arms have zero variance, so se = 0 and the test statistic is undefined.
    ZERO_VARIANCE = "zero_variance"
    #: Relative lift requested but the control mean is 0.
    ZERO_CONTROL_MEAN = "zero_control_mean"
    #: An intermediate quantity overflowed (e.g. astronomically large sums).
    NON_FINITE = "non_finite"


# --------------------------------------------------------------------------- inputs


def _check_finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    count = operator.index(value)  # accepts numpy integers, rejects 3.5
    if count < 0:
        raise ValueError(f"{name} must be ≥ 0, got {count}")
    return count


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return alpha


def _check_tau(tau: float) -> float:
    tau = float(tau)
    if not (math.isfinite(tau) and tau > 0.0):
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    return tau


def _sample_variance(n: int, total: float, total_squares: float) -> float:
    """(Σy² − (Σy)²/n)/(n − 1).

    Only a rounding-level negative (within the relative slack that
    ``_check_moment_sums`` already allowed) is taken as 0; anything below raises, since
    it means the sums cannot come from real values (or lost their precision: sums of
    values far from 0 must be shifted first, see ``VariantStats.shift``).
    """
    floor = total * total / n
    spread = total_squares - floor
    if spread < 0.0:
        if spread < -_CS_RTOL * max(floor, 1.0):
            raise ValueError(f"impossible variance: Σy² − (Σy)²/n = {spread!r} < 0 (n = {n})")
        return 0.0
    return spread / (n - 1)


def _sample_covariance(n: int, sum_x: float, sum_y: float, sum_xy: float) -> float:
    """(Σxy − Σx·Σy/n)/(n − 1)."""
    return (sum_xy - sum_x * sum_y / n) / (n - 1)


@dataclass(frozen=True, slots=True)
class VariantStats:
    """Sufficient statistics of one experiment arm.

    Fields:
        n: number of units.
        sum: Σy over units.
        sum_squares: Σy² over units (equals ``sum`` for 0/1 binomial data).
        kind: ``"mean"`` → v = (Σy² − (Σy)²/n)/(n − 1); ``"binomial"`` → v = m(1 − m).
        x_sum, x_sum_squares, xy_sum: optional CUPED covariate sums Σx, Σx², Σxy
            (all three or none).
        shift, x_shift: the references c, c_x subtracted from every value before
            summing, so the sums are Σ(y − c), Σ(y − c)², Σ(x − c_x)(y − c) …; the
            mean is c + Σ(y − c)/n and every (co)variance is unchanged by the shift.
            Summing values around 1e7 ± 1 unshifted loses the variance entirely
            (Σy² − (Σy)²/n cancels 14 of 16 digits); with c near the mean it does not.
            Arms compared with CUPED must share both shifts.

    Construction validates the sums (finite, Σy² ≥ (Σy)²/n, binomial 0 ≤ Σy ≤ n) and
    raises ``ValueError`` for impossible statistics.
    """

    n: int
    sum: float
    sum_squares: float
    kind: MetricKind = "mean"
    x_sum: float | None = None
    x_sum_squares: float | None = None
    xy_sum: float | None = None
    shift: float = 0.0
    x_shift: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "shift", _check_finite("shift", self.shift))
        object.__setattr__(self, "x_shift", _check_finite("x_shift", self.x_shift))
        n = _check_count("n", self.n)
        object.__setattr__(self, "n", n)
        total = _check_finite("sum", self.sum)
        squares = _check_finite("sum_squares", self.sum_squares)
        object.__setattr__(self, "sum", total)
        object.__setattr__(self, "sum_squares", squares)
        if self.kind not in ("mean", "binomial"):
            raise ValueError(f"kind must be 'mean' or 'binomial', got {self.kind!r}")
        _check_moment_sums("sum", n, total, squares)
        if self.kind == "binomial" and self.shift != 0.0:
            raise ValueError("binomial sums are 0/1 counts and take no shift")
        if self.kind == "binomial" and not 0.0 <= total <= n:
            raise ValueError(f"binomial sum must be within [0, n={n}], got {total!r}")

        if self.x_sum is not None and self.x_sum_squares is not None and self.xy_sum is not None:
            x_sum = _check_finite("x_sum", self.x_sum)
            x_squares = _check_finite("x_sum_squares", self.x_sum_squares)
            xy_sum = _check_finite("xy_sum", self.xy_sum)
            _check_moment_sums("x_sum", n, x_sum, x_squares)
            # |Σxy| ≤ √(Σx² Σy²): cheap guard against mismatched covariate rows.
            bound = math.sqrt(x_squares * squares)
            if abs(xy_sum) > bound * (1.0 + _CS_RTOL) + 1e-12:
                raise ValueError("xy_sum violates |Σxy| ≤ √(Σx²·Σy²)")
            object.__setattr__(self, "x_sum", x_sum)
            object.__setattr__(self, "x_sum_squares", x_squares)
            object.__setattr__(self, "xy_sum", xy_sum)
        elif (self.x_sum, self.x_sum_squares, self.xy_sum) != (None, None, None):
            raise ValueError("x_sum, x_sum_squares and xy_sum must be given together")

    @classmethod
    def from_values(
        cls,
        values: npt.ArrayLike,
        *,
        kind: MetricKind = "mean",
        covariate: npt.ArrayLike | None = None,
    ) -> VariantStats:
        """Aggregate unit-level values y (and optional pre-exposure covariate x)."""
        y = np.asarray(values, dtype=np.float64).ravel()
        fields: dict[str, float] = {}
        if covariate is not None:
            x = np.asarray(covariate, dtype=np.float64).ravel()
            if x.shape != y.shape:
                raise ValueError("covariate must have the same length as values")
            fields = {
                "x_sum": float(x.sum()),
                "x_sum_squares": float(np.dot(x, x)),
                "xy_sum": float(np.dot(x, y)),
            }
        return cls(
            n=int(y.size),
            sum=float(y.sum()),
            sum_squares=float(np.dot(y, y)),
            kind=kind,
            **fields,
        )

    @property
    def has_covariate(self) -> bool:
        """True when the CUPED covariate sums are present."""
        return self.x_sum is not None

    def covariate_sums(self) -> tuple[float, float, float]:
        """(Σx, Σx², Σxy); raises ``ValueError`` when the covariate is absent."""
        if self.x_sum is None or self.x_sum_squares is None or self.xy_sum is None:
            raise ValueError("no covariate sums (x_sum, x_sum_squares, xy_sum)")
        return (self.x_sum, self.x_sum_squares, self.xy_sum)

    @property
    def mean(self) -> float:
        """m = c + Σ(y − c) / n. Raises ``ValueError`` when n = 0."""
        if self.n == 0:
            raise ValueError("mean is undefined for n = 0")
        return self.shift + self.sum / self.n

    @property
    def variance(self) -> float:
        """Mean metrics: (Σy² − (Σy)²/n)/(n − 1) (needs n ≥ 2); binomial: m(1 − m)."""
        if self.kind == "binomial":
            m = self.mean
            return m * (1.0 - m)
        if self.n < 2:
            raise ValueError("sample variance needs n ≥ 2")
        return _sample_variance(self.n, self.sum, self.sum_squares)

    def moments(self) -> SampleMoments:
        """(n, mean, variance) with undefined moments reported as 0."""
        if self.n == 0:
            return SampleMoments(n=0, mean=0.0, variance=0.0)
        if self.kind == "mean" and self.n < 2:
            return SampleMoments(n=self.n, mean=self.mean, variance=0.0)
        return SampleMoments(n=self.n, mean=self.mean, variance=self.variance)


def _check_moment_sums(name: str, n: int, total: float, squares: float) -> None:
    if squares < 0.0:
        raise ValueError(f"{name} squares must be ≥ 0")
    if n == 0:
        if total != 0.0 or squares != 0.0:
            raise ValueError(f"{name} sums must be 0 when n = 0")
        return
    floor = total * total / n
    if squares < floor - _CS_RTOL * max(floor, 1.0):
        raise ValueError(f"{name}: sum of squares is smaller than (Σ)²/n — impossible sums")


@dataclass(frozen=True, slots=True)
class SampleMoments:
    """Per-arm (n, mean, variance), the only inputs the tests below actually need.

    Used for CUPED-adjusted arms, whose adjusted variance has no raw-sum form. When n is
    too small for a moment to exist, it is conventionally 0 and ``compare`` reports
    ``Degeneracy.INSUFFICIENT_DATA``.
    """

    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_count("n", self.n))
        object.__setattr__(self, "mean", _check_finite("mean", self.mean))
        variance = _check_finite("variance", self.variance)
        if variance < 0.0:
            raise ValueError(f"variance must be ≥ 0, got {variance!r}")
        object.__setattr__(self, "variance", variance)

    def moments(self) -> SampleMoments:
        """Itself, so both arm types share the ``moments()`` interface."""
        return self


ArmStats = VariantStats | SampleMoments


def ratio_moments(
    *,
    n: int,
    y_sum: float,
    z_sum: float,
    y_squares: float,
    z_squares: float,
    yz: float,
    y_shift: float = 0.0,
    z_shift: float = 0.0,
) -> SampleMoments | None:
    """One arm of a ratio metric R = Σy/Σz (numerator y, denominator z per unit) as
    ``SampleMoments`` of its delta-method linearisation, so ``compare`` applies as is.

    With m_y, m_z the means, v_y, v_z, c_yz the sample (co)variances (from sums shifted
    by c_y, c_z, see ``VariantStats``) and R = m_y/m_z:
        Var(R̂) ≈ (v_y − 2R c_yz + R² v_z) / (n m_z²)
    returned as mean R and per-unit variance v = (v_y − 2R c_yz + R² v_z)/m_z², so that
    v/n is Var(R̂) (GrowthBook's ratio metrics use the same expansion). None when n < 2
    or the denominator's mean is 0 (the ratio is undefined).
    """
    n = _check_count("n", n)
    if n < 2:
        return None
    for name, value in (
        ("y_sum", y_sum),
        ("z_sum", z_sum),
        ("y_squares", y_squares),
        ("z_squares", z_squares),
        ("yz", yz),
    ):
        _check_finite(name, value)
    _check_moment_sums("y_sum", n, y_sum, y_squares)
    _check_moment_sums("z_sum", n, z_sum, z_squares)
    mean_z = z_shift + z_sum / n
    if mean_z == 0.0:
        return None
    ratio = (y_shift + y_sum / n) / mean_z
    var_y = _sample_variance(n, y_sum, y_squares)
    var_z = _sample_variance(n, z_sum, z_squares)
    cov = _sample_covariance(n, y_sum, z_sum, yz)
    spread = var_y - 2.0 * ratio * cov + ratio * ratio * var_z
    # A variance of y − Rz: ≥ 0 up to rounding; far below, the sums contradict each other.
    if spread < -1e-9 * max(var_y + ratio * ratio * var_z, 1e-300):
        raise ValueError(f"impossible ratio variance {spread!r}")
    return SampleMoments(n=n, mean=ratio, variance=max(spread, 0.0) / (mean_z * mean_z))


# ------------------------------------------------------------ elementwise helpers


def _as_float_array(value: npt.ArrayLike) -> FloatArray:
    return np.asarray(value, dtype=np.float64)


def _unwrap(result: FloatArray) -> float | FloatArray:
    return float(result) if result.ndim == 0 else result


@overload
def welch_df(var_a: float, n_a: float, var_b: float, n_b: float) -> float: ...
@overload
def welch_df(
    var_a: FloatArray, n_a: FloatArray | float, var_b: FloatArray, n_b: FloatArray | float
) -> FloatArray: ...
def welch_df(
    var_a: npt.ArrayLike, n_a: npt.ArrayLike, var_b: npt.ArrayLike, n_b: npt.ArrayLike
) -> float | FloatArray:
    """Welch–Satterthwaite degrees of freedom (elementwise).

    df = (v_a/n_a + v_b/n_b)² / ((v_a/n_a)²/(n_a − 1) + (v_b/n_b)²/(n_b − 1))
    """
    ua = _as_float_array(var_a) / _as_float_array(n_a)
    ub = _as_float_array(var_b) / _as_float_array(n_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (ua + ub) ** 2 / (
            ua**2 / (_as_float_array(n_a) - 1) + ub**2 / (_as_float_array(n_b) - 1)
        )
    return _unwrap(np.asarray(df, dtype=np.float64))


@overload
def fixed_half_width(se: float, df: float, *, alpha: float) -> float: ...
@overload
def fixed_half_width(se: FloatArray, df: FloatArray | float, *, alpha: float) -> FloatArray: ...
def fixed_half_width(se: npt.ArrayLike, df: npt.ArrayLike, *, alpha: float) -> float | FloatArray:
    """Half-width of the fixed-horizon two-sided interval: t_{1−α/2}(df) · se."""
    alpha = _check_alpha(alpha)
    t_crit = np.asarray(stats.t.ppf(1.0 - alpha / 2.0, _as_float_array(df)), dtype=np.float64)
    return _unwrap(t_crit * _as_float_array(se))


@overload
def fixed_p_value(effect: float, se: float, df: float) -> float: ...
@overload
def fixed_p_value(
    effect: FloatArray, se: FloatArray | float, df: FloatArray | float
) -> FloatArray: ...
def fixed_p_value(
    effect: npt.ArrayLike, se: npt.ArrayLike, df: npt.ArrayLike
) -> float | FloatArray:
    """Two-sided Welch p-value: p = 2 · sf_t(|d| / se; df).

    The survival function keeps precision where 1 − cdf would round to 0 (p < ~1e-16).
    """
    z = np.abs(_as_float_array(effect)) / _as_float_array(se)
    p = 2.0 * np.asarray(stats.t.sf(z, _as_float_array(df)), dtype=np.float64)
    return _unwrap(np.minimum(p, 1.0))


def sequential_rho(*, alpha: float, tau: float = DEFAULT_TAU) -> float:
    """Mixing parameter of the asymptotic confidence sequence (arXiv:2103.06476 eq. 161).

    ρ = √((−2 ln α + ln(1 − 2 ln α)) / τ). τ is the sample size at which the sequence is
    tightest; GrowthBook's default is 5000.
    """
    alpha = _check_alpha(alpha)
    tau = _check_tau(tau)
    log_alpha = math.log(alpha)
    return math.sqrt((-2.0 * log_alpha + math.log(1.0 - 2.0 * log_alpha)) / tau)


@overload
def sequential_half_width(
    se: float, n_total: float, *, alpha: float, tau: float = DEFAULT_TAU
) -> float: ...
@overload
def sequential_half_width(
    se: FloatArray, n_total: FloatArray | float, *, alpha: float, tau: float = DEFAULT_TAU
) -> FloatArray: ...
def sequential_half_width(
    se: npt.ArrayLike, n_total: npt.ArrayLike, *, alpha: float, tau: float = DEFAULT_TAU
) -> float | FloatArray:
    """Half-width of the always-valid confidence sequence (N = n_a + n_b):

    w = se · √N · √( 2(Nρ² + 1) / (Nρ)² · ln(√(Nρ² + 1) / α) )

    ``se·√N`` is the per-unit standard deviation s of the effect estimator (gbstats
    writes s² = Var(d̂)·N), so this is exactly gbstats' s·√(…) with s² = se²·N.
    """
    rho = sequential_rho(alpha=alpha, tau=tau)
    n = _as_float_array(n_total)
    n_rho2 = n * rho**2
    width = (
        _as_float_array(se)
        * np.sqrt(n)
        * np.sqrt(2.0 * (n_rho2 + 1.0) / (n * rho) ** 2 * np.log(np.sqrt(n_rho2 + 1.0) / alpha))
    )
    return _unwrap(np.asarray(width, dtype=np.float64))


@overload
def sequential_p_value(
    effect: float, se: float, n_total: float, *, alpha: float, tau: float = DEFAULT_TAU
) -> float: ...
@overload
def sequential_p_value(
    effect: FloatArray,
    se: FloatArray | float,
    n_total: FloatArray | float,
    *,
    alpha: float,
    tau: float = DEFAULT_TAU,
) -> FloatArray: ...
def sequential_p_value(
    effect: npt.ArrayLike,
    se: npt.ArrayLike,
    n_total: npt.ArrayLike,
    *,
    alpha: float,
    tau: float = DEFAULT_TAU,
) -> float | FloatArray:
    """Always-valid p-value matching the confidence sequence (arXiv:2103.06476 eq. 155):

    p = min(1, √(Nρ² + 1) · exp(−ρ² N (d/se)² / (2(Nρ² + 1))))

    It is "always valid": P(p_t ≤ α for some look t) ≤ α under H0, so it may be
    monitored continuously. α enters only through ρ (the sequence is tuned for α).
    Evaluated in log space so large |d/se| underflows gracefully to 0.
    """
    rho = sequential_rho(alpha=alpha, tau=tau)
    n = _as_float_array(n_total)
    z = _as_float_array(effect) / _as_float_array(se)
    n_rho2 = n * rho**2
    log_p = 0.5 * np.log1p(n_rho2) - n_rho2 * z**2 / (2.0 * (n_rho2 + 1.0))
    return _unwrap(np.exp(np.minimum(log_p, 0.0)))


@overload
def sequential_p_value_one_sided(
    effect: float,
    se: float,
    n_total: float,
    *,
    direction: int,
    alpha: float,
    tau: float = DEFAULT_TAU,
) -> float: ...
@overload
def sequential_p_value_one_sided(
    effect: FloatArray,
    se: FloatArray | float,
    n_total: FloatArray | float,
    *,
    direction: int,
    alpha: float,
    tau: float = DEFAULT_TAU,
) -> FloatArray: ...
def sequential_p_value_one_sided(
    effect: npt.ArrayLike,
    se: npt.ArrayLike,
    n_total: npt.ArrayLike,
    *,
    direction: int,
    alpha: float,
    tau: float = DEFAULT_TAU,
) -> float | FloatArray:
    """Always-valid one-sided p-value for H1: direction · effect > 0 (direction ±1).

    The two-sided p is 1/M for the Gaussian-mixture martingale
    M = ∫ exp(λS − λ²N/2) φ(λ; 0, ρ²) dλ, with S = z√N, z = d/se. Mixing over λ of
    one sign only (density 2φ on that half line) gives the martingale
        M₊ = 2 · M · Φ(s · ρ z √N / √(Nρ² + 1)),  s = direction,
    so p = min(1, p_two / (2 Φ(s ρ z √N / √(Nρ² + 1)))), valid at any stopping time by
    Ville's inequality like the two-sided one. It tends to p_two / 2 when the effect
    lies clearly on the tested side and to 1 when it lies on the other. Elementwise.
    """
    if direction not in (-1, 1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    rho = sequential_rho(alpha=alpha, tau=tau)
    n = _as_float_array(n_total)
    z = direction * _as_float_array(effect) / _as_float_array(se)
    n_rho2 = n * rho**2
    log_two_sided = 0.5 * np.log1p(n_rho2) - n_rho2 * z**2 / (2.0 * (n_rho2 + 1.0))
    side = rho * z * np.sqrt(n) / np.sqrt(n_rho2 + 1.0)
    log_side = np.asarray(stats.norm.logcdf(side), dtype=np.float64)
    log_p = log_two_sided - math.log(2.0) - log_side
    return _unwrap(np.exp(np.minimum(log_p, 0.0)))


def fixed_p_value_one_sided(effect: float, se: float, df: float, *, direction: int) -> float:
    """One-sided Welch p-value for H1: direction · effect > 0: p = sf_t(s · d / se; df)."""
    if direction not in (-1, 1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    return float(stats.t.sf(direction * float(effect) / float(se), float(df)))


def sequential_z_critical(
    n_total: float, *, test_alpha: float, alpha: float, tau: float = DEFAULT_TAU
) -> float:
    """|z| = |d|/se above which the two-sided sequential p (tuned for ``alpha``) falls
    below ``test_alpha`` (e.g. a Holm-adjusted α/m), at N = n_total:

        p < α'  ⟺  z² > 2(Nρ² + 1)/(Nρ²) · ln(√(Nρ² + 1)/α')

    With α' = α this is the confidence sequence's half-width divided by se.
    """
    test_alpha = _check_alpha(test_alpha)
    rho = sequential_rho(alpha=alpha, tau=tau)
    n_rho2 = float(n_total) * rho**2
    if n_rho2 <= 0.0:
        return math.inf  # no units, no evidence
    return math.sqrt(2.0 * (n_rho2 + 1.0) / n_rho2 * math.log(math.sqrt(n_rho2 + 1.0) / test_alpha))


def running_sequential(
    previous: Mapping[str, float | None] | None, current: Mapping[str, float | None]
) -> dict[str, float | None]:
    """Combine this look's always-valid numbers with the running ones of the look before.

    Keys ending in ``p_value`` keep the running minimum; pairs ``…ci_low`` /
    ``…ci_high`` keep the running intersection max(lows), min(highs). Both stay valid:
    an always-valid p-value and a confidence sequence hold at every look at once, so
    P(min_t p_t ≤ α) ≤ α and the intersection still covers with probability ≥ 1 − α.
    The intersection assumes one fixed effect. When this look's estimate (the centre
    of its symmetric interval) falls outside the running interval — the effect moved,
    as a cumulative per-unit sum does while units keep acting — or the intersection
    comes out empty, the current look's interval is kept instead. Either choice
    contains the intersection, so coverage is never less than the intersection's.
    None means "not available" and does not take part.
    """
    out: dict[str, float | None] = dict(current)
    if not previous:
        return out
    for key, value in current.items():
        before = previous.get(key)
        if before is None or value is None:
            continue
        if key.endswith("p_value"):
            out[key] = min(value, before)
        elif key.endswith("ci_low"):
            out[key] = max(value, before)
        elif key.endswith("ci_high"):
            out[key] = min(value, before)
    for key in current:
        if key.endswith("ci_low"):
            high = key[: -len("low")] + "high"
            low_value, high_value = out.get(key), out.get(high)
            now_low, now_high = current[key], current.get(high)
            if low_value is None or high_value is None or now_low is None or now_high is None:
                continue
            if not low_value <= (now_low + now_high) / 2.0 <= high_value:
                out[key], out[high] = now_low, now_high
    return out


# ------------------------------------------------------------------- comparison


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment-vs-control result.

    Fields:
        effect: d = m_b − m_a (absolute) or (m_b − m_a)/|m_a| (relative); None when it
            cannot be estimated (empty arm, zero control mean for relative).
        se: standard error of ``effect``; None when undefined.
        ci_low, ci_high: two-sided 1 − α interval (fixed) or confidence sequence
            (sequential); (−∞, +∞) for degenerate inputs.
        p_value: two-sided p in [0, 1]; 1.0 for degenerate inputs.
        df: Welch–Satterthwaite df used for the t quantile/p-value (also reported for
            sequential results, which use a normal approximation and ignore it).
        alpha, relative, sequential, tau: the settings used (tau None unless sequential).
        reason: ``Degeneracy`` when the result is a placeholder, else None.
        theta: CUPED coefficient when the arms were CUPED-adjusted by ``compare``.

    Never contains NaN.
    """

    effect: float | None
    se: float | None
    ci_low: float
    ci_high: float
    p_value: float
    df: float | None
    alpha: float
    relative: bool
    sequential: bool
    tau: float | None = None
    reason: Degeneracy | None = None
    theta: float | None = None

    def __post_init__(self) -> None:
        for name in ("effect", "se", "df", "theta", "tau"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be finite or None, got {value!r}")
        if math.isnan(self.ci_low) or math.isnan(self.ci_high) or self.ci_low > self.ci_high:
            raise ValueError(f"invalid interval ({self.ci_low!r}, {self.ci_high!r})")
        if not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"p_value must be in [0, 1], got {self.p_value!r}")
        _check_alpha(self.alpha)

    @property
    def ci(self) -> tuple[float, float]:
        """(ci_low, ci_high)."""
        return (self.ci_low, self.ci_high)

    @property
    def significant(self) -> bool:
        """p < α (equivalently, for non-degenerate results, 0 outside the interval)."""
        return self.reason is None and self.p_value < self.alpha


def _degenerate(
    reason: Degeneracy,
    *,
    effect: float | None,
    se: float | None,
    df: float | None,
    alpha: float,
    relative: bool,
    sequential: bool,
    tau: float | None,
    theta: float | None,
) -> Comparison:
    def finite_or_none(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    return Comparison(
        effect=finite_or_none(effect),
        se=finite_or_none(se),
        ci_low=-math.inf,
        ci_high=math.inf,
        p_value=1.0,
        df=finite_or_none(df),
        alpha=alpha,
        relative=relative,
        sequential=sequential,
        tau=tau,
        reason=reason,
        theta=theta,
    )


def _effect_and_se(a: SampleMoments, b: SampleMoments, *, relative: bool) -> tuple[float, float]:
    """Absolute: d = m_b − m_a, se² = v_a/n_a + v_b/n_b.

    Relative (delta method, control mean in the denominator):
    d = (m_b − m_a)/|m_a|, se² = v_b/(n_b m_a²) + v_a m_b²/(n_a m_a⁴).
    """
    if relative:
        ma2 = a.mean * a.mean
        effect = (b.mean - a.mean) / abs(a.mean)
        var = b.variance / (b.n * ma2) + a.variance * b.mean * b.mean / (a.n * ma2 * ma2)
    else:
        effect = b.mean - a.mean
        var = a.variance / a.n + b.variance / b.n
    return effect, math.sqrt(var)


def compare(
    control: ArmStats,
    treatment: ArmStats,
    *,
    alpha: float = 0.05,
    relative: bool = False,
    sequential: bool = False,
    tau: float = DEFAULT_TAU,
    cuped: bool = False,
) -> Comparison:
    """Compare treatment (b) against control (a).

    Fixed horizon (``sequential=False``), Welch test:
        CI = d ± t_{1−α/2}(df) · se,  p = 2 · sf_t(|d|/se; df)
    Sequential (``sequential=True``), always-valid confidence sequence, N = n_a + n_b:
        CI = d ± ``sequential_half_width(se, N)``, p = ``sequential_p_value(d, se, N)``
    with d, se from the absolute difference or the delta-method relative lift (see
    ``_effect_and_se``) and df from ``welch_df`` on the unscaled arm variances.

    ``cuped=True`` first replaces both arms by ``cuped_adjust(control, treatment)``
    (both must be ``VariantStats`` carrying covariate sums); a relative lift then uses
    the adjusted control mean as its denominator.

    Raises ``ValueError`` only for invalid settings (α ∉ (0, 1), τ ≤ 0, mismatched
    metric kinds, CUPED without covariates). Data-driven degeneracies — n < 2, zero
    variance in both arms, zero control mean for a relative lift, overflow — return
    p = 1, an infinite interval and ``reason`` (see ``Degeneracy``).
    """
    alpha = _check_alpha(alpha)
    tau = _check_tau(tau)
    tau_used = tau if sequential else None
    if (
        isinstance(control, VariantStats)
        and isinstance(treatment, VariantStats)
        and control.kind != treatment.kind
    ):
        raise ValueError(f"metric kinds differ: {control.kind!r} vs {treatment.kind!r}")

    theta: float | None = None
    if cuped:
        if not (isinstance(control, VariantStats) and isinstance(treatment, VariantStats)):
            raise ValueError("cuped=True needs VariantStats with covariate sums for both arms")
        adjustment = cuped_adjust(control, treatment)
        a, b, theta = adjustment.control, adjustment.treatment, adjustment.theta
    else:
        a, b = control.moments(), treatment.moments()

    def degenerate(
        reason: Degeneracy,
        effect: float | None = None,
        se: float | None = None,
        df: float | None = None,
    ) -> Comparison:
        return _degenerate(
            reason,
            effect=effect,
            se=se,
            df=df,
            alpha=alpha,
            relative=relative,
            sequential=sequential,
            tau=tau_used,
            theta=theta,
        )

    if a.n < 2 or b.n < 2:
        effect: float | None = None
        if a.n >= 1 and b.n >= 1 and not (relative and a.mean == 0.0):
            effect = (b.mean - a.mean) / abs(a.mean) if relative else b.mean - a.mean
        return degenerate(Degeneracy.INSUFFICIENT_DATA, effect)
    if relative and a.mean == 0.0:
        return degenerate(Degeneracy.ZERO_CONTROL_MEAN)

    try:
        effect, se = _effect_and_se(a, b, relative=relative)
    except (OverflowError, ZeroDivisionError):
        # Only reachable with extreme magnitudes (e.g. m_a² underflowing to 0).
        return degenerate(Degeneracy.NON_FINITE)
    df = welch_df(a.variance, float(a.n), b.variance, float(b.n))
    if se == 0.0:
        return degenerate(Degeneracy.ZERO_VARIANCE, effect, se)
    if not all(math.isfinite(v) for v in (effect, se, df)) or df <= 0.0:
        return degenerate(Degeneracy.NON_FINITE, effect, se, df)

    if sequential:
        n_total = float(a.n + b.n)
        half = sequential_half_width(se, n_total, alpha=alpha, tau=tau)
        p_value = sequential_p_value(effect, se, n_total, alpha=alpha, tau=tau)
    else:
        half = fixed_half_width(se, df, alpha=alpha)
        p_value = fixed_p_value(effect, se, df)
    if not math.isfinite(half):
        return degenerate(Degeneracy.NON_FINITE, effect, se, df)

    return Comparison(
        effect=effect,
        se=se,
        ci_low=effect - half,
        ci_high=effect + half,
        p_value=min(1.0, max(0.0, p_value)),
        df=df,
        alpha=alpha,
        relative=relative,
        sequential=sequential,
        tau=tau_used,
        theta=theta,
    )


# ------------------------------------------------------------------------ CUPED


@dataclass(frozen=True, slots=True)
class CupedAdjustment:
    """Result of ``cuped_adjust``.

    Fields:
        theta: θ = cov(x, y)/var(x) over the pooled sample (0 when it cannot be estimated).
        control, treatment: adjusted per-arm ``SampleMoments``.
        variance_reduction: per arm, 1 − v_adj/v_y (0 when v_y = 0), control first.
        note: why θ fell back to 0, else None.
    """

    theta: float
    control: SampleMoments
    treatment: SampleMoments
    variance_reduction: tuple[float, float]
    note: str | None = None

    def __post_init__(self) -> None:
        _check_finite("theta", self.theta)


def cuped_adjust(control: VariantStats, treatment: VariantStats) -> CupedAdjustment:
    """CUPED (Deng et al. 2013) from sufficient statistics.

    Pooled over both arms (n = n_a + n_b, sums added):
        θ = (Σxy − Σx·Σy/n) / (Σx² − (Σx)²/n)            (= cov(x, y)/var(x))
    Per arm, with x̄ the pooled covariate mean:
        m_adj = m_y − θ (m_x − x̄)
        v_adj = v_y − 2θ c_xy + θ² v_x
    where c_xy = (Σxy − ΣxΣy/n)/(n − 1), v_x = (Σx² − (Σx)²/n)/(n − 1) per arm and v_y
    follows the arm's metric kind. v_adj is the variance of y − θx, so with
    corr(x, y) = ρ it is ≈ v_y(1 − ρ²) and interval widths shrink by ≈ √(1 − ρ²).
    θ is pooled (not per arm) so both arms share one adjustment and the estimate stays
    unbiased; its own sampling error is ignored, as is usual for large samples.
    """
    if (control.shift, control.x_shift) != (treatment.shift, treatment.x_shift):
        raise ValueError("CUPED needs both arms summed with the same shifts")
    xs_a, xq_a, xy_a = control.covariate_sums()
    xs_b, xq_b, xy_b = treatment.covariate_sums()

    n = control.n + treatment.n
    note: str | None = None
    theta = 0.0
    if n < 3:
        note = "fewer than 3 pooled units: no adjustment"
    else:
        sum_x, sum_y = xs_a + xs_b, control.sum + treatment.sum
        sxx = (xq_a + xq_b) - sum_x * sum_x / n
        sxy = (xy_a + xy_b) - sum_x * sum_y / n
        if sxx <= _CS_RTOL * max(xq_a + xq_b, 1.0):
            note = "covariate has zero variance: no adjustment"
        else:
            theta = sxy / sxx
    pooled_x_mean = (xs_a + xs_b) / n if n else 0.0

    def adjust(arm: VariantStats, x_sum: float, x_squares: float, xy_sum: float) -> SampleMoments:
        base = arm.moments()
        if arm.n < 2 or theta == 0.0:
            mean = base.mean - theta * (x_sum / arm.n - pooled_x_mean) if arm.n else 0.0
            return SampleMoments(n=arm.n, mean=mean, variance=base.variance)
        var_x = _sample_variance(arm.n, x_sum, x_squares)
        cov_xy = _sample_covariance(arm.n, x_sum, arm.sum, xy_sum)
        mean = base.mean - theta * (x_sum / arm.n - pooled_x_mean)
        variance = base.variance - 2.0 * theta * cov_xy + theta * theta * var_x
        # v_adj is the variance of y − θx, ≥ 0 up to rounding; far below 0 the sums
        # contradict each other (mismatched covariate rows), which no clamp can fix.
        scale = base.variance + theta * theta * var_x
        if variance < -1e-9 * max(scale, 1e-300):
            raise ValueError(f"impossible CUPED-adjusted variance {variance!r}")
        return SampleMoments(n=arm.n, mean=mean, variance=max(0.0, variance))

    adj_a = adjust(control, xs_a, xq_a, xy_a)
    adj_b = adjust(treatment, xs_b, xq_b, xy_b)

    def reduction(raw: SampleMoments, adjusted: SampleMoments) -> float:
        return 1.0 - adjusted.variance / raw.variance if raw.variance > 0.0 else 0.0

    return CupedAdjustment(
        theta=theta,
        control=adj_a,
        treatment=adj_b,
        variance_reduction=(
            reduction(control.moments(), adj_a),
            reduction(treatment.moments(), adj_b),
        ),
        note=note,
    )


# -------------------------------------------------------------------------- SRM


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Sample-ratio-mismatch check result.

    Fields: observed counts, expected counts e_i = total·w_i/Σw, chi2 statistic,
    df = (arms with weight > 0) − 1,
    p_value = P(χ²_{k−1} ≥ chi2), threshold and flagged = p_value < threshold.
    """

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    df: int
    p_value: float
    threshold: float
    flagged: bool

    def __post_init__(self) -> None:
        if len(self.observed) != len(self.expected):
            raise ValueError("observed and expected must have the same length")
        if not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"p_value must be in [0, 1], got {self.p_value!r}")


def srm_check(
    observed: Sequence[int],
    weights: Sequence[float] | None = None,
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SrmResult:
    """Pearson χ² goodness-of-fit of arm sizes against the configured traffic weights.

    e_i = total · w_i / Σw,  χ² = Σ (o_i − e_i)² / e_i,  p = sf_{χ²}(χ²; k − 1),
    flagged when p < threshold (default 0.001). ``weights=None`` means an even split.

    Zero-weight arms are left out of χ² and of the degrees of freedom (k counts only
    arms with w_i > 0), unless they received units: then χ² = ∞, p = 0 and the check is
    flagged, since those units should not exist. total = 0 → p = 1, not flagged.
    """
    counts = [_check_count("observed count", c) for c in observed]
    k = len(counts)
    if k < 2:
        raise ValueError("srm_check needs at least two arms")
    if weights is None:
        w = np.ones(k)
    else:
        w = np.asarray([float(x) for x in weights], dtype=np.float64)
        if w.shape != (k,):
            raise ValueError("weights must have one entry per arm")
        if not np.all(np.isfinite(w)) or np.any(w < 0.0) or not np.any(w > 0.0):
            raise ValueError("weights must be finite, ≥ 0 and not all zero")
        with np.errstate(over="ignore"):
            overflows = not math.isfinite(float(w.sum()))
        if overflows:  # finite weights whose sum overflows (1e308 twice): scale first
            w = w / w.max()
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")

    o = np.asarray(counts, dtype=np.float64)
    total = float(o.sum())
    e = total * w / w.sum()
    active = w > 0.0
    # A zero-weight arm has no free cell count, so it adds no degree of freedom.
    df = int(active.sum()) - 1
    if np.any(~active & (o > 0.0)):
        chi2, p_value = math.inf, 0.0
    elif total == 0.0 or df == 0:
        chi2, p_value = 0.0, 1.0
    else:
        chi2 = float(np.sum((o[active] - e[active]) ** 2 / e[active]))
        p_value = float(stats.chi2.sf(chi2, df))
    return SrmResult(
        observed=tuple(counts),
        expected=tuple(float(x) for x in e),
        chi2=chi2,
        df=df,
        p_value=p_value,
        threshold=threshold,
        flagged=p_value < threshold,
    )


# ---------------------------------------------------------- multiple testing


def adjust_p_values(
    p_values: Sequence[float] | npt.ArrayLike, *, method: CorrectionMethod = "holm"
) -> list[float]:
    """Adjust a family of p-values for multiple testing; output order matches input.

    With p_(1) ≤ … ≤ p_(m) sorted ascending:
      holm (FWER): p̃_(i) = min(1, max_{j ≤ i} (m − j + 1) p_(j))
      bh   (FDR):  p̃_(i) = min(1, min_{j ≥ i} m p_(j) / j)
    Matches statsmodels ``multipletests(method='holm' | 'fdr_bh')``. Always-valid
    sequential p-values may be adjusted the same way: each is a valid p-value at any
    stopping time, which is all Holm and BH (under independence/PRDS) require.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if p.size == 0:
        return []
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("p-values must lie in [0, 1] (NaN is not allowed)")
    m = p.size
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    rank = np.arange(1, m + 1, dtype=np.float64)
    if method == "holm":
        adjusted = np.maximum.accumulate((m - rank + 1.0) * ranked)
    elif method == "bh":
        adjusted = np.minimum.accumulate((m * ranked / rank)[::-1])[::-1]
    else:
        raise ValueError(f"method must be 'holm' or 'bh', got {method!r}")
    out = np.empty(m, dtype=np.float64)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(x) for x in out]


# ------------------------------------------------------------- power and size


def _z(q: float) -> float:
    return float(stats.norm.ppf(q))


def power_from_se(*, effect: float, se: float, alpha: float = 0.05) -> float:
    """Two-sided power of a z-test (normal approximation to the Welch test):

    power = Φ(|δ|/se − z_{1−α/2}) + Φ(−|δ|/se − z_{1−α/2})

    The t → normal approximation is off by O(1/df), negligible at experiment sizes.
    se = 0 gives power 1 for δ ≠ 0 and α for δ = 0.
    """
    alpha = _check_alpha(alpha)
    effect = _check_finite("effect", effect)
    se = _check_finite("se", se)
    if se < 0.0:
        raise ValueError("se must be ≥ 0")
    if se == 0.0:
        return alpha if effect == 0.0 else 1.0
    z_crit = _z(1.0 - alpha / 2.0)
    shift = abs(effect) / se
    return float(stats.norm.sf(z_crit - shift) + stats.norm.cdf(-z_crit - shift))


def _mde_from_se(se: float, alpha: float, power: float) -> float:
    if not alpha < power < 1.0:
        raise ValueError(f"power must be in (alpha, 1), got {power!r}")
    if se == 0.0:
        return 0.0
    # Closed form ignores the far tail; refine so it inverts power_from_se exactly.
    guess = (_z(1.0 - alpha / 2.0) + _z(power)) * se
    root = optimize.brentq(
        lambda d: power_from_se(effect=d, se=se, alpha=alpha) - power,
        0.0,
        guess * 1.5 + se,
        xtol=1e-14 * guess + 1e-300,
        rtol=1e-14,
    )
    return float(root)


def _current_se(control: ArmStats, treatment: ArmStats) -> float | None:
    a, b = control.moments(), treatment.moments()
    if a.n < 2 or b.n < 2:
        return None
    se = math.sqrt(a.variance / a.n + b.variance / b.n)
    return se if math.isfinite(se) else None


def statistical_power(
    control: ArmStats, treatment: ArmStats, *, effect: float, alpha: float = 0.05
) -> float | None:
    """Power to detect an absolute effect δ at the current sample, two-sided.

    se = √(v_a/n_a + v_b/n_b) from the observed arms, then ``power_from_se``
    (normal approximation). None when an arm has n < 2.
    """
    se = _current_se(control, treatment)
    return None if se is None else power_from_se(effect=effect, se=se, alpha=alpha)


def sequential_power(
    control: ArmStats,
    treatment: ArmStats,
    *,
    effect: float,
    alpha: float = 0.05,
    test_alpha: float | None = None,
    tau: float = DEFAULT_TAU,
) -> float | None:
    """Power of the sequential test at the current sample to detect δ, two-sided:

    power = Φ(|δ|/se − z_c(N)) + Φ(−|δ|/se − z_c(N)),  N = n_a + n_b,
    z_c from ``sequential_z_critical`` (p tuned for ``alpha``, rejected below
    ``test_alpha``, default α). None when an arm has n < 2.
    """
    se = _current_se(control, treatment)
    if se is None:
        return None
    n_total = float(control.moments().n + treatment.moments().n)
    z_c = sequential_z_critical(
        n_total, test_alpha=alpha if test_alpha is None else test_alpha, alpha=alpha, tau=tau
    )
    if se == 0.0:
        return 1.0 if effect else 0.0
    shift = abs(effect) / se
    return float(stats.norm.cdf(shift - z_c) + stats.norm.cdf(-shift - z_c))


def minimum_detectable_effect(
    control: ArmStats, treatment: ArmStats, *, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Smallest absolute effect detectable with the given power at the current sample.

    MDE ≈ (z_{1−α/2} + z_{power}) · se, se = √(v_a/n_a + v_b/n_b); solved exactly
    against ``power_from_se`` (including the negligible opposite tail). None when an arm
    has n < 2.
    """
    alpha = _check_alpha(alpha)
    se = _current_se(control, treatment)
    return None if se is None else _mde_from_se(se, alpha, power)


@dataclass(frozen=True, slots=True)
class SampleSizeEstimate:
    """Output of ``units_needed``.

    Fields: total_units (= control_units + treatment_units), per-arm units (rounded up),
    days = total_units / daily_units (None without a daily rate).
    """

    total_units: int
    control_units: int
    treatment_units: int
    days: float | None

    def __post_init__(self) -> None:
        if self.total_units != self.control_units + self.treatment_units:
            raise ValueError("total_units must equal the sum of the arms")
        if self.days is not None and not (math.isfinite(self.days) and self.days >= 0.0):
            raise ValueError("days must be finite and ≥ 0")


def units_needed(
    *,
    variance: float,
    min_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    treatment_fraction: float = 0.5,
    daily_units: float | None = None,
    treatment_variance: float | None = None,
) -> SampleSizeEstimate:
    """Units needed for a fixed-horizon two-sided test to detect an absolute effect.

    With N total units, a fraction f in treatment and per-unit variances v_a, v_b:
        se(N)² = v_a/((1 − f)N) + v_b/(fN)
    N solves power_from_se(δ, se(N)) = power, i.e. approximately
        N ≈ (z_{1−α/2} + z_{power})² · (v_a/(1 − f) + v_b/f) / δ²
    Each arm is rounded up. For a relative effect r on baseline mean μ pass
    δ = r·|μ|. Pass the level the test is decided at as ``alpha`` (α/m when a Holm
    family of m tests must reject this one). Sequential monitoring needs more units:
    see ``sequential_units_needed``.
    """
    variance = _check_finite("variance", variance)
    v_b = (
        variance
        if treatment_variance is None
        else _check_finite("treatment_variance", treatment_variance)
    )
    if variance <= 0.0 or v_b <= 0.0:
        raise ValueError("variances must be > 0")
    min_effect = _check_finite("min_effect", min_effect)
    if min_effect == 0.0:
        raise ValueError("min_effect must be non-zero")
    alpha = _check_alpha(alpha)
    if not 0.0 < treatment_fraction < 1.0:
        raise ValueError("treatment_fraction must be in (0, 1)")
    if daily_units is not None and not (math.isfinite(daily_units) and daily_units > 0.0):
        raise ValueError("daily_units must be positive")

    # se(N) = k/√N, so the MDE at unit scale gives N = (k · MDE(1)/|δ|)².
    k = math.sqrt(variance / (1.0 - treatment_fraction) + v_b / treatment_fraction)
    n_total = (k * _mde_from_se(1.0, alpha, power) / abs(min_effect)) ** 2
    control_units = math.ceil(n_total * (1.0 - treatment_fraction) - 1e-9)
    treatment_units = math.ceil(n_total * treatment_fraction - 1e-9)
    total = control_units + treatment_units
    return SampleSizeEstimate(
        total_units=total,
        control_units=control_units,
        treatment_units=treatment_units,
        days=None if daily_units is None else total / daily_units,
    )


def sequential_units_needed(
    *,
    variance: float,
    min_effect: float,
    alpha: float = 0.05,
    test_alpha: float | None = None,
    power: float = 0.8,
    treatment_fraction: float = 0.5,
    daily_units: float | None = None,
    treatment_variance: float | None = None,
    tau: float = DEFAULT_TAU,
) -> SampleSizeEstimate:
    """Units needed for the sequential (always-valid) test to detect δ at one look.

    The test rejects when the two-sided sequential p-value — its confidence sequence
    tuned for ``alpha`` (the experiment's α) — falls below ``test_alpha`` (default α;
    α/m for the first rejection of a Holm family of m). With k² = v_a/(1 − f) + v_b/f,
    se(N) = k/√N and ``sequential_z_critical`` z_c(N):
        power(N) = Φ(|δ|√N/k − z_c(N)) + Φ(−|δ|√N/k − z_c(N))
    and N solves power(N) = power (Brent's method). The confidence sequence is wider
    than a fixed interval, so N is larger than ``units_needed`` at the same level —
    about 2.2× at α = 0.05, 80 % power and N near τ. Looking earlier as well only adds
    chances to reject, so the power at N is a lower bound of the power of a test
    watched up to N.
    """
    test_alpha = alpha if test_alpha is None else _check_alpha(test_alpha)
    fixed = units_needed(
        variance=variance,
        min_effect=min_effect,
        alpha=test_alpha,
        power=power,
        treatment_fraction=treatment_fraction,
        treatment_variance=treatment_variance,
    )
    tau = _check_tau(tau)
    v_b = variance if treatment_variance is None else treatment_variance
    k = math.sqrt(variance / (1.0 - treatment_fraction) + v_b / treatment_fraction)
    shift_per_root = abs(min_effect) / k

    def shortfall(n_total: float) -> float:
        z_c = sequential_z_critical(n_total, test_alpha=test_alpha, alpha=alpha, tau=tau)
        signal = shift_per_root * math.sqrt(n_total)
        return float(stats.norm.cdf(signal - z_c) + stats.norm.cdf(-signal - z_c)) - power

    low = float(max(fixed.total_units, 2))
    if shortfall(low) >= 0.0:  # cannot happen for a confidence sequence; kept as a guard
        n_total = low
    else:
        high = 2.0 * low
        while shortfall(high) < 0.0:
            high *= 2.0
            if high > 1e18:
                raise ValueError("the effect is too small to detect with any sample")
        n_total = float(optimize.brentq(shortfall, low, high, rtol=1e-12))
    control_units = math.ceil(n_total * (1.0 - treatment_fraction) - 1e-9)
    treatment_units = math.ceil(n_total * treatment_fraction - 1e-9)
    total = control_units + treatment_units
    if daily_units is not None and not (math.isfinite(daily_units) and daily_units > 0.0):
        raise ValueError("daily_units must be positive")
    return SampleSizeEstimate(
        total_units=total,
        control_units=control_units,
        treatment_units=treatment_units,
        days=None if daily_units is None else total / daily_units,
    )


# ------------------------------------------------------------------- Bayesian


@dataclass(frozen=True, slots=True)
class GaussianPrior:
    """Prior on the effect: N(mean, variance); ``proper=False`` (the default) is the
    flat prior, under which the posterior is the data's own normal approximation."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False

    def __post_init__(self) -> None:
        _check_finite("prior mean", self.mean)
        variance = _check_finite("prior variance", self.variance)
        if variance <= 0.0:
            raise ValueError(f"prior variance must be > 0, got {variance!r}")


@dataclass(frozen=True, slots=True)
class BayesianResult:
    """Posterior of the effect under the Gaussian approximation (``bayesian_compare``).

    Fields: posterior mean and sd of the effect; chance_to_win = P(effect is good);
    ci_low, ci_high the 1 − α equal-tailed credible interval; risk_control and
    risk_treatment the expected loss of shipping control or treatment (same units as the
    effect); relative, alpha as used; reason when nothing could be computed (then the
    uninformative answer: chance 0.5, interval (0, 0), no risk — as gbstats answers).
    """

    mean: float
    sd: float
    chance_to_win: float
    ci_low: float
    ci_high: float
    risk_control: float
    risk_treatment: float
    relative: bool
    alpha: float
    reason: Degeneracy | None = None


def _normal_risk(mu: float, sigma: float) -> tuple[float, float]:
    """(E[max(X, 0)], E[max(−X, 0)]) for X ~ N(μ, σ²):
    μΦ(μ/σ) + σφ(μ/σ) and −μΦ(−μ/σ) + σφ(μ/σ) — gbstats' truncated-normal risk
    (1 − P(X < 0))·E[X | X > 0] and −P(X < 0)·E[X | X < 0] in closed form."""
    z = mu / sigma
    density = sigma * float(stats.norm.pdf(z))
    return mu * float(stats.norm.cdf(z)) + density, -mu * float(stats.norm.cdf(-z)) + density


def bayesian_compare(
    control: ArmStats,
    treatment: ArmStats,
    *,
    alpha: float = 0.05,
    relative: bool = True,
    higher_is_better: bool = True,
    prior: GaussianPrior | None = None,
) -> BayesianResult:
    """GrowthBook's default Bayesian engine (gbstats 0.8.0 ``EffectBayesianABTest``).

    Data: d and Var(d) as the frequentist test has them (absolute d = m_b − m_a,
    Var = v_a/n_a + v_b/n_b; relative d = (m_b − m_a)/m_a with the delta-method Var).
    Prior N(μ₀, σ₀²) on the same scale (pass a relative prior for relative=True), used
    only when proper:
        precision = 1/Var(d) + 1/σ₀²,  mean = (d/Var(d) + μ₀/σ₀²)/precision,
        sd = √(1/precision)            (flat prior: mean = d, sd = √Var(d))
    chance to win = P(effect > 0) (P(effect < 0) when lower is better);
    credible interval = mean ± z_{1−α/2}·sd;
    risk of shipping control = E[max(effect, 0)], of shipping treatment = E[max(−effect, 0)]
    (swapped when lower is better).
    """
    alpha = _check_alpha(alpha)
    prior = prior or GaussianPrior()
    a, b = control.moments(), treatment.moments()

    def uninformative(reason: Degeneracy) -> BayesianResult:
        return BayesianResult(0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, relative, alpha, reason)

    if relative and a.mean == 0.0:
        return uninformative(Degeneracy.ZERO_CONTROL_MEAN)
    if a.n == 0 or b.n == 0:
        return uninformative(Degeneracy.INSUFFICIENT_DATA)
    if a.variance <= 0.0 or b.variance <= 0.0:  # as gbstats: either arm
        return uninformative(Degeneracy.ZERO_VARIANCE)
    if relative:
        data_mean = (b.mean - a.mean) / a.mean
        data_var = b.variance / (a.mean**2 * b.n) + a.variance * b.mean**2 / (a.mean**4 * a.n)
    else:
        data_mean = b.mean - a.mean
        data_var = b.variance / b.n + a.variance / a.n
    if not (math.isfinite(data_var) and data_var > 0.0):
        return uninformative(Degeneracy.NON_FINITE)
    precision = 1.0 / data_var + (1.0 / prior.variance if prior.proper else 0.0)
    mean = (
        (data_mean / data_var + prior.mean / prior.variance) / precision
        if prior.proper
        else data_mean
    )
    sd = math.sqrt(1.0 / precision)
    up = float(stats.norm.sf(0.0, mean, sd))
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * sd
    gain, loss = _normal_risk(mean, sd)
    if not higher_is_better:
        up, gain, loss = 1.0 - up, loss, gain
    return BayesianResult(
        mean=mean,
        sd=sd,
        chance_to_win=up,
        ci_low=mean - half,
        ci_high=mean + half,
        risk_control=gain,
        risk_treatment=loss,
        relative=relative,
        alpha=alpha,
    )

"""Reference vectors for the Bayesian engine (experiments.stats.bayesian_compare)
and the ratio metrics' delta method (experiments.stats.ratio_moments), computed
with GrowthBook's stats engine.

gbstats is not a dependency of the project (it pins pandas < 2): run this in a
throwaway virtual environment of its own, then commit the JSON it writes.

    python3 -m venv <throwaway-env>
    <throwaway-env>/bin/pip install "gbstats==0.8.0" "numpy<2"
    <throwaway-env>/bin/python scripts/gbstats_bayesian_vectors.py \
        > tests/data/gbstats-bayesian-cases.json
"""

import json
import sys

import numpy as np
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, SampleMeanStatistic


def arm(rng, kind):
    n = int(rng.choice([50, 400, 3000, 40000, 250000]))
    if kind == "binomial":
        return {"n": n, "sum": float(rng.binomial(n, rng.uniform(0.02, 0.9)))}
    mean, sd = rng.uniform(0.5, 500), rng.uniform(0.1, 3.0)
    values = rng.normal(mean, sd * mean, n)
    return {"n": n, "sum": float(values.sum()), "sum_squares": float(values @ values)}


def statistic(kind, a):
    if kind == "binomial":
        return ProportionStatistic(n=a["n"], sum=a["sum"])
    return SampleMeanStatistic(n=a["n"], sum=a["sum"], sum_squares=a["sum_squares"])


def ratio_arm(rng):
    n = int(rng.choice([200, 5000, 60000]))
    z = rng.poisson(rng.uniform(1, 6), n) + 1.0
    y = rng.binomial(z.astype(int), rng.uniform(0.1, 0.8)).astype(float)
    return {
        "n": n,
        "y_sum": float(y.sum()),
        "y_squares": float(y @ y),
        "z_sum": float(z.sum()),
        "z_squares": float(z @ z),
        "yz": float(y @ z),
    }


def ratio_statistic(a):
    return RatioStatistic(
        n=a["n"],
        m_statistic=SampleMeanStatistic(n=a["n"], sum=a["y_sum"], sum_squares=a["y_squares"]),
        d_statistic=SampleMeanStatistic(n=a["n"], sum=a["z_sum"], sum_squares=a["z_squares"]),
        m_d_sum_of_products=a["yz"],
    )


def bayesian(stat_a, stat_b, *, relative, inverse, alpha, prior):
    config = EffectBayesianConfig(
        difference_type="relative" if relative else "absolute",
        inverse=inverse,
        alpha=alpha,
        prior_type="relative" if relative else "absolute",
        prior_effect=GaussianPrior(**prior),
    )
    result = EffectBayesianABTest(stat_a, stat_b, config).compute_result()
    return {
        "expected": result.expected,
        "sd": result.uplift.stddev,
        "chance_to_win": result.chance_to_win,
        "ci": list(result.ci),
        "risk": list(result.risk),
        "error": result.error_message,
    }


def main():
    rng = np.random.default_rng(20261203)
    cases = []
    for i in range(300):
        kind = "ratio" if i % 5 == 4 else ("binomial" if i % 2 else "mean")
        if kind == "ratio":
            a, b = ratio_arm(rng), ratio_arm(rng)
            stat_a, stat_b = ratio_statistic(a), ratio_statistic(b)
        else:
            a, b = arm(rng, kind), arm(rng, kind)
            stat_a, stat_b = statistic(kind, a), statistic(kind, b)
        relative = bool(rng.random() < 0.7)
        prior = {"mean": 0.0, "variance": 1.0, "proper": False}
        if rng.random() < 0.5:
            prior = {
                "mean": float(rng.normal(0, 0.05)),
                "variance": float(rng.choice([0.3**2, 0.05**2, 0.01**2])),
                "proper": True,
            }
        if not relative and prior["proper"]:
            # An absolute prior on the absolute scale of this metric.
            scale = abs(stat_a.mean)
            prior["mean"] *= scale
            prior["variance"] *= scale**2
        inverse = bool(rng.random() < 0.3)
        alpha = float(rng.choice([0.05, 0.1, 0.01]))
        case = {
            "kind": kind,
            "control": a,
            "treatment": b,
            "relative": relative,
            "inverse": inverse,
            "alpha": alpha,
            "prior": prior,
            "bayesian": bayesian(
                stat_a, stat_b, relative=relative, inverse=inverse, alpha=alpha, prior=prior
            ),
        }
        if kind == "ratio":
            case["ratio"] = {
                "control": {"mean": stat_a.mean, "variance": stat_a.variance},
                "treatment": {"mean": stat_b.mean, "variance": stat_b.variance},
            }
        cases.append(case)
    json.dump(
        {
            "source": "computed with the PyPI package gbstats 0.8.0 (GrowthBook's stats engine, "
            "MIT licence) by scripts/gbstats_bayesian_vectors.py: EffectBayesianABTest with "
            "its GaussianPrior; RatioStatistic for the delta method.",
            "note": "'risk' is [risk of shipping control, risk of shipping treatment] as gbstats "
            "orders it (swapped for inverse metrics); 'ci' the equal-tailed credible interval "
            "at 1 - alpha; ratio cases carry gbstats' per-arm mean and per-unit variance.",
            "cases": cases,
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()

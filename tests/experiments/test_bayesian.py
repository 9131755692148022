"""The Bayesian engine and the ratio metrics' delta method against reference
vectors computed with GrowthBook's gbstats 0.8.0 (scripts/gbstats_bayesian_vectors.py,
run in a separate environment: gbstats is not a dependency)."""

import json
from pathlib import Path

import pytest

from experiments import stats

CASES = json.loads(
    (Path(__file__).parents[1] / "data" / "gbstats-bayesian-cases.json").read_text()
)["cases"]


def _arm(kind, a):
    if kind == "ratio":
        return stats.ratio_moments(
            n=a["n"],
            y_sum=a["y_sum"],
            z_sum=a["z_sum"],
            y_squares=a["y_squares"],
            z_squares=a["z_squares"],
            yz=a["yz"],
        )
    if kind == "binomial":
        return stats.VariantStats(n=a["n"], sum=a["sum"], sum_squares=a["sum"], kind="binomial")
    return stats.VariantStats(n=a["n"], sum=a["sum"], sum_squares=a["sum_squares"])


def _close(ours, theirs, *, scale=1.0):
    return ours == pytest.approx(theirs, rel=1e-9, abs=1e-12 * scale)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['kind']}-{i}" for i, c in enumerate(CASES)])
def test_the_bayesian_engine_matches_gbstats(case):
    expected = case["bayesian"]
    result = stats.bayesian_compare(
        _arm(case["kind"], case["control"]),
        _arm(case["kind"], case["treatment"]),
        alpha=case["alpha"],
        relative=case["relative"],
        higher_is_better=not case["inverse"],
        prior=stats.GaussianPrior(**case["prior"]),
    )
    scale = max(abs(expected["expected"]), expected["sd"], 1.0)
    assert _close(result.mean, expected["expected"], scale=scale)
    assert _close(result.sd, expected["sd"], scale=scale)
    assert _close(result.chance_to_win, expected["chance_to_win"])
    assert _close(result.ci_low, expected["ci"][0], scale=scale)
    assert _close(result.ci_high, expected["ci"][1], scale=scale)
    assert _close(result.risk_control, expected["risk"][0], scale=scale)
    assert _close(result.risk_treatment, expected["risk"][1], scale=scale)


RATIO_CASES = [c for c in CASES if c["kind"] == "ratio"]


@pytest.mark.parametrize("case", RATIO_CASES)
def test_ratio_moments_match_gbstats_ratio_statistic(case):
    for arm in ("control", "treatment"):
        moments = _arm("ratio", case[arm])
        assert moments.mean == pytest.approx(case["ratio"][arm]["mean"], rel=1e-12)
        assert moments.variance == pytest.approx(case["ratio"][arm]["variance"], rel=1e-9)


def test_a_proper_prior_shrinks_the_estimate_towards_its_mean():
    a = stats.VariantStats(n=200, sum=40, sum_squares=40, kind="binomial")
    b = stats.VariantStats(n=200, sum=52, sum_squares=52, kind="binomial")
    flat = stats.bayesian_compare(a, b)
    shrunk = stats.bayesian_compare(a, b, prior=stats.GaussianPrior(0.0, 0.05**2, proper=True))
    assert 0 < shrunk.mean < flat.mean
    assert shrunk.sd < flat.sd
    assert shrunk.chance_to_win < flat.chance_to_win


def test_an_empty_arm_gives_the_uninformative_answer():
    a = stats.VariantStats(n=0, sum=0, sum_squares=0)
    b = stats.VariantStats(n=10, sum=5, sum_squares=5, kind="mean")
    result = stats.bayesian_compare(a, b, relative=False)
    assert (result.chance_to_win, result.reason) == (0.5, stats.Degeneracy.INSUFFICIENT_DATA)

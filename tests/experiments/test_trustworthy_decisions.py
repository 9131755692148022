"""The decision built on the statistics, end to end through the database and
the API: analysis time bounds, variance precision, segments, running
always-valid numbers, guardrail families and the sample size still needed."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from scipy import stats as scipy_stats

from experiments import aggregation, stats
from experiments.models import Experiment
from experiments.services import analysis
from tests.experiments.seeding import plant
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db


def _experiment(key="exp", metrics=("session_duration",), weights=(1, 1), **extra):
    for m in metrics:
        make_metric(m, kind="mean")
    experiment = make_experiment(key, metrics=metrics, weights=weights)
    Experiment.objects.filter(id=experiment.id).update(
        started_at=timezone.now() - timedelta(days=4), **extra
    )
    experiment.refresh_from_db()
    return experiment


# ------------------------------------------------------- 1. the analysis time


def test_exposures_after_the_analysis_time_count_neither_in_the_srm_nor_in_the_units():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(1)
    start = timezone.now() - timedelta(days=3)
    plant(
        experiment,
        metric,
        {"control": rng.normal(10, 2, 500), "treatment": rng.normal(10, 2, 500)},
        start=start,
    )
    # 300 control units exposed two days later, after the time analysed.
    plant(
        experiment,
        metric,
        {"control": rng.normal(10, 2, 300)},
        start=start + timedelta(days=2),
        prefix="late",
    )
    as_of = start + timedelta(days=1)
    snapshot = analysis.analyse_experiment(experiment=experiment, as_of=as_of)
    assert snapshot.srm["observed"] == {"control": 500, "treatment": 500}
    assert snapshot.srm["flagged"] is False
    assert snapshot.decision["verdict"] != "invalid"
    assert snapshot.units == 1000
    assert aggregation.segment_levels(
        experiment_id=experiment.id, attribute="platform", upto=as_of
    ) == [(None, 1000)]


def test_segments_of_a_stopped_experiment_leave_out_later_exposures(pm_api):
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    start = timezone.now() - timedelta(days=3)
    web = {k: [{"platform": "web"}] * 100 for k in ("control", "treatment")}
    plant(
        experiment,
        metric,
        {"control": np.ones(100), "treatment": np.ones(100)},
        start=start,
        attributes_by_variant=web,
    )
    Experiment.objects.filter(id=experiment.id).update(
        status="stopped", stopped_at=start + timedelta(days=1)
    )
    plant(
        experiment,
        metric,
        {"control": np.ones(100)},
        start=start + timedelta(days=2),
        prefix="late",
        attributes_by_variant={"control": [{"platform": "web"}] * 100},
    )
    body = pm_api.get(f"/api/v1/experiments/{experiment.key}/segments/?attribute=platform").json()
    assert [(level["level"], level["units"]) for level in body["levels"]] == [("web", 200)]


# ---------------------------------------------------- 4. variance precision


@pytest.mark.parametrize("centre", [1e6, 1e7, 1e9])
def test_the_variance_of_values_far_from_zero_is_exact(centre):
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(4)
    a, b = centre + rng.normal(0, 1, 1000), centre + 0.5 + rng.normal(0, 1, 1000)
    plant(experiment, metric, {"control": a, "treatment": b})
    snapshot = analysis.analyse_experiment(experiment=experiment)
    variants = {v["variant"]: v for v in snapshot.metrics[0]["variants"]}
    assert variants["control"]["std"] == pytest.approx(a.std(ddof=1), rel=1e-6)
    assert variants["treatment"]["std"] == pytest.approx(b.std(ddof=1), rel=1e-6)
    comparison = snapshot.metrics[0]["comparisons"][0]
    reference = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert comparison["p_value"] == pytest.approx(reference.pvalue, rel=1e-5)


def test_impossible_sums_raise_instead_of_being_clamped():
    with pytest.raises(ValueError, match="impossible"):
        stats.VariantStats(n=10, sum=100.0, sum_squares=900.0)  # Σy² < (Σy)²/n = 1000
    with pytest.raises(ValueError, match="impossible variance"):
        stats._sample_variance(10, 100.0, 990.0)


# ------------------------------------------------------------- 6. segments


def test_segments_use_the_sequential_test_and_cuped_like_the_decision(pm_api):
    experiment = _experiment(cuped_lookback_days=14)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(6)
    n = 900
    pre = {k: rng.normal(100, 20, n) for k in ("control", "treatment")}
    post = {
        k: 100 + 0.7 * (pre[k] - 100) + rng.normal(0, 14, n) + (3 if k == "treatment" else 0)
        for k in pre
    }
    platforms = ["ios", "web", "android"]
    attributes = {k: [{"platform": platforms[i % 3]} for i in range(n)] for k in pre}
    plant(experiment, metric, post, pre_values_by_variant=pre, attributes_by_variant=attributes)
    body = pm_api.get(f"/api/v1/experiments/{experiment.key}/segments/?attribute=platform").json()
    cells, expected = [], []
    for level in body["levels"]:
        index = platforms.index(level["level"])
        mine = slice(index, None, 3)
        arms = [
            stats.VariantStats.from_values(post[k][mine], covariate=pre[k][mine])
            for k in ("control", "treatment")
        ]
        reference = stats.compare(*arms, sequential=True, cuped=True)
        cells.append(level["metrics"][0]["comparisons"][0])
        expected.append(reference)
    adjusted = stats.adjust_p_values([r.p_value for r in expected])
    for cell, p in zip(cells, adjusted, strict=True):
        assert cell["p_value_adjusted"] == pytest.approx(p, rel=1e-6)
        assert cell["significant"] == (p < 0.05)
    for cell, reference in zip(cells, expected, strict=True):
        assert cell["cuped_applied"] is True
        assert cell["sequential_p_value"] == pytest.approx(reference.p_value, rel=1e-6)
        assert cell["sequential_ci_low"] == pytest.approx(reference.ci_low, rel=1e-6)
    assert body["inference"] == "sequential"


# ------------------------------------------- 7. running always-valid numbers


def test_the_sequential_p_value_and_interval_never_move_back_across_snapshots():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(7)
    start = timezone.now() - timedelta(days=3)

    def exactly(mean, n=1500):
        z = rng.normal(0, 1, n)
        return mean + 10 * (z - z.mean()) / z.std(ddof=1)

    # First look: +1.24 on an sd of 10, 1 500 units per arm (z = 3.4, p ≈ 0.02).
    plant(experiment, metric, {"control": exactly(100), "treatment": exactly(101.24)}, start=start)
    # Then 1 500 more per arm with +0.26: the estimate (+0.75) stays inside the
    # first interval, but this look alone is no longer significant (p ≈ 0.07).
    plant(
        experiment,
        metric,
        {"control": exactly(100), "treatment": exactly(100.26)},
        start=start + timedelta(days=1),
        prefix="later",
    )
    first = analysis.analyse_experiment(experiment=experiment, as_of=start + timedelta(hours=12))
    second = analysis.analyse_experiment(experiment=experiment, as_of=start + timedelta(days=2))
    before, after = first.metrics[0]["comparisons"][0], second.metrics[0]["comparisons"][0]
    assert before["significant"] is True
    # The always-valid p-value is the running minimum and the interval the
    # running intersection, although this look alone has a larger p-value.
    assert after["sequential_p_value"] == before["sequential_p_value"]
    assert after["significant"] is True
    assert after["sequential_p_value_look"] > before["sequential_p_value"]
    assert after["sequential_ci_low"] >= before["sequential_ci_low"]
    assert after["sequential_ci_high"] <= before["sequential_ci_high"]
    assert after["sequential_ci_low"] == max(
        before["sequential_ci_low"], after["sequential_ci_low_look"]
    )
    assert after["looks"] == 2
    row = second.rows.get()
    assert row.sequential_p_value == before["sequential_p_value"]
    assert row.sequential_p_value_look == after["sequential_p_value_look"]


def test_a_changed_alpha_restarts_the_running_numbers():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(8)
    plant(
        experiment,
        metric,
        {"control": rng.normal(100, 10, 500), "treatment": rng.normal(102, 10, 500)},
    )
    analysis.analyse_experiment(experiment=experiment, as_of=timezone.now() - timedelta(hours=1))
    Experiment.objects.filter(id=experiment.id).update(alpha=0.01)
    experiment.refresh_from_db()
    after = analysis.analyse_experiment(experiment=experiment).metrics[0]["comparisons"][0]
    assert after["looks"] == 1
    assert after["sequential_p_value"] == after["sequential_p_value_look"]


# ---------------------------------------------------------- 8. guardrails


def test_a_guardrail_is_tested_one_sided_for_harm_in_its_own_family():
    make_metric("wait_seconds", kind="mean", higher_is_better=False)
    experiment = _experiment(
        metrics=("session_duration", "completion_time"), cuped_lookback_days=0, sequential=False
    )
    experiment.metrics.create(metric=make_metric("wait_seconds", kind="mean"), role="guardrail")
    rng = np.random.default_rng(12)
    n = 2000
    for key in ("session_duration", "completion_time"):
        plant(
            experiment,
            experiment.metrics.get(metric__key=key).metric,
            {"control": rng.normal(50, 10, n), "treatment": rng.normal(50, 10, n)},
        )

    def exactly(mean, sd):
        z = rng.normal(0, 1, n)
        return mean + sd * (z - z.mean()) / z.std(ddof=1)

    # +0.13 s on an sd of 2 with 2 000 units per arm: z ≈ 2.06.
    wait = {"control": exactly(5.0, 2.0), "treatment": exactly(5.13, 2.0)}
    plant(experiment, experiment.metrics.get(metric__key="wait_seconds").metric, wait)
    snapshot = analysis.analyse_experiment(experiment=experiment)
    guardrail = next(m for m in snapshot.metrics if m["role"] == "guardrail")["comparisons"][0]
    # Harm is "wait went up": the one-sided Welch test, alone in its family.
    reference = scipy_stats.ttest_ind(
        wait["treatment"], wait["control"], equal_var=False, alternative="greater"
    )
    assert guardrail["p_value_adjusted"] == pytest.approx(reference.pvalue, rel=1e-6)
    assert guardrail["harm_p_value"] == pytest.approx(reference.pvalue, rel=1e-6)
    assert (
        reference.pvalue < 0.05 < min(1.0, 3 * 2 * reference.pvalue)
    )  # Holm over 3, two-sided: missed
    assert guardrail["significant"] is True
    assert snapshot.decision["verdict"] == "failure"
    assert "guardrail wait_seconds is significantly worse" in snapshot.decision["reasons"][0]


# ---------------------------------------------------- 2. units still needed


def test_units_needed_are_those_of_the_sequential_test_at_the_holm_level_and_days_per_arm():
    experiment = _experiment(
        metrics=("session_duration", "completion_time"), weights=(1, 1, 1), cuped_lookback_days=0
    )
    for link in experiment.metrics.all():
        link.min_effect = 0.5
        link.save()
    rng = np.random.default_rng(2)
    for key in ("session_duration", "completion_time"):
        plant(
            experiment,
            experiment.metrics.get(metric__key=key).metric,
            {k: rng.normal(20, 10, 400) for k in ("control", "treatment", "treatment-2")},
            start=timezone.now() - timedelta(days=4),
        )
    snapshot = analysis.analyse_experiment(experiment=experiment)
    metric = snapshot.metrics[0]
    variants = {v["variant"]: v for v in metric["variants"]}
    cell = metric["comparisons"][0]
    # 2 primaries × 2 treatments: Holm's first rejection needs p < α/4.
    expected = stats.sequential_units_needed(
        variance=variants["control"]["std"] ** 2,
        treatment_variance=variants[cell["variant"]]["std"] ** 2,
        min_effect=0.5,
        alpha=0.05,
        test_alpha=0.05 / 4,
    )
    assert cell["units_needed"] == expected.total_units - 800
    assert cell["units_needed_total"] == expected.total_units
    assert cell["test_alpha"] == pytest.approx(0.05 / 4)
    # 1200 units over 4 days in three arms: the pair compared gets 200 a day, not 300.
    days = (timezone.now() - experiment.started_at).total_seconds() / 86400
    assert cell["days_needed"] == pytest.approx(cell["units_needed"] / (800 / days), rel=1e-3)

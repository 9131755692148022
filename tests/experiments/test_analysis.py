"""Analysis end to end: database aggregation, statistics, decision, snapshots."""

from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from scipy import stats as scipy_stats

from experiments import aggregation, guardrails
from experiments.decision import ServiceFigures
from experiments.models import Event, Experiment, Exposure, Snapshot
from experiments.services import analysis
from tests.experiments.seeding import plant
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db


@contextmanager
def service_levels(figures):
    """The treatment's service figures, as a linked rollout would hand them down."""

    def provider(exp):
        return figures

    guardrails.register_provider(provider)
    try:
        yield
    finally:
        guardrails._providers.remove(provider)


def _experiment(key="exp", metrics=("session_duration",), kinds=None, **extra):
    kinds = kinds or {}
    for m in metrics:
        make_metric(m, kind=kinds.get(m, "mean"))
    experiment = make_experiment(key, metrics=metrics)
    if extra:
        Experiment.objects.filter(id=experiment.id).update(**extra)
        experiment.refresh_from_db()
    return experiment


def test_aggregation_counts_only_events_at_or_after_exposure():
    experiment = _experiment(cuped_lookback_days=0)
    metric = make_metric("session_duration")
    control = experiment.variants.get(key="control")
    at = timezone.now() - timedelta(days=1)
    Exposure.objects.create(experiment=experiment, unit_id="a", variant=control, exposed_at=at)
    Exposure.objects.create(experiment=experiment, unit_id="b", variant=control, exposed_at=at)
    for i, (unit, offset, value) in enumerate(
        [("a", -60, 100.0), ("a", 0, 2.0), ("a", 60, 3.0), ("b", -1, 7.0), ("zz", 5, 9.0)]
    ):
        Event.objects.create(
            event_id=f"e{i}",
            unit_id=unit,
            metric=metric,
            value=value,
            timestamp=at + timedelta(seconds=offset),
            received_at=at,
        )
    sums = aggregation.metric_sums(experiment_id=experiment.id, metric=metric)
    # a: 2 + 3 (the event before exposure is not counted); b: 0 (missing counts as zero).
    assert sums[(None, control.id)].unshifted() == aggregation.ArmSums(n=2, total=5.0, squares=25.0)


def test_a_mean_metric_without_missing_as_zero_leaves_units_without_events_out():
    make_metric("satisfaction", kind="mean", missing_as_zero=False)
    experiment = _experiment(metrics=("satisfaction",), cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    plant(experiment, metric, {"control": np.array([4, np.nan, 5]), "treatment": np.array([3.0])})
    sums = aggregation.metric_sums(experiment_id=experiment.id, metric=metric)
    control = experiment.variants.get(key="control")
    assert sums[(None, control.id)].n == 2
    assert sums[(None, control.id)].unshifted().total == 9


def test_a_binomial_metric_counts_a_unit_once_however_many_events():
    experiment = _experiment(metrics=("adoption",), kinds={"adoption": "binomial"})
    metric = experiment.metrics.get().metric
    plant(experiment, metric, {"control": np.array([1, np.nan, 1]), "treatment": np.array([1, 1])})
    Event.objects.create(
        event_id="again",
        unit_id="u-control-0",
        metric=metric,
        value=1,
        timestamp=timezone.now(),
        received_at=timezone.now(),
    )
    sums = aggregation.metric_sums(experiment_id=experiment.id, metric=metric)
    control = experiment.variants.get(key="control")
    assert sums[(None, control.id)].unshifted() == aggregation.ArmSums(n=3, total=2.0, squares=2.0)


def test_results_match_scipy_welch_on_the_same_units():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2, 150, 800), rng.gamma(2, 165, 900)
    plant(experiment, metric, {"control": a, "treatment": b})
    snapshot = analysis.analyse_experiment(experiment=experiment)
    comparison = snapshot.metrics[0]["comparisons"][0]
    reference = scipy_stats.ttest_ind(b, a, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert comparison["absolute_effect"] == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert comparison["p_value"] == pytest.approx(reference.pvalue, rel=1e-6)
    assert comparison["ci_low"] == pytest.approx(interval.low, rel=1e-6)
    assert comparison["ci_high"] == pytest.approx(interval.high, rel=1e-6)
    variants = {v["variant"]: v for v in snapshot.metrics[0]["variants"]}
    assert variants["treatment"]["units"] == 900
    assert variants["treatment"]["std"] == pytest.approx(b.std(ddof=1), rel=1e-9)


def test_a_planted_five_percent_effect_on_20000_units_is_detected():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(5)
    # Session duration in seconds: log-normal around 10 minutes, sd about half the mean.
    sigma = np.sqrt(np.log(1.25))
    a = rng.lognormal(np.log(600) - sigma**2 / 2, sigma, 10_000)
    b = rng.lognormal(np.log(630) - sigma**2 / 2, sigma, 10_000)
    plant(experiment, metric, {"control": a, "treatment": b})
    with service_levels(ServiceFigures(error_rate=0.001, p95_ms=50, source="test rollout")):
        snapshot = analysis.analyse_experiment(experiment=experiment)
    comparison = snapshot.metrics[0]["comparisons"][0]
    assert comparison["significant"] is True
    assert comparison["relative_effect"] == pytest.approx(0.05, abs=0.01)
    assert comparison["sequential_p_value"] < 0.05
    assert snapshot.decision["verdict"] != "inconclusive"


def test_a_52_48_split_on_a_50_50_experiment_is_invalid():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(2)
    plant(
        experiment,
        metric,
        {"control": rng.normal(10, 2, 10_400), "treatment": rng.normal(10, 2, 9_600)},
    )
    snapshot = analysis.analyse_experiment(experiment=experiment)
    assert snapshot.srm["flagged"] is True
    assert snapshot.srm["observed"] == {"control": 10_400, "treatment": 9_600}
    assert snapshot.srm["p_value"] < 0.001
    assert snapshot.decision["verdict"] == "invalid"
    assert "sample ratio mismatch" in snapshot.decision["reasons"][0]


def test_cuped_narrows_the_interval_with_the_pre_exposure_value():
    experiment = _experiment(cuped_lookback_days=14)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(3)
    n, rho = 4000, 0.75
    pre = {k: rng.normal(100, 20, n) for k in ("control", "treatment")}
    post = {k: 100 + rho * (pre[k] - 100) + rng.normal(0, 20 * np.sqrt(1 - rho**2), n) for k in pre}
    plant(experiment, metric, post, pre_values_by_variant=pre)
    comparison = analysis.analyse_experiment(experiment=experiment).metrics[0]["comparisons"][0]
    assert comparison["cuped_applied"] is True
    width = comparison["ci_high"] - comparison["ci_low"]
    plain = comparison["cuped"]["unadjusted_ci_high"] - comparison["cuped"]["unadjusted_ci_low"]
    assert width <= 0.7 * plain


def test_same_data_gives_the_same_inputs_hash_and_new_data_another():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    plant(experiment, metric, {"control": np.ones(50), "treatment": np.ones(50) * 2})
    first = analysis.analyse_experiment(experiment=experiment)
    second = analysis.analyse_experiment(experiment=experiment)
    assert first.inputs_hash == second.inputs_hash
    plant(experiment, metric, {"control": np.ones(5)}, prefix="late")
    third = analysis.analyse_experiment(experiment=experiment)
    assert third.inputs_hash != first.inputs_hash


def test_the_scheduled_analysis_stores_nothing_when_nothing_changed():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    plant(experiment, metric, {"control": np.ones(50), "treatment": np.ones(50) * 2})
    assert analysis.analyse_if_changed(experiment_id=experiment.id) is not None
    assert analysis.analyse_if_changed(experiment_id=experiment.id) is None
    assert Snapshot.objects.count() == 1
    plant(experiment, metric, {"control": np.ones(5)}, prefix="late")
    assert analysis.analyse_if_changed(experiment_id=experiment.id) is not None
    assert Snapshot.objects.count() == 2


def test_a_claimed_experiment_is_not_analysed_twice_at_once():
    experiment = _experiment()
    assert analysis.claim_scheduled_analysis(experiment_id=experiment.id) is True
    assert analysis.claim_scheduled_analysis(experiment_id=experiment.id) is False
    assert analysis.analyse_if_changed(experiment_id=experiment.id) is None
    analysis.release_claim(experiment_id=experiment.id)
    assert analysis.claim_scheduled_analysis(experiment_id=experiment.id) is True


def test_units_first_exposed_during_the_canary_are_left_out_and_counted():
    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    plant(
        experiment,
        metric,
        {"control": np.ones(30), "treatment": np.ones(30)},
        stage="canary",
        prefix="early",
    )
    plant(experiment, metric, {"control": np.ones(100), "treatment": np.ones(100)}, stage="ab")
    snapshot = analysis.analyse_experiment(experiment=experiment)
    assert snapshot.units == 200
    assert snapshot.carryover_excluded == 60
    Experiment.objects.filter(id=experiment.id).update(exclude_carryover=False)
    experiment.refresh_from_db()
    assert analysis.analyse_experiment(experiment=experiment).units == 260


def test_guardrail_figures_from_a_provider_feed_the_decision():
    from experiments import guardrails
    from experiments.decision import ServiceFigures

    experiment = _experiment(cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    rng = np.random.default_rng(9)
    plant(
        experiment,
        metric,
        {"control": rng.normal(600, 100, 3000), "treatment": rng.normal(700, 100, 3000)},
    )

    def provider(exp):
        return ServiceFigures(error_rate=0.02, p95_ms=80, source="test rollout")

    guardrails.register_provider(provider)
    try:
        snapshot = analysis.analyse_experiment(experiment=experiment)
    finally:
        guardrails._providers.remove(provider)
    assert snapshot.decision["verdict"] == "failure"
    assert any("error rate 2.00 %" in r for r in snapshot.decision["reasons"])
    assert snapshot.service == {"error_rate": 0.02, "p95_ms": 80, "source": "test rollout"}


def test_a_rating_metric_takes_the_mean_of_a_units_ratings():
    experiment = _experiment(metrics=("satisfaction",), cuped_lookback_days=0)
    metric = experiment.metrics.get().metric
    assert metric.unit_aggregation == "mean"
    plant(experiment, metric, {"control": np.array([4.0]), "treatment": np.array([5.0])})
    Event.objects.create(
        event_id="second-rating",
        unit_id="u-control-0",
        metric=metric,
        value=2.0,
        timestamp=timezone.now(),
        received_at=timezone.now(),
    )
    sums = aggregation.metric_sums(experiment_id=experiment.id, metric=metric)
    control = experiment.variants.get(key="control")
    assert sums[(None, control.id)].unshifted() == aggregation.ArmSums(n=1, total=3.0, squares=9.0)

"""The Bayesian engine as an experiment's option, and experiments with more
than two variants, end to end over the API."""

import csv
import io
from contextlib import contextmanager

import numpy as np
import pytest

from experiments import guardrails, stats, svg_charts
from experiments.decision import ServiceFigures
from experiments.models import Experiment
from tests.experiments.seeding import plant
from tests.factories import make_metric

pytestmark = pytest.mark.django_db


@contextmanager
def service_levels():
    def provider(exp):
        return ServiceFigures(error_rate=0.001, p95_ms=50, source="test rollout")

    guardrails.register_provider(provider)
    try:
        yield
    finally:
        guardrails._providers.remove(provider)


def _create(pm_api, key, *, arms=2, **extra):
    make_metric("minutes", kind="mean")
    variants = [{"key": "control", "weight": 1, "is_control": True}] + [
        {"key": name, "weight": 1}
        for name in ("treatment", "treatment-2", "treatment-3")[: arms - 1]
    ]
    response = pm_api.post(
        "/api/v1/experiments/",
        {
            "key": key,
            "name": key,
            "variants": variants,
            "metrics": [{"metric": "minutes", "role": "primary"}],
            **extra,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert pm_api.post(f"/api/v1/experiments/{key}/start/").status_code == 200
    experiment = Experiment.objects.get(key=key)
    Experiment.objects.filter(id=experiment.id).update(
        cuped_lookback_days=0, decision_policy={"important_needed": 0}
    )
    experiment.refresh_from_db()
    return response.json(), experiment


def test_a_bayesian_experiment_reports_its_posterior_and_decides_on_it(pm_api):
    prior = {"mean": 0.0, "variance": 0.01, "proper": True}
    created, experiment = _create(pm_api, "bayes", engine="bayesian", prior=prior)
    assert (created["engine"], created["prior_variance"], created["prior_proper"]) == (
        "bayesian",
        0.01,
        True,
    )
    rng = np.random.default_rng(1)
    values = {"control": rng.normal(10, 3, 2000), "treatment": rng.normal(10.5, 3, 2000)}
    plant(experiment, experiment.metrics.get().metric, values)
    with service_levels():
        body = pm_api.post("/api/v1/experiments/bayes/analysis/").json()
    comparison = body["metrics"][0]["comparisons"][0]
    reference = stats.bayesian_compare(
        stats.VariantStats.from_values(values["control"]),
        stats.VariantStats.from_values(values["treatment"]),
        prior=stats.GaussianPrior(**prior),
    )
    posterior = comparison["bayesian"]
    assert posterior["chance_to_win"] == pytest.approx(reference.chance_to_win, rel=1e-9)
    assert posterior["risk_treatment"] == pytest.approx(reference.risk_treatment, rel=1e-6)
    assert posterior["relative_ci_low"] == pytest.approx(reference.ci_low, rel=1e-9)
    assert posterior["chance_to_win"] > 0.95 and posterior["risk_treatment"] < 0.0025
    assert comparison["significant"] is True
    assert body["decision"]["verdict"] == "success"
    csv_text = pm_api.get("/api/v1/experiments/bayes/report/?format=csv").content.decode()
    row = next(csv.DictReader(io.StringIO(csv_text)))
    assert float(row["chance_to_win"]) == pytest.approx(reference.chance_to_win, rel=1e-9)
    md = pm_api.get("/api/v1/experiments/bayes/report/?format=md").content.decode()
    assert "chance to win" in md


def test_a_prior_without_the_bayesian_engine_is_refused(pm_api):
    make_metric("minutes", kind="mean")
    response = pm_api.post(
        "/api/v1/experiments/",
        {
            "key": "wrong",
            "name": "wrong",
            "variants": [{"key": "control", "is_control": True}, {"key": "treatment"}],
            "prior": {"mean": 0, "variance": 1},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "prior" in str(response.json())
    assert not Experiment.objects.filter(key="wrong").exists()


def test_four_arms_are_corrected_together_and_the_best_one_is_named(pm_api):
    _, experiment = _create(pm_api, "arms", arms=4)
    rng = np.random.default_rng(4)
    values = {
        "control": rng.normal(10, 3, 3000),
        "treatment": rng.normal(10.0, 3, 3000),
        "treatment-2": rng.normal(10.6, 3, 3000),
        "treatment-3": rng.normal(9.9, 3, 3000),
    }
    plant(experiment, experiment.metrics.get().metric, values)
    with service_levels():
        body = pm_api.post("/api/v1/experiments/arms/analysis/").json()
    comparisons = body["metrics"][0]["comparisons"]
    assert [c["variant"] for c in comparisons] == ["treatment", "treatment-2", "treatment-3"]
    holm = stats.adjust_p_values([c["sequential_p_value"] for c in comparisons])
    assert [c["p_value_adjusted"] for c in comparisons] == pytest.approx(holm)
    assert all(c["test_alpha"] == pytest.approx(0.05 / 3) for c in comparisons)
    assert body["decision"]["variant"] == "treatment-2"
    assert body["decision"]["reasons"][0] == "best treatment: treatment-2"
    assert body["decision"]["verdict"] == "success"
    assert sum(v["units"] for v in body["metrics"][0]["variants"]) == 12_000
    csv_text = pm_api.get("/api/v1/experiments/arms/report/?format=csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["variant"] for r in rows] == ["treatment", "treatment-2", "treatment-3"]
    chart = svg_charts.forest_svg(body["metrics"][0], element_id="arms")
    for label in ("treatment vs control", "treatment-2 vs control", "treatment-3 vs control"):
        assert label in chart


def test_the_experiment_page_shows_the_chance_to_win_harm_and_important_interval(
    pm_api, client, pm_user
):
    from django.urls import reverse

    _create(pm_api, "bayes-page", engine="bayesian")
    experiment = Experiment.objects.get(key="bayes-page")
    rng = np.random.default_rng(2)
    plant(
        experiment,
        experiment.metrics.get().metric,
        {"control": rng.normal(10, 3, 500), "treatment": rng.normal(10.4, 3, 500)},
    )
    body = pm_api.post("/api/v1/experiments/bayes-page/analysis/").json()
    chance = body["metrics"][0]["comparisons"][0]["chance_to_win"]
    client.force_login(pm_user)
    page = client.get(reverse("experiment-page", args=["bayes-page"])).content.decode()
    comparison = body["metrics"][0]["comparisons"][0]
    # A column per quantity the snapshot has for this metric, named by its family.
    assert 'data-column="chance_to_win">Chance to win</th>' in page
    assert ">Bayesian</th>" in page and 'data-column="risk"' in page
    assert f"{chance * 100:.1f} %" in page
    for field, column in (("harm_p_value", "harm_p"), ("important_ci_low", "important_interval")):
        assert (f'data-column="{column}"' in page) == (comparison.get(field) is not None)

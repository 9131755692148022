"""Capped (winsorised) mean metrics and ratio metrics, through the database,
the API and the report."""

import csv
import io

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments import report, selectors, stats
from experiments.models import Event, Metric
from experiments.services import analysis, ingestion
from tests.experiments.seeding import plant
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db


def _experiment(metric_key: str):
    experiment = make_experiment(f"exp-{metric_key}", metrics=(metric_key,))
    type(experiment).objects.filter(id=experiment.id).update(cuped_lookback_days=0)
    experiment.refresh_from_db()
    return experiment


def _results(experiment):
    return selectors.snapshot_results(experiment.snapshots.first())


def _arms_with_outliers(rng):
    a = rng.gamma(2.0, 100.0, 1500)
    b = rng.gamma(2.0, 104.0, 1500)
    b[:3] = 1e6  # three bots decide the uncapped test
    return a, b


# ----------------------------------------------------------------- capping


def test_a_fixed_cap_winsorises_each_units_value():
    make_metric("minutes", kind="mean", cap_kind="fixed", cap_value=1000.0)
    experiment = _experiment("minutes")
    a, b = _arms_with_outliers(np.random.default_rng(1))
    plant(experiment, experiment.metrics.get().metric, {"control": a, "treatment": b})
    metric = analysis.analyse_experiment(experiment=experiment).metrics[0]
    capped_a, capped_b = np.minimum(a, 1000.0), np.minimum(b, 1000.0)
    variants = {v["variant"]: v for v in metric["variants"]}
    assert metric["cap"] == {"kind": "fixed", "value": 1000.0, "applied": 1000.0}
    rows = list(report.report_data({**_results(experiment), "metrics": [metric]})["rows"])
    assert rows[0]["cap_applied"] == 1000.0
    assert variants["treatment"]["mean"] == pytest.approx(capped_b.mean(), rel=1e-9)
    assert variants["treatment"]["std"] == pytest.approx(capped_b.std(ddof=1), rel=1e-9)
    reference = scipy_stats.ttest_ind(capped_b, capped_a, equal_var=False)
    assert metric["comparisons"][0]["p_value"] == pytest.approx(reference.pvalue, rel=1e-6)


def test_a_percentile_cap_is_computed_in_the_database_over_every_arm():
    make_metric("minutes-p99", kind="mean", cap_kind="percentile", cap_value=0.99)
    experiment = _experiment("minutes-p99")
    a, b = _arms_with_outliers(np.random.default_rng(2))
    plant(experiment, experiment.metrics.get().metric, {"control": a, "treatment": b})
    metric = analysis.analyse_experiment(experiment=experiment).metrics[0]
    # percentile_disc: the smallest value with at least 99 % of the units at or below it.
    cap = np.quantile(np.concatenate([a, b]), 0.99, method="inverted_cdf")
    assert metric["cap"]["applied"] == pytest.approx(cap, rel=1e-12)
    variants = {v["variant"]: v for v in metric["variants"]}
    assert variants["control"]["mean"] == pytest.approx(np.minimum(a, cap).mean(), rel=1e-9)
    assert variants["treatment"]["mean"] == pytest.approx(np.minimum(b, cap).mean(), rel=1e-9)
    # Uncapped, the three 1e6 values would move the treatment mean by about 2 000.
    assert variants["treatment"]["mean"] < 300


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "mean", "cap_kind": "percentile", "cap_value": 1.5}, "cap_value"),
        ({"kind": "mean", "cap_kind": "percentile"}, "cap_value"),
        ({"kind": "mean", "cap_value": 10}, "cap_value"),
        ({"kind": "binomial", "cap_kind": "fixed", "cap_value": 1}, "cap_kind"),
        ({"kind": "mean", "cap_kind": "median", "cap_value": 1}, "cap_kind"),
        ({"kind": "ratio", "numerator": "sessions"}, "denominator"),
        ({"kind": "mean", "numerator": "sessions", "denominator": "sessions"}, "numerator"),
        ({"kind": "ratio", "numerator": "nope", "denominator": "sessions"}, "numerator"),
    ],
)
def test_a_metric_definition_that_cannot_be_computed_is_a_400(pm_api, body, field):
    make_metric("sessions", kind="mean")
    response = pm_api.post("/api/v1/metrics/", {"key": "bad", "name": "Bad", **body}, format="json")
    assert response.status_code == 400, response.json()
    assert field in str(response.json())
    assert not Metric.objects.filter(key="bad").exists()


# ------------------------------------------------------------------- ratio


def test_a_ratio_metric_compares_numerator_over_denominator_with_the_delta_method(
    pm_api, client, pm_user
):
    make_metric("sessions", kind="mean")
    make_metric("completed", kind="mean")
    created = pm_api.post(
        "/api/v1/metrics/",
        {
            "key": "completion-rate",
            "name": "Completed sessions per session",
            "kind": "ratio",
            "numerator": "completed",
            "denominator": "sessions",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["numerator"] == "completed"
    experiment = _experiment("completion-rate")
    rng = np.random.default_rng(3)
    n = 2000
    z = {k: rng.poisson(3.0, n) + 1.0 for k in ("control", "treatment")}
    y = {"control": rng.binomial(z["control"].astype(int), 0.40).astype(float)}
    y["treatment"] = rng.binomial(z["treatment"].astype(int), 0.43).astype(float)
    plant(experiment, Metric.objects.get(key="sessions"), z)
    plant(experiment, Metric.objects.get(key="completed"), y)

    body = pm_api.post(f"/api/v1/experiments/{experiment.key}/analysis/").json()
    metric = body["metrics"][0]
    assert metric["ratio"] == {"numerator": "completed", "denominator": "sessions"}
    variants = {v["variant"]: v for v in metric["variants"]}

    def delta(yy, zz):
        ratio = yy.sum() / zz.sum()
        cov = np.cov(yy, zz, ddof=1)
        var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / zz.mean() ** 2
        return ratio, var

    (ra, va), (rb, vb) = delta(y["control"], z["control"]), delta(y["treatment"], z["treatment"])
    assert variants["control"]["mean"] == pytest.approx(ra, rel=1e-9)
    assert variants["treatment"]["std"] == pytest.approx(np.sqrt(vb), rel=1e-6)
    comparison = metric["comparisons"][0]
    se = np.sqrt(va / n + vb / n)
    assert comparison["absolute_effect"] == pytest.approx(rb - ra, rel=1e-9)
    assert comparison["se"] == pytest.approx(se, rel=1e-6)
    df = stats.welch_df(va, n, vb, n)
    assert comparison["p_value"] == pytest.approx(
        2 * scipy_stats.t.sf(abs(rb - ra) / se, df), rel=1e-6
    )
    report = pm_api.get(f"/api/v1/experiments/{experiment.key}/report/?format=csv")
    rows = list(csv.DictReader(io.StringIO(report.content.decode())))
    assert rows[0]["metric"] == "completion-rate"
    assert rows[0]["ratio"] == "completed/sessions"
    assert float(rows[0]["absolute_effect"]) == pytest.approx(rb - ra, rel=1e-9)
    md = pm_api.get(f"/api/v1/experiments/{experiment.key}/report/?format=md").content.decode()
    assert "completion-rate: ratio completed/sessions (delta method)" in md
    client.force_login(pm_user)
    page = client.get(f"/experiments/{experiment.key}/").content.decode()
    assert "ratio completed / sessions (delta method)" in page


def test_events_cannot_be_sent_for_a_ratio_metric():
    make_metric("sessions", kind="mean")
    make_metric("completed", kind="mean")
    make_metric(
        "rate",
        kind="ratio",
        numerator=Metric.objects.get(key="completed"),
        denominator=Metric.objects.get(key="sessions"),
    )
    ingestion.forget_metric_cache()
    result = ingestion.ingest_events([{"unit_id": "u1", "metric": "rate", "value": 1}])
    assert result.accepted == 0
    assert "rate" in str(result.rejected[0]["errors"]["metric"])
    assert not Event.objects.exists()


def test_the_delta_method_standard_error_matches_the_spread_over_simulated_experiments():
    rng = np.random.default_rng(4)
    n, runs = 1000, 2000
    estimates, ses = [], []
    for _ in range(runs):
        z = rng.poisson(2.0, n) + 1.0
        y = rng.binomial(z.astype(int), 0.3).astype(float) + rng.normal(0, 0.2, n)
        moments = stats.ratio_moments(
            n=n,
            y_sum=y.sum(),
            z_sum=z.sum(),
            y_squares=float(y @ y),
            z_squares=float(z @ z),
            yz=float(y @ z),
        )
        estimates.append(moments.mean)
        ses.append(np.sqrt(moments.variance / n))
    print(f"\nratio: sd of estimates {np.std(estimates):.6f}, mean delta se {np.mean(ses):.6f}")
    assert np.mean(ses) == pytest.approx(np.std(estimates, ddof=1), rel=0.05)


def test_the_admin_refuses_a_metric_definition_the_api_refuses(client, admin_user):
    client.force_login(admin_user)
    form = {
        "key": "from-admin",
        "name": "From the admin",
        "kind": "mean",
        "unit_aggregation": "sum",
        "missing_as_zero": "on",
        "higher_is_better": "on",
        "cap_kind": "percentile",
        "cap_value": 2,
    }
    refused = client.post("/admin/experiments/metric/add/", form)
    assert refused.status_code == 200
    assert "A percentile cap is a share in (0, 1)" in refused.content.decode()
    assert not Metric.objects.filter(key="from-admin").exists()
    accepted = client.post("/admin/experiments/metric/add/", {**form, "cap_value": 0.99})
    assert accepted.status_code == 302
    assert Metric.objects.get(key="from-admin").cap_value == 0.99

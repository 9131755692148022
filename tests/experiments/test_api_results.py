"""REST contract: analysis, results, snapshots, report and segments."""

import csv
import io
import json

import numpy as np
import pytest

from experiments import report
from experiments.models import Experiment, Snapshot
from tests.experiments.seeding import plant
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(db):
    make_metric("session_duration", kind="mean")
    make_metric("errors_seen", kind="binomial", higher_is_better=False)
    experiment = make_experiment("rec-v2", metrics=("session_duration",))
    link = experiment.metrics.create(metric=make_metric("errors_seen"), role="guardrail")
    assert link.role == "guardrail"
    Experiment.objects.filter(id=experiment.id).update(cuped_lookback_days=0)
    experiment.refresh_from_db()
    rng = np.random.default_rng(11)
    platforms = ["ios", "android", "web"]
    attributes = {
        k: [{"platform": platforms[i % 3], "country": f"c{i % 25}"} for i in range(600)]
        for k in ("control", "treatment")
    }
    plant(
        experiment,
        experiment.metrics.get(role="primary").metric,
        {"control": rng.normal(600, 120, 600), "treatment": rng.normal(640, 120, 600)},
        attributes_by_variant=attributes,
    )
    return experiment


def test_results_before_any_analysis_are_a_clear_404(pm_api, running):
    response = pm_api.get("/api/v1/experiments/rec-v2/results/")
    assert response.status_code == 404
    assert "no results yet" in response.json()["detail"]


def test_analysis_answers_201_with_the_contract_shape(pm_api, running):
    response = pm_api.post("/api/v1/experiments/rec-v2/analysis/")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {"experiment", "computed_at", "srm", "metrics", "decision"} <= set(body)
    assert set(body["srm"]) >= {"p_value", "flagged", "observed", "expected"}
    metric = body["metrics"][0]
    assert {"metric", "role", "variants", "comparisons"} <= set(metric)
    assert set(metric["variants"][0]) >= {"variant", "units", "mean", "std"}
    comparison = metric["comparisons"][0]
    assert set(comparison) >= {
        "variant",
        "control",
        "absolute_effect",
        "relative_effect",
        "ci_low",
        "ci_high",
        "p_value",
        "p_value_adjusted",
        "significant",
    }
    assert body["decision"]["verdict"] in {
        "success",
        "conditional",
        "failure",
        "inconclusive",
        "invalid",
    }
    assert body["decision"]["reasons"]
    assert pm_api.get("/api/v1/experiments/rec-v2/results/").json() == body


def test_primaries_and_guardrails_are_corrected_in_families_of_their_own(pm_api, running):
    rng = np.random.default_rng(3)
    errors = {
        k: np.where(rng.random(600) < rate, 1.0, np.nan)
        for k, rate in (("control", 0.05), ("treatment", 0.07))
    }
    plant(running, running.metrics.get(role="guardrail").metric, errors)
    body = pm_api.post("/api/v1/experiments/rec-v2/analysis/").json()
    primary, guardrail = (m["comparisons"][0] for m in body["metrics"])
    # One primary and one guardrail: each family has one test, so nothing to adjust.
    assert primary["p_value_adjusted"] == primary["sequential_p_value"]
    # The guardrail's p-value is one-sided for harm, not the two-sided one.
    assert guardrail["p_value_adjusted"] == guardrail["harm_p_value"]
    assert guardrail["harm_p_value"] != guardrail["sequential_p_value"]


def test_analysing_a_draft_is_a_conflict(pm_api):
    make_experiment("draft-one", start=False)
    response = pm_api.post("/api/v1/experiments/draft-one/analysis/")
    assert response.status_code == 409
    assert not Snapshot.objects.exists()


def test_only_product_managers_run_analyses(integration_api, executive_api, running):
    assert integration_api.post("/api/v1/experiments/rec-v2/analysis/").status_code == 403
    assert executive_api.post("/api/v1/experiments/rec-v2/analysis/").status_code == 403
    assert not Snapshot.objects.exists()


def test_snapshots_show_results_over_time(pm_api, running):
    pm_api.post("/api/v1/experiments/rec-v2/analysis/")
    pm_api.post("/api/v1/experiments/rec-v2/analysis/")
    body = pm_api.get("/api/v1/experiments/rec-v2/snapshots/").json()
    assert len(body["snapshots"]) == 2
    row = body["snapshots"][0]["comparisons"][0]
    assert {
        "metric",
        "variant",
        "absolute_effect",
        "ci_low",
        "sequential_ci_low",
        "sequential_p_value",
    } <= set(row)
    assert pm_api.get("/api/v1/experiments/rec-v2/snapshots/?limit=x").status_code == 400


def test_the_report_holds_the_verdict_the_snapshot_and_the_inputs_hash(pm_api, running):
    results = pm_api.post("/api/v1/experiments/rec-v2/analysis/").json()
    md = pm_api.get("/api/v1/experiments/rec-v2/report/?format=md")
    assert md.status_code == 200
    text = md.content.decode()
    assert f"**Verdict: {results['decision']['verdict'].upper()}**" in text
    assert results["inputs_hash"] in text
    assert f"Snapshot: {results['snapshot_id']}" in text
    assert md["Content-Disposition"].endswith('.md"')
    table = pm_api.get("/api/v1/experiments/rec-v2/report/?format=csv").content.decode()
    # Plain CSV: the header row first (no comment line a spreadsheet shows as data).
    first = table.split("\n", 1)[0]
    assert first.split(",") == report.REPORT_COLUMNS
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {r["metric"] for r in rows} == {"session_duration", "errors_seen"}
    assert all(set(r) == set(report.REPORT_COLUMNS) for r in rows)
    data = json.loads(pm_api.get("/api/v1/experiments/rec-v2/report/?format=json").content)
    assert data["verdict"] == results["decision"]["verdict"]
    assert data["snapshot_id"] == results["snapshot_id"]


def test_the_same_snapshot_always_gives_the_same_report(pm_api, running):
    pm_api.post("/api/v1/experiments/rec-v2/analysis/")
    first = pm_api.get("/api/v1/experiments/rec-v2/report/?format=md").content
    assert pm_api.get("/api/v1/experiments/rec-v2/report/?format=md").content == first


def test_an_unknown_report_format_is_refused(pm_api, running):
    pm_api.post("/api/v1/experiments/rec-v2/analysis/")
    response = pm_api.get("/api/v1/experiments/rec-v2/report/?format=pdf")
    assert response.status_code == 400
    assert "md, csv, json" in str(response.json())


def test_segments_break_results_down_by_an_exposure_attribute(pm_api, running):
    body = pm_api.get("/api/v1/experiments/rec-v2/segments/?attribute=platform").json()
    levels = {level["level"]: level for level in body["levels"]}
    assert set(levels) == {"ios", "android", "web"}
    assert levels["ios"]["units"] == 400
    cell = levels["web"]["metrics"][0]["comparisons"][0]
    assert {"absolute_effect", "ci_low", "p_value", "p_value_adjusted", "significant"} <= set(cell)


def test_segments_keep_the_20_largest_levels_and_group_the_rest(pm_api, running):
    body = pm_api.get("/api/v1/experiments/rec-v2/segments/?attribute=country").json()
    names = [level["level"] for level in body["levels"]]
    assert len(names) == 21
    assert names[-1] == "other"
    assert sum(level["units"] for level in body["levels"]) == 1200


def test_segments_need_an_attribute(pm_api, running):
    assert pm_api.get("/api/v1/experiments/rec-v2/segments/").status_code == 400

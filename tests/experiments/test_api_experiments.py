"""REST contract v1: metrics and experiments."""

import pytest

from experiments.models import Experiment, Metric, Variant
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db

EXPERIMENT = {
    "key": "rec-v2",
    "name": "Recommendation engine v2",
    "hypothesis": "The ensemble raises adoption by 10 pp",
    "traffic_percent": 50,
    "alpha": 0.05,
    "variants": [
        {"key": "control", "weight": 1, "is_control": True, "payload": {"engine": "v1"}},
        {"key": "treatment", "weight": 1, "is_control": False, "payload": {"engine": "v2"}},
    ],
    "metrics": [{"metric": "adoption", "role": "primary", "min_effect": 0.1}],
}


def test_a_product_manager_creates_a_metric(pm_api):
    response = pm_api.post(
        "/api/v1/metrics/",
        {
            "key": "mentor_match",
            "name": "Mentor match",
            "kind": "binomial",
            "higher_is_better": True,
            "missing_as_zero": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "binomial"


def test_a_duplicate_metric_key_is_a_conflict(pm_api):
    make_metric("adoption")
    response = pm_api.post(
        "/api/v1/metrics/", {"key": "adoption", "name": "x", "kind": "mean"}, format="json"
    )
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_a_metric_with_an_unknown_kind_is_refused_and_not_stored(pm_api):
    response = pm_api.post(
        "/api/v1/metrics/", {"key": "x", "name": "x", "kind": "median"}, format="json"
    )
    assert response.status_code == 400
    assert "kind" in response.json()
    assert not Metric.objects.filter(key="x").exists()


def test_an_integration_cannot_create_metrics(integration_api):
    response = integration_api.post(
        "/api/v1/metrics/", {"key": "x", "name": "x", "kind": "mean"}, format="json"
    )
    assert response.status_code == 403


def test_anonymous_requests_get_401(anon_api):
    assert anon_api.get("/api/v1/experiments/").status_code == 401
    assert anon_api.post("/api/v1/assignments/", {}, format="json").status_code == 401


def test_creating_an_experiment_answers_the_contract(pm_api):
    make_metric("adoption")
    response = pm_api.post("/api/v1/experiments/", EXPERIMENT, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["key"] == "rec-v2"
    assert body["traffic_percent"] == 50
    assert len(body["seed"]) == 32
    assert [v["key"] for v in body["variants"]] == ["control", "treatment"]
    assert body["variants"][0]["payload"] == {"engine": "v1"}
    assert body["metrics"] == [{"metric": "adoption", "role": "primary", "min_effect": 0.1}]
    assert body["owner"] == "pm"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"variants": [{"key": "a", "is_control": True}]}, "variants", "at least two"),
        (
            {"variants": [{"key": "a", "is_control": True}, {"key": "b", "is_control": True}]},
            "variants",
            "Exactly one",
        ),
        (
            {"variants": [{"key": "a", "is_control": True}, {"key": "b", "weight": 0}]},
            "variants",
            "greater than 0",
        ),
        (
            {"variants": [{"key": "a", "is_control": True}, {"key": "a"}]},
            "variants",
            "unique",
        ),
        ({"metrics": [{"metric": "nope"}]}, "metrics", "Unknown metric"),
        ({"traffic_percent": 120}, "traffic_percent", "less than or equal to 100"),
        ({"alpha": 0.7}, "alpha", "between 0 and 0.5"),
        ({"key": "not a slug"}, "key", "slug"),
    ],
)
def test_an_invalid_experiment_is_refused_with_a_message_and_nothing_stored(
    pm_api, change, field, message
):
    make_metric("adoption")
    response = pm_api.post("/api/v1/experiments/", {**EXPERIMENT, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert message in str(response.json()[field])
    assert not Experiment.objects.exists()
    assert not Variant.objects.exists()


def test_a_duplicate_experiment_key_is_a_conflict(pm_api):
    make_experiment("rec-v2", start=False)
    response = pm_api.post("/api/v1/experiments/", EXPERIMENT, format="json")
    assert response.status_code == 409


def test_start_and_stop_follow_the_lifecycle(pm_api):
    make_experiment("rec-v2", start=False)
    started = pm_api.post("/api/v1/experiments/rec-v2/start/")
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert started.json()["started_at"]
    again = pm_api.post("/api/v1/experiments/rec-v2/start/")
    assert again.status_code == 409
    assert "it is running" in again.json()["detail"]
    stopped = pm_api.post("/api/v1/experiments/rec-v2/stop/")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert pm_api.post("/api/v1/experiments/rec-v2/stop/").status_code == 409


def test_stopping_a_draft_is_a_conflict(pm_api):
    make_experiment("rec-v2", start=False)
    response = pm_api.post("/api/v1/experiments/rec-v2/stop/")
    assert response.status_code == 409
    assert Experiment.objects.get().status == "draft"


def test_an_experiment_without_a_primary_metric_cannot_start(pm_api):
    make_experiment("rec-v2", start=False, metrics=())
    response = pm_api.post("/api/v1/experiments/rec-v2/start/")
    assert response.status_code == 409
    assert "primary metric" in response.json()["detail"]


def test_integrations_and_executives_cannot_start_experiments(integration_api, executive_api):
    make_experiment("rec-v2", start=False)
    assert integration_api.post("/api/v1/experiments/rec-v2/start/").status_code == 403
    assert executive_api.post("/api/v1/experiments/rec-v2/start/").status_code == 403
    assert Experiment.objects.get().status == "draft"


def test_unknown_experiment_is_404(pm_api):
    response = pm_api.get("/api/v1/experiments/nope/")
    assert response.status_code == 404
    assert "Unknown experiment 'nope'" in response.json()["detail"]
    assert pm_api.post("/api/v1/experiments/nope/start/").status_code == 404


def test_traffic_can_be_raised_but_not_lowered_while_running(pm_api):
    make_experiment("rec-v2", traffic_percent=10)
    assert (
        pm_api.patch("/api/v1/experiments/rec-v2/", {"traffic_percent": 50}, format="json").json()[
            "traffic_percent"
        ]
        == 50
    )
    lowered = pm_api.patch("/api/v1/experiments/rec-v2/", {"traffic_percent": 5}, format="json")
    assert lowered.status_code == 409
    assert Experiment.objects.get().traffic_percent == 50


def test_list_filters_by_status(pm_api):
    make_experiment("a")
    make_experiment("b", start=False)
    keys = [e["key"] for e in pm_api.get("/api/v1/experiments/?status=running").json()]
    assert keys == ["a"]

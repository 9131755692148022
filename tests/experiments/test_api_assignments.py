"""Assignments over REST and the configuration cache behind them."""

import pytest
from scipy import stats

from experiments import hashing
from experiments.models import Exposure
from experiments.services import assignment, lifecycle
from tests.factories import make_experiment

pytestmark = pytest.mark.django_db


def test_a_unit_gets_a_variant_with_its_payload(integration_api):
    make_experiment("rec-v2")
    response = integration_api.post(
        "/api/v1/assignments/",
        {"experiment": "rec-v2", "unit_id": "mentee-1", "attributes": {"platform": "ios"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"experiment", "unit_id", "in_experiment", "variant", "payload"}
    assert body["in_experiment"] is True
    assert body["variant"] in {"control", "treatment"}
    assert body["payload"] == {"engine": body["variant"]}
    exposure = Exposure.objects.get()
    assert exposure.unit_id == "mentee-1"
    assert exposure.attributes == {"platform": "ios"}


def test_the_same_unit_always_gets_the_same_variant_and_one_exposure(integration_api):
    make_experiment("rec-v2")
    answers = {
        integration_api.post(
            "/api/v1/assignments/", {"experiment": "rec-v2", "unit_id": "u-7"}, format="json"
        ).json()["variant"]
        for _ in range(5)
    }
    assert len(answers) == 1
    assert Exposure.objects.count() == 1


def test_a_repeat_assignment_reads_and_writes_nothing_in_the_database(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    make_experiment("rec-v2")
    with django_capture_on_commit_callbacks(execute=True):
        assignment.assign_unit(experiment_key="rec-v2", unit_id="u-1")
    with django_assert_num_queries(0):
        for _ in range(10):
            assignment.assign_unit(experiment_key="rec-v2", unit_id="u-1")


def test_a_first_assignment_costs_only_the_exposure_insert(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    make_experiment("rec-v2")
    with django_capture_on_commit_callbacks(execute=True):
        assignment.assign_unit(experiment_key="rec-v2", unit_id="warm-up")
    with django_assert_num_queries(1):
        assignment.assign_unit(experiment_key="rec-v2", unit_id="new-unit")


def test_a_draft_or_stopped_experiment_puts_nobody_in(
    integration_api, pm_api, django_capture_on_commit_callbacks
):
    make_experiment("rec-v2", start=False)
    body = integration_api.post(
        "/api/v1/assignments/", {"experiment": "rec-v2", "unit_id": "u"}, format="json"
    ).json()
    assert body == {
        "experiment": "rec-v2",
        "unit_id": "u",
        "in_experiment": False,
        "variant": None,
        "payload": None,
    }
    with django_capture_on_commit_callbacks(execute=True):
        pm_api.post("/api/v1/experiments/rec-v2/start/")
    assert (
        integration_api.post(
            "/api/v1/assignments/", {"experiment": "rec-v2", "unit_id": "u"}, format="json"
        ).json()["in_experiment"]
        is True
    )
    with django_capture_on_commit_callbacks(execute=True):
        pm_api.post("/api/v1/experiments/rec-v2/stop/")
    # The stop reaches this process at once: the cached configuration was dropped on commit.
    assert (
        integration_api.post(
            "/api/v1/assignments/", {"experiment": "rec-v2", "unit_id": "u"}, format="json"
        ).json()["in_experiment"]
        is False
    )
    assert Exposure.objects.count() == 1


def test_assignment_errors_are_clear(integration_api):
    make_experiment("rec-v2")
    unknown = integration_api.post(
        "/api/v1/assignments/", {"experiment": "nope", "unit_id": "u"}, format="json"
    )
    assert unknown.status_code == 404
    assert "Unknown experiment" in unknown.json()["detail"]
    missing = integration_api.post("/api/v1/assignments/", {"experiment": "rec-v2"}, format="json")
    assert missing.status_code == 400
    assert "unit_id" in missing.json()
    too_long = integration_api.post(
        "/api/v1/assignments/", {"experiment": "rec-v2", "unit_id": "x" * 201}, format="json"
    )
    assert too_long.status_code == 400
    assert not Exposure.objects.exists()


def test_executives_cannot_send_data(executive_api):
    make_experiment("rec-v2")
    response = executive_api.post(
        "/api/v1/assignments/", {"experiment": "rec-v2", "unit_id": "u"}, format="json"
    )
    assert response.status_code == 403
    assert "permission" in response.json()["detail"]


def test_batch_assignment_answers_each_unit_and_records_nothing(integration_api):
    make_experiment("rec-v2", traffic_percent=50)
    units = [f"u-{i}" for i in range(1000)]
    response = integration_api.post(
        "/api/v1/assignments/batch/", {"experiment": "rec-v2", "unit_ids": units}, format="json"
    )
    assert response.status_code == 200
    answers = response.json()["assignments"]
    assert [a["unit_id"] for a in answers] == units
    assert set(answers[0]) == {"unit_id", "in_experiment", "variant"}
    inside = [a for a in answers if a["in_experiment"]]
    assert 400 < len(inside) < 600
    assert all(a["variant"] is None for a in answers if not a["in_experiment"])
    assert not Exposure.objects.exists()


def test_a_batch_over_1000_units_is_refused(integration_api):
    make_experiment("rec-v2")
    response = integration_api.post(
        "/api/v1/assignments/batch/",
        {"experiment": "rec-v2", "unit_ids": [str(i) for i in range(1001)]},
        format="json",
    )
    assert response.status_code == 400
    assert "unit_ids" in response.json()


def test_sdk_config_lets_a_growthbook_sdk_reproduce_every_assignment(integration_api):
    make_experiment("rec-v2", weights=(0.2, 0.3, 0.5), traffic_percent=80)
    config = integration_api.get("/api/v1/experiments/rec-v2/sdk-config/").json()
    assert set(config) == {
        "key",
        "variations",
        "weights",
        "coverage",
        "hashVersion",
        "seed",
        "hashAttribute",
    }
    assert config["hashVersion"] == 2 and config["hashAttribute"] == "id"
    assert config["variations"] == ["control", "treatment", "treatment-2"]
    assert config["weights"] == pytest.approx([0.2, 0.3, 0.5])
    assert config["coverage"] == pytest.approx(0.8)
    units = [f"mentee-{i}" for i in range(1000)]
    ours = integration_api.post(
        "/api/v1/assignments/batch/", {"experiment": "rec-v2", "unit_ids": units}, format="json"
    ).json()["assignments"]
    ranges = hashing.get_bucket_ranges(3, config["coverage"], config["weights"])
    for unit, answer in zip(units, ours, strict=True):
        # What the SDK does, step by step, from the published definition only.
        n = hashing.gb_hash(config["seed"], unit, config["hashVersion"])
        index = hashing.choose_variation(n, ranges)
        expected = None if index < 0 else config["variations"][index]
        assert answer["variant"] == expected


def test_raising_traffic_never_moves_a_unit_that_was_in(django_capture_on_commit_callbacks):
    experiment = make_experiment("rec-v2", traffic_percent=10)
    units = [f"u-{i}" for i in range(1000)]
    before = {
        a.unit_id: a.variant
        for a in assignment.assign_units(experiment_key="rec-v2", unit_ids=units)
        if a.in_experiment
    }
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.set_traffic(experiment=experiment, traffic_percent=60)
    after = {
        a.unit_id: a.variant
        for a in assignment.assign_units(experiment_key="rec-v2", unit_ids=units)
        if a.in_experiment
    }
    assert len(after) > 3 * len(before) > 150
    assert all(after[u] == v for u, v in before.items())


def test_variants_split_by_weight():
    make_experiment("rec-v2", weights=(1, 1))
    counts = {"control": 0, "treatment": 0}
    for start in range(0, 20_000, 1000):
        for a in assignment.assign_units(
            experiment_key="rec-v2", unit_ids=[f"u{i}" for i in range(start, start + 1000)]
        ):
            counts[a.variant] += 1
    assert stats.chisquare(list(counts.values())).pvalue > 0.001


def test_the_lean_assignment_endpoint_keeps_the_api_error_contract(integration_api, anon_api):
    make_experiment("rec-v2")
    bad_token = anon_api.post(
        "/api/v1/assignments/",
        {"experiment": "rec-v2", "unit_id": "u"},
        format="json",
        HTTP_AUTHORIZATION="Token not-a-token",
    )
    assert bad_token.status_code == 401
    assert bad_token.json() == {"detail": "Invalid token."}
    assert bad_token["WWW-Authenticate"] == "Token"
    assert integration_api.get("/api/v1/assignments/").status_code == 405
    broken = integration_api.post(
        "/api/v1/assignments/", "{not json", content_type="application/json"
    )
    assert broken.status_code == 400
    assert "JSON parse error" in broken.json()["detail"]
    not_object = integration_api.post("/api/v1/assignments/", [1, 2], format="json")
    assert not_object.status_code == 400
    assert not Exposure.objects.exists()


def test_the_schema_documents_the_lean_assignment_endpoint(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/assignments/"]["post"]
    assert "AssignmentInput" in str(operation["requestBody"])

"""REST contract v1 for rollouts, transitions and the audit log."""

import pytest
from django.contrib.auth.models import Group

from common.audit import audit_of
from common.models import AuditAction, AuditEntry
from rollout.models import Rollout, StageTransition
from tests.conftest import token_client
from tests.factories import feed, make_experiment, make_rollout

pytestmark = pytest.mark.django_db


def test_creating_a_rollout_uses_the_seed_defaults(pm_api):
    response = pm_api.post(
        "/api/v1/rollouts/",
        {"key": "rec-v2", "name": "Recommendations v2", "feature": "recommendations"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["stage"], body["canary_percent"], body["state"]) == ("internal", 0, "active")
    assert [s["name"] for s in body["stages"]] == ["internal", "canary", "ab", "full"]
    assert body["stages"][1]["percent"] == 5 and body["stages"][1]["min_duration_hours"] == 48
    assert body["sla"] == {"max_error_rate": 0.005, "max_p95_ms": 100.0, "min_availability": 0.9995}
    assert body["rollback"]["max_error_rate"] == 0.01
    assert AuditEntry.objects.filter(action="rollout_created").count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stages": [{"name": "a", "percent": 50}, {"name": "b", "percent": 10}]}, "decrease"),
        ({"sla": {"max_error_rate": 0.02}}, "must be above sla.max_error_rate"),
        ({"experiment": "nope"}, "Unknown experiment"),
    ],
)
def test_an_invalid_rollout_is_refused_and_not_stored(pm_api, change, message):
    response = pm_api.post("/api/v1/rollouts/", {"key": "r", "name": "r", **change}, format="json")
    assert response.status_code == 400
    assert message in str(response.json())
    assert not Rollout.objects.exists()


def test_a_feature_has_one_rollout_in_progress(pm_api):
    make_rollout("first")
    response = pm_api.post(
        "/api/v1/rollouts/",
        {"key": "second", "name": "s", "feature": "recommendations"},
        format="json",
    )
    assert response.status_code == 409
    assert "already has a rollout in progress" in response.json()["detail"]


def test_get_rollout_answers_the_contract(pm_api):
    rollout = make_rollout(stage="canary")
    feed(rollout, "stable", 2000)
    feed(rollout, "canary", 2000)
    from rollout.services.evaluation import evaluate_rollout

    evaluate_rollout(rollout=rollout)
    body = pm_api.get(f"/api/v1/rollouts/{rollout.key}/").json()
    assert {"key", "stage", "canary_percent", "state", "health"} <= set(body)
    assert body["health"]["verdict"] == "healthy"
    assert pm_api.get("/api/v1/rollouts/nope/").status_code == 404


def test_route_answers_a_version(integration_api):
    rollout = make_rollout(stage="canary")
    body = integration_api.post(
        f"/api/v1/rollouts/{rollout.key}/route/", {"unit_id": "u-1"}, format="json"
    ).json()
    assert body["version"] in ("stable", "canary")
    assert (
        integration_api.post(
            f"/api/v1/rollouts/{rollout.key}/route/", {}, format="json"
        ).status_code
        == 400
    )


def test_health_answers_per_version_numbers(pm_api):
    rollout = make_rollout(stage="canary")
    feed(rollout, "stable", 100)
    body = pm_api.get(f"/api/v1/rollouts/{rollout.key}/health/").json()
    assert body["verdict"] == "insufficient_data"
    assert set(body["versions"]) == {"stable", "canary"}
    assert set(body["versions"]["stable"]) >= {
        "requests",
        "error_rate",
        "availability",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    }
    assert body["window"]["minutes"] == 5


def healthy_canary():
    rollout = make_rollout(stage="canary")
    feed(rollout, "stable", 2000)
    feed(rollout, "canary", 2000)
    return rollout


def test_a_product_manager_requests_and_an_executive_approves(pm_api, executive_api):
    rollout = healthy_canary()
    requested = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/",
        {"to_stage": "ab", "comment": "canary looks good"},
        format="json",
    )
    assert requested.status_code == 201, requested.json()
    transition = requested.json()
    assert transition["status"] == "pending"
    assert transition["evidence"]["health"]["verdict"] == "healthy"
    assert transition["evidence"]["health"]["versions"]["canary"]["requests"] == 2000
    approved = executive_api.post(
        f"/api/v1/transitions/{transition['id']}/approve/", {"comment": "go"}, format="json"
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "applied"
    rollout.refresh_from_db()
    assert (rollout.stage, rollout.canary_percent) == ("ab", 50)
    actions = list(audit_of(rollout).values_list("action", flat=True))
    assert AuditAction.REQUESTED in actions and AuditAction.APPLIED in actions


def test_who_may_decide_a_transition(pm_api, integration_api, anon_api, django_user_model):
    rollout = healthy_canary()
    both = django_user_model.objects.create_user("both")
    both.groups.add(
        Group.objects.get(name="Product managers"), Group.objects.get(name="Executives")
    )
    requester = token_client(both)
    transition = requester.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    ).json()
    url = f"/api/v1/transitions/{transition['id']}/approve/"
    assert pm_api.post(url, {}, format="json").status_code == 403
    own = requester.post(url, {}, format="json")
    assert own.status_code == 403
    assert "requester cannot" in own.json()["detail"]
    assert integration_api.post(url, {}, format="json").status_code == 403
    assert anon_api.post(url, {}, format="json").status_code == 401
    assert StageTransition.objects.get().status == "pending"
    rollout.refresh_from_db()
    assert rollout.stage == "canary"


def test_a_transition_is_applied_once(pm_api, executive_api):
    rollout = healthy_canary()
    transition = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    ).json()
    url = f"/api/v1/transitions/{transition['id']}/approve/"
    assert executive_api.post(url, {}, format="json").status_code == 200
    again = executive_api.post(url, {}, format="json")
    assert again.status_code == 409
    assert AuditEntry.objects.filter(action=AuditAction.APPLIED).count() == 1


def test_the_gate_refuses_a_request_and_says_why(pm_api):
    rollout = make_rollout(stage="canary", min_hours=48)
    response = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "48.0 h left" in detail and "stage record is insufficient_data" in detail
    wrong = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "full"}, format="json"
    )
    assert wrong.status_code == 409
    assert "the next stage is ab" in wrong.json()["detail"]


def test_full_needs_the_experiment_to_succeed(pm_api):
    experiment = make_experiment("rec-v2")
    rollout = make_rollout(stage="ab", experiment=experiment)
    feed(rollout, "stable", 2000)
    feed(rollout, "canary", 2000)
    response = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "full"}, format="json"
    )
    assert response.status_code == 409
    assert "decision not computed yet, needs success" in response.json()["detail"]


def test_evidence_that_flips_before_approval_invalidates_the_transition(pm_api, executive_api):
    rollout = healthy_canary()
    transition = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    ).json()
    feed(rollout, "canary", 20000, errors=150)  # now degraded
    response = executive_api.post(
        f"/api/v1/transitions/{transition['id']}/approve/", {}, format="json"
    )
    assert response.status_code == 409
    assert "invalidated" in response.json()["detail"]
    assert StageTransition.objects.get().status == "invalidated"
    rollout.refresh_from_db()
    assert rollout.stage == "canary"


def test_an_executive_rejects_with_a_comment(pm_api, executive_api):
    rollout = healthy_canary()
    transition = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    ).json()
    response = executive_api.post(
        f"/api/v1/transitions/{transition['id']}/reject/",
        {"comment": "wait for Monday"},
        format="json",
    )
    assert response.json()["status"] == "rejected"
    assert response.json()["decision_comment"] == "wait for Monday"


def test_one_pending_transition_at_a_time(pm_api):
    rollout = healthy_canary()
    url = f"/api/v1/rollouts/{rollout.key}/transitions/"
    assert pm_api.post(url, {"to_stage": "ab"}, format="json").status_code == 201
    second = pm_api.post(url, {"to_stage": "ab"}, format="json")
    assert second.status_code == 409


def test_manual_rollback_and_rearm(pm_api, integration_api):
    rollout = make_rollout(stage="canary")
    url = f"/api/v1/rollouts/{rollout.key}/rollback/"
    assert integration_api.post(url, {"reason": "x"}, format="json").status_code == 403
    assert pm_api.post(url, {}, format="json").status_code == 400
    body = pm_api.post(url, {"reason": "bad reviews"}, format="json").json()
    assert (body["state"], body["canary_percent"]) == ("rolled_back", 0)
    assert pm_api.post(url, {"reason": "again"}, format="json").status_code == 409
    rearmed = pm_api.post(f"/api/v1/rollouts/{rollout.key}/rearm/", {}, format="json").json()
    assert (rearmed["state"], rearmed["stage"]) == ("active", "internal")
    assert (
        AuditEntry.objects.filter(action=AuditAction.ROLLED_BACK, data__automatic=False).count()
        == 1
    )


def test_metrics_series_per_version(pm_api):
    rollout = make_rollout(stage="canary")
    feed(rollout, "stable", 100, errors=1, latency_ms=50)
    body = pm_api.get(f"/api/v1/rollouts/{rollout.key}/metrics/").json()
    point = body["versions"]["stable"][0]
    assert point["requests"] == 100
    assert point["error_rate"] == pytest.approx(0.01)
    assert point["p95_ms"] == pytest.approx(50, rel=0.02)
    assert body["versions"]["canary"] == []
    assert (
        pm_api.get(f"/api/v1/rollouts/{rollout.key}/metrics/?since=2026-01-01").status_code == 400
    )
    assert (
        pm_api.get(
            f"/api/v1/rollouts/{rollout.key}/metrics/?since=2026-01-01T00:00:00%2B00:00"
        ).status_code
        == 200
    )


def test_the_audit_endpoint_lists_the_rollouts_entries_newest_first(pm_api, pm_user):
    rollout = make_rollout()
    make_rollout("other", feature="other")
    url = f"/api/v1/rollouts/{rollout.key}/rollback/"
    assert pm_api.post(url, {"reason": "bad reviews"}, format="json").status_code == 200
    entries = pm_api.get(f"/api/v1/rollouts/{rollout.key}/audit/").json()
    assert [e["action"] for e in entries] == ["rolled_back", "rollout_created"]
    newest = entries[0]
    assert set(newest) == {
        "id",
        "created_at",
        "rollout",
        "actor",
        "action",
        "message",
        "data",
        "object_type",
        "object_key",
    }
    assert (newest["rollout"], newest["object_type"], newest["object_key"]) == (
        "rec-rollout",
        "rollout",
        "rec-rollout",
    )
    assert newest["actor"] == pm_user.username
    assert newest["data"]["automatic"] is False
    assert pm_api.get("/api/v1/rollouts/nope/audit/").status_code == 404

"""The rollout lifecycle as people meet it over HTTP: requests, approvals that
wait through a quiet hour, canary-vs-stable, 100 % that means 100 %, the
explicit actions, and every route by which a product manager might try to
raise a share on their own."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.models import AuditEntry
from rollout import config_cache, router
from rollout.models import Rollout, StageTransition
from rollout.services.evaluation import evaluate_rollout
from tests.factories import feed, make_rollout

pytestmark = pytest.mark.django_db

OWN_PLAN = [
    {"name": "dogfood", "percent": 0},
    {"name": "pilot", "percent": 5},
    {"name": "everyone", "percent": 100},
]


def at(monkeypatch, when):
    """Move the platform's clock (services read django.utils.timezone.now)."""
    monkeypatch.setattr(timezone, "now", lambda: when)


def healthy_traffic(rollout, n=3000):
    feed(rollout, "stable", n)
    feed(rollout, "canary", n)


def fresh_units(rollout_key, n=1000, prefix="fresh"):
    config_cache.clear_local()
    return {router.route(rollout_key, f"{prefix}-{i}").version for i in range(n)}


def test_a_pending_approval_survives_a_quiet_half_hour_and_is_approved(
    pm_api, executive_api, monkeypatch
):
    rollout = make_rollout(stage="canary")
    healthy_traffic(rollout)
    answer = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    transition_id = answer.json()["id"]

    start = timezone.now()
    for minutes in (5, 10, 20, 30):  # the beat keeps evaluating; no traffic arrives
        at(monkeypatch, start + timedelta(minutes=minutes))
        verdict = evaluate_rollout(rollout=Rollout.objects.get(id=rollout.id))
        assert verdict.verdict == "insufficient_data"  # the window is empty …
    transition = StageTransition.objects.get(id=transition_id)
    assert transition.status == "pending"  # … and the request waits for its decision

    page = executive_api.get(f"/api/v1/rollouts/{rollout.key}/")
    assert page.json()["gate"]["ready"] is True  # judged on the stage's record
    approved = executive_api.post(
        f"/api/v1/transitions/{transition_id}/approve/", {}, format="json"
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "applied"
    assert approved.json()["decision_evidence"]["stage_record"]["verdict"] == "healthy"
    rollout.refresh_from_db()
    assert (rollout.stage, rollout.canary_percent) == ("ab", 50.0)
    actions = list(AuditEntry.objects.filter(object_id=rollout.id).values_list("action", flat=True))
    assert {"requested", "approved", "applied"} <= set(actions)


def test_a_pending_approval_survives_hours_and_the_sealed_record_is_reused(
    pm_api, executive_api, monkeypatch
):
    rollout = make_rollout(stage="canary")
    healthy_traffic(rollout)
    transition = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    ).json()
    start = timezone.now()
    for hours in (1, 2, 3):
        at(monkeypatch, start + timedelta(hours=hours))
        evaluate_rollout(rollout=Rollout.objects.get(id=rollout.id))
    assert StageTransition.objects.get(id=transition["id"]).status == "pending"
    detail = executive_api.get(f"/api/v1/rollouts/{rollout.key}/").json()
    assert detail["gate"]["ready"], detail["gate"]
    assert (
        executive_api.post(
            f"/api/v1/transitions/{transition['id']}/approve/", {}, format="json"
        ).status_code
        == 200
    )


def test_a_degraded_canary_invalidates_the_pending_approval(pm_api, executive_api):
    rollout = make_rollout(stage="canary")
    healthy_traffic(rollout)
    transition = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    ).json()
    feed(rollout, "canary", 4000, errors=30)  # 0.75 %: past the SLA, short of rollback
    verdict = evaluate_rollout(rollout=Rollout.objects.get(id=rollout.id))
    assert verdict.verdict == "degraded"
    stored = StageTransition.objects.get(id=transition["id"])
    assert stored.status == "invalidated"
    assert "degraded" in stored.invalidation_reason
    assert Rollout.objects.get(id=rollout.id).state == "active"  # held, not rolled back
    late = executive_api.post(f"/api/v1/transitions/{transition['id']}/approve/", {}, format="json")
    assert late.status_code == 409


def test_a_canary_worse_than_stable_is_degraded_and_not_rolled_back():
    rollout = make_rollout(stage="canary")
    feed(rollout, "stable", 40_000, errors=20)  # 0.05 %
    feed(rollout, "canary", 40_000, errors=180)  # 0.45 %: inside the SLA of 0.5 %
    verdict = evaluate_rollout(rollout=rollout)
    assert verdict.verdict == "degraded"
    reasons = " ".join(verdict.report["reasons"])
    assert "0.45 %" in reasons and "0.05 %" in reasons, reasons
    rollout.refresh_from_db()
    assert rollout.state == "active" and rollout.canary_percent == 5.0


def test_the_journey_with_its_own_stage_names_ends_at_100_percent(
    pm_api, executive_api, integration_api
):
    created = pm_api.post(
        "/api/v1/rollouts/",
        {"key": "mentor-v2", "name": "Mentor v2", "feature": "conversations", "stages": OWN_PLAN},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["canary_percent"] == 0
    assert created.json()["next_stage"]["name"] == "pilot"
    rollout = Rollout.objects.get(key="mentor-v2")

    def step(to_stage):
        requested = pm_api.post(
            "/api/v1/rollouts/mentor-v2/transitions/", {"to_stage": to_stage}, format="json"
        )
        assert requested.status_code == 201, requested.json()
        approved = executive_api.post(
            f"/api/v1/transitions/{requested.json()['id']}/approve/",
            {"comment": "ok"},
            format="json",
        )
        assert approved.status_code == 200, approved.json()

    step("pilot")  # a staff-only stage with no traffic can be left
    healthy_traffic(rollout)
    step("everyone")
    detail = integration_api.get("/api/v1/rollouts/mentor-v2/").json()
    assert (detail["stage"], detail["role"], detail["canary_percent"]) == ("everyone", "full", 100)
    assert detail["state"] == "active" and detail["next_stage"] is None
    assert fresh_units("mentor-v2") == {"canary"}

    completed = pm_api.post("/api/v1/rollouts/mentor-v2/complete/", {}, format="json")
    assert completed.status_code == 200, completed.json()
    assert completed.json()["state"] == "completed"
    assert fresh_units("mentor-v2", prefix="later") == {"canary"}
    feature_routes = {
        router.route_feature("conversations", f"next-day-{i}").version for i in range(1000)
    }
    assert feature_routes == {"canary"}  # the new version stays served after completion

    again = pm_api.post("/api/v1/rollouts/mentor-v2/complete/", {}, format="json")
    assert again.status_code == 409


def test_the_platform_completes_the_rollout_after_the_last_stages_time(executive_api):
    rollout = make_rollout(stage="full")
    evaluate_rollout(rollout=rollout)
    rollout.refresh_from_db()
    assert rollout.state == "completed"
    assert AuditEntry.objects.filter(object_id=rollout.id, action="completed").count() == 1
    config_cache.clear_local()
    assert {router.route_feature("recommendations", f"u{i}").version for i in range(500)} == {
        "canary"
    }


def test_a_step_without_approval_is_applied_by_the_platform():
    plan = [
        {"name": "internal", "percent": 0},
        {"name": "canary", "percent": 5},
        {"name": "wider", "percent": 20, "needs_approval": False},
        {"name": "full", "percent": 100},
    ]
    rollout = make_rollout(stages=plan, stage="canary")
    healthy_traffic(rollout)
    evaluate_rollout(rollout=rollout)
    rollout.refresh_from_db()
    assert (rollout.stage, rollout.canary_percent) == ("wider", 20.0)
    applied = rollout.transitions.get()
    assert applied.status == "applied" and applied.decided_by is None


def test_pause_resume_and_rearm_are_explicit_audited_actions(pm_api, executive_api):
    rollout = make_rollout(stage="canary")
    paused = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/pause/", {"comment": "hold"}, format="json"
    )
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert paused.json()["gate"]["ready"] is False
    assert (
        pm_api.post(f"/api/v1/rollouts/{rollout.key}/pause/", {}, format="json").status_code == 409
    )
    healthy_traffic(rollout)
    requested = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "ab"}, format="json"
    )
    assert requested.status_code == 409 and "paused" in requested.json()["detail"]
    assert (
        pm_api.post(f"/api/v1/rollouts/{rollout.key}/resume/", {}, format="json").status_code == 200
    )
    rolled = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/rollback/", {"reason": "drill"}, format="json"
    )
    assert rolled.status_code == 200
    rearmed = executive_api.post(f"/api/v1/rollouts/{rollout.key}/rearm/", {}, format="json")
    assert rearmed.status_code == 200
    assert (rearmed.json()["stage"], rearmed.json()["canary_percent"]) == ("internal", 0)
    actions = set(AuditEntry.objects.filter(object_id=rollout.id).values_list("action", flat=True))
    assert {"paused", "resumed", "rolled_back", "rearmed"} <= actions


def test_executives_read_transitions(executive_api):
    rollout = make_rollout()
    assert executive_api.get(f"/api/v1/rollouts/{rollout.key}/transitions/").status_code == 200


# -- a product manager cannot raise a share above 0 % alone, by any route ------------------


def test_api_route_a_product_manager_cannot_approve_their_own_step(pm_api):
    rollout = make_rollout()
    requested = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/transitions/", {"to_stage": "canary"}, format="json"
    )
    assert requested.status_code == 201
    denied = pm_api.post(
        f"/api/v1/transitions/{requested.json()['id']}/approve/", {}, format="json"
    )
    assert denied.status_code == 403
    rollout.refresh_from_db()
    assert rollout.canary_percent == 0
    assert fresh_units(rollout.key) == {"stable"}


@pytest.mark.parametrize(
    "stages",
    [
        [{"name": "all", "percent": 100}, {"name": "done", "percent": 100}],
        [{"name": "start", "percent": 5}, {"name": "all", "percent": 100}],
        [{"name": "start", "percent": 0}, {"name": "all", "percent": 100, "needs_approval": False}],
    ],
)
def test_second_rollout_route_a_new_rollout_never_starts_above_zero(pm_api, stages):
    first = make_rollout("first", stage="canary")
    assert (
        pm_api.post("/api/v1/rollouts/first/rollback/", {"reason": "x"}, format="json").status_code
        == 200
    )
    second = pm_api.post(
        "/api/v1/rollouts/",
        {"key": "second", "name": "Second", "feature": first.feature, "stages": stages},
        format="json",
    )
    assert second.status_code == 400, second.json()
    assert not Rollout.objects.filter(key="second").exists()
    config_cache.clear_local()
    assert {router.route_feature(first.feature, f"u{i}").version for i in range(500)} == {"stable"}


def test_second_rollout_route_a_valid_second_rollout_starts_at_zero(pm_api):
    make_rollout("first", stage="canary")
    busy = pm_api.post(
        "/api/v1/rollouts/",
        {"key": "second", "name": "Second", "feature": "recommendations"},
        format="json",
    )
    assert busy.status_code == 409  # one live rollout per feature
    pm_api.post("/api/v1/rollouts/first/rollback/", {"reason": "x"}, format="json")
    second = pm_api.post(
        "/api/v1/rollouts/",
        {"key": "second", "name": "Second", "feature": "recommendations"},
        format="json",
    )
    assert second.status_code == 201
    assert second.json()["canary_percent"] == 0
    config_cache.clear_local()
    assert {router.route_feature("recommendations", f"u{i}").version for i in range(500)} == {
        "stable"
    }


def test_settings_route_a_product_manager_cannot_loosen_safety_alone(pm_api, executive_api):
    rollout = make_rollout(stage="canary")
    looser = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/settings/",
        {"rollback": {"max_error_rate": 0.99}},
        format="json",
    )
    assert looser.status_code == 403, looser.json()
    stages = [dict(s) for s in rollout.stages]
    stages[2]["needs_approval"] = False
    no_approval = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/settings/", {"stages": stages}, format="json"
    )
    assert no_approval.status_code == 403
    moved = [dict(s) for s in rollout.stages]
    moved[1]["percent"] = 50
    share = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/settings/", {"stages": moved}, format="json"
    )
    assert share.status_code == 400 and "keep its share" in share.json()["detail"]
    broken = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/settings/",
        {"rollback": {"max_error_rate": 0.001}},
        format="json",
    )
    assert broken.status_code == 400  # a rollback band inside the SLA would never hold
    rollout.refresh_from_db()
    assert rollout.rollback["max_error_rate"] == 0.01 and rollout.canary_percent == 5
    tighter = pm_api.post(
        f"/api/v1/rollouts/{rollout.key}/settings/",
        {"sla": {"max_error_rate": 0.004}, "comment": "stricter"},
        format="json",
    )
    assert tighter.status_code == 200
    entry = AuditEntry.objects.get(object_id=rollout.id, action="thresholds_changed")
    assert entry.data["before"]["sla"]["max_error_rate"] == 0.005
    agreed = executive_api.post(
        f"/api/v1/rollouts/{rollout.key}/settings/",
        {"rollback": {"max_error_rate": 0.02}},
        format="json",
    )
    assert agreed.status_code == 200


def test_admin_route_a_product_manager_cannot_edit_state_share_or_thresholds(client, pm_user):
    rollout = make_rollout(stage="canary")
    client.force_login(pm_user)
    url = f"/admin/rollout/rollout/{rollout.id}/change/"
    form = client.get(url)
    assert form.status_code == 200
    body = form.content.decode()
    assert 'name="canary_percent"' not in body and 'name="stage"' not in body
    answer = client.post(
        url,
        {
            "name": "renamed",
            "stages": '[{"name": "internal", "percent": 0}, {"name": "canary", "percent": 100}]',
            "sla": '{"max_error_rate": 0.005, "max_p95_ms": 100, "min_availability": 0.9995}',
            "rollback": '{"max_error_rate": 0.99, "max_p95_ms": 200, "min_availability": 0.99}',
            "min_requests": "0",
            "window_minutes": "5",
            "allow_list": "[]",
            "canary_percent": "100",
            "stage": "full",
            "state": "completed",
        },
    )
    assert answer.status_code in (200, 302)
    rollout.refresh_from_db()
    assert (rollout.stage, rollout.canary_percent, rollout.state) == ("canary", 5.0, "active")
    assert rollout.rollback["max_error_rate"] == 0.01


def test_admin_route_a_new_rollout_from_the_admin_starts_at_zero(client, pm_user):
    client.force_login(pm_user)
    answer = client.post(
        "/admin/rollout/rollout/add/",
        {
            "key": "admin-made",
            "name": "Admin made",
            "feature": "recommendations",
            "stages": '[{"name": "all", "percent": 100}, {"name": "done", "percent": 100}]',
            "sla": '{"max_error_rate": 0.005, "max_p95_ms": 100, "min_availability": 0.9995}',
            "rollback": '{"max_error_rate": 0.01, "max_p95_ms": 200, "min_availability": 0.99}',
            "min_requests": "0",
            "window_minutes": "5",
            "allow_list": "[]",
        },
    )
    assert answer.status_code == 200  # the form again, with the error
    assert "must be at 0 %" in answer.content.decode()
    assert not Rollout.objects.filter(key="admin-made").exists()

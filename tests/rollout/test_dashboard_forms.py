"""The rollout forms of the dashboard over HTTP: the stage plan and the
thresholds as fields, refused by the plan's own rules (rollout.plan through
lifecycle.validated_settings) with their messages."""

import pytest

from common.models import AuditEntry
from rollout.models import Rollout
from tests.factories import make_experiment, make_rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def pm_client(client, pm_user):
    client.force_login(pm_user)
    return client


STAGES = [
    ("internal", 0, 0, True),
    ("canary", 5, 48, True),
    ("ab", 50, 0, True),
    ("full", 100, 24, True),
]


def rollout_form(stages=STAGES, **overrides) -> dict:
    form = {
        "key": "mentor-v3",
        "name": "Mentor v3",
        "feature": "conversations",
        "experiment": "",
        "sla_max_error_rate": "0.5",
        "sla_max_p95_ms": "100",
        "sla_min_availability": "99.95",
        "rollback_max_error_rate": "1",
        "rollback_max_p95_ms": "200",
        "rollback_min_availability": "99",
        "min_requests": "0",
        "window_minutes": "5",
        "allow_list": "staff-1\nstaff-2\n",
        "comment": "",
        "stages-TOTAL_FORMS": str(len(stages)),
        "stages-INITIAL_FORMS": str(len(stages)),
    }
    for i, (name, percent, hours, approval) in enumerate(stages):
        form[f"stages-{i}-name"] = name
        form[f"stages-{i}-percent"] = str(percent)
        form[f"stages-{i}-min_duration_hours"] = str(hours)
        form[f"stages-{i}-role"] = ""
        if approval:
            form[f"stages-{i}-needs_approval"] = "on"
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def test_a_product_manager_creates_a_rollout_with_its_plan_as_fields(pm_client):
    make_experiment("mentor-exp")
    page = pm_client.get("/rollouts/new/").content.decode()
    assert 'name="stages-0-name"' in page and 'name="sla_max_p95_ms"' in page
    assert '<option value="mentor-exp">' in page  # the experiment is chosen from a list
    response = pm_client.post("/rollouts/new/", rollout_form(experiment="mentor-exp"))
    assert response.status_code == 302, response.content.decode()[:3000]
    rollout = Rollout.objects.get(key="mentor-v3")
    assert (rollout.stage, rollout.canary_percent, rollout.experiment.key) == (
        "internal",
        0,
        "mentor-exp",
    )
    assert [s["name"] for s in rollout.stages] == ["internal", "canary", "ab", "full"]
    assert rollout.plan().stage("ab").role == "experiment"
    assert rollout.sla == {"max_error_rate": 0.005, "max_p95_ms": 100.0, "min_availability": 0.9995}
    assert rollout.allow_list == ["staff-1", "staff-2"]
    assert AuditEntry.objects.filter(action="rollout_created", object_key="mentor-v3").exists()


@pytest.mark.parametrize(
    ("overrides", "stages", "message"),
    [
        ({}, [("internal", 5, 0, True), ("full", 100, 0, True)], "must be at 0 %"),
        ({}, [("internal", 0, 0, True), ("full", 90, 0, True)], "must be at 100 %"),
        (
            {},
            [("a", 0, 0, True), ("b", 50, 0, True), ("c", 20, 0, True), ("d", 100, 0, True)],
            "must not decrease",
        ),
        (
            {},
            [("internal", 0, 0, True), ("canary", 5, 0, False), ("full", 100, 0, True)],
            "always needs an executive",
        ),
        ({}, [("same", 0, 0, True), ("same", 100, 0, True)], "stage names must be unique"),
        (
            {"rollback_max_error_rate": "0.2"},
            STAGES,
            "rollback.max_error_rate must be above sla.max_error_rate",
        ),
        ({"sla_max_p95_ms": "0"}, STAGES, "sla.max_p95_ms must be in (0"),
        ({"window_minutes": "90"}, STAGES, "less than or equal to 60"),
    ],
)
def test_the_rollout_form_refuses_with_the_plans_own_messages(
    pm_client, overrides, stages, message
):
    response = pm_client.post("/rollouts/new/", rollout_form(stages=stages, **overrides))
    assert response.status_code == 400, response.content.decode()[:2000]
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Rollout.objects.exists()


def test_an_experiment_needs_a_stage_between_0_and_100(pm_client):
    make_experiment("needs-room")
    response = pm_client.post(
        "/rollouts/new/",
        rollout_form(
            stages=[("internal", 0, 0, True), ("full", 100, 0, True)], experiment="needs-room"
        ),
    )
    assert response.status_code == 400
    assert "needs a stage strictly between 0 % and 100 %" in response.content.decode()


def test_a_feature_with_a_live_rollout_is_a_409(pm_client):
    make_rollout("busy", feature="conversations")
    response = pm_client.post("/rollouts/new/", rollout_form())
    assert response.status_code == 409
    assert "already has a rollout in progress" in response.content.decode()


def test_a_live_rollouts_thresholds_change_audited_and_its_current_share_stays(pm_client):
    rollout = make_rollout("live-one", feature="conversations")  # every minimum 0 h
    same_plan = [(name, percent, 0, approval) for name, percent, _, approval in STAGES]
    edit = f"/rollouts/{rollout.key}/edit/"
    page = pm_client.get(edit).content.decode()
    assert 'value="0.5"' in page  # the SLA's 0.005 shown as 0.5 %
    tighter = rollout_form(
        stages=same_plan,
        key=None,
        name=None,
        feature=None,
        rollback_max_p95_ms="150",
        allow_list="",
        comment="tighter",
    )
    assert pm_client.post(edit, tighter).status_code == 302
    rollout.refresh_from_db()
    assert rollout.rollback["max_p95_ms"] == 150
    entry = AuditEntry.objects.filter(object_key="live-one", action="thresholds_changed").get()
    assert "tighter" in entry.message
    moved = rollout_form(
        stages=[("internal", 1, 0, True), ("full", 100, 0, True)], key=None, name=None
    )
    refused = pm_client.post(edit, moved)
    assert refused.status_code == 400
    assert "must be at 0 %" in refused.content.decode()
    looser = rollout_form(
        stages=same_plan,
        key=None,
        name=None,
        feature=None,
        allow_list="",
        rollback_max_error_rate="5",
    )
    forbidden = pm_client.post(edit, looser)
    assert forbidden.status_code == 403
    assert "Only an executive may" in forbidden.content.decode()
    rollout.refresh_from_db()
    assert rollout.rollback["max_error_rate"] == 0.01


def test_the_rollout_page_links_the_form_and_shows_the_integration_calls(pm_client):
    experiment = make_experiment("linked-exp")
    rollout = make_rollout("wired-rollout", experiment=experiment)
    html = pm_client.get(f"/rollouts/{rollout.key}/").content.decode()
    assert 'href="/rollouts/wired-rollout/edit/"' in html
    panel = html.split('id="integration"', 1)[1]
    assert "http://testserver/api/v1/rollouts/wired-rollout/route/" in panel
    assert "http://testserver/api/v1/rollouts/wired-rollout/request-metrics/" in panel
    assert "http://testserver/api/v1/assignments/" in panel
    assert f"&quot;seed&quot;: &quot;{experiment.seed}&quot;" in panel


def test_an_executive_without_add_permission_gets_403(client, executive):
    client.force_login(executive)
    assert client.get("/rollouts/new/").status_code == 403

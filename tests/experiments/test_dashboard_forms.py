"""The dashboard forms that define and launch experiments and metrics, over
HTTP with the Django test client, and the one edit rule that the forms, the
REST API and the admin all obey."""

import json

import pytest

from common.models import AuditEntry
from experiments.models import Experiment, Metric
from tests.factories import make_experiment, make_metric

pytestmark = pytest.mark.django_db


@pytest.fixture
def pm_client(client, pm_user):
    client.force_login(pm_user)
    return client


def experiment_form(**overrides) -> dict:
    """A complete POST of the experiment form: three variants, one metric,
    the default decision policy as fields."""
    form = {
        "key": "onboarding-copy",
        "name": "Onboarding copy",
        "hypothesis": "Shorter copy raises adoption",
        "owner": "pm",
        "traffic_percent": "100",
        "alpha": "0.05",
        "sequential": "on",
        "correction": "holm",
        "cuped_lookback_days": "14",
        "exclude_carryover": "on",
        "require_primary_significant": "on",
        "max_error_rate_percent": "0.5",
        "max_p95_ms": "100",
        "important_needed": "1",
        "variants-TOTAL_FORMS": "3",
        "variants-INITIAL_FORMS": "0",
        "variants-0-key": "control",
        "variants-0-weight": "1",
        "variants-0-is_control": "on",
        "variants-0-payload": "{}",
        "variants-1-key": "short",
        "variants-1-weight": "1",
        "variants-1-payload": '{"copy": "short"}',
        "variants-2-key": "playful",
        "variants-2-weight": "1",
        "variants-2-payload": '{"copy": "playful"}',
        "metrics-TOTAL_FORMS": "1",
        "metrics-INITIAL_FORMS": "0",
        "metrics-0-metric": "adoption",
        "metrics-0-role": "primary",
        "metrics-0-min_effect": "0.02",
        "important-TOTAL_FORMS": "1",
        "important-INITIAL_FORMS": "0",
        "important-0-metric": "adoption",
        "important-0-threshold_kind": "absolute",
        "important-0-threshold": "0.1",
        "important-0-label": "adoption +10 pp",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def test_a_product_manager_creates_a_metric(pm_client):
    response = pm_client.post(
        "/experiments/metrics/new/",
        {
            "key": "first-answer",
            "name": "First answer",
            "kind": "binomial",
            "unit_aggregation": "sum",
            "higher_is_better": "on",
            "missing_as_zero": "on",
        },
    )
    assert response.status_code == 302
    metric = Metric.objects.get(key="first-answer")
    assert metric.kind == "binomial" and metric.higher_is_better


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key": "has space"}, "letters, numbers, underscores or hyphens"),
        ({"kind": "median"}, "Select a valid choice"),
        ({"name": ""}, "This field is required"),
    ],
)
def test_the_metric_form_explains_what_is_wrong(pm_client, overrides, message):
    form = {"key": "ok-key", "name": "Fine", "kind": "mean", "unit_aggregation": "sum"}
    response = pm_client.post("/experiments/metrics/new/", {**form, **overrides})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Metric.objects.filter(name="Fine").exists()


METRIC = {
    "name": "Adoption",
    "kind": "binomial",
    "unit_aggregation": "sum",
    "higher_is_better": "on",
    "missing_as_zero": "on",
}


def test_a_metrics_name_always_changes_its_meaning_only_before_any_experiment_starts(
    pm_client,
):
    make_experiment("uses-adoption", metrics=("adoption",))  # running
    listing = pm_client.get("/experiments/metrics/").content.decode()
    assert 'href="/experiments/metrics/adoption/edit/"' in listing
    renamed = pm_client.post(
        "/experiments/metrics/adoption/edit/", {**METRIC, "name": "Adopted a plan"}
    )
    assert renamed.status_code == 302
    assert Metric.objects.get(key="adoption").name == "Adopted a plan"
    flipped = pm_client.post(
        "/experiments/metrics/adoption/edit/",
        {k: v for k, v in METRIC.items() if k != "higher_is_better"},
    )
    html = flipped.content.decode()
    assert flipped.status_code == 409
    assert "measured by experiment(s) uses-adoption" in html and "higher_is_better" in html
    assert Metric.objects.get(key="adoption").higher_is_better
    make_metric("draft-only")
    make_experiment("draft-uses", metrics=("draft-only",), start=False)
    kind = pm_client.post(
        "/experiments/metrics/draft-only/edit/", {**METRIC, "name": "D", "kind": "mean"}
    )
    assert kind.status_code == 302
    assert Metric.objects.get(key="draft-only").kind == "mean"


def test_a_taken_metric_key_answers_409_with_a_message(pm_client):
    make_metric("adoption")
    response = pm_client.post(
        "/experiments/metrics/new/",
        {"key": "adoption", "name": "Again", "kind": "binomial", "unit_aggregation": "sum"},
    )
    assert response.status_code == 409
    assert "already exists" in response.content.decode()


def test_a_product_manager_creates_a_three_variant_experiment_with_its_policy(pm_client):
    make_metric("adoption")
    page = pm_client.get("/experiments/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="owner"' in html and "<select" in html  # chosen from a list, not an id
    assert "decision_policy" not in html  # fields, not JSON
    response = pm_client.post("/experiments/new/", experiment_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get(key="onboarding-copy")
    assert experiment.status == "draft" and experiment.owner.username == "pm"
    assert [v.key for v in experiment.variants.all()] == ["control", "short", "playful"]
    assert experiment.variants.get(key="short").payload == {"copy": "short"}
    link = experiment.metrics.get()
    assert (link.metric.key, link.role, link.min_effect) == ("adoption", "primary", 0.02)
    # Only what differs from the default rules is stored.
    assert experiment.decision_policy == {
        "important_needed": 1,
        "important": [{"metric": "adoption", "min_absolute": 0.1, "label": "adoption +10 pp"}],
    }
    assert AuditEntry.objects.filter(action="experiment_created", object_key=experiment.key)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variants-0-is_control": None}, "Exactly one variant must be the control"),
        ({"variants-1-is_control": "on"}, "Exactly one variant must be the control"),
        ({"variants-1-key": "control"}, "Variant keys must be unique"),
        ({"variants-1-weight": "0"}, "Must be greater than 0"),
        ({"variants-1-weight": "nan"}, "Enter a number"),
        ({"variants-2-payload": "{not json"}, "Payload: JSON parse error"),
        ({"variants-2-payload": '{"x": NaN}'}, "Payload: JSON parse error"),
        ({"variants-TOTAL_FORMS": "1"}, "at least two variants"),
        ({"alpha": "0.7"}, "α must be between 0 and 0.5"),
        ({"traffic_percent": "120"}, "less than or equal to 100"),
        ({"owner": "nobody"}, "Select a valid choice"),
        ({"metrics-0-metric": "unknown-metric"}, "Select a valid choice"),
        ({"important_needed": "3"}, "the experiment could never succeed"),
        ({"key": "new"}, "reserved"),
    ],
)
def test_the_experiment_form_refuses_and_explains(pm_client, overrides, message):
    make_metric("adoption")
    response = pm_client.post("/experiments/new/", experiment_form(**overrides))
    html = response.content.decode()
    assert response.status_code == 400, html[:2000]
    assert message in html.replace("&#x27;", "'")
    assert "Not saved." in html
    assert not Experiment.objects.exists()


def test_a_taken_experiment_key_is_a_409_next_to_the_key(pm_client):
    make_experiment("onboarding-copy", start=False)
    response = pm_client.post("/experiments/new/", experiment_form())
    assert response.status_code == 409
    assert "already exists" in response.content.decode()


def test_editing_a_draft_changes_variants_and_audits_each_field(pm_client):
    experiment = make_experiment("draft-one", start=False)
    form = experiment_form(
        key=None,
        name="Renamed",
        **{
            "variants-TOTAL_FORMS": "2",
            "variants-1-key": "treatment",
            "variants-1-weight": "3",
            "variants-2-key": None,
            "variants-2-weight": None,
            "variants-2-payload": None,
        },
    )
    response = pm_client.post(f"/experiments/{experiment.key}/edit/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment.refresh_from_db()
    assert experiment.name == "Renamed"
    assert experiment.variants.get(key="treatment").weight == 3
    entry = AuditEntry.objects.filter(action="experiment_edited").latest("id")
    assert {"name", "variants", "decision_policy"} <= set(entry.data["changed"])
    assert entry.actor.username == "pm"


def _running_form(experiment, **overrides) -> dict:
    """The edit form of a running two-variant experiment as the page fills it."""
    return experiment_form(
        key=None,
        **{
            "traffic_percent": str(experiment.traffic_percent),
            "variants-TOTAL_FORMS": "2",
            "variants-0-payload": '{"engine": "control"}',
            "variants-1-key": "treatment",
            "variants-1-payload": '{"engine": "treatment"}',
            "variants-2-key": None,
            "variants-2-weight": None,
            "variants-2-payload": None,
            **overrides,
        },
    )


def test_a_running_experiment_may_raise_its_traffic_in_the_form(pm_client):
    experiment = make_experiment("live", traffic_percent=40)
    response = pm_client.post(
        "/experiments/live/edit/", _running_form(experiment, traffic_percent="60")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment.refresh_from_db()
    assert experiment.traffic_percent == 60


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variants-1-weight": "9"}, "weights cannot change while the experiment runs"),
        ({"traffic_percent": "10"}, "traffic can only be raised"),
        ({"variants-1-payload": '{"engine": "other"}'}, "payload of treatment cannot change"),
        ({"variants-1-key": "renamed-arm"}, "cannot be added, removed or reordered"),
        ({"metrics-0-role": "secondary"}, "keeps at least one primary metric"),
    ],
)
def test_the_form_refuses_edits_that_move_units_of_a_running_experiment(
    pm_client, overrides, message
):
    experiment = make_experiment("live", traffic_percent=40)
    before = list(experiment.variants.values_list("key", "weight", "payload"))
    response = pm_client.post("/experiments/live/edit/", _running_form(experiment, **overrides))
    html = response.content.decode()
    assert response.status_code == 409, html[:3000]
    assert message in html
    assert list(experiment.variants.values_list("key", "weight", "payload")) == before
    experiment.refresh_from_db()
    assert experiment.traffic_percent == 40
    assert not AuditEntry.objects.filter(action="experiment_edited").exists()


def test_the_api_refuses_the_same_edits_with_409(pm_api):
    experiment = make_experiment("live")
    variants = [
        {"key": "control", "weight": 1, "is_control": True, "payload": {"engine": "control"}},
        {"key": "treatment", "weight": 9, "payload": {"engine": "treatment"}},
    ]
    response = pm_api.patch("/api/v1/experiments/live/", {"variants": variants}, format="json")
    assert response.status_code == 409
    assert "weights cannot change while the experiment runs" in str(response.json())
    assert experiment.variants.get(key="treatment").weight == 1
    seed = pm_api.patch("/api/v1/experiments/live/", {"seed": "abc"}, format="json")
    assert seed.status_code == 409 and "seed is fixed" in str(seed.json())
    attribute = pm_api.patch(
        "/api/v1/experiments/live/", {"hash_attribute": "email"}, format="json"
    )
    assert attribute.status_code == 409 and "hashed by their 'id'" in str(attribute.json())
    # What keeps assignments valid still goes through, audited.
    same = [{**variants[1], "weight": 1, "name": "Treatment arm"}, variants[0]][::-1]
    ok = pm_api.patch("/api/v1/experiments/live/", {"variants": same, "alpha": 0.1}, format="json")
    assert ok.status_code == 200, ok.json()
    assert ok.json()["alpha"] == 0.1
    entry = AuditEntry.objects.filter(action="experiment_edited").latest("id")
    assert set(entry.data["changed"]) == {"alpha", "variants"}


def test_the_api_edits_a_draft_and_checks_its_decision_policy(pm_api):
    make_experiment("draft-api", start=False)
    bad = pm_api.patch(
        "/api/v1/experiments/draft-api/",
        {"decision_policy": {"important_needed": "two"}},
        format="json",
    )
    assert bad.status_code == 400 and "important_needed" in str(bad.json())
    unknown = pm_api.patch(
        "/api/v1/experiments/draft-api/", {"decision_policy": {"alpha": 0.1}}, format="json"
    )
    assert unknown.status_code == 400 and "Unknown decision policy field" in str(unknown.json())
    variants = [
        {"key": "control", "is_control": True},
        {"key": "b", "weight": 2},
        {"key": "c", "weight": 2},
    ]
    ok = pm_api.patch("/api/v1/experiments/draft-api/", {"variants": variants}, format="json")
    assert ok.status_code == 200, ok.json()
    assert [v["key"] for v in ok.json()["variants"]] == ["control", "b", "c"]


def _admin_change_form(experiment) -> dict:
    variants = list(experiment.variants.order_by("position"))
    links = list(experiment.metrics.all())
    form = {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": "",
        "owner": "",
        "traffic_percent": experiment.traffic_percent,
        "alpha": experiment.alpha,
        "sequential": "on",
        "correction": "holm",
        "cuped_lookback_days": 14,
        "exclude_carryover": "on",
        "decision_policy": "{}",
        "variants-TOTAL_FORMS": len(variants),
        "variants-INITIAL_FORMS": len(variants),
        "metrics-TOTAL_FORMS": len(links),
        "metrics-INITIAL_FORMS": len(links),
    }
    for i, v in enumerate(variants):
        form.update(
            {
                f"variants-{i}-id": v.id,
                f"variants-{i}-experiment": experiment.id,
                f"variants-{i}-position": v.position,
                f"variants-{i}-key": v.key,
                f"variants-{i}-name": v.name,
                f"variants-{i}-weight": v.weight,
                f"variants-{i}-payload": json.dumps({"engine": v.key}),
            }
        )
        if v.is_control:
            form[f"variants-{i}-is_control"] = "on"
    for i, link in enumerate(links):
        form.update(
            {
                f"metrics-{i}-id": link.id,
                f"metrics-{i}-experiment": experiment.id,
                f"metrics-{i}-metric": link.metric_id,
                f"metrics-{i}-role": link.role,
            }
        )
    return form


def test_the_admin_refuses_the_same_edits_of_a_running_experiment(pm_client):
    experiment = make_experiment("live")
    url = f"/admin/experiments/experiment/{experiment.id}/change/"
    form = _admin_change_form(experiment)
    form["variants-1-weight"] = 9
    refused = pm_client.post(url, form)
    assert refused.status_code == 200
    assert "weights cannot change while the experiment runs" in refused.content.decode()
    assert experiment.variants.get(key="treatment").weight == 1
    lowered = _admin_change_form(experiment)
    lowered["traffic_percent"] = 10
    refused = pm_client.post(url, lowered)
    assert "traffic can only be raised" in refused.content.decode()
    experiment.refresh_from_db()
    assert experiment.traffic_percent == 100
    # A change that keeps assignments valid is saved and audited.
    fine = _admin_change_form(experiment)
    fine["alpha"] = 0.1
    assert pm_client.post(url, fine).status_code == 302
    assert AuditEntry.objects.filter(action="experiment_edited").exists()


def test_start_stop_and_archive_are_confirmed_posts_on_the_experiment_page(pm_client):
    experiment = make_experiment("launch-me", start=False)
    html = pm_client.get("/experiments/launch-me/").content.decode()
    assert 'id="action-start"' in html and "data-confirm=" in html
    assert 'id="action-stop"' not in html
    assert pm_client.get("/experiments/launch-me/actions/start/").status_code == 405
    response = pm_client.post("/experiments/launch-me/actions/start/", follow=True)
    assert "started" in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.status == "running"
    again = pm_client.post("/experiments/launch-me/actions/start/", follow=True)
    assert "only a draft experiment can be started" in again.content.decode()
    refused = pm_client.post("/experiments/launch-me/actions/archive/", follow=True)
    assert "it is running" in refused.content.decode()
    pm_client.post("/experiments/launch-me/actions/stop/")
    pm_client.post("/experiments/launch-me/actions/archive/")
    experiment.refresh_from_db()
    assert experiment.status == "archived" and experiment.archived_at is not None
    actions = list(
        AuditEntry.objects.filter(object_key="launch-me").values_list("action", flat=True)
    )
    assert {"experiment_started", "experiment_stopped", "experiment_archived"} <= set(actions)


def test_people_without_the_permission_get_403_and_nothing_changes(client, executive):
    experiment = make_experiment("guarded", start=False)
    client.force_login(executive)
    assert client.get("/experiments/new/").status_code == 403
    assert client.get("/experiments/metrics/new/").status_code == 403
    assert client.get("/experiments/guarded/edit/").status_code == 403
    assert client.post("/experiments/guarded/actions/start/").status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == "draft"
    html = client.get("/experiments/guarded/").content.decode()
    assert 'id="action-start"' not in html and 'id="edit-experiment"' not in html


def test_every_new_button_goes_to_the_dashboard_forms(pm_client):
    html = pm_client.get("/experiments/").content.decode()
    assert 'href="/experiments/new/"' in html and 'href="/experiments/metrics/new/"' in html
    assert "/admin/" not in html.split("<main", 1)[1]
    rollouts = pm_client.get("/rollouts/").content.decode()
    assert 'href="/rollouts/new/"' in rollouts
    assert "/admin/" not in rollouts.split("<main", 1)[1]


def test_the_integration_panel_shows_the_exact_calls_with_the_page_keys(pm_client):
    experiment = make_experiment("wired", metrics=("adoption", "completion"))
    html = pm_client.get("/experiments/wired/").content.decode()
    panel = html.split('id="integration"', 1)[1]
    assert "http://testserver/api/v1/assignments/" in panel
    assert "http://testserver/api/v1/exposures/" in panel
    assert "http://testserver/api/v1/events/" in panel
    assert "&quot;experiment&quot;: &quot;wired&quot;" in panel
    assert "&quot;metric&quot;: &quot;completion&quot;" in panel
    assert f"&quot;seed&quot;: &quot;{experiment.seed}&quot;" in panel
    assert 'id="copy-all"' in panel and 'id="copy-sdk-config"' in panel


def test_the_admin_refuses_to_change_what_a_started_experiments_metric_means(pm_client):
    make_experiment("uses-adoption", metrics=("adoption",))
    metric = Metric.objects.get(key="adoption")
    form = {
        "key": "adoption",
        "name": "Adoption",
        "description": "",
        "kind": "mean",
        "higher_is_better": "on",
        "missing_as_zero": "on",
        "unit_aggregation": "sum",
    }
    response = pm_client.post(f"/admin/experiments/metric/{metric.id}/change/", form, follow=True)
    assert "measured by experiment(s) uses-adoption" in response.content.decode()
    assert Metric.objects.get(key="adoption").kind == "binomial"


def test_a_stopped_experiment_keeps_its_record_and_may_be_renamed_and_archived(pm_api):
    from experiments.services import lifecycle

    lifecycle.stop_experiment(experiment=make_experiment("done"))
    refused = pm_api.patch("/api/v1/experiments/done/", {"traffic_percent": 50}, format="json")
    assert refused.status_code == 409
    assert "a stopped experiment keeps its record: traffic_percent" in str(refused.json())
    renamed = pm_api.patch("/api/v1/experiments/done/", {"name": "Done, read"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Done, read"
    archived = pm_api.post("/api/v1/experiments/done/archive/")
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    again = pm_api.post("/api/v1/experiments/done/archive/")
    assert again.status_code == 409

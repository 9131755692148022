"""Server-rendered pages: login, content, and query counts that do not grow
with the data."""

from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments.services import lifecycle
from experiments.services.analysis import analyse_experiment
from rollout.services.evaluation import evaluate_rollout
from tests.experiments.seeding import plant
from tests.factories import feed, make_experiment, make_rollout

pytestmark = pytest.mark.django_db


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.fixture
def pm_client(client, pm_user):
    client.force_login(pm_user)
    return client


def _experiment_with_snapshots(count: int):
    experiment = make_experiment("rec-v2", metrics=("session_duration", "adoption"))
    rng = np.random.default_rng(1)
    plant(
        experiment,
        experiment.metrics.get(metric__key="session_duration").metric,
        {"control": rng.normal(10, 2, 200), "treatment": rng.normal(11, 2, 200)},
        start=timezone.now() - timedelta(days=2),
    )
    for i in range(count):
        analyse_experiment(
            experiment=experiment, as_of=timezone.now() - timedelta(minutes=5 * (count - i))
        )
    return experiment


@pytest.mark.parametrize("url", ["/", "/experiments/", "/rollouts/", "/audit/"])
def test_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_experiment_page_shows_the_decision_charts_and_exports(pm_client):
    experiment = _experiment_with_snapshots(3)
    html = pm_client.get(f"/experiments/{experiment.key}/").content.decode()
    assert 'id="decision"' in html and "Export report (Markdown)" in html
    assert html.count('class="chart"') == 4
    assert "plotly/plotly.min.js" in html


def test_experiment_page_queries_do_not_grow_with_snapshots(pm_client, settings):
    experiment = _experiment_with_snapshots(2)
    few = queries(pm_client, f"/experiments/{experiment.key}/")
    for i in range(40):
        analyse_experiment(experiment=experiment, as_of=timezone.now() - timedelta(seconds=i))
    settings.DEBUG = False
    import experiments.selectors as selectors

    selectors.MAX_SERIES_POINTS, saved = 10, selectors.MAX_SERIES_POINTS
    try:
        many = queries(pm_client, f"/experiments/{experiment.key}/")
    finally:
        selectors.MAX_SERIES_POINTS = saved
    assert many == few
    assert queries(pm_client, "/experiments/") == queries(pm_client, "/experiments/")


def test_rollout_page_queries_do_not_grow_with_windows_and_audit(pm_client):
    rollout = make_rollout(stage="canary")
    feed(rollout, "stable", 100)
    evaluate_rollout(rollout=rollout)
    few = queries(pm_client, f"/rollouts/{rollout.key}/")
    for _ in range(5):
        feed(rollout, "canary", 3000)
        feed(rollout, "stable", 3000)
        evaluate_rollout(rollout=rollout)
    many = queries(pm_client, f"/rollouts/{rollout.key}/")
    assert many == few
    assert queries(pm_client, "/") == queries(pm_client, "/")


def test_the_overview_lists_running_experiments_and_rollouts(pm_client):
    _experiment_with_snapshots(1)
    make_rollout(stage="canary")
    html = pm_client.get("/").content.decode()
    assert "rec-v2" in html and "rec-rollout" in html


def test_unknown_pages_are_404(pm_client):
    assert pm_client.get("/experiments/nope/").status_code == 404
    assert pm_client.get("/rollouts/nope/").status_code == 404


def test_audit_filters(pm_client):
    make_rollout("a", feature="a")
    make_rollout("b", feature="b")
    make_experiment("exp-a", start=False)
    for url in ("/audit/?object_type=rollout&object_key=a", "/audit/?rollout=a"):
        html = pm_client.get(url).content.decode()
        assert "Rollout &#x27;a&#x27; created" in html, url
        assert "Rollout &#x27;b&#x27; created" not in html, url
        assert 'href="/rollouts/a/"' in html
    html = pm_client.get("/audit/?object_type=experiment").content.decode()
    assert 'href="/experiments/exp-a/"' in html and "Experiment created" in html
    assert "Rollout &#x27;a&#x27; created" not in html
    html = pm_client.get("/audit/?action=experiment_created").content.decode()
    assert "exp-a" in html and "Rollout &#x27;a&#x27;" not in html
    assert '<option value="experiment_created" selected>Experiment created</option>' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date_from=not-a-date", "Enter a date as YYYY-MM-DD."),
        ("date_to=2026-13-01", "Enter a valid date."),
        ("date_from=20261126", "Enter a date as YYYY-MM-DD."),
        ("date_to=9999-12-31", "between the years"),
        ("date_from=2026-12-02&date_to=2026-12-01", "comes before the start date"),
        ("action=transition_applied", "Select a valid choice."),
        ("object_type=metric", "Select a valid choice."),
        ("object_key=a%00b", "Enter a valid"),
        ("actor=p%00m", "Null characters are not allowed."),
        ("action=%00", "Select a valid choice."),
        ("date_from=2026-12-0%00", "Enter a date as YYYY-MM-DD."),
        ("rollout=%00", "Enter a valid"),
    ],
)
def test_bad_audit_filters_answer_with_a_message_not_an_error(pm_client, query, message):
    make_rollout("a", feature="a")
    response = pm_client.get(f"/audit/?{query}")
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert "No entry matches." in html


def test_audit_page_queries_do_not_grow_with_entries(pm_client, django_user_model):
    make_rollout("a", feature="a")
    few = queries(pm_client, "/audit/")
    person = django_user_model.objects.create_user("someone")
    for i in range(30):
        experiment = make_experiment(f"exp-{i}", start=False)
        lifecycle.rename_experiment(experiment=experiment, name=f"renamed {i}", by=person)
    assert queries(pm_client, "/audit/") == few
    assert queries(pm_client, "/audit/?page=2&object_type=experiment") == few


def test_product_managers_create_experiments_in_the_admin_with_the_same_rules(client, pm_user):
    from experiments.models import Experiment

    client.force_login(pm_user)
    form = {
        "key": "from-admin",
        "name": "From the admin",
        "hypothesis": "",
        "traffic_percent": 100,
        "alpha": 0.05,
        "sequential": "on",
        "correction": "holm",
        "cuped_lookback_days": 14,
        "exclude_carryover": "on",
        "decision_policy": "{}",
        "engine": "frequentist",
        "prior_mean": 0,
        "prior_variance": 1,
        "variants-TOTAL_FORMS": 2,
        "variants-INITIAL_FORMS": 0,
        "variants-0-position": 0,
        "variants-0-key": "control",
        "variants-0-weight": 1,
        "variants-0-payload": "{}",
        "variants-1-position": 1,
        "variants-1-key": "treatment",
        "variants-1-weight": 1,
        "variants-1-payload": "{}",
        "metrics-TOTAL_FORMS": 0,
        "metrics-INITIAL_FORMS": 0,
    }
    refused = client.post("/admin/experiments/experiment/add/", form)
    assert refused.status_code == 200
    assert "Exactly one variant must be the control" in refused.content.decode()
    assert not Experiment.objects.filter(key="from-admin").exists()
    form["variants-0-is_control"] = "on"
    accepted = client.post("/admin/experiments/experiment/add/", form)
    assert accepted.status_code == 302, accepted.content.decode()[:2000]
    assert Experiment.objects.get(key="from-admin").variants.count() == 2

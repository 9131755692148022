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
    # Per metric: the interval chart as inline SVG with its text alternative,
    # and the history drawn by the deferred plotly bundle, loaded once.
    assert html.count('<svg class="chart forest"') == 2
    assert html.count('class="chart history"') == 2
    # The bundle is named once, fetched by charts.js when a figure nears the screen.
    assert html.count("plotly/plotly.min.js") == 1 and "<script defer" in html
    assert 'id="recommendation"' in html


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


def _html(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_a_draft_shows_its_variants_and_metrics_and_what_happens_next(pm_client):
    make_experiment("draft-exp", start=False, metrics=("adoption", "session_duration"))
    html = _html(pm_client, "/experiments/draft-exp/")
    assert 'id="setup-variants"' in html and "control" in html and "treatment" in html
    assert "session_duration" in html and "50.0 %" in html  # equal weights, shown as shares
    assert "Not started" in html and "a draft assigns nobody" in html
    assert "()" not in html and "[, ]" not in html


def test_a_running_experiment_without_units_says_no_data_yet(pm_client):
    experiment = make_experiment("empty-exp")
    before = _html(pm_client, "/experiments/empty-exp/")
    assert "No results yet" in before and "every 5 minutes" in before
    analyse_experiment(experiment=experiment)
    html = _html(pm_client, "/experiments/empty-exp/")
    assert "No data yet" in html and "No unit exposed yet" in html
    assert "enough to detect" not in html
    assert "[, ]" not in html and "[–, –]" not in html
    assert "no data yet" in html  # the interval chart's empty row
    assert "Sample ratio check" in html and "no units yet" in html


def test_results_read_at_a_glance(pm_client):
    experiment = _experiment_with_snapshots(1)
    html = _html(pm_client, f"/experiments/{experiment.key}/")
    assert 'id="recommendation"' in html
    assert "Fixed horizon" in html and "Sequential (always valid)" in html
    assert "sequential, Holm-adjusted" in html  # the family that decides, named
    assert "not adjusted" not in html or "secondary" in html
    assert "passes" in html and "split 50.0 / 50.0" in html  # SRM shown when it passes
    assert "0.0000" not in html


def _many_experiments(django_user_model):
    owner = django_user_model.objects.create_user("owner-a")
    for i in range(25):
        experiment = make_experiment(f"exp-{i:02d}", start=i % 2 == 0)
        if i < 3:
            type(experiment).objects.filter(id=experiment.id).update(owner=owner)
    make_rollout(
        "rollout-x", feature="mentor-chat", experiment=type(experiment).objects.get(key="exp-04")
    )


def test_the_overview_searches_filters_and_pages(pm_client, django_user_model):
    _many_experiments(django_user_model)
    first = _html(pm_client, "/")
    assert "1–20 of 25" in first and "page=2" in first
    assert "21–25 of 25" in _html(pm_client, "/?page=2")
    searched = _html(pm_client, "/?q=exp-1")
    assert "exp-10" in searched and "exp-02" not in searched
    drafts = _html(pm_client, "/?status=draft")
    assert "exp-01" in drafts and "exp-02" not in drafts
    owned = _html(pm_client, "/?owner=owner-a")
    assert "1–3 of 3" in owned
    featured = _html(pm_client, "/?feature=mentor-chat")
    assert "1–1 of 1" in featured and "exp-04" in featured
    assert "Keep running" in first or "No results yet" in first  # the next step per row
    assert queries(pm_client, "/?page=2") == queries(pm_client, "/?page=2")
    listed = _html(pm_client, "/experiments/?q=exp-2&status=running")
    assert "exp-20" in listed and "exp-21" not in listed


@pytest.mark.parametrize(
    "query",
    ["status=nope", "q=a%00b", "owner=x%00", "feature=unknown", "page=zzz", "q=" + "x" * 300],
)
def test_bad_overview_filters_answer_with_a_message_not_an_error(pm_client, query):
    make_experiment("exp-a")
    response = pm_client.get(f"/?{query}")
    assert response.status_code == 200
    html = response.content.decode()
    if "page" not in query:
        assert 'class="error"' in html


def test_an_idle_rollout_says_no_traffic(pm_client):
    rollout = make_rollout(stage="canary")
    evaluate_rollout(rollout=rollout)
    html = _html(pm_client, f"/rollouts/{rollout.key}/")
    assert f"No traffic in the last {rollout.window_minutes} minutes" in html
    assert "No requests in the last 6 hours" in html
    assert " ms</td>" not in html
    assert "no traffic" in _html(pm_client, "/rollouts/") and "no traffic" in _html(pm_client, "/")


def test_rollout_charts_use_five_minute_buckets_by_default(pm_client):
    from rollout import selectors

    rollout = make_rollout(stage="canary")
    feed(rollout, "stable", 200, errors=2)
    feed(rollout, "canary", 100, errors=1)
    evaluate_rollout(rollout=rollout)
    html = _html(pm_client, f"/rollouts/{rollout.key}/")
    assert 'aria-current="true">5 min' in html and 'role="img"' in html
    assert 'aria-current="true">15 min' in _html(pm_client, f"/rollouts/{rollout.key}/?bucket=15")
    assert 'aria-current="true">5 min' in _html(pm_client, f"/rollouts/{rollout.key}/?bucket=7")
    series = selectors.metric_series(rollout, bucket_minutes=60)["versions"]
    assert sum(p["requests"] for p in series["stable"]) == 200
    assert series["stable"][0]["error_rate"] == pytest.approx(2 / 200)
    assert series["canary"][0]["p95_ms"] is not None


def test_every_page_has_a_skip_link(pm_client):
    make_rollout()
    for url in ("/", "/experiments/", "/rollouts/", "/rollouts/rec-rollout/", "/audit/"):
        assert 'href="#main"' in _html(pm_client, url), url


def test_the_segment_breakdown_reads_like_the_results(pm_client):
    experiment = _experiment_with_snapshots(1)
    html = _html(pm_client, f"/experiments/{experiment.key}/?segment=platform")
    assert "(missing)" in html  # no exposure carries the attribute here
    assert " pp</td>" in html  # adoption is binomial: its effect in percentage points
    assert "[, ]" not in html

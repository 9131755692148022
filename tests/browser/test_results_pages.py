"""Results at a glance, honest empty and idle states, and pages that fit a
phone: what a product manager and an executive meet in chromium."""

import numpy as np
import pytest

from experiments.services.analysis import analyse_experiment
from rollout.models import Rollout, StageTransition
from rollout.services.evaluation import evaluate_rollout
from rollout.simulation import EXPERIMENT_KEY, ROLLOUT_KEY
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.browser.test_dashboards import phase4  # noqa: F401 (a fixture)
from tests.experiments.seeding import plant
from tests.factories import make_experiment, make_rollout

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

RED = "rgb(192, 38, 45)"  # --bad in platform.css


def _losing_experiment():
    """Adoption (higher is better) drops from 40 % to 20 %: a significant loss."""
    experiment = make_experiment("onboarding-copy", metrics=("adoption",))
    rng = np.random.default_rng(5)
    plant(
        experiment,
        experiment.metrics.get().metric,
        {
            "control": np.where(rng.random(1500) < 0.4, 1.0, np.nan),
            "treatment": np.where(rng.random(1500) < 0.2, 1.0, np.nan),
        },
    )
    analyse_experiment(experiment=experiment)
    return experiment


def _no_horizontal_scroll(page) -> tuple[int, int]:
    return page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )


def test_a_significant_loss_renders_red_with_dont_ship(page, live_server, pm_user, shoot):
    experiment = _losing_experiment()
    assert experiment.snapshots.first().decision["verdict"] == "failure"
    pm_user.set_password("pm-pass-0123")
    pm_user.save()
    log_in(page, live_server.url, pm_user.username, "pm-pass-0123")
    page.goto(f"{live_server.url}/experiments/{experiment.key}/")
    line = page.locator("#recommendation")
    assert line.get_attribute("data-action") == "dont_ship"
    assert "don't ship" in line.inner_text().lower()
    assert line.evaluate("el => getComputedStyle(el).color") == RED
    effect = page.locator('#metric-adoption td[data-column="effect"]')
    assert effect.inner_text().startswith("−20") or effect.inner_text().startswith("−1")
    assert effect.inner_text().endswith(" pp")
    assert effect.evaluate("el => getComputedStyle(el).color") == RED
    reading = page.locator('#metric-adoption td[data-column="verdict"]').inner_text()
    assert reading == "significantly worse"
    assert page.locator('#metric-adoption td[data-column="fixed_p"]').inner_text() == "< 0.0001"
    # The interval chart: inline SVG with its text, the effect diamond red, zero in view.
    forest = page.locator("#forest-adoption")
    assert "treatment vs control: effect −" in forest.get_attribute("aria-label")
    assert forest.locator("path.effect.bad").count() == 1
    assert forest.locator("line.zero").count() == 1
    # The SRM check is shown although it passes.
    assert "passes" in page.locator("#srm").inner_text()
    assert "split 50.0 / 50.0" in page.locator("#srm").inner_text()
    # Overview: the primary lift, red, and the next step.
    page.goto(f"{live_server.url}/?q=onboarding")
    row = page.locator('tr[data-key="onboarding-copy"]')
    assert "Don't ship" in row.inner_text()
    assert row.locator(".lift").evaluate("el => getComputedStyle(el).color") == RED
    shoot(page, "overview-loss")


def test_an_executive_approves_a_step_from_the_waiting_for_you_list(
    page,
    live_server,
    phase4,  # noqa: F811
):
    log_in(page, live_server.url, "exec", "exec-demo-pass")
    waiting = page.locator("#approvals")
    assert "Waiting for you" in waiting.inner_text()
    assert "ab → full" in waiting.inner_text() and "50 % → 100 %" in waiting.inner_text()
    page.click(f'#approvals li[data-transition="{phase4.pending_transition}"] a.decide')
    page.wait_for_selector("#decide-form")
    page.fill("#comment", "Approved from the waiting list.")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#approve")
    page.wait_for_selector(".messages")
    assert "approved and applied" in page.locator(".messages").inner_text()
    transition = StageTransition.objects.get(id=phase4.pending_transition)
    assert transition.status == StageTransition.Status.APPLIED
    assert Rollout.objects.get(key=ROLLOUT_KEY).stage == "full"
    page.goto(f"{live_server.url}/")
    decided = f'#approvals li[data-transition="{transition.id}"]'
    assert page.locator(decided).count() == 0  # it no longer waits


def test_empty_experiment_and_idle_rollout_states_read_correctly(page, live_server, pm_user):
    make_experiment("draft-copy", start=False, metrics=("adoption", "completion"))
    empty = make_experiment("no-units-yet")
    analyse_experiment(experiment=empty)
    idle = make_rollout("idle-rollout", feature="idle", stage="canary")
    evaluate_rollout(rollout=idle)
    pm_user.set_password("pm-pass-0123")
    pm_user.save()
    log_in(page, live_server.url, pm_user.username, "pm-pass-0123")

    page.goto(f"{live_server.url}/experiments/draft-copy/")
    assert page.locator("#recommendation-label").inner_text() == "Not started"
    assert page.locator("#setup-variants tbody tr").count() == 2
    assert "completion" in page.locator("#setup-metrics").inner_text()
    assert "a draft assigns nobody" in page.locator("#no-results").inner_text()

    page.goto(f"{live_server.url}/experiments/no-units-yet/")
    text = page.locator("main").inner_text()
    assert page.locator("#recommendation-label").inner_text() == "No data yet"
    assert "No unit exposed yet" in page.locator("#progress").inner_text()
    for broken in ("()", "[, ]", "None", "nan", "enough to detect"):
        assert broken not in text, broken
    assert "no data yet" in page.locator("#forest-adoption").text_content()

    page.goto(f"{live_server.url}/rollouts/idle-rollout/")
    health = page.locator("#health").inner_text()
    assert f"No traffic in the last {idle.window_minutes} minutes" in health
    assert "No requests in the last 6 hours" in health
    assert " ms" not in health and "Insufficient data" not in health


SCROLL_THROUGH = (
    "async () => { for (let y = 0; y < document.body.scrollHeight; y += 400) {"
    " window.scrollTo(0, y); await new Promise(r => setTimeout(r, 60)); } }"
)

PAGES = [
    ("overview", "/"),
    ("experiment-list", "/experiments/"),
    ("experiment-detail", f"/experiments/{EXPERIMENT_KEY}/"),
    ("experiment-draft", "/experiments/draft-copy/"),
    ("rollout-list", "/rollouts/"),
    ("rollout-detail", f"/rollouts/{ROLLOUT_KEY}/"),
    ("rollout-idle", "/rollouts/idle-rollout/"),
    ("audit", "/audit/"),
]


def test_no_page_scrolls_sideways_on_a_phone_and_every_page_is_shot_on_a_desktop(
    browser,
    live_server,
    phase4,  # noqa: F811
):
    make_experiment("draft-copy", start=False, metrics=("adoption", "completion"))
    evaluate_rollout(rollout=make_rollout("idle-rollout", feature="idle", stage="canary"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((390, 844), (1440, 900)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        scroll, client = _no_horizontal_scroll(page)
        assert scroll <= client, ("login", width, scroll, client)
        if width == 1440:
            page.screenshot(path=str(SCREENSHOTS / "login.png"))
        log_in(page, live_server.url, "exec", "exec-demo-pass")
        for name, path in PAGES:
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            page.evaluate(SCROLL_THROUGH)  # charts are drawn on sight
            scroll, client = _no_horizontal_scroll(page)
            assert scroll <= client, (name, width, scroll, client)
            if width == 390 and name == "experiment-detail":
                # Not vacuous: the results tables are wider than a phone and
                # scroll inside their cards.
                assert page.locator(".scroll").evaluate_all(
                    "els => els.some(e => e.scrollWidth > e.clientWidth)"
                )
            if width == 1440:
                page.evaluate("() => window.scrollTo(0, 0)")
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        context.close()


def test_keyboard_users_skip_to_the_content_and_charts_add_no_tab_stops(
    page,
    live_server,
    phase4,  # noqa: F811
):
    log_in(page, live_server.url, "pm", "pm-demo-pass")
    page.goto(f"{live_server.url}/experiments/{EXPERIMENT_KEY}/")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("() => location.hash") == "#main"
    # History charts are drawn when they come near the screen.
    page.locator(".chart.history").first.scroll_into_view_if_needed()
    page.locator(".chart.history svg.main-svg").first.wait_for(timeout=10_000)
    focusable = page.evaluate(
        "() => document.querySelectorAll('.chart a, .chart button, .chart [tabindex]').length"
    )
    assert focusable == 0
    assert page.locator(".modebar").count() == 0  # no plotly toolbar
    for chart in page.locator(".chart").all():
        assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-label")

"""What product managers and executives do in the browser."""

import pytest
from django.core.management import call_command

from rollout.models import Rollout, StageTransition
from rollout.simulation import EXPERIMENT_KEY, ROLLOUT_KEY, SimulationConfig, simulate_phase4
from tests.browser.conftest import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def phase4(db):
    call_command("create_demo_accounts", force=True)
    result = simulate_phase4(
        SimulationConfig(
            days=8,
            daily_users=700,
            population=1500,
            # Important thresholds are met only when their corrected interval clears them.
            adoption_lift=0.3,
            completion_lift=0.3,
            traffic_hours=1,
            requests_per_minute=1000,
        )
    )
    assert result.pending_transition, result.notes
    return result


def test_an_executive_approves_the_pending_transition_in_the_browser(
    page, live_server, phase4, shoot
):
    log_in(page, live_server.url, "exec", "exec-demo-pass")
    assert page.locator("#approvals").is_visible()
    shoot(page, "overview")
    page.click("#approvals a")
    page.wait_for_selector("#pending")
    pending = page.locator("#pending").inner_text()
    assert "ab → full" in pending
    assert "Frozen at the request" in pending and "Now" in pending  # side by side
    assert "50 % → 100 % of mentees" in page.locator("#share-change").inner_text()
    checks = page.locator("#gate-checks").inner_text()
    assert "experiment" in checks and "approval" in checks
    shoot(page, "rollout-pending")
    page.fill("#comment", "Adoption and completion are up; ship it.")
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    page.click("#approve")
    page.wait_for_selector(".messages")
    assert asked and "50 % → 100 % of mentees" in asked[0]
    assert "approved and applied" in page.locator(".messages").inner_text()
    assert page.locator(".pipeline li.current").get_attribute("data-stage") == "full"
    assert page.locator("#canary-share").inner_text() == "100 %"
    timeline = page.locator("#audit").inner_text()
    assert "exec approved ab → full" in timeline
    assert "ship it" in timeline
    shoot(page, "rollout-approved")
    rollout = Rollout.objects.get(key=ROLLOUT_KEY)
    # 100 % serves every mentee the new version; the platform completes the
    # rollout once the full stage has been watched for its minimum time.
    assert (rollout.stage, rollout.state) == ("full", "active")


def test_a_dismissed_confirmation_changes_nothing_and_an_accepted_one_pauses(
    page, live_server, phase4
):
    log_in(page, live_server.url, "pm", "pm-demo-pass")
    page.goto(f"{live_server.url}/rollouts/{ROLLOUT_KEY}/")
    assert "What's next" in page.locator("#next").inner_text()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#action-pause")
    assert Rollout.objects.get(key=ROLLOUT_KEY).state == "active"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#action-pause")
    page.wait_for_selector(".messages")
    assert "paused" in page.locator(".messages").inner_text().lower()
    assert Rollout.objects.get(key=ROLLOUT_KEY).state == "paused"
    assert page.locator("#action-resume").count() == 1


def test_a_product_manager_sees_no_approve_button_and_cannot_post_one(page, live_server, phase4):
    log_in(page, live_server.url, "pm", "pm-demo-pass")
    page.goto(f"{live_server.url}/rollouts/{ROLLOUT_KEY}/")
    assert page.locator("#pending").is_visible()
    assert page.locator("#approve").count() == 0
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"{live_server.url}/rollouts/transitions/{phase4.pending_transition}/approve/",
        form={"csrfmiddlewaretoken": token, "comment": "let me"},
        headers={"Referer": f"{live_server.url}/rollouts/{ROLLOUT_KEY}/"},
    )
    assert response.status == 403
    assert "approve_transition" in response.text()
    assert StageTransition.objects.get(id=phase4.pending_transition).status == "pending"


def test_every_chart_renders_an_svg(page, live_server, phase4, shoot):
    log_in(page, live_server.url, "pm", "pm-demo-pass")
    for path, name in (
        (f"/experiments/{EXPERIMENT_KEY}/", "experiment"),
        (f"/rollouts/{ROLLOUT_KEY}/", "rollout"),
    ):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        charts = page.locator(".chart")
        assert charts.count() >= 2
        for i in range(charts.count()):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()  # plotly charts are drawn on sight
            if chart.evaluate("el => el.tagName.toLowerCase()") == "svg":
                continue  # the interval chart: inline SVG from the server
            chart.locator("svg.main-svg").first.wait_for(timeout=10_000)
        shoot(page, name)
    page.goto(f"{live_server.url}/audit/?object_type=rollout&object_key={ROLLOUT_KEY}")
    assert "Stage transition requested" in page.content()
    shoot(page, "audit")


def test_the_downloaded_report_holds_the_verdict(page, live_server, phase4, tmp_path):
    log_in(page, live_server.url, "pm", "pm-demo-pass")
    page.goto(f"{live_server.url}/experiments/{EXPERIMENT_KEY}/")
    verdict = page.locator("#decision h2 .badge").inner_text().strip()
    with page.expect_download() as download:
        page.click("#export-md")
    path = tmp_path / "report.md"
    download.value.save_as(path)
    text = path.read_text()
    assert f"**Verdict: {verdict.upper()}**" in text
    with page.expect_download() as download:
        page.click("#export-csv")
    download.value.save_as(tmp_path / "report.csv")
    # Plain CSV, the header row first; the verdict is in the Markdown and JSON.
    assert (tmp_path / "report.csv").read_text().startswith("metric,role,variant,control,")

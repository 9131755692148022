"""A product manager defines, launches and wires an experiment in the browser,
without the admin: a metric, a three-variant experiment, Start, the copied
integration snippet run against the live server, the results after analysis,
and the refusal of a weight change while it runs."""

import json
import shlex
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from experiments.models import Experiment
from rollout.models import Rollout
from tests.browser.conftest import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

UNITS = 90
HTTP_TIMEOUT_SECONDS = 10


def parse_curl(command: str, token: str) -> tuple[str, str, dict | None]:
    """Method, URL and JSON body of one copied curl command, as a shell
    would read it (with $TOKEN set)."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl"
    method, url, body = "GET", "", None
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-X":
            method, i = words[i + 1], i + 2
        elif word == "-H":
            assert words[i + 1] in ("Authorization: Token $TOKEN", "Content-Type: application/json")
            i += 2
        elif word == "-d":
            body, i = json.loads(words[i + 1]), i + 2
        elif word == "-s":
            i += 1
        else:
            url, i = word, i + 1
    return method, url, body


def send(method: str, url: str, body: dict | None, token: str) -> dict:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
        return json.loads(response.read())


def copied_commands(text: str) -> dict[str, str]:
    """The curl commands of the "all calls" snippet by their comment title."""
    commands: dict[str, str] = {}
    title = None
    for block in text.split("\n# ")[1:]:
        title, _, command = block.partition("\n")
        commands[title.strip()] = command.strip()
    assert title is not None, text
    return commands


@pytest.fixture
def clipboard_page(browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    errors: list[str] = []
    # Script errors, and failed sub-resources (a refused form is itself a 409 page).
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400
            and r.request.resource_type != "document"
            and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.console_errors = errors
    yield page
    context.close()


def test_a_product_manager_defines_starts_wires_and_reads_an_experiment(
    clipboard_page, live_server, shoot
):
    page = clipboard_page
    call_command("create_demo_accounts", force=True)
    pm = get_user_model().objects.get(username="pm")
    token = Token.objects.get_or_create(user=pm)[0].key
    base = live_server.url
    log_in(page, base, "pm", "pm-demo-pass")

    # A metric, from the experiments page's "New metric" button.
    page.goto(f"{base}/experiments/")
    page.click("#new-metric")
    page.wait_for_url(f"{base}/experiments/metrics/new/")
    page.fill("#id_key", "first-answer")
    page.fill("#id_name", "Asked a first question")
    page.select_option("#id_kind", "binomial")
    page.click("#save")
    page.wait_for_selector(".messages")
    assert "Metric 'first-answer' created" in page.locator(".messages").inner_text()
    assert "first-answer" in page.locator("#metric-list").inner_text()

    # A three-variant experiment: two rows come filled, the third is added.
    page.goto(f"{base}/experiments/")
    page.click("#new-experiment")
    page.wait_for_url(f"{base}/experiments/new/")
    page.fill("#id_key", "first-question")
    page.fill("#id_name", "First question prompt")
    page.fill("#id_hypothesis", "A suggested first question raises engagement")
    assert page.locator("#id_owner").input_value() == "pm"
    page.click("#variants-add")
    page.fill("#id_variants-2-key", "suggested")
    page.fill("#id_variants-2-weight", "1")
    page.fill("#id_variants-2-payload", '{"prompt": "suggested"}')
    page.click("#metrics-add")
    page.select_option("#id_metrics-0-metric", "first-answer")
    page.select_option("#id_metrics-0-role", "primary")
    page.fill("#id_metrics-0-min_effect", "0.1")
    page.fill("#id_important_needed", "0")
    shoot(page, "experiment-form")
    page.click("#save")
    page.wait_for_url(f"{base}/experiments/first-question/")
    experiment = Experiment.objects.get(key="first-question")
    assert experiment.variants.count() == 3 and experiment.status == "draft"

    # Start, confirmed in a dialog that names the split.
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.click("#action-start")
    page.wait_for_selector(".messages")
    assert "started" in page.locator(".messages").inner_text()
    assert asked and "33.3 %" in asked[0]
    experiment.refresh_from_db()
    assert experiment.status == "running"

    # Copy the integration snippet and run its calls against the live server.
    page.click("#copy-all")
    page.wait_for_function("document.querySelector('#copy-all').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#code-all").inner_text()
    commands = copied_commands(copied)
    calls = {title.split(". ", 1)[0]: parse_curl(cmd, token) for title, cmd in commands.items()}
    assign_method, assign_url, assign_body = calls["1"]
    assert assign_url == f"{base}/api/v1/assignments/"
    assert assign_body["experiment"] == "first-question"
    first = send(assign_method, assign_url, assign_body, token)
    assert first["in_experiment"] and first["variant"] in ("control", "treatment", "suggested")
    expose = send(*calls["2"], token)
    assert expose["accepted"] + expose["duplicates"] == 1, expose
    events_method, events_url, events_body = calls["3"]
    assert [e["metric"] for e in events_body["events"]] == ["first-answer"]
    # The same calls for a cohort: the treatments convert more often.
    for i in range(UNITS):
        unit = f"mentee-{i}"
        answer = send(assign_method, assign_url, {**assign_body, "unit_id": unit}, token)
        converts = i % 5 == 0 if answer["variant"] == "control" else i % 5 < 3
        if converts:
            event = {**events_body["events"][0], "unit_id": unit, "event_id": f"{unit}-1"}
            sent = send(events_method, events_url, {"events": [event]}, token)
            assert sent["accepted"] == 1, sent
    results_url = calls["4"][1]
    analysed = send("POST", results_url.replace("/results/", "/analysis/"), None, token)
    assert analysed["units"] >= UNITS
    results = send(*calls["4"], token)
    assert results["snapshot_id"] == analysed["snapshot_id"]
    sdk = send(*calls["5"], token)
    assert json.loads(page.locator("#code-sdk-config").inner_text()) == sdk
    assert sdk["variations"] == ["control", "treatment", "suggested"] and sdk["coverage"] == 1

    # The page shows the result.
    page.reload()
    page.wait_for_selector("#decision")
    assert page.locator("#metric-first-answer").count() == 1
    assert str(analysed["units"]) in page.locator("#decision").inner_text()
    shoot(page, "experiment-running-with-integration")

    # Editing a running experiment's weights is refused, with the reason.
    page.click("#edit-experiment")
    page.wait_for_url(f"{base}/experiments/first-question/edit/")
    assert "running" in page.locator("#running-note").inner_text()
    page.fill("#id_variants-1-weight", "5")
    page.click("#save")
    page.wait_for_selector("#form-refused")
    refusal = page.locator("#form-refused").inner_text()
    assert "weights cannot change while the experiment runs" in refusal
    assert "move units already assigned" in refusal
    shoot(page, "experiment-edit-refused")
    assert [v.weight for v in experiment.variants.order_by("position")] == [1, 1, 1]
    assert not page.console_errors, page.console_errors


def test_a_product_manager_creates_a_rollout_with_an_added_stage_and_routes_a_unit(
    clipboard_page, live_server, shoot
):
    page = clipboard_page
    call_command("create_demo_accounts", force=True)
    token = Token.objects.get_or_create(user=get_user_model().objects.get(username="pm"))[0].key
    base = live_server.url
    log_in(page, base, "pm", "pm-demo-pass")
    page.goto(f"{base}/rollouts/")
    page.click("#new-rollout")
    page.wait_for_url(f"{base}/rollouts/new/")
    page.fill("#id_key", "mentor-v3")
    page.fill("#id_name", "Mentor v3")
    page.fill("#id_feature", "conversations")
    # The default plan comes filled in; a pilot stage goes between canary and ab,
    # first with a share that would decrease along the plan.
    page.click("#stages-add")
    page.fill("#id_stages-4-name", "pilot")
    page.fill("#id_stages-4-percent", "20")
    page.click("#save")
    page.wait_for_selector("#form-refused")
    assert "must not decrease" in page.locator("#form-refused").inner_text()
    shoot(page, "rollout-form-refused")
    # Fix the order: the pilot row moves the full stage's values up.
    page.fill("#id_stages-3-name", "pilot")
    page.fill("#id_stages-3-percent", "75")
    page.fill("#id_stages-3-min_duration_hours", "0")
    page.fill("#id_stages-4-name", "full")
    page.fill("#id_stages-4-percent", "100")
    page.fill("#id_sla_max_p95_ms", "120")
    page.click("#save")
    page.wait_for_url(f"{base}/rollouts/mentor-v3/")
    rollout = Rollout.objects.get(key="mentor-v3")
    assert [s["name"] for s in rollout.stages] == ["internal", "canary", "ab", "pilot", "full"]
    assert rollout.sla["max_p95_ms"] == 120
    assert page.locator("#edit-rollout").count() == 1
    page.click("#snippet-route summary")
    page.click("#copy-route")
    page.wait_for_function("document.querySelector('#copy-route').textContent === 'Copied'")
    method, url, body = parse_curl(page.evaluate("navigator.clipboard.readText()"), token)
    assert url == f"{base}/api/v1/rollouts/mentor-v3/route/"
    routed = send(method, url, body, token)
    assert (routed["version"], routed["stage"]) == ("stable", "internal")  # 0 %: staff only
    shoot(page, "rollout-created-with-integration")
    assert not page.console_errors, page.console_errors


def test_the_forms_and_panels_fit_a_phone_screen(browser, live_server):
    call_command("create_demo_accounts", force=True)
    from tests.factories import make_experiment, make_rollout

    experiment = make_experiment(
        "narrow-exp", weights=(1, 1, 1), metrics=("adoption", "completion")
    )
    make_rollout("narrow-rollout", feature="conversations", experiment=experiment)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        log_in(page, live_server.url, "pm", "pm-demo-pass")
        forms = (
            "/experiments/new/",
            "/experiments/metrics/new/",
            "/experiments/narrow-exp/edit/",
            "/rollouts/new/",
            "/rollouts/narrow-rollout/edit/",
        )
        for path in forms:
            page.goto(live_server.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide"
        # On the detail pages, the parts added here: the actions and the panel
        # (the rest of those pages is laid out elsewhere).
        for path in ("/experiments/narrow-exp/", "/rollouts/narrow-rollout/"):
            page.goto(live_server.url + path)
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            wide = page.evaluate(
                "[...document.querySelectorAll('#integration, #integration *, .actions *')]"
                ".filter(e => e.getBoundingClientRect().right > 390 && !e.closest('pre'))"
                ".map(e => e.tagName + '#' + e.id)"
            )
            assert not wide, f"{path}: {wide}"
    finally:
        context.close()

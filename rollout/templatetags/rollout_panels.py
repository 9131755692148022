"""The edit link and the integration panel of the rollout page, as tags: the
page's view stays as it is and each partial is one include."""

import json
from typing import Any

from django import template
from django.urls import reverse

from experiments.services import integration
from rollout import access
from rollout.plan import LIVE_STATES, Step

register = template.Library()


@register.simple_tag(takes_context=True)
def rollout_may_edit(context: Any, rollout: Any) -> bool:
    return rollout.state in LIVE_STATES and access.may(
        context["request"].user, Step.CHANGE_SETTINGS
    )


def rollout_calls(
    rollout: Any, *, unit_id: str = integration.EXAMPLE_UNIT
) -> list[integration.Call]:
    """Routing, request metrics of a service outside this process, health;
    then the linked experiment's assignment and events."""
    key = rollout.key
    calls = [
        integration.Call(
            id="route",
            title="1. Ask which version a unit gets",
            note="stable or canary, by the rollout's own hash (or the linked experiment's "
            "assignment at the experiment stage); a unit stays canary as the share grows.",
            method="POST",
            path=reverse("rollout-route", args=[key]),
            body={"unit_id": unit_id},
        ),
        integration.Call(
            id="request-metrics",
            title="2. Report the requests each version served",
            note="Only for services outside this platform (its own requests are measured "
            "by its middleware); status ≥ 500 counts as an error.",
            method="POST",
            path=reverse("rollout-request-metrics", args=[key]),
            body={
                "samples": [
                    {"version": "canary", "latency_ms": 42.0, "status": 200},
                    {"version": "stable", "latency_ms": 38.0, "status": 200},
                ]
            },
        ),
        integration.Call(
            id="health",
            title="3. Read the health verdict",
            note="Per version: requests, error rate, availability and latency percentiles.",
            method="GET",
            path=reverse("rollout-health", args=[key]),
        ),
    ]
    if rollout.experiment is not None:
        for call in integration.experiment_calls(rollout.experiment, unit_id=unit_id):
            if call.id in ("assign", "events"):
                title = call.title.split(". ", 1)[1]
                calls.append(
                    integration.Call(
                        id=call.id,
                        title=f"{len(calls) + 1}. {title} (experiment {rollout.experiment.key})",
                        note=call.note,
                        method=call.method,
                        path=call.path,
                        body=call.body,
                    )
                )
    return calls


@register.simple_tag(takes_context=True)
def rollout_integration(context: Any, rollout: Any) -> dict[str, Any]:
    base_url = context["request"].build_absolute_uri("/")
    sdk = ""
    if rollout.experiment is not None:
        sdk = json.dumps(integration.sdk_config_of(rollout.experiment), indent=2)
    return {"calls": integration.panel(rollout_calls(rollout), base_url=base_url), "sdk": sdk}

"""The action buttons and the integration panel of the experiment page, as
tags: the page's view stays as it is and each partial is one include."""

import json
from typing import Any

from django import template

from experiments.hashing import normalise_weights
from experiments.models import Experiment
from experiments.services import integration

register = template.Library()


def _split(experiment: Experiment) -> str:
    variants = sorted(experiment.variants.all(), key=lambda v: (v.position, v.id))
    shares = normalise_weights([v.weight for v in variants]) if variants else []
    return ", ".join(
        f"{v.key} {share * 100:.3g} %" for v, share in zip(variants, shares, strict=True)
    )


@register.simple_tag(takes_context=True)
def experiment_actions(context: Any, experiment: Experiment) -> list[dict[str, Any]]:
    """The lifecycle buttons the viewer may use now, each with the question
    its confirmation asks."""
    user = context["request"].user
    if not user.has_perm("experiments.manage_experiment"):
        return []
    status = experiment.status
    offered = []
    if status == Experiment.Status.DRAFT:
        offered.append(
            {
                "step": "start",
                "label": "Start",
                "danger": False,
                "confirm": f"Start '{experiment.key}'? {experiment.traffic_percent:g} % of units "
                f"are assigned from now on ({_split(experiment)}). While it runs, its variants, "
                "weights and control cannot change.",
            }
        )
    if status == Experiment.Status.RUNNING:
        offered.append(
            {
                "step": "stop",
                "label": "Stop",
                "danger": True,
                "confirm": f"Stop '{experiment.key}'? Every unit then gets the default "
                "experience, the results freeze at this moment, and it cannot be restarted.",
            }
        )
    if status in (Experiment.Status.DRAFT, Experiment.Status.STOPPED):
        offered.append(
            {
                "step": "archive",
                "label": "Archive",
                "danger": False,
                "confirm": f"Archive '{experiment.key}'? It is kept for the record and can no "
                "longer be started or edited (except its name and hypothesis).",
            }
        )
    return offered


@register.simple_tag(takes_context=True)
def experiment_integration(context: Any, experiment: Experiment) -> dict[str, Any]:
    """The calls of the integration panel with this server's address, and
    the GrowthBook SDK definition."""
    request = context["request"]
    base_url = request.build_absolute_uri("/")
    sdk = json.dumps(integration.sdk_config_of(experiment), indent=2)
    return {
        "calls": integration.panel(integration.experiment_calls(experiment), base_url=base_url),
        "sdk": sdk,
        "running": experiment.status == Experiment.Status.RUNNING,
    }

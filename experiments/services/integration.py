"""What an integration sends and reads for one experiment, written out as the
exact HTTP calls of the REST contract v1 (DESIGN.md): the integration panel of
the experiment and rollout pages shows them as `curl` commands, and the
`sdk-config` endpoint answers `sdk_config`. One place, so that the panel
can never drift from the endpoints it describes."""

import json
import shlex
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from experiments.hashing import Assigner, normalise_weights
from experiments.models import Experiment
from experiments.services.assignment import get_compiled

EXAMPLE_UNIT = "mentee-42"
# The exposure example needs a unit of its own: the assignment example has
# already exposed EXAMPLE_UNIT, and a unit sees one variant.
EXAMPLE_SDK_UNIT = "mentee-43"
TOKEN_VARIABLE = "$TOKEN"  # noqa: S105 - the name of a shell variable, not a secret


def _definition(
    *, key: str, seed: str, variants: list[tuple[str, float]], coverage: float, running: bool
) -> dict[str, Any]:
    return {
        "key": key,
        "variations": [k for k, _ in variants],
        "weights": normalise_weights([w for _, w in variants]),
        "coverage": coverage if running else 0.0,
        "hashVersion": 2,
        "seed": seed,
        "hashAttribute": "id",
    }


def sdk_config(experiment_key: str) -> dict[str, Any]:
    """A GrowthBook SDK experiment definition that reproduces our assignment
    (same hash v2, seed, weights and coverage), from the cached configuration
    that the assignment itself uses. Coverage is 0 unless the experiment
    runs: an SDK then puts nobody in, like our own assignment."""
    config = get_compiled(experiment_key).config
    return _definition(
        key=config.key,
        seed=config.seed,
        variants=[(v.key, v.weight) for v in config.variants],
        coverage=config.coverage,
        running=config.is_running,
    )


def sdk_config_of(experiment: Experiment) -> dict[str, Any]:
    """The same definition from an experiment already loaded with its
    variants (a page), without another query."""
    variants = sorted(experiment.variants.all(), key=lambda v: (v.position, v.id))
    return _definition(
        key=experiment.key,
        seed=experiment.seed,
        variants=[(v.key, v.weight) for v in variants],
        coverage=experiment.coverage,
        running=experiment.status == Experiment.Status.RUNNING,
    )


@dataclass(frozen=True)
class Call:
    """One HTTP call of the contract with the page's keys filled in."""

    id: str
    title: str
    note: str
    method: str
    path: str
    body: dict[str, Any] | None = None

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.path

    def curl(self, base_url: str) -> str:
        """The call as a shell command; the token comes from $TOKEN."""
        lines = [f"curl -s -X {self.method} {shlex.quote(self.url(base_url))}"]
        lines.append(f'-H "Authorization: Token {TOKEN_VARIABLE}"')
        if self.body is not None:
            lines.append("-H 'Content-Type: application/json'")
            lines.append("-d " + shlex.quote(json.dumps(self.body, ensure_ascii=False)))
        return " \\\n  ".join(lines)


def experiment_calls(experiment: Experiment, *, unit_id: str = EXAMPLE_UNIT) -> list[Call]:
    """Assignment, exposure (for variants decided outside), events for every
    metric of the experiment, results and the SDK definition."""
    key = experiment.key
    variants = sorted(experiment.variants.all(), key=lambda v: (v.position, v.id))
    # The variant an SDK would choose for the exposure example (full coverage, so
    # that the example names a variant even for a draft or a small traffic share).
    chosen = (
        Assigner(experiment.seed, [v.weight for v in variants], 1.0).assign(EXAMPLE_SDK_UNIT)
        if variants
        else None
    )
    sdk_variant = variants[chosen].key if chosen is not None else "control"
    links = sorted(experiment.metrics.all(), key=lambda m: m.id)
    calls = [
        Call(
            id="assign",
            title="1. Ask which variant a unit gets",
            note="Records the unit's exposure the first time it is asked, while the "
            "experiment runs; the answer carries the variant's payload.",
            method="POST",
            path=reverse("assignment"),
            body={"experiment": key, "unit_id": unit_id, "attributes": {"platform": "web"}},
        ),
        Call(
            id="expose",
            title="2. Report an exposure decided outside (e.g. by a GrowthBook SDK)",
            note="Only when the variant was not asked for with the call above; here the "
            "variant a GrowthBook SDK gives this unit with the definition below.",
            method="POST",
            path=reverse("exposures"),
            body={
                "exposures": [
                    {"experiment": key, "unit_id": EXAMPLE_SDK_UNIT, "variant": sdk_variant}
                ]
            },
        ),
        Call(
            id="events",
            title="3. Send what the unit did",
            note="One event per metric of this experiment; the same event_id twice is "
            "stored once, a missing timestamp means now.",
            method="POST",
            path=reverse("events"),
            body={
                "events": [
                    {
                        "event_id": f"{unit_id}-{link.metric.key}-1",
                        "unit_id": unit_id,
                        "metric": link.metric.key,
                        "value": 1,
                    }
                    for link in links
                ]
            },
        ),
        Call(
            id="results",
            title="4. Read the results",
            note="The latest analysis; the platform analyses running experiments every "
            "few minutes.",
            method="GET",
            path=reverse("experiment-results", args=[key]),
        ),
        Call(
            id="sdk",
            title="5. Fetch the GrowthBook SDK definition",
            note="Any GrowthBook SDK given this definition assigns exactly as the platform.",
            method="GET",
            path=reverse("experiment-sdk", args=[key]),
        ),
    ]
    return calls


def panel(calls: list[Call], *, base_url: str) -> list[dict[str, Any]]:
    """The calls as the integration panel shows them."""
    return [
        {
            "id": call.id,
            "title": call.title,
            "note": call.note,
            "method": call.method,
            "url": call.url(base_url),
            "body": json.dumps(call.body, ensure_ascii=False) if call.body is not None else "",
            "curl": call.curl(base_url),
        }
        for call in calls
    ]

"""Feedback of a mentee on a recommended item: click, adopt or dismiss.

Identity of a retried call: a click is an event — two clicks are two rows (each is
training signal). An adopt or a dismiss is a state of (user, item): the first call stores
it, a repeated one (a client retry, a double tap) finds the stored row and stores nothing
(a partial unique constraint guarantees it, also for two calls racing). An adopt emits
the experiment metric `adoption` through the ingestion service with the event id
``rec-adopt-<interaction id>``: a retry sends the same id again, which the ingestion
stores once, so an adoption never counts twice — and a retry repairs an event that was
lost, because the interaction and its event are written in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.errors import DomainError
from experiments.services.ingestion import ingest_events
from recommendations.engines import DEFAULT_WEIGHTS
from recommendations.models import ContentItem, Interaction

logger = logging.getLogger(__name__)

ACTIONS = ("click", "adopt", "dismiss")
ADOPTION_METRIC = "adoption"


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    interaction: Interaction
    created: bool


def adoption_event_id(interaction_id: int) -> str:
    return f"rec-adopt-{interaction_id}"


def record_feedback(
    *, user_id: str, item_id: int, action: str, now: datetime | None = None
) -> FeedbackResult:
    """Store the feedback as an Interaction (see the module docstring for retries).

    Errors: unknown item → not_found; an action other than click/adopt/dismiss → invalid."""
    if action not in ACTIONS:
        raise DomainError(f"action must be one of {', '.join(ACTIONS)}.", field="action")
    if not ContentItem.objects.filter(id=item_id).exists():
        raise DomainError(f"Unknown item {item_id}.", code="not_found", field="item_id")
    now = now or timezone.now()
    with transaction.atomic():
        interaction, created = _store(user_id=user_id, item_id=item_id, action=action, now=now)
        if action == Interaction.Kind.ADOPT:
            _emit_adoption(interaction)
    return FeedbackResult(interaction, created)


def _store(*, user_id: str, item_id: int, action: str, now: datetime) -> tuple[Interaction, bool]:
    fields = {"user_id": user_id, "item_id": item_id, "kind": action}
    if action in Interaction.ONCE_PER_ITEM:
        existing = Interaction.objects.filter(**fields).first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():  # savepoint: a racing twin may insert first
                return Interaction.objects.create(
                    **fields, weight=DEFAULT_WEIGHTS[action], timestamp=now
                ), True
        except IntegrityError:
            return Interaction.objects.get(**fields), False
    return Interaction.objects.create(**fields, weight=DEFAULT_WEIGHTS[action], timestamp=now), True


def _emit_adoption(interaction: Interaction) -> None:
    result = ingest_events(
        [
            {
                "event_id": adoption_event_id(interaction.id),
                "unit_id": interaction.user_id,
                "metric": ADOPTION_METRIC,
                "value": 1,
                "timestamp": interaction.timestamp.isoformat(),
            }
        ]
    )
    if result.rejected:
        # The mentee's adoption is a fact and stays stored; a missing metric is an
        # operator's problem, and a retried call emits the event again once it is fixed.
        logger.error(
            "adoption event of interaction %s rejected: %s", interaction.id, result.rejected
        )

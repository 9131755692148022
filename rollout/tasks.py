"""Thin tasks: take ids, call a service, own the retry policy."""

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from rollout import metrics_store, notify
from rollout.models import Notification, NotificationChannel, Rollout
from rollout.plan import LIVE_STATES
from rollout.services.evaluation import evaluate_rollout

logger = logging.getLogger(__name__)


@shared_task(name="rollout.flush_and_evaluate")
def flush_and_evaluate() -> int:
    """Every few seconds: store the request metrics this process counted (every
    web process stores its own within a second), then evaluate every live
    rollout (active or paused; rolling back failing ones)."""
    metrics_store.flush_to_database()
    ids = list(Rollout.objects.filter(state__in=LIVE_STATES).values_list("id", flat=True))
    for rollout_id in ids:
        evaluate_rollout_task.delay(rollout_id)
    return len(ids)


@shared_task(name="rollout.evaluate_rollout")
def evaluate_rollout_task(rollout_id: int) -> str | None:
    rollout = Rollout.objects.select_related("experiment").filter(id=rollout_id).first()
    if rollout is None or rollout.state not in LIVE_STATES:
        return None
    return evaluate_rollout(rollout=rollout).verdict


@shared_task(
    name="rollout.send_notification",
    bind=True,
    max_retries=5,
    default_retry_delay=2,
)
def send_notification(self, notification_id: int) -> str:
    """Deliver one notification; retried with backoff when the receiver is
    down. A delivered notification is never sent again."""
    notification = Notification.objects.select_related("channel").filter(id=notification_id).first()
    if notification is None or notification.status != Notification.Status.PENDING:
        return "skipped"
    channel: NotificationChannel = notification.channel
    attempts = notification.attempts + 1
    try:
        notify.deliver(channel.kind, channel.target, notify.Message(**notification.message))
    except notify.DeliveryError as exc:
        final = not exc.retryable or self.request.retries >= self.max_retries
        Notification.objects.filter(id=notification_id).update(
            attempts=attempts,
            last_error=str(exc)[:1000],
            status=Notification.Status.FAILED if final else Notification.Status.PENDING,
        )
        if final:
            logger.warning("notification %s failed for good: %s", notification_id, exc)
            return "failed"
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
    with transaction.atomic():
        Notification.objects.filter(id=notification_id).update(
            attempts=attempts, status=Notification.Status.SENT, sent_at=timezone.now()
        )
    return "sent"

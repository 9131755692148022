"""Notifications: one row per enabled channel, sent after commit by a task
with retries (rollout.send_notification). The task is enqueued by name, so
services never import tasks and the dependency points one way."""

from typing import Any

from celery import current_app
from django.db import transaction

from rollout.models import Notification, NotificationChannel, Rollout

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def notify(
    *,
    rollout: Rollout,
    event: str,
    severity: str,
    title: str,
    text: str,
    fields: dict[str, str] | None = None,
    dedup: str = "",
) -> list[int]:
    """Queue the message for every enabled channel whose threshold it meets;
    call inside the transaction of the change it announces."""

    message: dict[str, Any] = {
        "event": event,
        "severity": severity,
        "rollout_key": rollout.key,
        "rollout_name": rollout.name,
        "title": title,
        "text": text,
        "url": f"/rollouts/{rollout.key}/",
        "fields": fields or {},
        "dedup_key": f"{rollout.key}:{event}:{dedup}",
    }
    ids = []
    for channel in NotificationChannel.objects.filter(enabled=True):
        if SEVERITY_RANK[severity] < SEVERITY_RANK.get(channel.min_severity, 0):
            continue
        notification = Notification.objects.create(
            channel=channel, rollout=rollout, event=event, message=message
        )
        ids.append(notification.id)
    for notification_id in ids:
        transaction.on_commit(
            lambda i=notification_id: current_app.signature(
                "rollout.send_notification", args=[i]
            ).delay()
        )
    return ids

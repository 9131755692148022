import logging
import socket
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from common.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

KEEP_HEARTBEATS_FOR = timedelta(days=1)


@shared_task(name="common.record_heartbeat")
def record_heartbeat(source: str = WorkerHeartbeat.Source.BEAT) -> int:
    """Write one heartbeat row and forget old ones; returns the new row's id."""
    beat = WorkerHeartbeat.objects.create(source=source, hostname=socket.gethostname())
    WorkerHeartbeat.objects.filter(created_at__lt=timezone.now() - KEEP_HEARTBEATS_FOR).delete()
    logger.info("beat tick: heartbeat %s recorded (%s)", beat.id, source)
    return beat.id

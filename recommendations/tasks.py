"""Thin tasks: call a service, own the retry policy."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from common.errors import DomainError
from recommendations.services import training

logger = logging.getLogger(__name__)


@shared_task(
    name="recommendations.train_models",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=2,
    # its own limits (config/settings.py), longer than every other task's; the
    # broker's redelivery timeout is derived from the longest
    soft_time_limit=settings.TRAINING_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.TRAINING_TASK_TIME_LIMIT,
)
def train_models() -> int | None:
    """Train and activate v1 and v2 (nightly by beat, "Train now" in the admin); returns
    the new ensemble version id, or None when there is nothing to train on."""
    try:
        result = training.train_models()
    except DomainError as exc:  # an empty catalogue: nothing to retry
        logger.warning("recommendation training skipped: %s", exc.message)
        return None
    return result.versions[training.ModelVersion.Engine.ENSEMBLE].id

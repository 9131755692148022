"""Thin tasks: call a service, own the retry policy."""

import logging

from celery import shared_task
from django.db import OperationalError

from common.errors import DomainError
from recommendations.services import training

logger = logging.getLogger(__name__)


@shared_task(
    name="recommendations.train_models",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=2,
    # a million interactions train in well under a minute on 2 cores; the project's
    # default 300 s limit would still cut off a catalogue a few times larger
    soft_time_limit=1500,
    time_limit=1800,
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

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class WorkerHeartbeat(models.Model):
    """A row written by a Celery task: proof that beat schedules and a worker
    executes. /healthz reports the age of the newest beat tick."""

    class Source(models.TextChoices):
        BEAT = "beat", "Beat schedule"
        MANUAL = "manual", "Sent by hand"

    source = models.CharField(max_length=16, choices=Source.choices)
    hostname = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return (
            f"{self.source} tick from {self.hostname or '?'} at {self.created_at:%Y-%m-%d %H:%M:%S}"
        )

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
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


class AuditAction(models.TextChoices):
    """Every decision and change that lands in the audit log. A new kind of
    entry gets a value here first, so a typo fails instead of being stored."""

    ROLLOUT_CREATED = "rollout_created", "Rollout created"
    REQUESTED = "requested", "Stage transition requested"
    APPROVED = "approved", "Stage transition approved"
    REJECTED = "rejected", "Stage transition rejected"
    APPLIED = "applied", "Stage transition applied"
    INVALIDATED = "invalidated", "Stage transition invalidated"
    ROLLED_BACK = "rolled_back", "Rolled back"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"
    REARMED = "rearmed", "Re-armed"
    COMPLETED = "completed", "Completed"
    THRESHOLDS_CHANGED = "thresholds_changed", "Thresholds changed"
    PLAN_CHANGED = "plan_changed", "Stage plan changed"
    HEALTH_DEGRADED = "health_degraded", "Health degraded"
    HEALTH_FAILING = "health_failing", "Health failing"
    HEALTH_RECOVERED = "health_recovered", "Health recovered"
    EXPERIMENT_CREATED = "experiment_created", "Experiment created"
    EXPERIMENT_STARTED = "experiment_started", "Experiment started"
    EXPERIMENT_STOPPED = "experiment_stopped", "Experiment stopped"
    EXPERIMENT_EDITED = "experiment_edited", "Experiment edited"
    EXPERIMENT_ARCHIVED = "experiment_archived", "Experiment archived"


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only: entries are never updated.")

    def delete(self):
        raise PermissionError("The audit log is append-only: entries are never deleted.")


class AuditEntry(models.Model):
    """One entry of the append-only audit log of rollouts and experiments.

    Append-only at every layer: `save()` refuses updates, `delete()` and the
    queryset's `update()` / `delete()` refuse, the admin offers neither, and
    on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE. The subject is
    named by type, id and key rather than a foreign key: common may not depend
    on the apps whose objects it records, and the entry outlives its subject.
    Write entries with `common.audit.write_audit`."""

    class ObjectType(models.TextChoices):
        ROLLOUT = "rollout", "Rollout"
        EXPERIMENT = "experiment", "Experiment"

    action = models.CharField(max_length=32, choices=AuditAction.choices)
    object_type = models.CharField(max_length=16, choices=ObjectType.choices)
    object_id = models.PositiveBigIntegerField()
    # Denormalised so the log reads and filters without a join to the subject.
    object_key = models.SlugField(max_length=64, db_index=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who did it; empty when the platform did it by itself.",
    )
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(
                fields=["object_type", "object_id", "-created_at"], name="audit_of_object"
            ),
            models.Index(fields=["object_type", "object_key"], name="audit_by_key"),
            models.Index(fields=["action"], name="audit_by_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.object_key}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("The audit log is append-only: entries are never updated.")
        # Insert only: a new entry given the id of an old one must fail, not overwrite it.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only: entries are never deleted.")

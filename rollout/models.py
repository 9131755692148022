"""Rollouts: a feature's new version moving stable → canary → A/B → full,
the request metrics of each version, health verdicts, stage transitions with
their frozen evidence and notifications. The audit log is common.AuditEntry."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel
from rollout import plan as stage_plan

KEY_MAX_LENGTH = 64


def new_salt() -> str:
    return uuid.uuid4().hex


def default_stages() -> list[dict]:
    """The seed's plan: internal test (staff only) → canary 5 % for at least
    48 h → A/B 50 % → full 100 %, every step approved by an executive. The
    full stage is watched for 24 h (automatic rollback still armed) before
    the platform completes the rollout."""
    return [
        {"name": "internal", "percent": 0.0, "min_duration_hours": 0, "needs_approval": True},
        {"name": "canary", "percent": 5.0, "min_duration_hours": 48, "needs_approval": True},
        {"name": "ab", "percent": 50.0, "min_duration_hours": 0, "needs_approval": True},
        {"name": "full", "percent": 100.0, "min_duration_hours": 24, "needs_approval": True},
    ]


def default_sla() -> dict:
    return {"max_error_rate": 0.005, "max_p95_ms": 100.0, "min_availability": 0.9995}


def default_rollback() -> dict:
    return {"max_error_rate": 0.01, "max_p95_ms": 200.0, "min_availability": 0.99}


class Rollout(TimeStampedModel):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ROLLED_BACK = "rolled_back", "Rolled back"
        COMPLETED = "completed", "Completed"

    key = models.SlugField(max_length=KEY_MAX_LENGTH, unique=True)
    name = models.CharField(max_length=200)
    feature = models.SlugField(
        max_length=KEY_MAX_LENGTH,
        help_text="The feature whose requests this rollout routes, e.g. recommendations.",
    )
    experiment = models.ForeignKey(
        "experiments.Experiment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rollouts",
        help_text="At the ab stage routing follows this experiment's assignment.",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    stage = models.CharField(max_length=32, default="internal")
    canary_percent = models.FloatField(default=0.0)
    stage_entered_at = models.DateTimeField(null=True, blank=True)
    # Fixed at creation: changing it would move users between versions.
    salt = models.CharField(max_length=64, default=new_salt, editable=False)
    stages = models.JSONField(default=default_stages)
    sla = models.JSONField(default=default_sla)
    rollback = models.JSONField(default=default_rollback)
    min_requests = models.PositiveIntegerField(
        default=0,
        help_text="A floor on the requests a verdict needs; the evaluator derives its own "
        "minimum from the thresholds and uses the larger.",
    )
    window_minutes = models.PositiveSmallIntegerField(
        default=5, help_text="The sliding window of minutes the health verdict looks at."
    )
    allow_list = models.JSONField(
        default=list, blank=True, help_text="Unit ids that get the canary at the internal stage."
    )
    blame_canary_on_global_incident = models.BooleanField(
        default=False,
        help_text="Roll back even when the stable version is failing just as badly.",
    )
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rollback_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("request_transition", "Can request the next stage of a rollout"),
            ("approve_transition", "Can approve or reject stage transitions"),
            ("rollback_rollout", "Can roll a rollout back or re-arm it"),
            ("send_request_metrics", "Can send request metrics of outside services"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(canary_percent__gte=0) & Q(canary_percent__lte=100),
                name="rollout_canary_percent_0_100",
            ),
            # At most one rollout per feature serves a new version at a time.
            models.UniqueConstraint(
                fields=["feature"],
                condition=Q(state__in=["active", "paused"]),
                name="one_live_rollout_per_feature",
            ),
        ]

    def __str__(self) -> str:
        return self.key

    def plan(self) -> stage_plan.Plan:
        """The validated stage plan with the role of every stage."""
        return stage_plan.Plan.parse(self.stages, has_experiment=bool(self.experiment_id))

    def current_stage(self) -> stage_plan.Stage:
        return self.plan().stage(self.stage)

    def next_stage(self) -> stage_plan.Stage | None:
        return self.plan().next_after(self.stage)


class Version(models.TextChoices):
    STABLE = "stable", "Stable"
    CANARY = "canary", "Canary"


class MetricWindow(models.Model):
    """Requests of one version in one minute, merged from every process."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="windows")
    version = models.CharField(max_length=8, choices=Version.choices)
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    unavailable = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0.0)
    histogram = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rollout", "version", "minute"], name="metric_window_once"
            )
        ]
        indexes = [models.Index(fields=["rollout", "minute"], name="metric_window_recent")]

    def __str__(self) -> str:
        return f"{self.rollout_id}/{self.version} {self.minute:%H:%M}"


class HealthVerdict(models.Model):
    class Verdict(models.TextChoices):
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Degraded"
        FAILING = "failing", "Failing"
        INSUFFICIENT = "insufficient_data", "Insufficient data"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="verdicts")
    evaluated_at = models.DateTimeField(db_index=True)
    verdict = models.CharField(max_length=24, choices=Verdict.choices)
    action = models.CharField(max_length=16)
    global_incident = models.BooleanField(default=False)
    report = models.JSONField(default=dict)

    class Meta:
        ordering = ["-evaluated_at", "-id"]
        indexes = [models.Index(fields=["rollout", "-evaluated_at"], name="verdict_latest")]

    def __str__(self) -> str:
        return f"{self.rollout_id}: {self.verdict} at {self.evaluated_at:%H:%M:%S}"


class StageTransition(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        APPLIED = "applied", "Applied"
        INVALIDATED = "invalidated", "Invalidated"

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=32)
    to_stage = models.CharField(max_length=32)
    from_percent = models.FloatField()
    to_percent = models.FloatField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    proposed_by_platform = models.BooleanField(default=False)
    request_comment = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decision_comment = models.TextField(blank=True)
    # The evidence as it stood when the decision was taken, next to the
    # evidence frozen at the request, and what changed in between.
    decision_evidence = models.JSONField(default=dict, blank=True)
    invalidation_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rollout"],
                condition=Q(status="pending"),
                name="one_pending_transition_per_rollout",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rollout_id}: {self.from_stage} → {self.to_stage} ({self.status})"


class NotificationChannel(TimeStampedModel):
    class Kind(models.TextChoices):
        SLACK = "slack", "Slack-compatible incoming webhook"
        EMAIL = "email", "E-mail"
        PAGER = "pager", "Pager webhook"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(
        max_length=500, help_text="Webhook URL, or comma-separated e-mail addresses."
    )
    enabled = models.BooleanField(default=True)
    min_severity = models.CharField(
        max_length=16,
        choices=[("info", "Info"), ("warning", "Warning"), ("critical", "Critical")],
        default="info",
    )

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Notification(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="+")
    rollout = models.ForeignKey(Rollout, null=True, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=48)
    message = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel_id} ({self.status})"

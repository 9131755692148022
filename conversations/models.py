"""Mentoring conversations: sessions, their turns, the rolling summary of each session and
the facts remembered about each mentee across sessions.

End users of ion-mentoring are not Django users: they are identified by the `user_id` the
front end sends (the same unit id the router and the experiments hash), so it is a plain
string here, as in experiments.Event.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from conversations.memory import FACT_KEYS

USER_ID_MAX_LENGTH = 200  # experiments.models.UNIT_ID_MAX_LENGTH: the same ids
TOPIC_MAX_LENGTH = 100
GOAL_MAX_LENGTH = 500
FACT_VALUE_MAX_LENGTH = 300


class ConversationSession(models.Model):
    class Version(models.TextChoices):
        STABLE = "stable", "v1: single turn, no memory"
        CANARY = "canary", "v2: multi-turn with memory"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        EXPIRED = "expired", "Expired (idle)"

    class Outcome(models.TextChoices):
        REACHED = "reached", "Goal reached"
        ABANDONED = "abandoned", "Abandoned"

    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH)
    # The version the session started with; it keeps it for its whole life so a
    # conversation never switches engines (and memory) half-way.
    version = models.CharField(max_length=16, choices=Version.choices)
    topic = models.CharField(max_length=TOPIC_MAX_LENGTH)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    goal = models.CharField(max_length=GOAL_MAX_LENGTH, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    # Ended: when the mentee ended it. Expired: last activity + the idle timeout,
    # the moment the rule made it expire (not when the beat task noticed).
    ended_at = models.DateTimeField(null=True, blank=True)
    # Next turn index to hand out. Kept on the row (not max(index) + 1) because a
    # message reserves two indexes, its own and its reply's, before the reply exists.
    next_turn_index = models.PositiveIntegerField(default=0)
    # Set once the return task has looked at this session (claimed, so never twice).
    return_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        # conversations.access: who may read and erase a mentee's memory and transcripts.
        permissions = [
            (
                "access_mentee_data",
                "Can read and erase a mentee's memory facts and conversation transcripts",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "topic"],
                condition=Q(status="active"),
                name="conv_one_active_session_per_user_topic",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="conv_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="active", ended_at__isnull=True)
                    | (~Q(status="active") & Q(ended_at__isnull=False))
                ),
                name="conv_ended_at_iff_not_active",
            ),
            models.CheckConstraint(
                condition=Q(status="ended", outcome__in=["reached", "abandoned"])
                | (~Q(status="ended") & Q(outcome="")),
                name="conv_outcome_iff_ended",
            ),
        ]
        indexes = [
            models.Index(fields=["user_id", "started_at"], name="conv_session_user_started"),
            models.Index(fields=["status", "last_activity_at"], name="conv_session_idle"),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user_id} ({self.topic}, {self.status})"


class Turn(models.Model):
    class Role(models.TextChoices):
        USER = "user", "Mentee"
        ASSISTANT = "assistant", "Mentor"

    session = models.ForeignKey(ConversationSession, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # Mentor turns: time spent in the responder and the tokens it reports (prompt +
    # completion). Mentee turns: no latency; tokens is the estimate of the message.
    latency_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    # Mentor turns: the estimated size of the context sent to the responder (the
    # token budget is asserted on it).
    context_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Mentor turns: which backend answered ("offline-kb", "openai-compat:<model>").
    backend = models.CharField(max_length=100, blank=True)
    # The backend failed and `text` is the friendly message shown instead. Such
    # turns are kept for the transcript but never fed back into a prompt.
    degraded = models.BooleanField(default=False)

    class Meta:
        ordering = ["session", "index"]
        constraints = [
            models.UniqueConstraint(fields=["session", "index"], name="conv_turn_unique_index"),
        ]

    def __str__(self) -> str:
        return f"turn {self.index} ({self.role}) of session {self.session_id}"


class Summary(models.Model):
    """The rolling summary of a session: every usable turn with index ≤ `up_to_index`
    is folded into `text`; newer turns are read verbatim."""

    session = models.OneToOneField(
        ConversationSession, on_delete=models.CASCADE, related_name="summary"
    )
    up_to_index = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "summaries"

    def __str__(self) -> str:
        return f"summary of session {self.session_id} up to turn {self.up_to_index}"


class MemoryFact(models.Model):
    """What the mentor remembers about a mentee across sessions (one value per key)."""

    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH)
    key = models.CharField(max_length=32, choices=[(k, k) for k in FACT_KEYS])
    value = models.CharField(max_length=FACT_VALUE_MAX_LENGTH)
    source_turn = models.ForeignKey(
        Turn, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confidence = models.FloatField(default=1.0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user_id", "key"]
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key"], name="conv_fact_unique_user_key"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=1), name="conv_fact_confidence_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key} = {self.value}"

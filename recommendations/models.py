"""Catalogue, interaction log and trained model versions of the recommender.

The engines themselves are pure modules (`recommendations.engines`); these
tables only hold what they are trained on and what they produced.
"""

from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel

#: same bound as an experiment unit id: a recommendation user is an experiment unit
USER_ID_MAX_LENGTH = 200


class ContentItem(TimeStampedModel):
    """A recommendable piece of mentoring content (a mentor, a course or an article).

    Items are deactivated rather than deleted: interactions and trained models
    refer to them, and an inactive item is simply never served again.
    """

    class Kind(models.TextChoices):
        MENTOR = "mentor", "Mentor"
        COURSE = "course", "Course"
        ARTICLE = "article", "Article"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    # The key of the item in the system it came from (the demo generator, a CMS):
    # lets an import run twice without creating the item twice. Null for items
    # entered by hand (unique allows any number of nulls).
    external_id = models.CharField(max_length=100, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["kind", "id"], name="rec_item_kind_id")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["mentor", "course", "article"]), name="rec_item_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


class Interaction(models.Model):
    """One event of a user on an item (implicit feedback).

    `weight` is the training signal (see `engines.base.DEFAULT_WEIGHTS`); a
    dismiss is negative and only blocks the item for the user. At most one
    adopt and one dismiss exist per user and item: adopting (or dismissing)
    the same item again is the same fact, so a retried feedback call finds the
    stored row instead of counting twice. Views and clicks repeat freely.
    """

    class Kind(models.TextChoices):
        VIEW = "view", "View"
        CLICK = "click", "Click"
        ADOPT = "adopt", "Adopt"
        COMPLETE = "complete", "Complete"
        DISMISS = "dismiss", "Dismiss"

    #: kinds stored once per (user, item)
    ONCE_PER_ITEM = ("adopt", "dismiss")
    #: kinds after which the item is never recommended to the user again
    BLOCKING = ("adopt", "complete", "dismiss")

    user_id = models.CharField(max_length=USER_ID_MAX_LENGTH)
    # PROTECT: history is evidence for training and for experiments; retire an
    # item with `active=False` instead.
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="interactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    weight = models.FloatField()
    timestamp = models.DateTimeField()

    class Meta:
        indexes = [
            # per-user reads: the serving path's "what did this user block", history
            models.Index(fields=["user_id", "timestamp"], name="rec_inter_user_time"),
            # training and evaluation read by time
            models.Index(fields=["timestamp"], name="rec_inter_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["view", "click", "adopt", "complete", "dismiss"]),
                name="rec_inter_kind_valid",
            ),
            models.UniqueConstraint(
                fields=["user_id", "item", "kind"],
                condition=Q(kind__in=["adopt", "dismiss"]),
                name="rec_inter_once_per_item",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} item {self.item_id}"


class ModelVersion(models.Model):
    """One trained engine: its parameters, data cut-off, offline evaluation and artifact.

    At most one version per engine is active (a partial unique constraint);
    activation swaps it in one transaction, and serving processes pick the new
    version up within a few seconds.
    """

    class Engine(models.TextChoices):
        POPULARITY = "popularity", "Popularity (v1)"
        CF = "cf", "Collaborative filtering"
        CONTENT = "content", "Content-based"
        ENSEMBLE = "ensemble", "Ensemble (v2)"

    engine = models.CharField(max_length=16, choices=Engine.choices)
    parameters = models.JSONField(default=dict, blank=True)
    #: interactions strictly before this instant were used for training
    training_cutoff = models.DateTimeField()
    n_items = models.PositiveIntegerField(default=0)
    n_users = models.PositiveIntegerField(default=0)
    n_interactions = models.PositiveBigIntegerField(default=0)
    #: offline evaluation on a time split: {"k", "split_cutoff", "results": {engine: {...}}, …}
    metrics = models.JSONField(default=dict, blank=True)
    training_seconds = models.FloatField(default=0)
    artifact = models.BinaryField()  # engine.to_bytes(): npz + JSON metadata, no pickle
    artifact_bytes = models.PositiveBigIntegerField(default=0)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["engine"], condition=Q(is_active=True), name="rec_one_active_per_engine"
            ),
            models.CheckConstraint(
                condition=Q(engine__in=["popularity", "cf", "content", "ensemble"]),
                name="rec_model_engine_valid",
            ),
        ]

    def __str__(self) -> str:
        state = "active" if self.is_active else "inactive"
        return f"{self.engine} #{self.id} ({state})"

    @property
    def label(self) -> str:
        """What the API answers as `version`: e.g. "v2-ensemble-12"."""
        generation = "v2" if self.engine == self.Engine.ENSEMBLE else "v1"
        return f"{generation}-{self.engine}-{self.id}"

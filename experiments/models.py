"""Experiments: what is measured (Metric), what is compared (Experiment and its
Variants), who saw what (Exposure) and what they did (Event).

Invariants live in the database: unique keys, one control per experiment at
most (a partial unique index; "at least one" is checked by the service that
creates variants), positive weights, one exposure per experiment and unit, one
event per event_id.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel

KEY_MAX_LENGTH = 64
UNIT_ID_MAX_LENGTH = 200
# The contract's event ids (a client's own, e.g. a UUID with a namespace and a
# timestamp) are up to 200 characters, as long as unit ids.
EVENT_ID_MAX_LENGTH = 200


def new_seed() -> str:
    return uuid.uuid4().hex


class Metric(TimeStampedModel):
    class Kind(models.TextChoices):
        BINOMIAL = "binomial", "Binomial (converted or not)"
        MEAN = "mean", "Mean of per-unit sums"
        RATIO = "ratio", "Ratio of two metrics' per-unit sums (delta method)"

    class Cap(models.TextChoices):
        NONE = "", "No capping"
        FIXED = "fixed", "At a fixed value"
        PERCENTILE = "percentile", "At a percentile of the experiment's per-unit values"

    key = models.SlugField(max_length=KEY_MAX_LENGTH, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    higher_is_better = models.BooleanField(default=True)
    missing_as_zero = models.BooleanField(
        default=True,
        help_text="Units without events count as 0; off leaves them out (e.g. a 1–5 rating).",
    )

    class UnitAggregation(models.TextChoices):
        SUM = "sum", "Sum of the unit's values (e.g. seconds spent)"
        MEAN = "mean", "Mean of the unit's values (e.g. a rating)"

    unit_aggregation = models.CharField(
        max_length=8,
        choices=UnitAggregation.choices,
        default=UnitAggregation.SUM,
        help_text="How a mean metric combines several events of one unit.",
    )

    # Winsorisation of mean metrics: each unit's value is min(value, cap), so one
    # outlier cannot decide a test. A percentile cap (e.g. 0.99) is computed in the
    # database over the experiment's per-unit values at each analysis.
    cap_kind = models.CharField(max_length=16, choices=Cap.choices, default=Cap.NONE, blank=True)
    cap_value = models.FloatField(
        null=True, blank=True, help_text="The cap (fixed) or the percentile in (0, 1)."
    )
    # Ratio metrics: Σ numerator / Σ denominator per arm, each a metric of its own.
    numerator = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    denominator = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(cap_kind="") & Q(cap_value__isnull=True))
                | (Q(cap_kind="fixed") & Q(cap_value__isnull=False))
                | (Q(cap_kind="percentile") & Q(cap_value__gt=0) & Q(cap_value__lt=1)),
                name="metric_cap_consistent",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="ratio") & Q(numerator__isnull=False) & Q(denominator__isnull=False)
                )
                | (~Q(kind="ratio") & Q(numerator__isnull=True) & Q(denominator__isnull=True)),
                name="metric_ratio_has_both_parts",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class Experiment(TimeStampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        # Kept for the record and out of the way: nothing assigns or analyses it.
        ARCHIVED = "archived", "Archived"

    key = models.SlugField(max_length=KEY_MAX_LENGTH, unique=True)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    traffic_percent = models.FloatField(
        default=100.0, help_text="Share of units in the experiment, 0–100."
    )
    alpha = models.FloatField(default=0.05)
    # The hash seed is fixed at creation: changing it would reshuffle every unit.
    seed = models.CharField(max_length=64, default=new_seed, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    # How results are computed and decided.
    sequential = models.BooleanField(
        default=True,
        help_text="Decide on always-valid (sequential) inference, safe to look at any time.",
    )
    correction = models.CharField(
        max_length=8,
        choices=[("holm", "Holm"), ("bh", "Benjamini–Hochberg")],
        default="holm",
        help_text="Multiple-testing correction across decision metrics × treatments.",
    )
    cuped_lookback_days = models.PositiveSmallIntegerField(
        default=14, help_text="Pre-exposure window of CUPED; 0 turns CUPED off."
    )
    exclude_carryover = models.BooleanField(
        default=True,
        help_text="Leave out units first exposed during the canary stage of a linked rollout.",
    )
    decision_policy = models.JSONField(
        default=dict, blank=True, help_text="Overrides of the default decision rules."
    )

    class Engine(models.TextChoices):
        FREQUENTIST = "frequentist", "Frequentist (sequential or fixed horizon)"
        BAYESIAN = "bayesian", "Bayesian (Gaussian approximation)"

    engine = models.CharField(
        max_length=16,
        choices=Engine.choices,
        default=Engine.FREQUENTIST,
        help_text="Bayesian: decide on chance to beat control and risk instead of p-values.",
    )
    # The Bayesian engine's prior on the relative effect, N(mean, variance); not
    # proper means flat (the data's own normal approximation).
    prior_mean = models.FloatField(default=0.0)
    prior_variance = models.FloatField(default=1.0)
    prior_proper = models.BooleanField(default=False)
    analysis_claimed_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("send_data", "Can ask for assignments and send exposures and events"),
            ("manage_experiment", "Can start, stop and archive experiments"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(traffic_percent__gte=0) & Q(traffic_percent__lte=100),
                name="experiment_traffic_percent_0_100",
            ),
            models.CheckConstraint(
                condition=Q(alpha__gt=0) & Q(alpha__lt=0.5), name="experiment_alpha_0_05"
            ),
            models.CheckConstraint(
                condition=Q(prior_variance__gt=0), name="experiment_prior_variance_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def coverage(self) -> float:
        return self.traffic_percent / 100.0


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=KEY_MAX_LENGTH)
    name = models.CharField(max_length=200, blank=True)
    weight = models.FloatField(default=1.0)
    is_control = models.BooleanField(default=False)
    payload = models.JSONField(default=dict, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["experiment_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_key_unique"),
            models.UniqueConstraint(
                fields=["experiment"], condition=Q(is_control=True), name="variant_one_control"
            ),
            models.CheckConstraint(condition=Q(weight__gt=0), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.key}"


class ExperimentMetric(models.Model):
    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        SECONDARY = "secondary", "Secondary"
        GUARDRAIL = "guardrail", "Guardrail"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metrics")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PRIMARY)
    min_effect = models.FloatField(
        null=True, blank=True, help_text="Smallest effect worth acting on (absolute units)."
    )

    class Meta:
        ordering = ["experiment_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "metric"], name="experiment_metric_once")
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.metric_id} ({self.role})"


class Exposure(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    unit_id = models.CharField(max_length=UNIT_ID_MAX_LENGTH)
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    exposed_at = models.DateTimeField(db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    # The rollout stage the unit was first exposed in; the A/B analysis can
    # leave out units that first came in during the canary (carryover).
    stage = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "unit_id"], name="exposure_once_per_unit")
        ]
        indexes = [models.Index(fields=["experiment", "variant"], name="exposure_exp_variant")]

    def __str__(self) -> str:
        return f"{self.unit_id} → {self.variant_id}"


class Event(models.Model):
    event_id = models.CharField(max_length=EVENT_ID_MAX_LENGTH, unique=True)
    unit_id = models.CharField(max_length=UNIT_ID_MAX_LENGTH)
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="+")
    value = models.FloatField(default=1.0)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["metric", "unit_id", "timestamp"], name="event_metric_unit_time"),
        ]

    def __str__(self) -> str:
        return self.event_id


class Snapshot(models.Model):
    """The results of one analysis run, frozen: the REST `results` answer and
    the decision report are rendered from it."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Beat schedule"
        API = "api", "Requested over the API"
        MANUAL = "manual", "Run by hand"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    inputs_hash = models.CharField(max_length=64)
    units = models.PositiveIntegerField(default=0)
    carryover_excluded = models.PositiveIntegerField(default=0)
    srm = models.JSONField(default=dict)
    metrics = models.JSONField(default=list)
    decision = models.JSONField(default=dict)
    service = models.JSONField(default=dict, blank=True)
    # Newest event and exposure ids when computed: a scheduled refresh that
    # finds the same watermark skips the work (see services.analysis).
    watermark = models.JSONField(default=dict, blank=True)
    duration_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [
            # Covering the id: the charts list a long history's snapshot ids with
            # an index-only scan instead of visiting the wide rows.
            models.Index(
                fields=["experiment", "-computed_at"], include=["id"], name="snapshot_latest"
            )
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id} @ {self.computed_at:%Y-%m-%d %H:%M}"

    @property
    def verdict(self) -> str:
        return self.decision.get("verdict", "")


# The numbers of one comparison, as stored per snapshot and reported.
COMPARISON_NUMBERS = (
    "absolute_effect",
    "relative_effect",
    "ci_low",
    "ci_high",
    "sequential_ci_low",
    "sequential_ci_high",
    "p_value",
    "sequential_p_value",
    "p_value_adjusted",
    "significant",
    # This look's own always-valid p-value (the one above is the running minimum).
    "sequential_p_value_look",
    # Guardrails: one-sided p-value for harm (before the guardrail family's correction).
    "harm_p_value",
    # The corrected intervals important thresholds are judged on.
    "important_ci_low",
    "important_ci_high",
    "important_relative_ci_low",
    "important_relative_ci_high",
    "power",
    "units_needed",
    "days_needed",
    # Bayesian engine: chance to beat control and the risk of shipping either arm.
    "chance_to_win",
    "risk_control",
    "risk_treatment",
)


class SnapshotMetric(models.Model):
    """One comparison of a snapshot as flat columns, so that charts over time
    read a few numbers per snapshot instead of whole JSON documents."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="rows")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    computed_at = models.DateTimeField()
    metric = models.CharField(max_length=KEY_MAX_LENGTH)
    variant = models.CharField(max_length=KEY_MAX_LENGTH)
    units = models.PositiveIntegerField()
    absolute_effect = models.FloatField(null=True)
    relative_effect = models.FloatField(null=True)
    ci_low = models.FloatField(null=True)
    ci_high = models.FloatField(null=True)
    sequential_ci_low = models.FloatField(null=True)
    sequential_ci_high = models.FloatField(null=True)
    p_value = models.FloatField(null=True)
    sequential_p_value = models.FloatField(null=True)
    p_value_adjusted = models.FloatField(null=True)
    significant = models.BooleanField(default=False)
    sequential_p_value_look = models.FloatField(null=True)
    harm_p_value = models.FloatField(null=True)
    important_ci_low = models.FloatField(null=True)
    important_ci_high = models.FloatField(null=True)
    important_relative_ci_low = models.FloatField(null=True)
    important_relative_ci_high = models.FloatField(null=True)
    power = models.FloatField(null=True)
    units_needed = models.BigIntegerField(null=True)
    days_needed = models.FloatField(null=True)
    chance_to_win = models.FloatField(null=True)
    risk_control = models.FloatField(null=True)
    risk_treatment = models.FloatField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["experiment", "metric", "computed_at"], name="snapshot_series")
        ]

    def __str__(self) -> str:
        return f"{self.metric}/{self.variant} @ {self.computed_at:%Y-%m-%d %H:%M}"

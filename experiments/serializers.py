"""Input and output shapes of the REST contract v1 (see DESIGN.md)."""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from common import validation
from common.api import (
    AttributesField,
    BoundedFloatField,
    JSONDocumentField,
    TimestampField,
    WeightField,
)
from common.api import AuditEntrySerializer as BaseAuditEntrySerializer
from experiments.models import (
    EVENT_ID_MAX_LENGTH,
    KEY_MAX_LENGTH,
    UNIT_ID_MAX_LENGTH,
    Experiment,
    ExperimentMetric,
    Metric,
)
from experiments.services.assignment import MAX_BATCH_UNITS


class MetricSerializer(serializers.ModelSerializer):
    cap_value = BoundedFloatField(required=False, allow_null=True, default=None)
    numerator = serializers.SlugRelatedField(
        slug_field="key", queryset=Metric.objects.all(), required=False, allow_null=True
    )
    denominator = serializers.SlugRelatedField(
        slug_field="key", queryset=Metric.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Metric
        fields = [
            "key",
            "name",
            "description",
            "kind",
            "higher_is_better",
            "missing_as_zero",
            "unit_aggregation",
            "cap_kind",
            "cap_value",
            "numerator",
            "denominator",
        ]
        extra_kwargs = {"key": {"validators": []}}  # uniqueness answers 409, not 400


class VariantInputSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=KEY_MAX_LENGTH)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    weight = WeightField(default=1.0)
    is_control = serializers.BooleanField(default=False)
    payload = JSONDocumentField(required=False, default=dict)


class ExperimentMetricInputSerializer(serializers.Serializer):
    metric = serializers.SlugField(max_length=KEY_MAX_LENGTH)
    role = serializers.ChoiceField(
        choices=ExperimentMetric.Role.choices, default=ExperimentMetric.Role.PRIMARY
    )
    min_effect = BoundedFloatField(required=False, allow_null=True, default=None)


def _alpha(value: float) -> float:
    if not 0 < value < 0.5:
        raise serializers.ValidationError("Must be between 0 and 0.5 (e.g. 0.05).")
    return value


DECISION_POLICY_HELP = (
    "Overrides of the default decision rules: require_primary_significant, max_error_rate, "
    "max_p95_ms, important_needed, important: [{metric, min_absolute | min_relative, label}]."
)


class PriorSerializer(serializers.Serializer):
    """The Bayesian engine's prior on the relative effect."""

    mean = BoundedFloatField(default=0.0)
    variance = BoundedFloatField(default=1.0, min_value=1e-12)
    proper = serializers.BooleanField(default=True)


class ExperimentCreateSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=KEY_MAX_LENGTH)
    name = serializers.CharField(max_length=200)
    hypothesis = serializers.CharField(required=False, allow_blank=True, default="")
    traffic_percent = serializers.FloatField(min_value=0, max_value=100, default=100.0)
    alpha = serializers.FloatField(default=0.05, validators=[_alpha])
    variants = VariantInputSerializer(many=True)
    metrics = ExperimentMetricInputSerializer(many=True, required=False, default=list)
    decision_policy = JSONDocumentField(required=False, help_text=DECISION_POLICY_HELP)
    engine = serializers.ChoiceField(
        choices=Experiment.Engine.choices, default=Experiment.Engine.FREQUENTIST
    )
    prior = PriorSerializer(required=False, default=None, allow_null=True)


class ExperimentUpdateSerializer(serializers.Serializer):
    """What a PATCH may carry; the edit rule (experiments.services.editing)
    decides what may change in the experiment's status: a running
    experiment's variants, weights, seed and hash attribute are refused (409)."""

    name = serializers.CharField(max_length=200, required=False)
    hypothesis = serializers.CharField(required=False, allow_blank=True)
    traffic_percent = serializers.FloatField(min_value=0, max_value=100, required=False)
    alpha = serializers.FloatField(required=False, validators=[_alpha])
    sequential = serializers.BooleanField(required=False)
    correction = serializers.ChoiceField(choices=["holm", "bh"], required=False)
    cuped_lookback_days = serializers.IntegerField(min_value=0, max_value=365, required=False)
    exclude_carryover = serializers.BooleanField(required=False)
    decision_policy = JSONDocumentField(required=False, help_text=DECISION_POLICY_HELP)
    variants = VariantInputSerializer(many=True, required=False)
    metrics = ExperimentMetricInputSerializer(many=True, required=False)
    seed = serializers.CharField(max_length=64, required=False, help_text="Fixed at creation.")
    hash_attribute = serializers.CharField(max_length=64, required=False, help_text="Always 'id'.")


class VariantOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    weight = serializers.FloatField()
    is_control = serializers.BooleanField()
    payload = serializers.JSONField()


class ExperimentMetricOutputSerializer(serializers.Serializer):
    metric = serializers.CharField(source="metric.key")
    role = serializers.CharField()
    min_effect = serializers.FloatField(allow_null=True)


class ExperimentSerializer(serializers.ModelSerializer):
    variants = VariantOutputSerializer(many=True, read_only=True)
    metrics = ExperimentMetricOutputSerializer(many=True, read_only=True)
    owner = serializers.CharField(source="owner.username", default=None, read_only=True)

    class Meta:
        model = Experiment
        fields = [
            "key",
            "name",
            "hypothesis",
            "status",
            "traffic_percent",
            "alpha",
            "engine",
            "prior_mean",
            "prior_variance",
            "prior_proper",
            "seed",
            "owner",
            "created_at",
            "updated_at",
            "started_at",
            "stopped_at",
            "archived_at",
            "sequential",
            "correction",
            "cuped_lookback_days",
            "exclude_carryover",
            "decision_policy",
            "variants",
            "metrics",
        ]


class AssignmentInputSerializer(serializers.Serializer):
    experiment = serializers.SlugField(max_length=KEY_MAX_LENGTH)
    unit_id = serializers.CharField(max_length=UNIT_ID_MAX_LENGTH)
    attributes = AttributesField(required=False, default=dict)


def parse_assignment(data: object) -> tuple[str, str, dict]:
    """The fields of AssignmentInputSerializer, checked by hand with the same
    checks (common.validation): this endpoint is the hottest of all and a DRF
    serializer costs more than the assignment."""
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    experiment = unit_id = ""
    attributes: dict = {}
    try:
        experiment = validation.check_key(data.get("experiment"), max_length=KEY_MAX_LENGTH)
    except validation.Invalid as exc:
        errors["experiment"] = [exc.message]
    try:
        unit_id = validation.check_text(
            data.get("unit_id"), max_length=UNIT_ID_MAX_LENGTH, numbers_as_text=True
        )
    except validation.Invalid as exc:
        errors["unit_id"] = [exc.message]
    try:
        attributes = _attributes(data.get("attributes"))
    except validation.Invalid as exc:
        errors["attributes"] = [exc.message]
    if errors:
        raise serializers.ValidationError(errors)
    return experiment, unit_id, attributes


def _attributes(raw: object) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise validation.Invalid("Expected a JSON object.")
    return validation.check_json(raw)


class AssignmentOutputSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    unit_id = serializers.CharField()
    in_experiment = serializers.BooleanField()
    variant = serializers.CharField(allow_null=True)
    payload = serializers.JSONField(allow_null=True)


class BatchAssignmentInputSerializer(serializers.Serializer):
    experiment = serializers.SlugField(max_length=KEY_MAX_LENGTH)
    unit_ids = serializers.ListField(
        child=serializers.CharField(max_length=UNIT_ID_MAX_LENGTH),
        min_length=1,
        max_length=MAX_BATCH_UNITS,
    )


class BatchAssignmentItemSerializer(serializers.Serializer):
    unit_id = serializers.CharField()
    in_experiment = serializers.BooleanField()
    variant = serializers.CharField(allow_null=True)


class BatchAssignmentOutputSerializer(serializers.Serializer):
    assignments = BatchAssignmentItemSerializer(many=True)


class EventItemSerializer(serializers.Serializer):
    """Documentation of one event; items are validated one by one by the
    ingestion service so that a bad item never rejects the batch."""

    event_id = serializers.CharField(
        max_length=EVENT_ID_MAX_LENGTH,
        required=False,
        help_text=(
            "Unique id of the event; a repeated id is stored once and counted in `duplicates`. "
            "When absent, the id is sha256(unit_id, metric, value, timestamp as sent, and the "
            "item's occurrence among identical items of the batch): a retried identical batch "
            "is not counted twice, while two identical items in one batch are two events."
        ),
    )
    unit_id = serializers.CharField(max_length=UNIT_ID_MAX_LENGTH)
    metric = serializers.CharField(max_length=KEY_MAX_LENGTH)
    value = BoundedFloatField(default=1, help_text="Finite number within ±1e15; default 1.")
    timestamp = TimestampField(
        required=False,
        help_text="ISO 8601 (UTC when no offset) or epoch seconds; default now; "
        "from 2000-01-01 to at most 24 h in the future.",
    )


class EventBatchSerializer(serializers.Serializer):
    events = EventItemSerializer(many=True, help_text="1 to 10 000 events.")


class ExposureItemSerializer(serializers.Serializer):
    experiment = serializers.CharField(max_length=KEY_MAX_LENGTH)
    unit_id = serializers.CharField(max_length=UNIT_ID_MAX_LENGTH)
    variant = serializers.CharField(max_length=KEY_MAX_LENGTH)
    timestamp = TimestampField(required=False)
    attributes = AttributesField(
        required=False, help_text="A JSON object, at most 20 levels deep; finite numbers."
    )


class ExposureBatchSerializer(serializers.Serializer):
    exposures = ExposureItemSerializer(many=True, help_text="1 to 10 000 exposures.")


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedItemSerializer(many=True)


class SdkConfigSerializer(serializers.Serializer):
    key = serializers.CharField()
    variations = serializers.ListField(child=serializers.CharField())
    weights = serializers.ListField(child=serializers.FloatField())
    coverage = serializers.FloatField()
    hashVersion = serializers.IntegerField()
    seed = serializers.CharField()
    hashAttribute = serializers.CharField()


@extend_schema_serializer(component_name="ExperimentAuditEntry")
class AuditEntrySerializer(BaseAuditEntrySerializer):
    experiment = serializers.CharField(source="object_key")

    class Meta(BaseAuditEntrySerializer.Meta):
        fields = [
            "id",
            "created_at",
            "experiment",
            "actor",
            "action",
            "message",
            "data",
            "object_type",
            "object_key",
        ]

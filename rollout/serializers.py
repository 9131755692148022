from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from common.api import AuditEntrySerializer as BaseAuditEntrySerializer
from rollout.models import KEY_MAX_LENGTH, StageTransition


class StageSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=32)
    percent = serializers.FloatField(min_value=0, max_value=100)
    min_duration_hours = serializers.FloatField(min_value=0, max_value=24 * 365, default=0)
    needs_approval = serializers.BooleanField(default=True)
    role = serializers.ChoiceField(
        choices=["staff_only", "canary", "experiment", "full"],
        required=False,
        help_text="0 % stages are staff_only and 100 % stages full; a stage in between may "
        "say canary or experiment (by default the last one is the experiment stage when an "
        "experiment is linked).",
    )


class ThresholdsSerializer(serializers.Serializer):
    max_error_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    max_p95_ms = serializers.FloatField(min_value=0, max_value=600_000, required=False)
    min_availability = serializers.FloatField(min_value=0, max_value=1, required=False)


class SettingsSerializer(serializers.Serializer):
    stages = StageSerializer(many=True, required=False)
    sla = ThresholdsSerializer(required=False)
    rollback = ThresholdsSerializer(required=False)
    allow_list = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=1000
    )
    min_requests = serializers.IntegerField(min_value=0, max_value=100_000_000, required=False)
    window_minutes = serializers.IntegerField(min_value=1, max_value=60, required=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RolloutCreateSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=KEY_MAX_LENGTH)
    name = serializers.CharField(max_length=200)
    feature = serializers.SlugField(
        max_length=KEY_MAX_LENGTH, required=False, help_text="Defaults to the key."
    )
    experiment = serializers.SlugField(max_length=KEY_MAX_LENGTH, required=False, allow_null=True)
    stages = StageSerializer(many=True, required=False)
    sla = ThresholdsSerializer(required=False)
    rollback = ThresholdsSerializer(required=False)
    min_requests = serializers.IntegerField(min_value=0, max_value=100_000_000, default=0)
    window_minutes = serializers.IntegerField(min_value=1, max_value=60, default=5)
    allow_list = serializers.ListField(
        child=serializers.CharField(max_length=200), default=list, max_length=1000
    )


class RouteInputSerializer(serializers.Serializer):
    unit_id = serializers.CharField(max_length=200)
    staff = serializers.BooleanField(default=False, help_text="The unit is a staff member.")


class SampleSerializer(serializers.Serializer):
    version = serializers.ChoiceField(choices=["stable", "canary"])
    latency_ms = serializers.FloatField(
        min_value=0, max_value=3_600_000, allow_null=True, required=False
    )
    status = serializers.IntegerField(min_value=0, max_value=599)
    timestamp = serializers.DateTimeField(required=False)


class SamplesSerializer(serializers.Serializer):
    samples = SampleSerializer(many=True, help_text="1 to 10 000 request samples.")


class TransitionRequestSerializer(serializers.Serializer):
    to_stage = serializers.SlugField(max_length=32)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RollbackSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class TransitionSerializer(serializers.ModelSerializer):
    rollout = serializers.CharField(source="rollout.key")
    requested_by = serializers.CharField(source="requested_by.username", default=None)
    decided_by = serializers.CharField(source="decided_by.username", default=None)

    class Meta:
        model = StageTransition
        fields = [
            "id",
            "rollout",
            "from_stage",
            "to_stage",
            "from_percent",
            "to_percent",
            "status",
            "requested_by",
            "proposed_by_platform",
            "request_comment",
            "evidence",
            "decided_by",
            "decision_comment",
            "decision_evidence",
            "invalidation_reason",
            "created_at",
            "decided_at",
            "applied_at",
        ]


@extend_schema_serializer(component_name="RolloutAuditEntry")
class AuditEntrySerializer(BaseAuditEntrySerializer):
    rollout = serializers.CharField(source="object_key")

    class Meta(BaseAuditEntrySerializer.Meta):
        fields = [
            "id",
            "created_at",
            "rollout",
            "actor",
            "action",
            "message",
            "data",
            "object_type",
            "object_key",
        ]

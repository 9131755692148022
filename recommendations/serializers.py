"""Input validation and output shapes of the v2 recommendation API."""

from rest_framework import serializers

from recommendations.models import USER_ID_MAX_LENGTH, ContentItem
from recommendations.services.feedback import ACTIONS
from recommendations.services.serving import MAX_K


class ContextSerializer(serializers.Serializer):
    """A hint about what the mentee is after, used for users without history. Other
    keys (page, locale, …) are accepted and ignored."""

    text = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=20
    )


class RecommendRequestSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=USER_ID_MAX_LENGTH)
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=10)
    context = ContextSerializer(required=False, allow_null=True)

    def validated_context(self) -> str | list[str] | None:
        """The context as the content engine takes it: text (with any tags appended as
        words), or the tags alone."""
        context = self.validated_data.get("context") or {}
        text, tags = context.get("text", "").strip(), context.get("tags") or []
        if text:
            return " ".join([text, *tags])
        return list(tags) or None


class RecommendedItemSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ContentItem.Kind.choices)
    title = serializers.CharField()
    score = serializers.FloatField()


class RecommendationsSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    version = serializers.CharField(
        help_text='Which engine answered: "v2-ensemble-<model id>", "v1-popularity-<model id>",'
        ' or "v0-popularity-live" before the first training.'
    )
    items = RecommendedItemSerializer(many=True)


class FeedbackRequestSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=USER_ID_MAX_LENGTH)
    item_id = serializers.IntegerField(min_value=1)
    action = serializers.ChoiceField(choices=ACTIONS)


class FeedbackSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.CharField()
    item_id = serializers.IntegerField()
    action = serializers.CharField(source="kind")
    timestamp = serializers.DateTimeField()
    created = serializers.BooleanField(
        help_text="False when the same adopt/dismiss was already stored (a retry)."
    )


class ItemQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ContentItem.Kind.choices, required=False)
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)


class SimilarQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=10)


class ContentItemSerializer(serializers.ModelSerializer):
    item_id = serializers.IntegerField(source="id")

    class Meta:
        model = ContentItem
        fields = ["item_id", "kind", "title", "description", "tags"]


class SimilarItemsSerializer(serializers.Serializer):
    items = RecommendedItemSerializer(many=True)

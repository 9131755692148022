"""Input validation and output shapes of the v2 conversation API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.models import (
    GOAL_MAX_LENGTH,
    TOPIC_MAX_LENGTH,
    USER_ID_MAX_LENGTH,
    ConversationSession,
    MemoryFact,
)
from conversations.services.turns import MAX_MESSAGE_CHARS

QUOTE_CHARS = 200


class UserIdSerializer(serializers.Serializer):
    user_id = serializers.CharField(max_length=USER_ID_MAX_LENGTH)


class StartInputSerializer(UserIdSerializer):
    topic = serializers.CharField(max_length=TOPIC_MAX_LENGTH)
    goal = serializers.CharField(
        max_length=GOAL_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


class MessageInputSerializer(UserIdSerializer):
    text = serializers.CharField(max_length=MAX_MESSAGE_CHARS)


class EndInputSerializer(UserIdSerializer):
    outcome = serializers.ChoiceField(choices=ConversationSession.Outcome.choices)


class FeedbackInputSerializer(UserIdSerializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)


class SessionStartedSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(source="session.id")
    version = serializers.CharField(help_text="stable (v1) or canary (v2), kept for the session.")
    status = serializers.CharField(source="session.status")
    topic = serializers.CharField(source="session.topic")
    resumed = serializers.BooleanField(help_text="An active session on this topic was resumed.")


class SessionSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(source="id")
    user_id = serializers.CharField()
    version = serializers.CharField()
    topic = serializers.CharField()
    status = serializers.CharField()
    goal = serializers.CharField()
    outcome = serializers.CharField(allow_blank=True)
    rating = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


class TurnSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    role = serializers.CharField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    latency_ms = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()
    backend = serializers.CharField(allow_blank=True)
    degraded = serializers.BooleanField(
        help_text="The backend failed; the text is the message shown instead of an answer."
    )


class SessionDetailSerializer(SessionSerializer):
    summary = serializers.CharField(
        allow_null=True, help_text="The rolling summary of turns no longer sent verbatim."
    )
    turns = TurnSerializer(many=True)


class ReplySerializer(serializers.Serializer):
    session_id = serializers.IntegerField()
    turn_index = serializers.IntegerField(
        source="reply.index",
        help_text="Index of the mentor's reply among the session's turns "
        "(the message is one less).",
    )
    reply = serializers.CharField(source="reply.text")
    degraded = serializers.BooleanField(source="reply.degraded")
    version = serializers.CharField(help_text="The version that served this message.")


class FactSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField()
    confidence = serializers.FloatField()
    updated_at = serializers.DateTimeField()
    source = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_source(self, fact: MemoryFact) -> dict[str, Any] | None:
        turn = fact.source_turn
        if turn is None:
            return None
        return {
            "session_id": turn.session_id,
            "turn_index": turn.index,
            "quote": turn.text[:QUOTE_CHARS],
        }


class MemorySerializer(serializers.Serializer):
    user_id = serializers.CharField()
    facts = FactSerializer(many=True)

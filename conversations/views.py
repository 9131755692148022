"""v2 conversation API, called by the ion-mentoring front end with an integration token on
behalf of ``user_id``: thin views that parse, route, call one service and render.

Errors come from the services as DomainError (common.api answers them): 400 with a field
message for bad input, 404 for an unknown session or another user's (the same answer, so
ids cannot be probed), 409 for a session in the wrong state.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import query_text
from common.permissions import has_perm
from conversations import routing, selectors, serializers
from conversations.access import CanAccessMenteeData
from conversations.models import USER_ID_MAX_LENGTH
from conversations.services import memory_store, sessions, turns

CanSendData = has_perm("experiments.send_data")
USER_ID_PARAMETER = OpenApiParameter("user_id", str, required=True, description="The mentee.")


class ConversationView(APIView):
    permission_classes = [CanSendData]


class SessionStartView(ConversationView):
    @extend_schema(
        operation_id="v2_conversations_start",
        request=serializers.StartInputSerializer,
        responses={
            201: serializers.SessionStartedSerializer,
            200: serializers.SessionStartedSerializer,
        },
        description="Start a session (201), or resume the mentee's active session on the "
        "same topic (200, `resumed: true`). The rollout router picks the version.",
    )
    def post(self, request: Request) -> Response:
        given = serializers.StartInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        # routed after validation: a rejected request is neither exposed nor counted
        route = routing.route_conversation(request, data["user_id"])
        started = sessions.start_session(
            user_id=data["user_id"], topic=data["topic"], goal=data["goal"], version=route.version
        )
        version = routing.served_version(route, started.session.version)
        routing.count_as(request, version)
        body = serializers.SessionStartedSerializer(
            {"session": started.session, "version": version, "resumed": started.resumed}
        ).data
        return Response(
            body, status=status.HTTP_200_OK if started.resumed else status.HTTP_201_CREATED
        )


class SessionDetailView(ConversationView):
    """The transcript: only for those who may read a mentee's data (conversations.access)."""

    permission_classes = [CanAccessMenteeData]

    @extend_schema(
        operation_id="v2_conversations_retrieve",
        parameters=[USER_ID_PARAMETER],
        responses=serializers.SessionDetailSerializer,
    )
    def get(self, request: Request, session_id: int) -> Response:
        given = serializers.UserIdSerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        user_id = given.validated_data["user_id"]
        route = routing.route_conversation(request, user_id)
        session = selectors.get_session(session_id=session_id, user_id=user_id)
        routing.count_as(request, routing.served_version(route, session.version))
        summary = selectors.session_summary(session)
        # SessionDetailSerializer documents this shape; it is rendered from its parts.
        body = {
            **serializers.SessionSerializer(session).data,
            "summary": summary.text if summary else None,
            "turns": serializers.TurnSerializer(selectors.session_turns(session), many=True).data,
        }
        return Response(body)


class MessageView(ConversationView):
    @extend_schema(
        operation_id="v2_conversations_messages_create",
        request=serializers.MessageInputSerializer,
        responses=serializers.ReplySerializer,
        description="Send the mentee's message; answers the mentor's reply. When the LLM "
        "backend fails, `reply` is a friendly message and `degraded` is true.",
    )
    def post(self, request: Request, session_id: int) -> Response:
        given = serializers.MessageInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        route = routing.route_conversation(request, data["user_id"])
        result = turns.send_message(
            session_id=session_id,
            user_id=data["user_id"],
            text=data["text"],
            serve_stable=routing.is_rolled_back(route),
        )
        routing.count_as(request, result.version)
        return Response(serializers.ReplySerializer(result).data)


class SessionEndView(ConversationView):
    @extend_schema(
        operation_id="v2_conversations_end",
        request=serializers.EndInputSerializer,
        responses=serializers.SessionSerializer,
    )
    def post(self, request: Request, session_id: int) -> Response:
        given = serializers.EndInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        route = routing.route_conversation(request, data["user_id"])
        session = sessions.end_session(
            session_id=session_id, user_id=data["user_id"], outcome=data["outcome"]
        )
        routing.count_as(request, routing.served_version(route, session.version))
        return Response(serializers.SessionSerializer(session).data)


class SessionFeedbackView(ConversationView):
    @extend_schema(
        operation_id="v2_conversations_feedback",
        request=serializers.FeedbackInputSerializer,
        responses=serializers.SessionSerializer,
        description="Rate a session 1–5, once. The same rating again is a harmless retry; "
        "another rating answers 409.",
    )
    def post(self, request: Request, session_id: int) -> Response:
        given = serializers.FeedbackInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        route = routing.route_conversation(request, data["user_id"])
        session = sessions.rate_session(
            session_id=session_id, user_id=data["user_id"], rating=data["rating"]
        )
        routing.count_as(request, routing.served_version(route, session.version))
        return Response(serializers.SessionSerializer(session).data)


class UserMemoryView(ConversationView):
    """What is remembered about a mentee, and its erasure: only for those who may read a
    mentee's data (conversations.access)."""

    permission_classes = [CanAccessMenteeData]

    @extend_schema(operation_id="v2_users_memory_retrieve", responses=serializers.MemorySerializer)
    def get(self, request: Request, user_id: str) -> Response:
        user_id = _path_user_id(user_id)
        routing.route_conversation(request, user_id)
        facts = selectors.user_facts(user_id=user_id)
        return Response(serializers.MemorySerializer({"user_id": user_id, "facts": facts}).data)

    @extend_schema(operation_id="v2_users_memory_destroy", responses={204: None})
    def delete(self, request: Request, user_id: str) -> Response:
        user_id = _path_user_id(user_id)
        routing.route_conversation(request, user_id)
        memory_store.delete_user_memory(user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _path_user_id(raw: str) -> str:
    """The user id of the path, through the same boundary as a body's (400 for a NUL
    byte or an over-long id)."""
    return query_text(raw, name="user_id", max_length=USER_ID_MAX_LENGTH)

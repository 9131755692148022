"""v2 recommendation API (called by the ion-mentoring front end with an integration token
on behalf of `user_id`): thin views that parse, call one service and render. Errors come
from services as DomainError (see common.api): 400 with a field message, 404 unknown item.
"""

import time

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common import metrics
from common.permissions import has_perm
from recommendations import selectors, serializers
from recommendations.services import feedback, serving
from rollout.middleware import route_request

CanSendData = has_perm("experiments.send_data")
FEATURE = "recommendations"


class RecommendView(APIView):
    """Top-k recommendations; the rollout decides the engine (stable v1 / canary v2)."""

    permission_classes = [CanSendData]

    @extend_schema(
        request=serializers.RecommendRequestSerializer,
        responses=serializers.RecommendationsSerializer,
    )
    def post(self, request: Request) -> Response:
        given = serializers.RecommendRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        user_id = given.validated_data["user_id"]
        # Routed after validation: a rejected request is neither exposed nor counted. The
        # Django request, not DRF's wrapper: the metrics middleware reads its mark from it.
        route = route_request(request._request, FEATURE, user_id)
        started = time.perf_counter()
        result = serving.recommend(
            user_id=user_id,
            k=given.validated_data["k"],
            version=route.version,
            context=given.validated_context(),
            weights=serving.weights_for_route(route),
        )
        metrics.observe_recommendations(route.version, time.perf_counter() - started)
        return Response(serializers.RecommendationsSerializer(result).data)


class FeedbackView(APIView):
    """Click, adopt or dismiss → 201. An adopt also counts as the `adoption` metric; a
    repeated adopt/dismiss of the same item is the same fact (`created: false`)."""

    permission_classes = [CanSendData]

    @extend_schema(
        request=serializers.FeedbackRequestSerializer,
        responses={201: serializers.FeedbackSerializer},
    )
    def post(self, request: Request) -> Response:
        given = serializers.FeedbackRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        result = feedback.record_feedback(**given.validated_data)
        interaction = result.interaction
        body = {
            "id": interaction.id,
            "user_id": interaction.user_id,
            "item_id": interaction.item_id,
            "kind": interaction.kind,
            "timestamp": interaction.timestamp,
            "created": result.created,
        }
        return Response(serializers.FeedbackSerializer(body).data, status=status.HTTP_201_CREATED)


class CataloguePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ItemListView(generics.ListAPIView):
    """The active catalogue, filterable by `kind` and a text `q` (title, description,
    tags), paginated (`page`, `page_size` ≤ 200)."""

    permission_classes = [CanSendData]
    serializer_class = serializers.ContentItemSerializer
    pagination_class = CataloguePagination
    filter_backends: list = []

    @extend_schema(parameters=[serializers.ItemQuerySerializer])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        given = serializers.ItemQuerySerializer(data=self.request.query_params)
        given.is_valid(raise_exception=True)
        return selectors.list_items(
            kind=given.validated_data.get("kind"), q=given.validated_data.get("q")
        )


class SimilarItemsView(APIView):
    """Items related to one item; unknown item → 404."""

    permission_classes = [CanSendData]

    @extend_schema(
        parameters=[OpenApiParameter("k", int, description="1–100, default 10")],
        responses=serializers.SimilarItemsSerializer,
    )
    def get(self, request: Request, item_id: int) -> Response:
        given = serializers.SimilarQuerySerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        items = serving.similar_items(item_id=item_id, k=given.validated_data["k"])
        return Response(serializers.SimilarItemsSerializer({"items": items}).data)

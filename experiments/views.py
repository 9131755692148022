"""REST contract v1 for experiments: thin views that parse, call one service
and render. Errors come from services as DomainError (see common.api)."""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import LenientJSONParser, query_text
from common.audit import audit_of
from common.errors import DomainError
from common.lean_api import lean_json_endpoint
from common.permissions import CanReadAudit, has_perm
from common.throttling import AssignmentRateThrottle
from experiments import report, selectors, serializers
from experiments.models import COMPARISON_NUMBERS, Experiment, Snapshot, SnapshotMetric
from experiments.services import (
    analysis,
    assignment,
    editing,
    ingestion,
    integration,
    lifecycle,
    segments,
)

CanSendData = has_perm("experiments.send_data")
CanManage = has_perm("experiments.manage_experiment")


def _batch(request: Request, name: str) -> list:
    body = request.data
    if not isinstance(body, dict) or not isinstance(body.get(name), list):
        raise DomainError(f"The body must be a JSON object with a list '{name}'.", field=name)
    if not body[name]:
        raise DomainError(f"'{name}' must hold at least one item.", field=name)
    return body[name]


class MetricListCreateView(APIView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [has_perm("experiments.add_metric")()]
        return [IsAuthenticated()]

    @extend_schema(responses=serializers.MetricSerializer(many=True))
    def get(self, request: Request) -> Response:
        data = serializers.MetricSerializer(selectors.list_metrics(), many=True).data
        return Response(data)

    @extend_schema(
        request=serializers.MetricSerializer, responses={201: serializers.MetricSerializer}
    )
    def post(self, request: Request) -> Response:
        given = serializers.MetricSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        metric = lifecycle.create_metric(**given.validated_data)
        ingestion.forget_metric_cache()
        return Response(serializers.MetricSerializer(metric).data, status=status.HTTP_201_CREATED)


class ExperimentListCreateView(APIView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [has_perm("experiments.add_experiment")()]
        return [IsAuthenticated()]

    @extend_schema(responses=serializers.ExperimentSerializer(many=True))
    def get(self, request: Request) -> Response:
        experiments = selectors.experiments_with_details()
        wanted = query_text(request.query_params.get("status"), name="status", max_length=16)
        if wanted:
            if wanted not in Experiment.Status.values:
                raise DomainError(
                    f"status must be one of {', '.join(Experiment.Status.values)}.",
                    field="status",
                )
            experiments = experiments.filter(status=wanted)
        return Response(serializers.ExperimentSerializer(experiments, many=True).data)

    @extend_schema(
        request=serializers.ExperimentCreateSerializer,
        responses={201: serializers.ExperimentSerializer},
    )
    def post(self, request: Request) -> Response:
        given = serializers.ExperimentCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        experiment = lifecycle.create_experiment(
            key=data["key"],
            name=data["name"],
            hypothesis=data["hypothesis"],
            traffic_percent=data["traffic_percent"],
            alpha=data["alpha"],
            variants=[lifecycle.VariantSpec(**v) for v in data["variants"]],
            metrics=[lifecycle.MetricSpec(**m) for m in data["metrics"]],
            decision_policy=data.get("decision_policy"),
            owner=request.user,
            by=request.user,
            engine=data["engine"],
            prior=data["prior"],
        )
        experiment = selectors.get_experiment(experiment.key)
        return Response(
            serializers.ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED
        )


class ExperimentDetailView(APIView):
    def get_permissions(self):
        if self.request.method == "PATCH":
            return [has_perm("experiments.change_experiment")()]
        return [IsAuthenticated()]

    @extend_schema(responses=serializers.ExperimentSerializer)
    def get(self, request: Request, key: str) -> Response:
        return Response(serializers.ExperimentSerializer(selectors.get_experiment(key)).data)

    @extend_schema(
        request=serializers.ExperimentUpdateSerializer, responses=serializers.ExperimentSerializer
    )
    def patch(self, request: Request, key: str) -> Response:
        experiment = selectors.get_experiment(key)
        given = serializers.ExperimentUpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = dict(given.validated_data)
        if "variants" in data:
            data["variants"] = [lifecycle.VariantSpec(**v) for v in data["variants"]]
        if "metrics" in data:
            data["metrics"] = [lifecycle.MetricSpec(**m) for m in data["metrics"]]
        editing.update_experiment(
            experiment=experiment, edit=editing.ExperimentEdit(**data), by=request.user
        )
        return Response(serializers.ExperimentSerializer(selectors.get_experiment(key)).data)


class ExperimentStartView(APIView):
    """Start a draft experiment. 409 when it is not a draft or has no primary metric."""

    permission_classes = [CanManage]

    @extend_schema(request=None, responses=serializers.ExperimentSerializer)
    def post(self, request: Request, key: str) -> Response:
        lifecycle.start_experiment(experiment=selectors.get_experiment(key), by=request.user)
        return Response(serializers.ExperimentSerializer(selectors.get_experiment(key)).data)


class ExperimentStopView(APIView):
    """Stop a running experiment. 409 when it is not running."""

    permission_classes = [CanManage]

    @extend_schema(request=None, responses=serializers.ExperimentSerializer)
    def post(self, request: Request, key: str) -> Response:
        lifecycle.stop_experiment(experiment=selectors.get_experiment(key), by=request.user)
        return Response(serializers.ExperimentSerializer(selectors.get_experiment(key)).data)


class ExperimentArchiveView(APIView):
    """Archive a draft or stopped experiment. 409 when it is running or archived."""

    permission_classes = [CanManage]

    @extend_schema(request=None, responses=serializers.ExperimentSerializer)
    def post(self, request: Request, key: str) -> Response:
        lifecycle.archive_experiment(experiment=selectors.get_experiment(key), by=request.user)
        return Response(serializers.ExperimentSerializer(selectors.get_experiment(key)).data)


class ExperimentAuditView(APIView):
    """The newest 500 audit entries of an experiment, newest first."""

    permission_classes = [CanReadAudit]
    limit = 500

    @extend_schema(responses=serializers.AuditEntrySerializer(many=True))
    def get(self, request: Request, key: str) -> Response:
        entries = audit_of(selectors.get_experiment(key))[: self.limit]
        return Response(serializers.AuditEntrySerializer(entries, many=True).data)


class SdkConfigView(APIView):
    """A GrowthBook SDK experiment definition that reproduces our assignment."""

    @extend_schema(responses=serializers.SdkConfigSerializer)
    def get(self, request: Request, key: str) -> Response:
        return Response(integration.sdk_config(key))


class AssignmentView(APIView):
    """The variant of one unit; records its exposure the first time.

    Served by `assignment_endpoint` below; this class carries the contract
    for the OpenAPI schema."""

    permission_classes = [CanSendData]

    @extend_schema(
        request=serializers.AssignmentInputSerializer,
        responses=serializers.AssignmentOutputSerializer,
    )
    def post(self, request: Request) -> Response:
        return Response(_assign(request, request.data))


def _assign(request, body) -> dict:
    experiment_key, unit_id, attributes = serializers.parse_assignment(body)
    answer = assignment.assign_unit(
        experiment_key=experiment_key, unit_id=unit_id, attributes=attributes
    )
    return answer.as_dict()


assignment_endpoint = lean_json_endpoint(
    permission="experiments.send_data",
    schema_view=AssignmentView,
    throttle=AssignmentRateThrottle,
)(_assign)


class BatchAssignmentView(APIView):
    """Variants of up to 1 000 units; records no exposure."""

    permission_classes = [CanSendData]

    @extend_schema(
        request=serializers.BatchAssignmentInputSerializer,
        responses=serializers.BatchAssignmentOutputSerializer,
    )
    def post(self, request: Request) -> Response:
        given = serializers.BatchAssignmentInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        answers = assignment.assign_units(
            experiment_key=given.validated_data["experiment"],
            unit_ids=given.validated_data["unit_ids"],
        )
        return Response(
            {
                "assignments": [
                    {"unit_id": a.unit_id, "in_experiment": a.in_experiment, "variant": a.variant}
                    for a in answers
                ]
            }
        )


class ExposureBatchView(APIView):
    """Exposures whose variant was decided outside (e.g. by a GrowthBook SDK)."""

    permission_classes = [CanSendData]
    parser_classes = [LenientJSONParser]

    @extend_schema(
        request=serializers.ExposureBatchSerializer,
        responses=serializers.IngestResultSerializer,
    )
    def post(self, request: Request) -> Response:
        result = ingestion.ingest_exposures(_batch(request, "exposures"))
        return Response(result.as_dict())


class EventBatchView(APIView):
    """Metric events, each stored exactly once (see the event_id rule)."""

    permission_classes = [CanSendData]
    parser_classes = [LenientJSONParser]

    @extend_schema(
        request=serializers.EventBatchSerializer, responses=serializers.IngestResultSerializer
    )
    def post(self, request: Request) -> Response:
        result = ingestion.ingest_events(_batch(request, "events"))
        return Response(result.as_dict())


class AnalysisView(APIView):
    """Run an analysis now and store its snapshot. 409 for a draft."""

    permission_classes = [CanManage]

    @extend_schema(request=None, responses={201: dict})
    def post(self, request: Request, key: str) -> Response:
        experiment = selectors.get_experiment(key)
        snapshot = analysis.analyse_experiment(experiment=experiment, trigger=Snapshot.Trigger.API)
        return Response(selectors.snapshot_results(snapshot), status=status.HTTP_201_CREATED)


class ResultsView(APIView):
    """The latest snapshot's results. 404 before the first analysis."""

    @extend_schema(responses=dict)
    def get(self, request: Request, key: str) -> Response:
        snapshot = selectors.latest_snapshot(selectors.get_experiment(key))
        return Response(selectors.snapshot_results(snapshot))


class SnapshotListView(APIView):
    """Results over time: per snapshot the verdict and, per metric and
    treatment, the effect, its intervals and p-values. `?limit=` (default 500)."""

    @extend_schema(responses=dict)
    def get(self, request: Request, key: str) -> Response:
        experiment = selectors.get_experiment(key)
        try:
            limit = min(max(int(request.query_params.get("limit", 500)), 1), 5000)
        except ValueError as exc:
            raise DomainError("limit must be a whole number.", field="limit") from exc
        snapshots = list(
            experiment.snapshots.only("id", "computed_at", "decision", "units", "srm", "trigger")[
                :limit
            ]
        )
        rows: dict[int, list[dict]] = {s.id: [] for s in snapshots}
        for row in SnapshotMetric.objects.filter(snapshot_id__in=rows).values(
            "snapshot_id", "metric", "variant", "units", *COMPARISON_NUMBERS
        ):
            rows[row.pop("snapshot_id")].append(row)
        return Response(
            {
                "experiment": experiment.key,
                "snapshots": [
                    {
                        "id": s.id,
                        "computed_at": s.computed_at.isoformat(),
                        "trigger": s.trigger,
                        "units": s.units,
                        "verdict": s.verdict,
                        "srm_flagged": s.srm.get("flagged", False),
                        "comparisons": rows[s.id],
                    }
                    for s in snapshots
                ],
            }
        )


class ReportView(APIView):
    """The decision report of the latest snapshot: `?format=md|csv|json`."""

    RENDERERS = {
        "md": (report.render_markdown, "text/markdown; charset=utf-8", "md"),
        "csv": (report.render_csv, "text/csv; charset=utf-8", "csv"),
        "json": (report.render_json, "application/json", "json"),
    }

    @extend_schema(responses=dict)
    def get(self, request: Request, key: str) -> HttpResponse:
        fmt = request.query_params.get("format", "md")
        if fmt not in self.RENDERERS:
            raise DomainError("format must be one of md, csv, json.", field="format")
        snapshot = selectors.latest_snapshot(selectors.get_experiment(key))
        render, content_type, extension = self.RENDERERS[fmt]
        body = render(report.report_data(selectors.snapshot_results(snapshot)))
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="{key}-report-{snapshot.id}.{extension}"'
        )
        return response


class SegmentsView(APIView):
    """Results by an exposure attribute: `?attribute=platform`."""

    @extend_schema(responses=dict)
    def get(self, request: Request, key: str) -> Response:
        attribute = query_text(
            request.query_params.get("attribute"),
            name="attribute",
            max_length=segments.MAX_ATTRIBUTE_LENGTH,
        )
        if not attribute:
            raise DomainError(
                "Give the exposure attribute to break down by, e.g. ?attribute=platform.",
                field="attribute",
            )
        experiment = selectors.get_experiment(key)
        return Response(segments.segment_results(experiment=experiment, attribute=attribute))

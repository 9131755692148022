"""REST contract v1 for rollouts: thin views that parse, call one service
and render."""

from datetime import datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common import validation
from common.api import LenientJSONParser
from common.audit import audit_of
from common.errors import DomainError
from common.permissions import CanReadAudit, has_perm
from experiments.models import Experiment
from rollout import router, selectors, serializers
from rollout.plan import LIVE_STATES
from rollout.services import lifecycle, request_metrics, stage_record, transitions
from rollout.services.gate import gate_view


def _rollout_body(rollout, *, with_gate: bool = False) -> dict:
    latest = rollout.verdicts.only("verdict", "evaluated_at", "report").first()
    pending = rollout.transitions.filter(status="pending").first()
    plan = rollout.plan()
    following = plan.next_after(rollout.stage)
    body = {
        "key": rollout.key,
        "name": rollout.name,
        "feature": rollout.feature,
        "experiment": rollout.experiment.key if rollout.experiment_id else None,
        "stage": rollout.stage,
        "role": plan.stage(rollout.stage).role.value,
        "stage_entered_at": rollout.stage_entered_at,
        "canary_percent": rollout.canary_percent,
        "state": rollout.state,
        "stages": rollout.stages,
        "sla": rollout.sla,
        "rollback": rollout.rollback,
        "health": latest.report if latest else None,
        "pending_transition": pending.id if pending else None,
        "rolled_back_at": rollout.rolled_back_at,
        "rollback_reason": rollout.rollback_reason,
        "next_stage": following.to_dict() if following else None,
    }
    if with_gate:
        if rollout.state in LIVE_STATES:
            body["gate"] = gate_view(rollout).gate.to_dict()
        else:
            body["gate"] = {
                "to_stage": None,
                "ready": False,
                "needs_approval": False,
                "checks": [
                    {"name": "state", "ok": False, "detail": f"the rollout is {rollout.state}"}
                ],
            }
    return body


class RolloutListCreateView(APIView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [has_perm("rollout.add_rollout")()]
        return [IsAuthenticated()]

    @extend_schema(operation_id="v1_rollouts_list", responses=dict)
    def get(self, request: Request) -> Response:
        return Response([_rollout_body(r) for r in selectors.rollouts()])

    @extend_schema(request=serializers.RolloutCreateSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        given = serializers.RolloutCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = dict(given.validated_data)
        experiment = None
        if data.get("experiment"):
            experiment = Experiment.objects.filter(key=data["experiment"]).first()
            if experiment is None:
                raise DomainError(f"Unknown experiment '{data['experiment']}'.", field="experiment")
        rollout = lifecycle.create_rollout(
            key=data["key"],
            name=data["name"],
            feature=data.get("feature") or data["key"],
            experiment=experiment,
            stages=[dict(s) for s in data["stages"]] if data.get("stages") else None,
            sla=dict(data.get("sla") or {}),
            rollback=dict(data.get("rollback") or {}),
            min_requests=data["min_requests"],
            window_minutes=data["window_minutes"],
            allow_list=data["allow_list"],
            by=request.user,
        )
        return Response(_rollout_body(rollout), status=status.HTTP_201_CREATED)


class RolloutDetailView(APIView):
    @extend_schema(responses=dict)
    def get(self, request: Request, key: str) -> Response:
        return Response(_rollout_body(selectors.get_rollout(key), with_gate=True))


class RouteView(APIView):
    """Which version this unit gets: `{version: stable|canary}`."""

    permission_classes = [has_perm("rollout.view_rollout")]

    @extend_schema(request=serializers.RouteInputSerializer, responses=dict)
    def post(self, request: Request, key: str) -> Response:
        given = serializers.RouteInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        answer = router.route(
            key, given.validated_data["unit_id"], is_staff=given.validated_data["staff"]
        )
        if answer is None:
            raise DomainError(f"Unknown rollout '{key}'.", code="not_found")
        return Response(
            {
                "rollout": key,
                "unit_id": given.validated_data["unit_id"],
                "version": answer.version,
                "stage": answer.stage,
            }
        )


class RequestMetricsView(APIView):
    """Request samples of services outside this process."""

    permission_classes = [has_perm("rollout.send_request_metrics")]
    parser_classes = [LenientJSONParser]

    @extend_schema(request=serializers.SamplesSerializer, responses=dict)
    def post(self, request: Request, key: str) -> Response:
        rollout = selectors.get_rollout(key)
        body = request.data
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("samples"), list)
            or not body["samples"]
        ):
            raise DomainError(
                "The body must be a JSON object with a non-empty list 'samples'.", field="samples"
            )
        result = request_metrics.ingest_samples(rollout=rollout, items=body["samples"])
        return Response({"accepted": result.accepted, "rejected": result.rejected})


class HealthView(APIView):
    """The health verdict over the sliding window, computed now."""

    @extend_schema(responses=dict)
    def get(self, request: Request, key: str) -> Response:
        rollout = selectors.get_rollout(key)
        now = timezone.now()
        report = stage_record.window_report(rollout, now=now)
        return Response(
            stage_record.report_dict(
                report,
                start=stage_record.window_start(rollout, now),
                now=now,
                minutes=rollout.window_minutes,
            )
        )


class TransitionRequestView(APIView):
    """Request the next stage; 409 when the gate does not hold (the message
    says which condition) or a transition is already pending."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [has_perm("rollout.request_transition")()]
        return [has_perm("rollout.view_rollout")()]

    @extend_schema(
        request=serializers.TransitionRequestSerializer,
        responses={201: serializers.TransitionSerializer},
    )
    def post(self, request: Request, key: str) -> Response:
        given = serializers.TransitionRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        transition = transitions.request_transition(
            rollout=selectors.get_rollout(key),
            to_stage=given.validated_data["to_stage"],
            by=request.user,
            comment=given.validated_data["comment"],
        )
        return Response(
            serializers.TransitionSerializer(transition).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses=serializers.TransitionSerializer(many=True))
    def get(self, request: Request, key: str) -> Response:
        rollout = selectors.get_rollout(key)
        rows = rollout.transitions.select_related("rollout", "requested_by", "decided_by")
        return Response(serializers.TransitionSerializer(rows, many=True).data)


class TransitionDecisionView(APIView):
    """Approve or reject a pending transition: 403 without approve_transition
    or for the requester, 409 when it is no longer pending or its evidence
    flipped (it is then invalidated)."""

    decision = "approve"

    @extend_schema(
        request=serializers.CommentSerializer, responses=serializers.TransitionSerializer
    )
    def post(self, request: Request, transition_id: int) -> Response:
        given = serializers.CommentSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        transition = selectors.get_transition(transition_id)
        service = (
            transitions.approve_transition
            if self.decision == "approve"
            else transitions.reject_transition
        )
        decided = service(
            transition=transition, by=request.user, comment=given.validated_data["comment"]
        )
        return Response(serializers.TransitionSerializer(decided).data)


class RollbackView(APIView):
    """Send everyone to stable now. 409 when already rolled back."""

    permission_classes = [has_perm("rollout.rollback_rollout")]

    @extend_schema(request=serializers.RollbackSerializer, responses=dict)
    def post(self, request: Request, key: str) -> Response:
        given = serializers.RollbackSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        rollout = selectors.get_rollout(key)
        if not lifecycle.rollback_rollout(
            rollout=rollout, reason=given.validated_data["reason"], by=request.user
        ):
            raise DomainError(f"Rollout '{key}' is already {rollout.state}.", code="conflict")
        return Response(_rollout_body(selectors.get_rollout(key)))


class LifecycleStepView(APIView):
    """pause / resume / rearm / complete: 200 with the rollout; 403 without the
    permission; 409 from a state the step does not start from."""

    step = "pause"
    SERVICES = {
        "pause": lifecycle.pause_rollout,
        "resume": lifecycle.resume_rollout,
        "rearm": lifecycle.rearm_rollout,
        "complete": lifecycle.complete_rollout,
    }

    @extend_schema(request=serializers.CommentSerializer, responses=dict)
    def post(self, request: Request, key: str) -> Response:
        given = serializers.CommentSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        rollout = self.SERVICES[self.step](
            rollout=selectors.get_rollout(key),
            by=request.user,
            comment=given.validated_data["comment"],
        )
        return Response(_rollout_body(rollout, with_gate=True))


class SettingsView(APIView):
    """Change the plan or thresholds of a live rollout: an audited action.
    400 for invalid values; 403 when loosening rollback thresholds or
    removing an approval without the approve permission; 409 when the change
    would move the current stage's share."""

    @extend_schema(request=serializers.SettingsSerializer, responses=dict)
    def post(self, request: Request, key: str) -> Response:
        given = serializers.SettingsSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        rollout = lifecycle.change_settings(
            rollout=selectors.get_rollout(key),
            by=request.user,
            stages=[dict(s) for s in data["stages"]] if "stages" in data else None,
            sla=dict(data["sla"]) if "sla" in data else None,
            rollback=dict(data["rollback"]) if "rollback" in data else None,
            allow_list=data.get("allow_list"),
            min_requests=data.get("min_requests"),
            window_minutes=data.get("window_minutes"),
            comment=data.get("comment", ""),
        )
        return Response(_rollout_body(rollout, with_gate=True))


class MetricsView(APIView):
    """Per-version time series: `?since=` ISO time (default: the last 6 hours)."""

    @extend_schema(responses=dict)
    def get(self, request: Request, key: str) -> Response:
        rollout = selectors.get_rollout(key)
        since = request.query_params.get("since")
        parsed = None
        if since:
            try:
                parsed = datetime.fromisoformat(since)
            except ValueError as exc:
                raise DomainError("since must be an ISO 8601 date-time.", field="since") from exc
            if parsed.tzinfo is None:
                raise DomainError(
                    "since needs a UTC offset, e.g. 2026-11-26T10:00:00Z.", field="since"
                )
            try:
                parsed = validation.check_timestamp(parsed, now=timezone.now())
            except validation.Invalid as exc:
                raise DomainError(f"since {exc.message}.", field="since") from exc
        return Response({"rollout": key, **selectors.metric_series(rollout, since=parsed)})


class AuditView(APIView):
    """The newest 500 audit entries of a rollout, newest first."""

    permission_classes = [CanReadAudit]
    limit = 500

    @extend_schema(responses=serializers.AuditEntrySerializer(many=True))
    def get(self, request: Request, key: str) -> Response:
        entries = audit_of(selectors.get_rollout(key))[: self.limit]
        return Response(serializers.AuditEntrySerializer(entries, many=True).data)

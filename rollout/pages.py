"""Dashboard pages of rollouts, approvals and the audit log."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from common.audit import AuditFilterForm, audit_of, csv_lines, filter_audit
from common.errors import DomainError
from common.permissions import may_read_audit
from common.selectors import newest_per_parent
from experiments import listing
from experiments import selectors as experiment_selectors
from rollout import access, charts, idle, selectors
from rollout import plan as stage_plan
from rollout.models import HealthVerdict, Rollout, StageTransition
from rollout.plan import LIVE_STATES, Step
from rollout.services import gate, lifecycle, transitions
from rollout.services.gate import gate_view

AUDIT_PAGE_SIZE = 50
OVERVIEW_ROLLOUTS = 20
CHART_HOURS = 6


def latest_verdicts(rollout_ids: list[int]) -> dict[int, HealthVerdict]:
    return newest_per_parent(
        HealthVerdict,
        parent=Rollout,
        link="rollout",
        parent_ids=rollout_ids,
        order_by=("-evaluated_at", "-id"),
    )


def pending_for(user) -> list[StageTransition]:
    """Pending transitions this user may decide (not their own requests)."""
    if not access.is_executive(user):
        return []
    pending = StageTransition.objects.filter(status=StageTransition.Status.PENDING)
    return [
        t for t in pending.select_related("rollout", "requested_by") if access.may_decide(user, t)
    ]


class OverviewFilterForm(listing.ExperimentFilterForm):
    """The experiments table's filters, plus the feature a linked rollout ships."""

    feature = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        features = Rollout.objects.order_by("feature").values_list("feature", flat=True)
        self.fields["feature"].choices = [("", "any"), *((f, f) for f in features.distinct())]


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The approvals waiting for this person first, then every experiment
    (searchable, filtered, paged) with its primary lift and next step, and the
    live rollouts. Here rather than in common: it shows both apps."""
    form = OverviewFilterForm(request.GET)
    feature = form.cleaned_data.get("feature") if form.is_valid() else ""
    ids = (
        Rollout.objects.filter(feature=feature, experiment__isnull=False).values("experiment_id")
        if feature
        else None
    )
    page = listing.experiment_page(form, request.GET.get("page"), ids=ids)
    query = request.GET.copy()
    query.pop("page", None)
    rollouts = list(
        Rollout.objects.exclude(state=Rollout.State.COMPLETED).order_by("-created_at")[
            :OVERVIEW_ROLLOUTS
        ]
    )
    verdicts = latest_verdicts([r.id for r in rollouts])
    context = {
        "form": form,
        "errors": [] if form.is_valid() else form.error_messages(),
        "page": page,
        "query": query.urlencode(),
        "rows": listing.table_rows(
            list(page), analysis_minutes=experiment_selectors.analysis_every_minutes()
        ),
        "rollouts": [
            {
                "rollout": r,
                "verdict": verdicts.get(r.id),
                "idle": idle.idle_minutes(verdicts.get(r.id), r),
            }
            for r in rollouts
        ],
        "approvals": pending_for(request.user),
    }
    return render(request, "overview.html", context)


@login_required
def rollout_list(request: HttpRequest) -> HttpResponse:
    rollouts = list(Rollout.objects.select_related("experiment").order_by("-created_at"))
    verdicts = latest_verdicts([r.id for r in rollouts])
    rows = [
        {
            "rollout": r,
            "verdict": verdicts.get(r.id),
            "idle": idle.idle_minutes(verdicts.get(r.id), r),
        }
        for r in rollouts
    ]
    return render(request, "rollout/list.html", {"rows": rows})


def _pipeline(rollout: Rollout) -> list[dict]:
    names = [s["name"] for s in rollout.stages]
    current = names.index(rollout.stage) if rollout.stage in names else -1
    return [
        {
            **stage,
            "state": "current" if i == current else ("done" if i < current else "todo"),
            "since": rollout.stage_entered_at if i == current else None,
        }
        for i, stage in enumerate(rollout.stages)
    ]


@login_required
def rollout_detail(request: HttpRequest, key: str) -> HttpResponse:
    try:
        rollout = selectors.get_rollout(key)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    verdict = rollout.verdicts.first()
    pending = (
        rollout.transitions.filter(status=StageTransition.Status.PENDING)
        .select_related("requested_by")
        .first()
    )
    history = list(
        rollout.transitions.exclude(status=StageTransition.Status.PENDING).select_related(
            "requested_by", "decided_by"
        )[:20]
    )
    audit = list(audit_of(rollout)[:50])
    since = timezone.now() - timedelta(hours=CHART_HOURS)
    bucket = _bucket(request)
    series = selectors.metric_series(rollout, since=since, bucket_minutes=bucket)["versions"]
    has_points = any(series.values())
    live = rollout.state in LIVE_STATES
    view = gate_view(rollout) if live else None
    user = request.user
    context = {
        "rollout": rollout,
        "role": rollout.current_stage().role.value,
        "pipeline": _pipeline(rollout),
        "verdict": verdict,
        "pending": pending,
        "can_decide": bool(pending and access.may_decide(user, pending)),
        "decide_blocked": access.why_not_decide(user, pending) if pending else None,
        "share_change": transitions.share_change(pending) if pending else "",
        "gate": view.gate if view else None,
        "next_stage": view.gate.to_stage if view else None,
        "evidence_pair": [
            ("Frozen at the request", pending.evidence),
            ("Now", view.frozen if view else None),
        ]
        if pending
        else [],
        "changes": gate.changes_since(pending.evidence, view.frozen) if (view and pending) else [],
        "actions": _actions_for(user, rollout, view, pending),
        "history": history,
        "audit": audit,
        "idle_minutes": idle.idle_minutes(verdict, rollout),
        "bucket": bucket,
        "buckets": selectors.BUCKET_CHOICES,
        "chart_hours": CHART_HOURS,
        "has_points": has_points,
        "error_summary": charts.summary(
            series, field="error_rate", label="error rate", scale=100, unit=" %", bucket=bucket
        ),
        "latency_summary": charts.summary(
            series, field="p95_ms", label="P95 latency", unit=" ms", bucket=bucket
        ),
        "error_chart": charts.service_chart(
            series,
            field="error_rate",
            title="Error rate by version",
            scale=100,
            unit=" %",
            sla=rollout.sla["max_error_rate"],
            rollback=rollout.rollback["max_error_rate"],
        ),
        "latency_chart": charts.service_chart(
            series,
            field="p95_ms",
            title="P95 latency by version",
            unit=" ms",
            sla=rollout.sla["max_p95_ms"],
            rollback=rollout.rollback["max_p95_ms"],
        ),
    }
    return render(request, "rollout/detail.html", context)


def _bucket(request: HttpRequest) -> int:
    """The chart bucket in minutes from `?bucket=`; anything but a listed
    choice falls back to the default (the choices are links on the page)."""
    raw = request.GET.get("bucket", "")
    return (
        int(raw)
        if raw in {str(b) for b in selectors.BUCKET_CHOICES}
        else (selectors.DEFAULT_BUCKET_MINUTES)
    )


def _actions_for(user, rollout: Rollout, view, pending) -> list[dict]:
    """The buttons this person may use now, each with the confirmation it asks."""
    plan = rollout.plan()
    at_last = plan.is_last(rollout.stage)
    offered = []

    def offer(step: Step, label: str, confirm: str, danger: bool = False) -> None:
        try:
            stage_plan.check_step(rollout.state, step, at_last_stage=at_last)
        except stage_plan.PlanError:
            return
        if access.may(user, step):
            offered.append(
                {"step": step.value, "label": label, "confirm": confirm, "danger": danger}
            )

    if view is not None and view.gate.to_stage is not None and pending is None:
        target = view.gate.to_stage
        if view.gate.ready:
            offer(
                Step.ADVANCE,
                f"Request {target.name}",
                f"Request {rollout.stage} → {target.name}: {rollout.canary_percent:g} % → "
                f"{target.percent:g} % of mentees"
                + (", after an executive's approval." if target.needs_approval else "."),
            )
    offer(
        Step.PAUSE,
        "Pause",
        "Pause the rollout? Nothing advances until it is resumed; "
        "routing and automatic rollback go on.",
    )
    offer(Step.RESUME, "Resume", "Resume the rollout at its current stage?")
    offer(
        Step.COMPLETE,
        "Complete",
        "Complete the rollout? The new version stays served to "
        "100 % of mentees and the feature is free for its next rollout.",
    )
    offer(
        Step.ROLLBACK,
        "Roll back",
        f"Roll back? {rollout.canary_percent:g} % → 0 %: every "
        "mentee gets the stable version at once.",
        danger=True,
    )
    offer(
        Step.REARM,
        "Re-arm",
        f"Re-arm the rollout at {plan.first().name} (0 %, staff only)? "
        "It then climbs again through approvals.",
    )
    return offered


@login_required
@require_POST
def rollout_action(request: HttpRequest, key: str, step: str) -> HttpResponse:
    """One lifecycle button of the rollout page; the service checks who may."""
    try:
        rollout = selectors.get_rollout(key)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    comment = request.POST.get("comment", "").replace("\x00", "")[:2000]
    try:
        if step == Step.ADVANCE.value:
            following = rollout.next_stage()
            transitions.request_transition(
                rollout=rollout,
                to_stage=following.name if following else "",
                by=request.user,
                comment=comment,
            )
            done = "Next stage requested."
        elif step == Step.ROLLBACK.value:
            reason = comment or f"rolled back from the rollout page by {request.user.username}"
            lifecycle.require(request.user, Step.ROLLBACK)
            if not lifecycle.rollback_rollout(rollout=rollout, reason=reason, by=request.user):
                raise DomainError(f"Rollout '{key}' is already {rollout.state}.", code="conflict")
            done = "Rolled back: every mentee gets the stable version."
        elif step in LIFECYCLE_PAGE_STEPS:
            LIFECYCLE_PAGE_STEPS[step](rollout=rollout, by=request.user, comment=comment)
            done = f"Rollout {step}d." if step.endswith("e") else f"Rollout {step}ed."
        else:
            return render(request, "404.html", {"message": f"Unknown action {step}."}, status=404)
    except DomainError as exc:
        if exc.code == "forbidden":
            return render(request, "403.html", {"message": exc.message}, status=403)
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("rollout-page", key=key)


LIFECYCLE_PAGE_STEPS = {
    Step.PAUSE.value: lifecycle.pause_rollout,
    Step.RESUME.value: lifecycle.resume_rollout,
    Step.REARM.value: lifecycle.rearm_rollout,
    Step.COMPLETE.value: lifecycle.complete_rollout,
}


@login_required
@require_POST
def decide_transition(request: HttpRequest, transition_id: int, decision: str) -> HttpResponse:
    """Approve or reject from the rollout page; the service enforces who may."""
    try:
        transition = selectors.get_transition(transition_id)
    except DomainError as exc:
        return render(request, "404.html", {"message": exc.message}, status=404)
    comment = request.POST.get("comment", "")[:2000]
    service = (
        transitions.approve_transition if decision == "approve" else transitions.reject_transition
    )
    try:
        service(transition=transition, by=request.user, comment=comment)
    except DomainError as exc:
        if exc.code == "forbidden":
            return render(request, "403.html", {"message": exc.message}, status=403)
        messages.error(request, exc.message)
    else:
        verb = "approved and applied" if decision == "approve" else "rejected"
        messages.success(
            request, f"Transition {transition.from_stage} → {transition.to_stage} {verb}."
        )
    return redirect("rollout-page", key=transition.rollout.key)


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log of rollouts and experiments, filtered by action, object
    type and key, person and days. `?format=csv` downloads exactly the
    filtered rows, streamed. Bad filters answer with a message on the page,
    or 400 for the CSV. The same permission as the audit API."""
    if not may_read_audit(request.user):
        return render(
            request,
            "403.html",
            {"message": "Reading the audit log needs its permission."},
            status=403,
        )
    form = AuditFilterForm(request.GET)
    as_csv = request.GET.get("format") == "csv"
    if not form.is_valid():
        if as_csv:
            return HttpResponseBadRequest(
                "\n".join(form.error_messages()), content_type="text/plain; charset=utf-8"
            )
        entries = filter_audit().none()
    else:
        entries = filter_audit(**form.filters())
    if as_csv:
        response = StreamingHttpResponse(csv_lines(entries), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
        return response
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    export = query.copy()
    export["format"] = "csv"
    context = {
        "form": form,
        "errors": [] if form.is_valid() else form.error_messages(),
        "page": Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page")),
        "query": query.urlencode(),
        "export_query": export.urlencode(),
    }
    return render(request, "rollout/audit.html", context)

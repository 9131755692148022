"""Dashboard pages of rollouts, approvals and the audit log."""

from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.selectors import newest_per_parent
from experiments.models import Experiment
from experiments.pages import latest_snapshots
from rollout import charts, selectors
from rollout.models import AuditEntry, HealthVerdict, Rollout, StageTransition
from rollout.services import transitions

AUDIT_PAGE_SIZE = 50


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
    if not user.has_perm("rollout.approve_transition"):
        return []
    return list(
        StageTransition.objects.filter(status=StageTransition.Status.PENDING)
        .exclude(requested_by=user)
        .select_related("rollout", "requested_by")
    )


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """Running experiments and rollouts with their verdicts, and the approvals
    waiting for this person. Here rather than in common: it shows both apps."""
    experiments = list(Experiment.objects.filter(status=Experiment.Status.RUNNING))
    snapshots = latest_snapshots([e.id for e in experiments])
    rollouts = list(
        Rollout.objects.exclude(state=Rollout.State.COMPLETED).order_by("-created_at")[:20]
    )
    verdicts = latest_verdicts([r.id for r in rollouts])
    context = {
        "experiments": [{"experiment": e, "latest": snapshots.get(e.id)} for e in experiments],
        "rollouts": [{"rollout": r, "verdict": verdicts.get(r.id)} for r in rollouts],
        "approvals": pending_for(request.user),
    }
    return render(request, "overview.html", context)


@login_required
def rollout_list(request: HttpRequest) -> HttpResponse:
    rollouts = list(Rollout.objects.select_related("experiment").order_by("-created_at"))
    verdicts = latest_verdicts([r.id for r in rollouts])
    rows = [{"rollout": r, "verdict": verdicts.get(r.id)} for r in rollouts]
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
    audit = list(rollout.audit.select_related("actor")[:50])
    since = timezone.now() - timedelta(hours=6)
    series = selectors.metric_series(rollout, since=since)["versions"]
    can_decide = bool(
        pending
        and request.user.has_perm("rollout.approve_transition")
        and pending.requested_by_id != request.user.id
    )
    context = {
        "rollout": rollout,
        "pipeline": _pipeline(rollout),
        "verdict": verdict,
        "pending": pending,
        "can_decide": can_decide,
        "history": history,
        "audit": audit,
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
    entries = AuditEntry.objects.select_related("rollout", "actor")
    filters = {
        "rollout": request.GET.get("rollout", ""),
        "action": request.GET.get("action", ""),
        "actor": request.GET.get("actor", ""),
        "since": request.GET.get("since", ""),
    }
    if filters["rollout"]:
        entries = entries.filter(rollout__key=filters["rollout"])
    if filters["action"]:
        entries = entries.filter(action=filters["action"])
    if filters["actor"]:
        entries = entries.filter(actor__username=filters["actor"])
    if filters["since"]:
        try:
            day = datetime.fromisoformat(filters["since"])
            entries = entries.filter(
                created_at__gte=timezone.make_aware(day) if timezone.is_naive(day) else day
            )
        except ValueError:
            messages.error(request, "The date must look like 2026-11-26.")
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "rollouts": Rollout.objects.values_list("key", flat=True),
        "actions": AuditEntry.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct(),
    }
    return render(request, "rollout/audit.html", context)

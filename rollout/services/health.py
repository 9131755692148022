"""Health of a rollout: merge the recent minute windows of each version, ask
the pure evaluator, store the verdict, and act on it — roll back when it
fails, alert when degraded, invalidate pending transitions whose evidence no
longer holds."""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from rollout import metrics_store
from rollout.health import HealthPolicy, HealthReport, Thresholds, evaluate_health
from rollout.models import HealthVerdict, MetricWindow, Rollout, StageTransition
from rollout.services.audit import write_audit
from rollout.services.notifications import notify


def window_start(rollout: Rollout, now=None):
    now = now or timezone.now()
    minute = now.replace(second=0, microsecond=0)
    # The current (partial) minute plus the previous window_minutes − 1 ones.
    return minute - timedelta(minutes=max(rollout.window_minutes, 1) - 1)


def current_report(rollout: Rollout, *, now=None) -> HealthReport:
    """The verdict over the sliding window, computed now (nothing stored)."""
    start = window_start(rollout, now)
    windows = list(
        MetricWindow.objects.filter(rollout=rollout, minute__gte=start).only(
            "version", "requests", "errors", "unavailable", "histogram"
        )
    )
    stable = metrics_store.tally_of(w for w in windows if w.version == "stable")
    canary = metrics_store.tally_of(w for w in windows if w.version == "canary")
    return evaluate_health(
        stable=stable,
        canary=canary,
        sla=Thresholds(**rollout.sla),
        rollback=Thresholds(**rollout.rollback),
        policy=HealthPolicy(
            min_requests=rollout.min_requests,
            blame_canary_on_global_incident=rollout.blame_canary_on_global_incident,
        ),
    )


def report_dict(report: HealthReport, rollout: Rollout, *, now=None) -> dict[str, Any]:
    now = now or timezone.now()
    data = report.to_dict()
    data["window"] = {
        "start": window_start(rollout, now).isoformat(),
        "end": now.isoformat(),
        "minutes": rollout.window_minutes,
    }
    return data


def evaluate_rollout(*, rollout: Rollout) -> HealthVerdict:
    """Evaluate, store the verdict, and act on it. Safe to run in several
    workers at once: the rollback is a conditional update."""
    from rollout.services.lifecycle import rollback_rollout

    now = timezone.now()
    report = current_report(rollout, now=now)
    data = report_dict(report, rollout, now=now)
    previous = rollout.verdicts.only("verdict").first()
    verdict = HealthVerdict.objects.create(
        rollout=rollout,
        evaluated_at=now,
        verdict=report.verdict.value,
        action=report.action.value,
        global_incident=report.global_incident,
        report=data,
    )
    if rollout.state != Rollout.State.ACTIVE:
        return verdict
    if report.action.value == "rollback":
        rollback_rollout(
            rollout=rollout,
            reason="; ".join(report.reasons[:3]) or "health verdict failing",
            automatic=True,
            evidence=data,
        )
        return verdict
    if report.verdict.value != "healthy":
        invalidate_pending(
            rollout=rollout,
            reason=f"health is now {report.verdict.value}: " + "; ".join(report.reasons[:2]),
        )
    changed = previous is None or previous.verdict != verdict.verdict
    if (
        changed
        and report.action.value in ("alert", "hold")
        and report.verdict.value in ("degraded", "failing")
    ):
        with transaction.atomic():
            write_audit(
                rollout=rollout,
                action="health_" + report.verdict.value,
                message=f"Health {report.verdict.value}: " + "; ".join(report.reasons[:3]),
                report=data,
            )
            notify(
                rollout=rollout,
                event="health_" + report.verdict.value,
                severity="warning",
                title=f"Rollout {rollout.key}: health {report.verdict.value}"
                + (" (global incident)" if report.global_incident else ""),
                text="\n".join(report.reasons),
                dedup=now.isoformat(),
            )
    return verdict


def invalidate_pending(*, rollout: Rollout, reason: str) -> int:
    now = timezone.now()
    with transaction.atomic():
        pending = list(
            StageTransition.objects.select_for_update().filter(
                rollout=rollout, status=StageTransition.Status.PENDING
            )
        )
        for transition in pending:
            StageTransition.objects.filter(
                id=transition.id, status=StageTransition.Status.PENDING
            ).update(
                status=StageTransition.Status.INVALIDATED,
                invalidation_reason=reason,
                decided_at=now,
            )
            write_audit(
                rollout=rollout,
                action="transition_invalidated",
                message=f"Transition {transition.from_stage} → {transition.to_stage} "
                f"invalidated: {reason}",
                transition=transition.id,
            )
            notify(
                rollout=rollout,
                event="transition_invalidated",
                severity="warning",
                title=f"Rollout {rollout.key}: pending transition to {transition.to_stage} "
                "invalidated",
                text=reason,
                dedup=str(transition.id),
            )
    return len(pending)

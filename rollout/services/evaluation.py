"""One evaluation of one rollout, the only place that acts on health.

Store the sliding-window verdict, then, in this order: roll back when it
fails; invalidate a pending transition whose evidence turned against it;
alert when the verdict changes for the worse (or recovers); complete the
rollout when its last stage has run its time; propose the next stage (or
apply it, when the plan needs no approval) once the gate holds. Safe to run
in several workers at once: every write claims its row with a conditional
update."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from common.audit import AuditAction, write_audit
from common.errors import DomainError
from rollout import plan as stage_plan
from rollout.models import HealthVerdict, Rollout
from rollout.services import stage_record
from rollout.services.gate import gate_view
from rollout.services.lifecycle import complete_rollout, rollback_rollout
from rollout.services.notifications import notify
from rollout.services.transitions import invalidate_pending, pending_of, request_transition

logger = logging.getLogger(__name__)

BAD = stage_plan.HEALTH_BAD


def evaluate_rollout(*, rollout: Rollout, now: datetime | None = None) -> HealthVerdict:
    now = now or timezone.now()
    window = stage_record.window_report(rollout, now=now)
    window_data = stage_record.report_dict(
        window,
        start=stage_record.window_start(rollout, now),
        now=now,
        minutes=rollout.window_minutes,
    )
    previous = rollout.verdicts.only("verdict", "report").first()
    live = rollout.state in stage_plan.LIVE_STATES
    view = gate_view(rollout, now=now, window=window) if live else None
    if view is not None:
        window_data["stage_record"] = {
            "verdict": view.stage.verdict.value,
            "reasons": view.stage.reasons[:5],
            "versions": view.frozen["stage_record"]["versions"],
            "comparison": view.frozen["stage_record"].get("comparison"),
        }
        window_data["gate"] = view.gate.to_dict()
    verdict = HealthVerdict.objects.create(
        rollout=rollout,
        evaluated_at=now,
        verdict=window.verdict.value,
        action=window.action.value,
        global_incident=window.global_incident,
        report=window_data,
    )
    if view is None:
        return verdict

    if window.action.value == "rollback":
        rollback_rollout(
            rollout=rollout,
            reason="; ".join(window.reasons[:3]) or "health verdict failing",
            automatic=True,
            evidence=window_data,
        )
        return verdict

    pending = pending_of(rollout)
    against = view.against()
    if pending is not None and against:
        invalidate_pending(rollout=rollout, reasons=against)
        pending = None

    _alert_on_change(rollout, previous, view, now)

    if rollout.state != Rollout.State.ACTIVE:
        return verdict
    plan = view.plan
    if plan.is_last(rollout.stage):
        due = stage_plan.completion_due(
            plan, stage=rollout.stage, entered_at=rollout.stage_entered_at, now=now
        )
        if due and not against:
            try:
                complete_rollout(rollout=rollout)
            except DomainError as exc:  # another worker completed it first
                logger.info("completion of %s skipped: %s", rollout.key, exc.message)
        return verdict
    if pending is None and view.gate.ready and view.gate.to_stage is not None:
        try:
            request_transition(
                rollout=rollout,
                to_stage=view.gate.to_stage.name,
                proposed_by_platform=True,
                comment="Proposed by the platform: the gate holds.",
                view=view,
            )
        except DomainError as exc:  # a person requested it first, or the rollout moved
            logger.info("proposal for %s skipped: %s", rollout.key, exc.message)
    return verdict


def _level(report: dict | None) -> tuple[str, str]:
    report = report or {}
    return report.get("verdict", ""), (report.get("stage_record") or {}).get("verdict", "")


def _alert_on_change(rollout: Rollout, previous: HealthVerdict | None, view, now) -> None:
    """Audit and notify when the window or the stage record turns degraded or
    failing, and once when both are good again."""
    old_window, old_stage = _level(previous.report if previous else None)
    new_window, new_stage = view.window.verdict.value, view.stage.verdict.value
    worst_old = (
        "failing"
        if "failing" in (old_window, old_stage)
        else ("degraded" if "degraded" in (old_window, old_stage) else "ok")
    )
    worst_new = (
        "failing"
        if "failing" in (new_window, new_stage)
        else ("degraded" if "degraded" in (new_window, new_stage) else "ok")
    )
    if worst_new == worst_old:
        return
    if worst_new == "ok":
        action, severity = AuditAction.HEALTH_RECOVERED, "info"
        reasons = ["both versions are within their SLA and the canary is not worse than stable"]
    else:
        action = (
            AuditAction.HEALTH_FAILING if worst_new == "failing" else AuditAction.HEALTH_DEGRADED
        )
        severity = "warning"
        source = view.window if new_window in BAD else view.stage
        reasons = list(source.reasons[:3])
    with transaction.atomic():
        write_audit(
            subject=rollout,
            action=action,
            message=f"Health {worst_new if worst_new != 'ok' else 'recovered'}: "
            + "; ".join(reasons),
            window=new_window,
            stage_record=new_stage,
        )
        notify(
            rollout=rollout,
            event=action.value,
            severity=severity,
            title=f"Rollout {rollout.key}: {action.label.lower()}"
            + (" (global incident)" if view.window.global_incident else ""),
            text="\n".join(reasons),
            dedup=now.isoformat(),
        )

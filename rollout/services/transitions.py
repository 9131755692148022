"""Moving a rollout between stages.

Requested by a product manager (or proposed by the platform) when the gate
holds, with the evidence frozen into the record; approved or rejected by an
executive who is not the requester; applied atomically, exactly once. A step
whose stage says `needs_approval: false` is applied by the platform as soon as
the gate holds. A pending transition waits for its decision however quiet the
traffic gets; it is invalidated only when the evidence turns against it."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.audit import AuditAction, write_audit
from common.errors import DomainError
from rollout import access
from rollout.models import Rollout, StageTransition
from rollout.plan import Step
from rollout.services.gate import GateView, changes_since, gate_view
from rollout.services.lifecycle import check_step, publish_on_commit, require
from rollout.services.notifications import notify


def share_change(transition: StageTransition) -> str:
    """The confirmation an approver reads, e.g. '5 % → 50 % of mentees'."""
    return f"{transition.from_percent:g} % → {transition.to_percent:g} % of mentees"


def request_transition(
    *,
    rollout: Rollout,
    to_stage: str,
    by: Any = None,
    comment: str = "",
    proposed_by_platform: bool = False,
    view: GateView | None = None,
) -> StageTransition:
    if not proposed_by_platform:
        require(by, Step.ADVANCE)
    check_step(rollout, Step.ADVANCE)
    target = rollout.next_stage()
    if target is None or target.name != to_stage:
        expected = target.name if target else "none (last stage)"
        raise DomainError(
            f"Rollout '{rollout.key}' is at {rollout.stage}; the next stage is {expected}, "
            f"not '{to_stage}'.",
            code="conflict",
            field="to_stage",
        )
    view = view or gate_view(rollout)
    if not view.gate.ready:
        raise DomainError(
            f"The gate to {to_stage} does not hold: {view.gate.summary()}.", code="conflict"
        )
    if not target.needs_approval:
        return apply_without_approval(rollout=rollout, view=view, by=by, comment=comment)
    try:
        with transaction.atomic():
            transition = StageTransition.objects.create(
                rollout=rollout,
                from_stage=rollout.stage,
                to_stage=to_stage,
                from_percent=rollout.canary_percent,
                to_percent=target.percent,
                requested_by=by if not proposed_by_platform else None,
                proposed_by_platform=proposed_by_platform,
                request_comment=comment,
                evidence=view.frozen,
            )
            who = "The platform" if proposed_by_platform else getattr(by, "username", "someone")
            write_audit(
                subject=rollout,
                action=AuditAction.REQUESTED,
                actor=None if proposed_by_platform else by,
                message=f"{who} requested {rollout.stage} → {to_stage} "
                f"({share_change(transition)}). {comment}".strip(),
                transition=transition.id,
                proposed_by_platform=proposed_by_platform,
            )
            notify(
                rollout=rollout,
                event="transition_requested",
                severity="info",
                title=f"Rollout {rollout.key}: approval needed for {rollout.stage} → {to_stage}",
                text=comment or "The gate holds; the evidence is attached to the request.",
                fields={"share": share_change(transition), "health": view.window.verdict.value},
                dedup=str(transition.id),
            )
    except IntegrityError as exc:
        raise DomainError(
            f"Rollout '{rollout.key}' already has a pending transition.", code="conflict"
        ) from exc
    return transition


def _move(rollout: Rollout, transition: StageTransition, now) -> None:
    moved = Rollout.objects.filter(
        id=rollout.id, state=Rollout.State.ACTIVE, stage=transition.from_stage
    ).update(
        stage=transition.to_stage,
        canary_percent=transition.to_percent,
        stage_entered_at=now,
        updated_at=now,
    )
    if moved != 1:
        raise DomainError(
            f"Rollout '{rollout.key}' is no longer active at {transition.from_stage}.",
            code="conflict",
        )


def apply_without_approval(
    *, rollout: Rollout, view: GateView, by: Any = None, comment: str = ""
) -> StageTransition:
    """A step the plan lets the platform take once the gate holds."""
    target = view.gate.to_stage
    assert target is not None and not target.needs_approval
    now = timezone.now()
    with transaction.atomic():
        transition = StageTransition.objects.create(
            rollout=rollout,
            from_stage=rollout.stage,
            to_stage=target.name,
            from_percent=rollout.canary_percent,
            to_percent=target.percent,
            status=StageTransition.Status.APPLIED,
            requested_by=by,
            proposed_by_platform=by is None,
            request_comment=comment,
            evidence=view.frozen,
            decided_at=now,
            applied_at=now,
        )
        _move(rollout, transition, now)
        rollout.refresh_from_db()
        write_audit(
            subject=rollout,
            action=AuditAction.APPLIED,
            actor=by,
            message=f"{transition.from_stage} → {transition.to_stage} ({share_change(transition)}) "
            "applied by the platform: the gate holds and the plan needs no approval for it.",
            transition=transition.id,
        )
        notify(
            rollout=rollout,
            event="transition_applied",
            severity="info",
            title=f"Rollout {rollout.key} moved to {transition.to_stage} "
            f"({transition.to_percent:g} %)",
            text="Applied by the platform; the plan needs no approval for this step.",
            dedup=str(transition.id),
        )
        publish_on_commit(rollout)
    return transition


def _check_decider(transition: StageTransition, by: Any) -> None:
    reason = access.why_not_decide(by, transition)
    if reason:
        raise DomainError(reason, code="forbidden")


def approve_transition(
    *, transition: StageTransition, by: Any, comment: str = ""
) -> StageTransition:
    """Re-check the gate on the evidence as it stands now; apply the step,
    freezing that evidence and what changed since the request."""
    _check_decider(transition, by)
    if transition.status != StageTransition.Status.PENDING:
        raise DomainError(
            f"Transition {transition.id} is {transition.status}, not pending.", code="conflict"
        )
    rollout = Rollout.objects.select_related("experiment").get(id=transition.rollout_id)
    view = gate_view(rollout)
    against = view.against()
    if against:
        invalidate_pending(rollout=rollout, reasons=against)
        raise DomainError(
            "The evidence turned against the step since the request, so the transition was "
            "invalidated: " + "; ".join(against) + ".",
            code="conflict",
        )
    if (
        not view.gate.ready
        or view.gate.to_stage is None
        or (view.gate.to_stage.name != transition.to_stage)
    ):
        raise DomainError(
            f"The gate to {transition.to_stage} does not hold now: {view.gate.summary()}. "
            "The request stays pending.",
            code="conflict",
        )
    now = timezone.now()
    changes = changes_since(transition.evidence, view.frozen)
    with transaction.atomic():
        # Claim: of two approvals racing, exactly one moves the row.
        claimed = StageTransition.objects.filter(
            id=transition.id, status=StageTransition.Status.PENDING
        ).update(
            status=StageTransition.Status.APPLIED,
            decided_by=by,
            decision_comment=comment,
            decision_evidence={**view.frozen, "changes_since_request": changes},
            decided_at=now,
            applied_at=now,
        )
        if claimed != 1:
            raise DomainError(f"Transition {transition.id} was already decided.", code="conflict")
        _move(rollout, transition, now)
        rollout.refresh_from_db()
        write_audit(
            subject=rollout,
            action=AuditAction.APPROVED,
            actor=by,
            message=f"{by.username} approved {transition.from_stage} → {transition.to_stage} "
            f"({share_change(transition)}). {comment}".strip(),
            transition=transition.id,
            changes_since_request=changes,
        )
        write_audit(
            subject=rollout,
            action=AuditAction.APPLIED,
            actor=by,
            message=f"Stage {transition.to_stage} applied: canary share now "
            f"{transition.to_percent:g} %.",
            transition=transition.id,
        )
        notify(
            rollout=rollout,
            event="transition_approved",
            severity="info",
            title=f"Rollout {rollout.key} moved to {transition.to_stage} "
            f"({transition.to_percent:g} %)",
            text=comment or f"Approved by {by.username}.",
            dedup=str(transition.id),
        )
        publish_on_commit(rollout)
    transition.refresh_from_db()
    return transition


def reject_transition(
    *, transition: StageTransition, by: Any, comment: str = ""
) -> StageTransition:
    _check_decider(transition, by)
    now = timezone.now()
    with transaction.atomic():
        claimed = StageTransition.objects.filter(
            id=transition.id, status=StageTransition.Status.PENDING
        ).update(
            status=StageTransition.Status.REJECTED,
            decided_by=by,
            decision_comment=comment,
            decided_at=now,
        )
        if claimed != 1:
            transition.refresh_from_db()
            raise DomainError(
                f"Transition {transition.id} is {transition.status}, not pending.", code="conflict"
            )
        write_audit(
            subject=transition.rollout,
            action=AuditAction.REJECTED,
            actor=by,
            message=f"{by.username} rejected {transition.from_stage} → {transition.to_stage}. "
            f"{comment}".strip(),
            transition=transition.id,
        )
        notify(
            rollout=transition.rollout,
            event="transition_rejected",
            severity="info",
            title=f"Rollout {transition.rollout.key}: {transition.to_stage} rejected",
            text=comment or f"Rejected by {by.username}.",
            dedup=str(transition.id),
        )
    transition.refresh_from_db()
    return transition


def invalidate_pending(*, rollout: Rollout, reasons: list[str]) -> int:
    """Invalidate the pending transition because the evidence turned against it."""
    reason = "; ".join(reasons)
    now = timezone.now()
    count = 0
    with transaction.atomic():
        pending = list(
            StageTransition.objects.select_for_update().filter(
                rollout=rollout, status=StageTransition.Status.PENDING
            )
        )
        for transition in pending:
            claimed = StageTransition.objects.filter(
                id=transition.id, status=StageTransition.Status.PENDING
            ).update(
                status=StageTransition.Status.INVALIDATED,
                invalidation_reason=reason[:2000],
                decided_at=now,
            )
            if not claimed:
                continue
            count += 1
            write_audit(
                subject=rollout,
                action=AuditAction.INVALIDATED,
                message=f"Transition {transition.from_stage} → {transition.to_stage} "
                f"invalidated: {reason}",
                transition=transition.id,
                reasons=reasons,
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
    return count


def pending_of(rollout: Rollout) -> StageTransition | None:
    return rollout.transitions.filter(status=StageTransition.Status.PENDING).first()

"""Stage transitions: requested by a product manager (or proposed by the
platform) when the gate holds, with the evidence frozen into the record;
approved or rejected by an executive who is not the requester; applied
atomically, exactly once."""

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.errors import DomainError
from rollout import config_cache
from rollout.models import Rollout, StageTransition
from rollout.services.audit import write_audit
from rollout.services.health import current_report, report_dict
from rollout.services.notifications import notify


def experiment_evidence(rollout: Rollout) -> dict[str, Any] | None:
    if not rollout.experiment_id:
        return None
    snapshot = rollout.experiment.snapshots.only(
        "id", "decision", "computed_at", "inputs_hash"
    ).first()
    if snapshot is None:
        return {"experiment": rollout.experiment.key, "snapshot_id": None, "verdict": None}
    return {
        "experiment": rollout.experiment.key,
        "snapshot_id": snapshot.id,
        "computed_at": snapshot.computed_at.isoformat(),
        "inputs_hash": snapshot.inputs_hash,
        "verdict": snapshot.decision.get("verdict"),
        "reasons": snapshot.decision.get("reasons", [])[:5],
    }


def gate(rollout: Rollout, *, now=None) -> tuple[bool, list[str], dict[str, Any]]:
    """Whether the next stage may be requested, why not, and the evidence."""
    now = now or timezone.now()
    problems: list[str] = []
    target = rollout.next_stage()
    if rollout.state != Rollout.State.ACTIVE:
        problems.append(f"the rollout is {rollout.state}")
    if target is None:
        problems.append(f"stage {rollout.stage} is the last stage")
    plan = rollout.stage_plan(rollout.stage) or {}
    hours = float(plan.get("min_duration_hours") or 0)
    if rollout.stage_entered_at and hours:
        ready_at = rollout.stage_entered_at + timedelta(hours=hours)
        if now < ready_at:
            left = (ready_at - now).total_seconds() / 3600
            problems.append(
                f"stage {rollout.stage} needs {hours:g} h before promotion ({left:.1f} h left)"
            )
    report = current_report(rollout, now=now)
    health = report_dict(report, rollout, now=now)
    # The internal stage serves staff only: too little traffic for a verdict is
    # expected there, but a degraded or failing canary still blocks.
    tolerated = {"healthy", "insufficient_data"} if rollout.stage == "internal" else {"healthy"}
    if report.verdict.value not in tolerated:
        problems.append(
            f"health is {report.verdict.value}"
            + (f": {report.reasons[0]}" if report.reasons else "")
        )
    experiment = experiment_evidence(rollout)
    if target is not None and target["name"] == "full" and rollout.experiment_id:
        verdict = experiment and experiment.get("verdict")
        if verdict != "success":
            problems.append(
                f"the experiment's decision is {verdict or 'not computed yet'}, not success"
            )
    evidence = {
        "collected_at": now.isoformat(),
        "health": health,
        "experiment": experiment,
        "stage": {
            "name": rollout.stage,
            "entered_at": rollout.stage_entered_at.isoformat()
            if rollout.stage_entered_at
            else None,
        },
    }
    return not problems, problems, evidence


def request_transition(
    *,
    rollout: Rollout,
    to_stage: str,
    by: Any = None,
    comment: str = "",
    proposed_by_platform: bool = False,
) -> StageTransition:
    target = rollout.next_stage()
    if target is None or target["name"] != to_stage:
        expected = target["name"] if target else "none (last stage)"
        raise DomainError(
            f"Rollout '{rollout.key}' is at {rollout.stage}; the next stage is {expected}, "
            f"not '{to_stage}'.",
            code="conflict",
            field="to_stage",
        )
    ok, problems, evidence = gate(rollout)
    if not ok:
        raise DomainError(
            "The gate to the next stage does not hold: " + "; ".join(problems) + ".",
            code="conflict",
        )
    try:
        with transaction.atomic():
            transition = StageTransition.objects.create(
                rollout=rollout,
                from_stage=rollout.stage,
                to_stage=to_stage,
                from_percent=rollout.canary_percent,
                to_percent=float(target["percent"]),
                requested_by=by,
                proposed_by_platform=proposed_by_platform,
                request_comment=comment,
                evidence=evidence,
            )
            who = "the platform" if proposed_by_platform else getattr(by, "username", "someone")
            write_audit(
                rollout=rollout,
                action="transition_requested",
                actor=by,
                message=f"{who} requested {rollout.stage} → {to_stage} "
                f"({transition.from_percent:g} % → {transition.to_percent:g} %). {comment}".strip(),
                transition=transition.id,
                evidence=evidence,
            )
            notify(
                rollout=rollout,
                event="transition_requested",
                severity="info",
                title=f"Rollout {rollout.key}: approval needed for {rollout.stage} → {to_stage}",
                text=comment or "The gate holds; the evidence is attached to the request.",
                fields={"health": evidence["health"]["verdict"]},
                dedup=str(transition.id),
            )
    except IntegrityError as exc:
        raise DomainError(
            f"Rollout '{rollout.key}' already has a pending transition.", code="conflict"
        ) from exc
    return transition


def _check_approver(transition: StageTransition, by: Any) -> None:
    if not by.has_perm("rollout.approve_transition"):
        raise DomainError(
            "Only a user with the approve_transition permission (an executive) can decide "
            "stage transitions.",
            code="forbidden",
        )
    if transition.requested_by_id is not None and transition.requested_by_id == by.id:
        raise DomainError("The requester cannot decide their own transition.", code="forbidden")


def _evidence_still_holds(transition: StageTransition) -> list[str]:
    rollout = transition.rollout
    report = current_report(rollout)
    problems = []
    tolerated = {"healthy", "insufficient_data"} if rollout.stage == "internal" else {"healthy"}
    if report.verdict.value not in tolerated:
        problems.append(f"health is now {report.verdict.value}")
    if transition.to_stage == "full" and rollout.experiment_id:
        now = experiment_evidence(rollout) or {}
        if now.get("verdict") != "success":
            problems.append(f"the experiment's decision is now {now.get('verdict')}")
    return problems


def approve_transition(
    *, transition: StageTransition, by: Any, comment: str = ""
) -> StageTransition:
    _check_approver(transition, by)
    if transition.status != StageTransition.Status.PENDING:
        raise DomainError(
            f"Transition {transition.id} is {transition.status}, not pending.", code="conflict"
        )
    problems = _evidence_still_holds(transition)
    if problems:
        from rollout.services.health import invalidate_pending

        invalidate_pending(rollout=transition.rollout, reason="; ".join(problems))
        raise DomainError(
            "The evidence changed since the request, so the transition was invalidated: "
            + "; ".join(problems)
            + ".",
            code="conflict",
        )
    now = timezone.now()
    with transaction.atomic():
        # Claim: of two approvals racing, exactly one moves the row.
        claimed = StageTransition.objects.filter(
            id=transition.id, status=StageTransition.Status.PENDING
        ).update(
            status=StageTransition.Status.APPLIED,
            decided_by=by,
            decision_comment=comment,
            decided_at=now,
            applied_at=now,
        )
        if claimed != 1:
            raise DomainError(f"Transition {transition.id} was already decided.", code="conflict")
        rollout = transition.rollout
        moved = Rollout.objects.filter(
            id=rollout.id, state=Rollout.State.ACTIVE, stage=transition.from_stage
        ).update(
            stage=transition.to_stage,
            canary_percent=transition.to_percent,
            stage_entered_at=now,
            state=Rollout.State.COMPLETED if transition.to_percent >= 100 else Rollout.State.ACTIVE,
            updated_at=now,
        )
        if moved != 1:
            raise DomainError(
                f"Rollout '{rollout.key}' is no longer active at {transition.from_stage}.",
                code="conflict",
            )
        rollout.refresh_from_db()
        write_audit(
            rollout=rollout,
            action="transition_applied",
            actor=by,
            message=f"{by.username} approved {transition.from_stage} → {transition.to_stage}; "
            f"canary share now {transition.to_percent:g} %. {comment}".strip(),
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
        transaction.on_commit(lambda: config_cache.publish(Rollout.objects.get(id=rollout.id)))
    transition.refresh_from_db()
    return transition


def reject_transition(
    *, transition: StageTransition, by: Any, comment: str = ""
) -> StageTransition:
    _check_approver(transition, by)
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
            rollout=transition.rollout,
            action="transition_rejected",
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


def propose_if_ready(*, rollout: Rollout) -> StageTransition | None:
    """The platform proposes the next stage when the gate holds and nothing
    is pending; an executive still approves it."""
    if rollout.state != Rollout.State.ACTIVE or rollout.next_stage() is None:
        return None
    if rollout.transitions.filter(status=StageTransition.Status.PENDING).exists():
        return None
    ok, _, _ = gate(rollout)
    if not ok:
        return None
    try:
        return request_transition(
            rollout=rollout,
            to_stage=rollout.next_stage()["name"],  # type: ignore[index]
            proposed_by_platform=True,
            comment="Proposed by the platform: the gate holds.",
        )
    except DomainError:
        return None

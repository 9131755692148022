"""The lifecycle actions of a rollout other than moving between stages:
create, pause, resume, roll back, re-arm, complete, change settings. Each is
one transaction that checks the state machine (`rollout.plan`) and the
permission (`rollout.access`), writes, audits and notifies; the routing
configuration is published when it commits."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.audit import AuditAction, write_audit
from common.errors import DomainError
from rollout import access, config_cache
from rollout import plan as stage_plan
from rollout.health import HealthPolicy, Thresholds, derive_min_requests
from rollout.models import Rollout, StageTransition, default_rollback, default_sla, default_stages
from rollout.plan import PlanError, Step
from rollout.services.notifications import notify

MAX_ALLOW_LIST = 1000
MAX_MIN_REQUESTS = 100_000_000


def publish_on_commit(rollout: Rollout) -> None:
    transaction.on_commit(
        lambda: config_cache.publish(
            Rollout.objects.select_related("experiment").get(id=rollout.id)
        )
    )


def require(by: Any, step: Step) -> None:
    """A person taking `step` needs its permission; the platform (by=None) may."""
    if by is not None and not access.may(by, step):
        raise DomainError(
            f"You need the {access.STEP_PERMISSION[step]} permission to {step.value} a rollout.",
            code="forbidden",
        )


def check_step(rollout: Rollout, step: Step) -> None:
    try:
        stage_plan.check_step(
            rollout.state, step, at_last_stage=rollout.plan().is_last(rollout.stage)
        )
    except PlanError as exc:
        raise DomainError(f"Rollout '{rollout.key}': {exc}", code="conflict") from exc


def validated_settings(
    *,
    stages: list[dict],
    sla: dict,
    rollback: dict,
    has_experiment: bool,
    min_requests: int,
    window_minutes: int,
    allow_list: list[str],
) -> tuple[stage_plan.Plan, dict, dict]:
    """Every setting that the health evaluation and the router read, checked
    so that neither can ever raise on a stored value."""
    try:
        plan = stage_plan.Plan.parse(stages, has_experiment=has_experiment)
    except PlanError as exc:
        raise DomainError(str(exc), field="stages") from exc
    try:
        sla_values = stage_plan.parse_thresholds(sla, what="sla")
        rollback_values = stage_plan.parse_thresholds(rollback, what="rollback")
        stage_plan.check_threshold_bands(sla_values, rollback_values)
    except PlanError as exc:
        raise DomainError(str(exc), field="sla") from exc
    if isinstance(min_requests, bool) or not 0 <= min_requests <= MAX_MIN_REQUESTS:
        raise DomainError(
            f"min_requests must be from 0 to {MAX_MIN_REQUESTS:,}.".replace(",", " "),
            field="min_requests",
        )
    if not 1 <= window_minutes <= 60:
        raise DomainError("window_minutes must be from 1 to 60.", field="window_minutes")
    if len(allow_list) > MAX_ALLOW_LIST or any(
        not isinstance(u, str) or not u or len(u) > 200 or "\x00" in u for u in allow_list
    ):
        raise DomainError(
            f"allow_list holds at most {MAX_ALLOW_LIST} unit ids of 1–200 characters.",
            field="allow_list",
        )
    try:
        derive_min_requests(
            Thresholds(**sla_values),
            Thresholds(**rollback_values),
            HealthPolicy(min_requests=min_requests),
        )
    except (TypeError, ValueError) as exc:
        raise DomainError(f"Invalid thresholds: {exc}", field="sla") from exc
    return plan, sla_values, rollback_values


def create_rollout(
    *,
    key: str,
    name: str,
    feature: str,
    experiment: Any = None,
    stages: list[dict] | None = None,
    sla: dict | None = None,
    rollback: dict | None = None,
    min_requests: int = 0,
    window_minutes: int = 5,
    allow_list: list[str] | None = None,
    by: Any = None,
) -> Rollout:
    """A new rollout starts at its first stage, a 0 % share: nobody but staff
    sees the new version until an executive approves the first step."""
    if by is not None and not by.has_perm("rollout.add_rollout"):
        raise DomainError("You need the rollout.add_rollout permission.", code="forbidden")
    plan, sla_values, rollback_values = validated_settings(
        stages=[dict(s) for s in (stages or default_stages())],
        sla={**default_sla(), **(sla or {})},
        rollback={**default_rollback(), **(rollback or {})},
        has_experiment=experiment is not None,
        min_requests=min_requests,
        window_minutes=window_minutes,
        allow_list=list(allow_list or []),
    )
    if Rollout.objects.filter(key=key).exists():
        raise DomainError(
            f"A rollout with key '{key}' already exists.", code="conflict", field="key"
        )
    busy = Rollout.objects.filter(feature=feature, state__in=stage_plan.LIVE_STATES).first()
    if busy is not None:
        raise DomainError(
            f"Feature '{feature}' already has a rollout in progress ('{busy.key}'): complete or "
            "roll it back first.",
            code="conflict",
            field="feature",
        )
    first = plan.first()
    try:
        with transaction.atomic():
            rollout = Rollout.objects.create(
                key=key,
                name=name,
                feature=feature,
                experiment=experiment,
                stages=plan.to_list(),
                sla=sla_values,
                rollback=rollback_values,
                min_requests=min_requests,
                window_minutes=window_minutes,
                allow_list=list(allow_list or []),
                stage=first.name,
                canary_percent=0.0,
                stage_entered_at=timezone.now(),
            )
            write_audit(
                subject=rollout,
                action=AuditAction.ROLLOUT_CREATED,
                actor=by,
                message=f"Rollout '{key}' created at stage {first.name} (0 %, staff only). Plan: "
                + " → ".join(s.label for s in plan.stages),
                stages=plan.to_list(),
                sla=sla_values,
                rollback=rollback_values,
            )
            publish_on_commit(rollout)
    except IntegrityError as exc:
        raise DomainError(
            f"A rollout with key '{key}' already exists, or feature '{feature}' already has one "
            "in progress.",
            code="conflict",
            field="key",
        ) from exc
    return rollout


def rollback_rollout(
    *,
    rollout: Rollout,
    reason: str,
    by: Any = None,
    automatic: bool = False,
    evidence: dict | None = None,
) -> bool:
    """Send everyone to stable. Idempotent: returns False (and writes
    nothing) when the rollout is no longer live, however many workers race."""
    require(by, Step.ROLLBACK)
    now = timezone.now()
    with transaction.atomic():
        moved = Rollout.objects.filter(
            id=rollout.id, state__in=list(stage_plan.ALLOWED[Step.ROLLBACK])
        ).update(
            state=Rollout.State.ROLLED_BACK,
            canary_percent=0.0,
            rolled_back_at=now,
            rollback_reason=reason,
            updated_at=now,
        )
        if moved != 1:
            return False
        rollout.refresh_from_db()
        _invalidate_all(rollout, "the rollout was rolled back", now=now, by=by)
        who = "automatically" if automatic else "by hand"
        write_audit(
            subject=rollout,
            action=AuditAction.ROLLED_BACK,
            actor=by,
            message=f"Rolled back {who} at stage {rollout.stage}: {reason}",
            automatic=automatic,
            reason=reason,
            evidence=evidence or {},
        )
        notify(
            rollout=rollout,
            event="rollback",
            severity="critical",
            title=f"Rollout {rollout.key} rolled back {who}",
            text=reason,
            fields={"stage": rollout.stage, "canary share": "0 %"},
            dedup=now.isoformat(),
        )
        publish_on_commit(rollout)
    return True


def _invalidate_all(rollout: Rollout, reason: str, *, now, by: Any = None) -> int:
    pending = list(
        StageTransition.objects.filter(rollout=rollout, status=StageTransition.Status.PENDING)
    )
    for transition in pending:
        claimed = StageTransition.objects.filter(
            id=transition.id, status=StageTransition.Status.PENDING
        ).update(
            status=StageTransition.Status.INVALIDATED, invalidation_reason=reason, decided_at=now
        )
        if claimed:
            write_audit(
                subject=rollout,
                action=AuditAction.INVALIDATED,
                actor=by,
                message=f"Transition {transition.from_stage} → {transition.to_stage} "
                f"invalidated: {reason}",
                transition=transition.id,
            )
    return len(pending)


def _simple_step(
    *,
    rollout: Rollout,
    step: Step,
    by: Any,
    action: AuditAction,
    message: str,
    severity: str = "info",
    **changes: Any,
) -> Rollout:
    require(by, step)
    check_step(rollout, step)
    target = stage_plan.LEADS_TO[step]
    now = timezone.now()
    with transaction.atomic():
        moved = Rollout.objects.filter(
            id=rollout.id, state__in=list(stage_plan.ALLOWED[step])
        ).update(state=target.value if target else rollout.state, updated_at=now, **changes)
        if moved != 1:
            rollout.refresh_from_db()
            raise DomainError(
                f"Rollout '{rollout.key}' is {rollout.state}; {step.value} is not possible now.",
                code="conflict",
            )
        rollout.refresh_from_db()
        write_audit(subject=rollout, action=action, actor=by, message=message)
        notify(
            rollout=rollout,
            event=action.value,
            severity=severity,
            title=f"Rollout {rollout.key}: {action.label.lower()}",
            text=message,
            dedup=now.isoformat(),
        )
        publish_on_commit(rollout)
    return rollout


def _who(by: Any) -> str:
    return getattr(by, "username", None) or "the platform"


def pause_rollout(*, rollout: Rollout, by: Any, comment: str = "") -> Rollout:
    """Nothing advances while paused; routing and automatic rollback go on."""
    return _simple_step(
        rollout=rollout,
        step=Step.PAUSE,
        by=by,
        action=AuditAction.PAUSED,
        message=f"{_who(by)} paused the rollout at {rollout.stage} "
        f"({rollout.canary_percent:g} %). {comment}".strip(),
    )


def resume_rollout(*, rollout: Rollout, by: Any, comment: str = "") -> Rollout:
    return _simple_step(
        rollout=rollout,
        step=Step.RESUME,
        by=by,
        action=AuditAction.RESUMED,
        message=f"{_who(by)} resumed the rollout at {rollout.stage}. {comment}".strip(),
    )


def rearm_rollout(*, rollout: Rollout, by: Any, comment: str = "") -> Rollout:
    """After a rollback a person re-arms the rollout: it restarts at the
    first stage (0 %, staff only) and climbs again through approvals."""
    first = rollout.plan().first()
    try:
        return _simple_step(
            rollout=rollout,
            step=Step.REARM,
            by=by,
            action=AuditAction.REARMED,
            message=f"{_who(by)} re-armed the rollout at {first.name} (0 %). {comment}".strip(),
            stage=first.name,
            canary_percent=0.0,
            stage_entered_at=timezone.now(),
        )
    except IntegrityError as exc:
        raise DomainError(
            f"Feature '{rollout.feature}' has another rollout in progress; it cannot be re-armed.",
            code="conflict",
        ) from exc


def complete_rollout(*, rollout: Rollout, by: Any = None, comment: str = "") -> Rollout:
    """At the last stage: the new version stays served to every unit and the
    feature is free for its next rollout."""
    who = _who(by) if by is not None else "The platform"
    reason = comment or ("" if by is not None else "the last stage's minimum duration has passed")
    return _simple_step(
        rollout=rollout,
        step=Step.COMPLETE,
        by=by,
        action=AuditAction.COMPLETED,
        message=f"{who} completed the rollout at {rollout.stage} (100 %). {reason}".strip(),
    )


def change_settings(
    *,
    rollout: Rollout,
    by: Any,
    stages: list[dict] | None = None,
    sla: dict | None = None,
    rollback: dict | None = None,
    allow_list: list[str] | None = None,
    min_requests: int | None = None,
    window_minutes: int | None = None,
    comment: str = "",
) -> Rollout:
    """Change the plan or thresholds of a live rollout. The current stage
    keeps its share (a new share is a transition); loosening the rollback
    thresholds or removing an approval step needs an executive."""
    require(by, Step.CHANGE_SETTINGS)
    check_step(rollout, Step.CHANGE_SETTINGS)
    old_plan = rollout.plan()
    new = {
        "stages": [dict(s) for s in stages] if stages is not None else old_plan.to_list(),
        "sla": {**rollout.sla, **(sla or {})},
        "rollback": {**rollout.rollback, **(rollback or {})},
        "allow_list": list(allow_list) if allow_list is not None else list(rollout.allow_list),
        "min_requests": rollout.min_requests if min_requests is None else min_requests,
        "window_minutes": rollout.window_minutes if window_minutes is None else window_minutes,
    }
    plan, sla_values, rollback_values = validated_settings(
        has_experiment=bool(rollout.experiment_id), **new
    )
    errors, needs_executive = stage_plan.settings_change_problems(
        old_plan=old_plan,
        new_plan=plan,
        stage=rollout.stage,
        old_rollback=rollout.rollback,
        new_rollback=rollback_values,
    )
    if errors:
        raise DomainError("; ".join(errors).capitalize(), field="stages")
    if needs_executive and not access.is_executive(by):
        raise DomainError(
            "Only an executive may " + ", ".join(needs_executive) + ".", code="forbidden"
        )
    before = {
        "stages": rollout.stages,
        "sla": rollout.sla,
        "rollback": rollout.rollback,
        "allow_list": rollout.allow_list,
        "min_requests": rollout.min_requests,
        "window_minutes": rollout.window_minutes,
    }
    after = {**new, "stages": plan.to_list(), "sla": sla_values, "rollback": rollback_values}
    changed = sorted(k for k in after if after[k] != before[k])
    if not changed:
        return rollout
    with transaction.atomic():
        locked = Rollout.objects.select_for_update().get(id=rollout.id)
        if locked.stage != rollout.stage or locked.state != rollout.state:
            raise DomainError(
                f"Rollout '{rollout.key}' moved meanwhile; try again.", code="conflict"
            )
        Rollout.objects.filter(id=rollout.id).update(updated_at=timezone.now(), **after)
        rollout.refresh_from_db()
        action = (
            AuditAction.PLAN_CHANGED
            if set(changed) & {"stages", "allow_list"}
            else AuditAction.THRESHOLDS_CHANGED
        )
        write_audit(
            subject=rollout,
            action=action,
            actor=by,
            message=f"{_who(by)} changed {', '.join(changed)}. {comment}".strip(),
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
        publish_on_commit(rollout)
    return rollout

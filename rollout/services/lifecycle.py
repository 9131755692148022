"""Creating rollouts, rolling them back and re-arming them."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.errors import DomainError
from rollout import config_cache
from rollout.health import HealthPolicy, Thresholds, derive_min_requests
from rollout.models import Rollout, StageTransition, default_rollback, default_sla, default_stages
from rollout.services.audit import write_audit
from rollout.services.notifications import notify

STAGE_NAMES = ("internal", "canary", "ab", "full")


def _publish_on_commit(rollout: Rollout) -> None:
    transaction.on_commit(lambda: config_cache.publish(Rollout.objects.get(id=rollout.id)))


def validate_plan(*, stages: list[dict], sla: dict, rollback: dict) -> None:
    names = [s.get("name") for s in stages]
    if not stages or len(set(names)) != len(names):
        raise DomainError("stages must be a non-empty list with unique names.", field="stages")
    last = -1.0
    for stage in stages:
        percent = stage.get("percent")
        if not isinstance(percent, int | float) or not 0 <= percent <= 100:
            raise DomainError(
                f"stage '{stage.get('name')}': percent must be between 0 and 100.", field="stages"
            )
        if percent < last:
            raise DomainError("stage shares must not decrease along the plan.", field="stages")
        last = percent
    try:
        sla_t = Thresholds(**sla)
        rollback_t = Thresholds(**rollback)
        derive_min_requests(sla_t, rollback_t, HealthPolicy())
    except (TypeError, ValueError) as exc:
        raise DomainError(f"Invalid thresholds: {exc}", field="sla") from exc


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
    stages = stages or default_stages()
    sla = {**default_sla(), **(sla or {})}
    rollback = {**default_rollback(), **(rollback or {})}
    for stage in stages:
        stage.setdefault("min_duration_hours", 0)
        stage.setdefault("needs_approval", True)
    validate_plan(stages=stages, sla=sla, rollback=rollback)
    if Rollout.objects.filter(key=key).exists():
        raise DomainError(
            f"A rollout with key '{key}' already exists.", code="conflict", field="key"
        )
    busy = Rollout.objects.filter(feature=feature).exclude(
        state__in=[Rollout.State.COMPLETED, Rollout.State.ROLLED_BACK]
    )
    if busy.exists():
        raise DomainError(
            f"Feature '{feature}' already has a rollout in progress ('{busy.first().key}').",
            code="conflict",
            field="feature",
        )
    try:
        with transaction.atomic():
            rollout = Rollout.objects.create(
                key=key,
                name=name,
                feature=feature,
                experiment=experiment,
                stages=stages,
                sla=sla,
                rollback=rollback,
                min_requests=min_requests,
                window_minutes=window_minutes,
                allow_list=allow_list or [],
                stage=stages[0]["name"],
                canary_percent=float(stages[0]["percent"]),
                stage_entered_at=timezone.now(),
            )
            write_audit(
                rollout=rollout,
                action="rollout_created",
                actor=by,
                message=f"Rollout '{key}' created at stage {rollout.stage} "
                f"({rollout.canary_percent:g} % canary).",
                stages=stages,
            )
            _publish_on_commit(rollout)
    except IntegrityError as exc:
        raise DomainError(
            f"A rollout with key '{key}' already exists.", code="conflict", field="key"
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
    nothing) when the rollout was already rolled back, however many workers
    race for it."""
    now = timezone.now()
    with transaction.atomic():
        moved = Rollout.objects.filter(
            id=rollout.id, state__in=[Rollout.State.ACTIVE, Rollout.State.PAUSED]
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
        StageTransition.objects.filter(
            rollout=rollout, status=StageTransition.Status.PENDING
        ).update(
            status=StageTransition.Status.INVALIDATED,
            invalidation_reason="the rollout was rolled back",
            decided_at=now,
        )
        who = "automatically" if automatic else "by hand"
        write_audit(
            rollout=rollout,
            action="rollback_automatic" if automatic else "rollback_manual",
            actor=by,
            message=f"Rolled back {who} at stage {rollout.stage}: {reason}",
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
        _publish_on_commit(rollout)
    return True


def rearm_rollout(*, rollout: Rollout, by: Any, comment: str = "") -> Rollout:
    """After a rollback a person re-arms the rollout: it restarts at the
    first stage of its plan and climbs again through approvals."""
    now = timezone.now()
    first = rollout.stages[0]
    with transaction.atomic():
        moved = Rollout.objects.filter(id=rollout.id, state=Rollout.State.ROLLED_BACK).update(
            state=Rollout.State.ACTIVE,
            stage=first["name"],
            canary_percent=float(first["percent"]),
            stage_entered_at=now,
            updated_at=now,
        )
        if moved != 1:
            raise DomainError(
                f"Rollout '{rollout.key}' is {rollout.state}; only a rolled-back rollout can be "
                "re-armed.",
                code="conflict",
            )
        rollout.refresh_from_db()
        write_audit(
            rollout=rollout,
            action="rollout_rearmed",
            actor=by,
            message=f"Re-armed at stage {rollout.stage}. {comment}".strip(),
        )
        _publish_on_commit(rollout)
    return rollout

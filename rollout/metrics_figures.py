"""The rollouts' figures that /metrics reads from the database when scraped:
state, canary share, latest health verdict, thresholds, and the rollbacks
and transition steps of the append-only audit log (counts that only grow)."""

from datetime import timedelta

from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from common.metrics import RolloutFigures, ScrapeFigures
from common.models import AuditAction, AuditEntry
from rollout.models import HealthVerdict, Rollout

# A finished rollout keeps its series this long, then drops out (bounded labels).
SHOW_FINISHED_FOR = timedelta(days=7)
TRANSITION_OUTCOMES = {
    AuditAction.REQUESTED: "requested",
    AuditAction.APPROVED: "approved",
    AuditAction.REJECTED: "rejected",
    AuditAction.APPLIED: "applied",
    AuditAction.INVALIDATED: "invalidated",
}


def _seconds(ms) -> float:
    return float(ms) / 1000.0


def add_rollout_figures(figures: ScrapeFigures) -> None:
    figures.rollout_states = tuple(Rollout.State.values)
    figures.verdicts = tuple(HealthVerdict.Verdict.values)
    recent = timezone.now() - SHOW_FINISHED_FOR
    latest = HealthVerdict.objects.filter(rollout=OuterRef("pk")).order_by("-evaluated_at", "-id")
    rows = list(
        Rollout.objects.exclude(state=Rollout.State.COMPLETED, updated_at__lt=recent)
        .annotate(latest_verdict=Subquery(latest.values("verdict")[:1]))
        .values("id", "key", "state", "canary_percent", "sla", "rollback", "latest_verdict")
    )
    if not rows:
        return
    ids = [row["id"] for row in rows]
    audit = AuditEntry.objects.filter(object_type=AuditEntry.ObjectType.ROLLOUT, object_id__in=ids)
    rollbacks: dict[int, dict[str, int]] = {}
    for entry in (
        audit.filter(action=AuditAction.ROLLED_BACK)
        .order_by()
        .values("object_id", "data__automatic")
        .annotate(n=Count("id"))
    ):
        trigger = "automatic" if entry["data__automatic"] else "manual"
        per = rollbacks.setdefault(entry["object_id"], {})
        per[trigger] = per.get(trigger, 0) + entry["n"]
    transitions: dict[int, dict[str, int]] = {}
    for entry in (
        audit.filter(action__in=list(TRANSITION_OUTCOMES))
        .order_by()
        .values("object_id", "action")
        .annotate(n=Count("id"))
    ):
        outcome = TRANSITION_OUTCOMES[AuditAction(entry["action"])]
        transitions.setdefault(entry["object_id"], {})[outcome] = entry["n"]
    for row in rows:
        sla, rollback = row["sla"] or {}, row["rollback"] or {}
        figures.rollouts.append(
            RolloutFigures(
                key=row["key"],
                state=row["state"],
                canary_share=row["canary_percent"] / 100.0,
                verdict=row["latest_verdict"] or "",
                sla_error_rate=float(sla.get("max_error_rate", 0)),
                sla_p95_seconds=_seconds(sla.get("max_p95_ms", 0)),
                rollback_error_rate=float(rollback.get("max_error_rate", 0)),
                rollback_p95_seconds=_seconds(rollback.get("max_p95_ms", 0)),
                rollbacks=rollbacks.get(row["id"], {}),
                transitions=transitions.get(row["id"], {}),
            )
        )

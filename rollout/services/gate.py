"""Gather what the gate reads — the two horizons of health, the
canary-vs-stable comparison, the experiment's decision — and ask the one
gate in `rollout.plan`. Requests, approvals, the beat run and the pages all
come here."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from rollout import plan as stage_plan
from rollout.health import HealthReport
from rollout.models import Rollout
from rollout.services import stage_record


@dataclass(frozen=True)
class GateView:
    """The gate with the evidence behind it, ready to freeze into a record."""

    plan: stage_plan.Plan
    gate: stage_plan.Gate
    evidence: stage_plan.Evidence
    window: HealthReport
    stage: HealthReport
    frozen: dict[str, Any]

    def against(self) -> list[str]:
        return stage_plan.evidence_against(self.plan, self.evidence)


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


def _comparison(report: HealthReport) -> tuple[bool | None, str]:
    comparison = report.to_dict().get("comparison") or {}
    if not comparison.get("judged"):
        return None, ""
    checks = comparison.get("checks") or []
    worse = [c["detail"] for c in checks if c.get("worse")]
    if comparison.get("worse"):
        return True, "; ".join(worse)
    judged = [c["detail"] for c in checks if c.get("judged")]
    return False, "; ".join(judged[:2])


def gate_view(
    rollout: Rollout, *, now: datetime | None = None, window: HealthReport | None = None
) -> GateView:
    """The gate of `rollout` now. `window`: the sliding-window report when the
    caller has just computed it (the beat run), so it is not computed twice."""
    now = now or timezone.now()
    plan = rollout.plan()
    window = window or stage_record.window_report(rollout, now=now)
    stage = stage_record.stage_report(rollout, now=now)
    experiment = experiment_evidence(rollout)
    worse, comparison_detail = _comparison(stage)
    evidence = stage_plan.Evidence(
        state=rollout.state,
        stage=rollout.stage,
        entered_at=rollout.stage_entered_at,
        now=now,
        stage_health=stage.verdict.value,
        window_health=window.verdict.value,
        stage_health_reasons=tuple(stage.reasons[:3]),
        window_health_reasons=tuple(window.reasons[:3]),
        canary_worse=worse,
        comparison_detail=comparison_detail,
        experiment_key=rollout.experiment.key if rollout.experiment_id else None,
        experiment_verdict=(experiment or {}).get("verdict"),
    )
    gate = stage_plan.evaluate_gate(plan, evidence)
    entered = rollout.stage_entered_at or now
    frozen = {
        "collected_at": now.isoformat(),
        "health": stage_record.report_dict(
            window,
            start=stage_record.window_start(rollout, now),
            now=now,
            minutes=rollout.window_minutes,
        ),
        "stage_record": stage_record.report_dict(stage, start=entered, now=now, minutes=None),
        "experiment": experiment,
        "stage": {
            "name": rollout.stage,
            "role": plan.stage(rollout.stage).role.value,
            "percent": rollout.canary_percent,
            "entered_at": rollout.stage_entered_at.isoformat()
            if rollout.stage_entered_at
            else None,
        },
        "gate": gate.to_dict(),
    }
    return GateView(plan, gate, evidence, window, stage, frozen)


def _figures(evidence: dict[str, Any], horizon: str) -> dict[str, Any]:
    return ((evidence.get(horizon) or {}).get("versions") or {}).get("canary") or {}


def changes_since(frozen: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed between the evidence frozen at the request and now, in
    the words an approver reads."""
    changes: list[str] = []
    before, after = _figures(frozen, "stage_record"), _figures(current, "stage_record")
    if not before:
        before, after = _figures(frozen, "health"), _figures(current, "health")
    if before.get("requests") != after.get("requests"):
        changes.append(
            f"canary requests in the stage {before.get('requests', 0):,} → "
            f"{after.get('requests', 0):,}".replace(",", " ")
        )
    for key, label, scale, unit in (
        ("error_rate", "canary error rate", 100, " %"),
        ("p95_ms", "canary P95", 1, " ms"),
    ):
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and abs(new - old) > 1e-12:
            changes.append(f"{label} {old * scale:.3g}{unit} → {new * scale:.3g}{unit}")
    for horizon, label in (
        ("health", "health of the last minutes"),
        ("stage_record", "stage record"),
    ):
        old = (frozen.get(horizon) or {}).get("verdict")
        new = (current.get(horizon) or {}).get("verdict")
        if old and new and old != new:
            changes.append(f"{label} {old} → {new}")
    old_exp, new_exp = frozen.get("experiment") or {}, current.get("experiment") or {}
    if old_exp.get("verdict") != new_exp.get("verdict"):
        changes.append(f"experiment decision {old_exp.get('verdict')} → {new_exp.get('verdict')}")
    elif old_exp.get("snapshot_id") != new_exp.get("snapshot_id"):
        changes.append(
            f"experiment re-analysed (snapshot {old_exp.get('snapshot_id')} → "
            f"{new_exp.get('snapshot_id')}), decision still {new_exp.get('verdict')}"
        )
    return changes

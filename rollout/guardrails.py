from experiments.decision import ServiceFigures


def canary_service_figures(experiment) -> ServiceFigures | None:
    """The canary's error rate and P95 from the latest health verdict of the
    rollout linked to `experiment`, for the experiment's decision rules."""
    from rollout.models import HealthVerdict

    verdict = (
        HealthVerdict.objects.filter(rollout__experiment_id=experiment.id)
        .only("report", "rollout_id")
        .select_related("rollout")
        .first()
    )
    if verdict is None:
        return None
    # The stage's cumulative record when there is one: more data than the window.
    record = verdict.report.get("stage_record") or verdict.report
    canary = record.get("versions", {}).get("canary", {})
    if not canary.get("requests"):
        return None
    return ServiceFigures(
        error_rate=canary.get("error_rate"),
        p95_ms=canary.get("p95_ms"),
        source=f"rollout {verdict.rollout.key} health at {verdict.evaluated_at:%Y-%m-%d %H:%M}",
    )

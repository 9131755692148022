from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common import health
from common.metrics import HEALTH_CHECK_FAILURES, registry


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = health.run_checks()
    for component, result in report.items():
        if result["status"] != "ok":
            HEALTH_CHECK_FAILURES.labels(component=component).inc()
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": report}, status=200 if healthy else 503
    )


@never_cache
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    # The overview shows the products of the apps above common; imported here
    # because common may not depend on them at import time.
    from experiments.models import Experiment
    from experiments.pages import latest_snapshots
    from rollout.models import Rollout
    from rollout.pages import latest_verdicts, pending_for

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

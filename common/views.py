from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common import health
from common.metrics import HEALTH_CHECK_FAILURES, registry


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """503 when the database is down; 200 `degraded` when another part is (see
    common.health). Anyone sees each part's status; logged-in
    staff also see the details (timings, backends, errors naming hosts and ports)."""
    overall, report = health.run_checks()
    for component, result in report.items():
        if result["status"] == health.DOWN:
            HEALTH_CHECK_FAILURES.labels(component=component).inc()
    if not request.user.is_staff:
        report = health.status_only(report)
    return JsonResponse(
        {"status": overall, "checks": report}, status=503 if overall == health.DOWN else 200
    )


@never_cache
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)

from django.http import HttpRequest, HttpResponse, JsonResponse
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

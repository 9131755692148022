"""Request metrics per rollout and version.

A feature view routes its request with `route_request(request, feature,
unit_id)`; this middleware then counts the request, its status (a 5xx or an
unhandled exception is an error) and its latency for that version. Requests
that were not routed are not counted. The work per request is a log, a ceil
and a few dictionary operations; metrics are pushed on at most once a second,
and the Prometheus counters are fed from those pushes. Server errors of every
view are counted too.
"""

import time

from common import metrics
from rollout import metrics_store
from rollout.router import Route, route_feature


def route_request(request, feature: str, unit_id: str, *, is_staff: bool = False) -> Route:
    """Decide the version of `feature` for this unit (`is_staff`: the end user
    is one of ion-mentoring's staff, who get the canary at the internal stage)
    and mark the request as belonging to the rollout, so its outcome is counted."""
    route = route_feature(feature, unit_id, is_staff=is_staff)
    # A DRF view passes its Request wrapper; the middleware sees the Django request.
    request = getattr(request, "_request", request)
    if route.rollout_id is not None:
        request._rollout_metrics = (route.rollout_id, route.version)
    return route


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        routed = getattr(request, "_rollout_metrics", None)
        if routed is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            metrics_store.record(routed[0], routed[1], latency_ms, response.status_code)
            metrics_store.maybe_push()
        if response.status_code >= 500:
            # Every view's server errors (one comparison per request; work only on errors).
            match = request.resolver_match
            metrics.count_server_error(match.view_name if match else "unresolved")
        return response

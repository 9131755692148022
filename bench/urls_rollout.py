from django.http import JsonResponse
from django.urls import path

from rollout.middleware import route_request


def routed(request):
    route = route_request(request, "bench", request.GET.get("unit", "u"))
    return JsonResponse({"version": route.version})


urlpatterns = [path("bench/routed/", routed)]

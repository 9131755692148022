from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def bare_json(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare/", bare_json), *product_urlpatterns]

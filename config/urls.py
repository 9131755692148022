from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from common import views as common_views
from rollout import pages as rollout_pages

urlpatterns = [
    # The integration API first: its requests are the most frequent by far.
    path("api/v1/", include("experiments.urls")),
    path("api/v1/", include("rollout.urls")),
    path("api/v2/", include("recommendations.urls")),
    path("api/v2/", include("conversations.urls")),
    path("", rollout_pages.overview, name="overview"),
    path("experiments/", include("experiments.page_urls")),
    path("", include("rollout.page_urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", common_views.healthz, name="healthz"),
    path("metrics", common_views.prometheus_metrics, name="prometheus-metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

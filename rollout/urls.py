from django.urls import path

from rollout import views

urlpatterns = [
    path("rollouts/", views.RolloutListCreateView.as_view(), name="rollout-list"),
    path("rollouts/<slug:key>/", views.RolloutDetailView.as_view(), name="rollout-detail"),
    path("rollouts/<slug:key>/route/", views.RouteView.as_view(), name="rollout-route"),
    path(
        "rollouts/<slug:key>/request-metrics/",
        views.RequestMetricsView.as_view(),
        name="rollout-request-metrics",
    ),
    path("rollouts/<slug:key>/health/", views.HealthView.as_view(), name="rollout-health"),
    path(
        "rollouts/<slug:key>/transitions/",
        views.TransitionRequestView.as_view(),
        name="rollout-transitions",
    ),
    path("rollouts/<slug:key>/rollback/", views.RollbackView.as_view(), name="rollout-rollback"),
    path(
        "rollouts/<slug:key>/rearm/",
        views.LifecycleStepView.as_view(step="rearm"),
        name="rollout-rearm",
    ),
    path(
        "rollouts/<slug:key>/pause/",
        views.LifecycleStepView.as_view(step="pause"),
        name="rollout-pause",
    ),
    path(
        "rollouts/<slug:key>/resume/",
        views.LifecycleStepView.as_view(step="resume"),
        name="rollout-resume",
    ),
    path(
        "rollouts/<slug:key>/complete/",
        views.LifecycleStepView.as_view(step="complete"),
        name="rollout-complete",
    ),
    path("rollouts/<slug:key>/settings/", views.SettingsView.as_view(), name="rollout-settings"),
    path("rollouts/<slug:key>/metrics/", views.MetricsView.as_view(), name="rollout-metrics"),
    path("rollouts/<slug:key>/audit/", views.AuditView.as_view(), name="rollout-audit"),
    path(
        "transitions/<int:transition_id>/approve/",
        views.TransitionDecisionView.as_view(decision="approve"),
        name="transition-approve",
    ),
    path(
        "transitions/<int:transition_id>/reject/",
        views.TransitionDecisionView.as_view(decision="reject"),
        name="transition-reject",
    ),
]

from django.urls import path

from experiments import views

urlpatterns = [
    path("metrics/", views.MetricListCreateView.as_view(), name="metric-list"),
    path("experiments/", views.ExperimentListCreateView.as_view(), name="experiment-list"),
    path("experiments/<slug:key>/", views.ExperimentDetailView.as_view(), name="experiment-detail"),
    path(
        "experiments/<slug:key>/start/",
        views.ExperimentStartView.as_view(),
        name="experiment-start",
    ),
    path(
        "experiments/<slug:key>/stop/", views.ExperimentStopView.as_view(), name="experiment-stop"
    ),
    path(
        "experiments/<slug:key>/archive/",
        views.ExperimentArchiveView.as_view(),
        name="experiment-archive",
    ),
    path(
        "experiments/<slug:key>/audit/",
        views.ExperimentAuditView.as_view(),
        name="experiment-audit",
    ),
    path(
        "experiments/<slug:key>/sdk-config/", views.SdkConfigView.as_view(), name="experiment-sdk"
    ),
    path(
        "experiments/<slug:key>/analysis/", views.AnalysisView.as_view(), name="experiment-analysis"
    ),
    path("experiments/<slug:key>/results/", views.ResultsView.as_view(), name="experiment-results"),
    path(
        "experiments/<slug:key>/snapshots/",
        views.SnapshotListView.as_view(),
        name="experiment-snapshots",
    ),
    path("experiments/<slug:key>/report/", views.ReportView.as_view(), name="experiment-report"),
    path(
        "experiments/<slug:key>/segments/", views.SegmentsView.as_view(), name="experiment-segments"
    ),
    path("assignments/", views.assignment_endpoint, name="assignment"),
    path("assignments/batch/", views.BatchAssignmentView.as_view(), name="assignment-batch"),
    path("exposures/", views.ExposureBatchView.as_view(), name="exposures"),
    path("events/", views.EventBatchView.as_view(), name="events"),
]

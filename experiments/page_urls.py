from django.urls import path

from experiments import page_forms, pages

# "new/" and "metrics/" come before "<slug:key>/": the form refuses those keys
# (experiments.forms.RESERVED_KEYS).
urlpatterns = [
    path("", pages.experiment_list, name="experiment-list-page"),
    path("new/", page_forms.experiment_new, name="experiment-new-page"),
    path("metrics/", page_forms.metric_list, name="metric-list-page"),
    path("metrics/new/", page_forms.metric_new, name="metric-new-page"),
    path("metrics/<slug:key>/edit/", page_forms.metric_edit, name="metric-edit-page"),
    path("<slug:key>/", pages.experiment_detail, name="experiment-page"),
    path("<slug:key>/edit/", page_forms.experiment_edit, name="experiment-edit-page"),
    path(
        "<slug:key>/actions/<slug:step>/",
        page_forms.experiment_action,
        name="experiment-action-page",
    ),
]

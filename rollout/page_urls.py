from django.urls import path

from rollout import page_forms, pages

urlpatterns = [
    path("rollouts/", pages.rollout_list, name="rollout-list-page"),
    # Before "rollouts/<slug:key>/": the form refuses "new" as a key.
    path("rollouts/new/", page_forms.rollout_new, name="rollout-new-page"),
    path("rollouts/<slug:key>/", pages.rollout_detail, name="rollout-page"),
    path("rollouts/<slug:key>/edit/", page_forms.rollout_edit, name="rollout-edit-page"),
    path(
        "rollouts/<slug:key>/actions/<slug:step>/",
        pages.rollout_action,
        name="rollout-action-page",
    ),
    path(
        "rollouts/transitions/<int:transition_id>/approve/",
        pages.decide_transition,
        {"decision": "approve"},
        name="transition-approve-page",
    ),
    path(
        "rollouts/transitions/<int:transition_id>/reject/",
        pages.decide_transition,
        {"decision": "reject"},
        name="transition-reject-page",
    ),
    path("audit/", pages.audit_log, name="audit-page"),
]

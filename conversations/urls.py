from django.urls import path

from conversations import views

urlpatterns: list = [
    path("conversations/", views.SessionStartView.as_view(), name="conversation-start"),
    path(
        "conversations/<int:session_id>/",
        views.SessionDetailView.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<int:session_id>/messages/",
        views.MessageView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<int:session_id>/end/",
        views.SessionEndView.as_view(),
        name="conversation-end",
    ),
    path(
        "conversations/<int:session_id>/feedback/",
        views.SessionFeedbackView.as_view(),
        name="conversation-feedback",
    ),
    path("users/<str:user_id>/memory/", views.UserMemoryView.as_view(), name="user-memory"),
]

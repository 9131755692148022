"""v2 recommendation API, mounted under /api/v2/ by config/urls.py."""

from django.urls import path

from recommendations import views

urlpatterns: list = [
    path("recommendations/", views.RecommendView.as_view(), name="rec-recommend"),
    path("recommendations/feedback/", views.FeedbackView.as_view(), name="rec-feedback"),
    path("items/", views.ItemListView.as_view(), name="rec-items"),
    path(
        "items/<int:item_id>/similar/", views.SimilarItemsView.as_view(), name="rec-similar-items"
    ),
]

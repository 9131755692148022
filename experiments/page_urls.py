from django.urls import path

from experiments import pages

urlpatterns = [
    path("", pages.experiment_list, name="experiment-list-page"),
    path("<slug:key>/", pages.experiment_detail, name="experiment-page"),
]


app_name = "experiments-api"

urlpatterns: list = []

from django.contrib import admin

from common.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("created_at", "source", "hostname")
    list_filter = ("source",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):  # written by the worker only
        return False

    def has_change_permission(self, request, obj=None):
        return False

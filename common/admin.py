from django.contrib import admin

from common.models import AuditEntry, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("created_at", "source", "hostname")
    list_filter = ("source",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):  # written by the worker only
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "object_type", "object_key", "actor", "message")
    list_filter = ("action", "object_type")
    search_fields = ("object_key", "message")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"
    show_full_result_count = False  # the log only grows; counting it on every page is slow

    # Append-only, the admin included: no add, no change, no delete (and so no
    # bulk delete action either).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from recommendations.models import ContentItem, Interaction, ModelVersion
from recommendations.services import training
from recommendations.tasks import train_models


@admin.register(ContentItem)
class ContentItemAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "title", "active", "updated_at")
    list_filter = ("kind", "active")
    search_fields = ("title", "description", "external_id")
    readonly_fields = ("created_at", "updated_at")


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("id", "user_id", "kind", "item", "weight", "timestamp")
    list_filter = ("kind",)
    search_fields = ("user_id",)
    list_select_related = ("item",)
    raw_id_fields = ("item",)
    date_hierarchy = "timestamp"
    show_full_result_count = False  # counting millions of rows on every page is slow


def _enqueue_training(request: HttpRequest, modeladmin: admin.ModelAdmin) -> None:
    train_models.delay()
    modeladmin.message_user(
        request, "Training enqueued: the new models become active when the worker is done."
    )


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    change_list_template = "admin/recommendations/modelversion/change_list.html"
    list_display = (
        "id",
        "engine",
        "is_active",
        "created_at",
        "training_cutoff",
        "n_items",
        "n_users",
        "n_interactions",
        "ndcg",
        "training_seconds",
        "artifact_bytes",
    )
    list_filter = ("engine", "is_active")
    exclude = ("artifact",)
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "artifact"]
    actions = ["train_now", "activate_version"]

    def get_queryset(self, request):
        # the artifact is megabytes per row: never load it for a list or a form
        return super().get_queryset(request).defer("artifact")

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # versions come from training only

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a trained version is a fact; activation is an action

    @admin.display(description="NDCG@k (own engine, offline)")
    def ndcg(self, obj: ModelVersion) -> str:
        results = (obj.metrics or {}).get("results") or {}
        own = results.get(obj.engine) or {}
        k = (obj.metrics or {}).get("k", 10)
        value = own.get(f"ndcg@{k}")
        return "—" if value is None else f"{value:.4f}"

    def has_train_permission(self, request) -> bool:
        return request.user.has_perm("recommendations.add_modelversion")

    @admin.action(description="Train now (enqueue the training task)", permissions=["train"])
    def train_now(self, request, queryset) -> None:
        _enqueue_training(request, self)

    @admin.action(
        description="Activate the selected version (one per engine)", permissions=["train"]
    )
    def activate_version(self, request, queryset) -> None:
        chosen = list(queryset)
        if len({v.engine for v in chosen}) != len(chosen):
            self.message_user(request, "Select at most one version per engine.", messages.ERROR)
            return
        training.activate_versions(versions=chosen)
        self.message_user(request, f"Activated {', '.join(v.label for v in chosen)}.")

    def get_urls(self):
        # "Train now" as a button too: an action needs a selected row, and before the
        # first training there is none.
        urls = [
            path(
                "train-now/",
                self.admin_site.admin_view(require_POST(self.train_now_view)),
                name="recommendations_modelversion_train_now",
            )
        ]
        return urls + super().get_urls()

    def train_now_view(self, request: HttpRequest) -> HttpResponseRedirect:
        if not self.has_train_permission(request):
            self.message_user(request, "You may not start a training.", messages.ERROR)
        else:
            _enqueue_training(request, self)
        return HttpResponseRedirect(reverse("admin:recommendations_modelversion_changelist"))

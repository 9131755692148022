"""What each group may do with experiments."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = ["view_metric", "view_experiment", "view_variant", "view_experimentmetric"]
GRANTS = {
    "Integrations": ["send_data", *VIEW],
    "Product managers": [
        "send_data",
        "manage_experiment",
        "add_metric",
        "change_metric",
        "add_experiment",
        "change_experiment",
        "add_variant",
        "change_variant",
        "add_experimentmetric",
        "change_experimentmetric",
        "view_exposure",
        "view_event",
        *VIEW,
    ],
    "Executives": [*VIEW, "view_exposure", "view_event"],
}


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="experiments", codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [("experiments", "0001_initial"), ("common", "0002_groups")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

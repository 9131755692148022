"""Reading and erasing a mentee's memory and transcripts gets its own
permission (conversations.access): the Integrations group (the front end acting
for the mentee) and a new "Privacy officers" group have it. Product managers
had reached that data through `experiments.send_data`; they no longer do."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAME = "access_mentee_data"
PRIVACY_OFFICERS = "Privacy officers"
HOLDERS = ("Integrations", PRIVACY_OFFICERS)


def grant(apps, schema_editor):
    app_config = apps.get_app_config("conversations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="conversations", codename=CODENAME)
    for name in HOLDERS:
        Group.objects.get_or_create(name=name)[0].permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.filter(name=PRIVACY_OFFICERS).delete()
    Permission.objects.filter(content_type__app_label="conversations", codename=CODENAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_beat_schedule"),
        ("common", "0002_groups"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="conversationsession",
            options={
                "ordering": ["-started_at"],
                "permissions": [
                    (
                        "access_mentee_data",
                        "Can read and erase a mentee's memory facts and conversation transcripts",
                    )
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]

"""The audit log of rollouts and experiments, append-only down to the
database: on PostgreSQL a trigger refuses UPDATE and DELETE of any row and
TRUNCATE of the table. The product managers and executives may read it.

TRUNCATE is let through only in a session that opted in with
`SET ion.audit_allow_truncate = 'on'`: Django's test runner empties every
table with TRUNCATE between transactional tests (tests/conftest.py opts in),
and an operator who really must empty the log says so explicitly."""

import django.core.serializers.json
import django.db.models.deletion
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

TRIGGER = """
CREATE OR REPLACE FUNCTION common_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('ion.audit_allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'common_auditentry is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER common_audit_append_only_rows
    BEFORE UPDATE OR DELETE ON common_auditentry
    FOR EACH ROW EXECUTE FUNCTION common_audit_append_only();
CREATE TRIGGER common_audit_append_only_truncate
    BEFORE TRUNCATE ON common_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION common_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS common_audit_append_only_truncate ON common_auditentry;
DROP TRIGGER IF EXISTS common_audit_append_only_rows ON common_auditentry;
DROP FUNCTION IF EXISTS common_audit_append_only();
"""

READERS = ("Product managers", "Executives")


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


def grant_reading(apps, schema_editor):
    app_config = apps.get_app_config("common")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(content_type__app_label="common", codename="view_auditentry")
    for name in READERS:
        Group.objects.get_or_create(name=name)[0].permissions.add(view)


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0003_heartbeat_schedule"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("rollout_created", "Rollout created"),
                            ("requested", "Stage transition requested"),
                            ("approved", "Stage transition approved"),
                            ("rejected", "Stage transition rejected"),
                            ("applied", "Stage transition applied"),
                            ("invalidated", "Stage transition invalidated"),
                            ("rolled_back", "Rolled back"),
                            ("paused", "Paused"),
                            ("resumed", "Resumed"),
                            ("rearmed", "Re-armed"),
                            ("completed", "Completed"),
                            ("thresholds_changed", "Thresholds changed"),
                            ("plan_changed", "Stage plan changed"),
                            ("health_degraded", "Health degraded"),
                            ("health_failing", "Health failing"),
                            ("health_recovered", "Health recovered"),
                            ("experiment_created", "Experiment created"),
                            ("experiment_started", "Experiment started"),
                            ("experiment_stopped", "Experiment stopped"),
                            ("experiment_edited", "Experiment edited"),
                        ],
                        max_length=32,
                    ),
                ),
                (
                    "object_type",
                    models.CharField(
                        choices=[("rollout", "Rollout"), ("experiment", "Experiment")],
                        max_length=16,
                    ),
                ),
                ("object_id", models.PositiveBigIntegerField()),
                ("object_key", models.SlugField(db_index=False, max_length=64)),
                ("message", models.TextField()),
                (
                    "data",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        encoder=django.core.serializers.json.DjangoJSONEncoder,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        help_text="Who did it; empty when the platform did it by itself.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "audit entries",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["object_type", "object_id", "-created_at"], name="audit_of_object"
                    ),
                    models.Index(fields=["object_type", "object_key"], name="audit_by_key"),
                    models.Index(fields=["action"], name="audit_by_action"),
                ],
            },
        ),
        migrations.RunPython(add_trigger, drop_trigger),
        migrations.RunPython(grant_reading, migrations.RunPython.noop),
    ]

"""The audit log refuses UPDATE and DELETE in PostgreSQL itself, and the
groups get their rollout permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

TRIGGER = """
CREATE OR REPLACE FUNCTION rollout_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rollout_auditentry is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER rollout_audit_append_only
    BEFORE UPDATE OR DELETE ON rollout_auditentry
    FOR EACH ROW EXECUTE FUNCTION rollout_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS rollout_audit_append_only ON rollout_auditentry;
DROP FUNCTION IF EXISTS rollout_audit_append_only();
"""

GRANTS = {
    "Product managers": [
        "request_transition",
        "rollback_rollout",
        "view_rollout",
        "add_rollout",
        "change_rollout",
        "view_auditentry",
        "view_stagetransition",
        "view_healthverdict",
        "view_metricwindow",
    ],
    "Executives": [
        "approve_transition",
        "rollback_rollout",
        "view_rollout",
        "view_auditentry",
        "view_stagetransition",
        "view_healthverdict",
        "view_metricwindow",
    ],
    "Integrations": ["send_request_metrics", "view_rollout"],
}


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="rollout", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("rollout", "0001_initial"), ("common", "0002_groups")]

    operations = [
        migrations.RunPython(add_trigger, drop_trigger),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]

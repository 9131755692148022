"""The metrics the seed's decision rules speak of, which the two features emit."""

from django.db import migrations

METRICS = [
    (
        "adoption",
        "Adoption",
        "binomial",
        True,
        True,
        "The mentee adopted a recommendation (click → adopt).",
    ),
    (
        "session_duration",
        "Session duration",
        "mean",
        True,
        True,
        "Seconds from the start to the end of mentoring conversations.",
    ),
    (
        "completion",
        "Completion",
        "binomial",
        True,
        True,
        "A conversation ended with its outcome reached.",
    ),
    (
        "satisfaction",
        "Satisfaction",
        "mean",
        True,
        False,
        "The 1–5 rating of a conversation; mentees who gave none are left out.",
    ),
    ("return", "Return", "binomial", True, True, "The mentee started a new session within 7 days."),
]


def create(apps, schema_editor):
    Metric = apps.get_model("experiments", "Metric")
    for key, name, kind, higher, missing_as_zero, description in METRICS:
        Metric.objects.get_or_create(
            key=key,
            defaults={
                "name": name,
                "kind": kind,
                "higher_is_better": higher,
                "missing_as_zero": missing_as_zero,
                "description": description,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("experiments", "0005_snapshot_watermark")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]

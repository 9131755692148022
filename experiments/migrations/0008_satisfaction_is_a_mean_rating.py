from django.db import migrations


def rating_by_mean(apps, schema_editor):
    apps.get_model("experiments", "Metric").objects.filter(key="satisfaction").update(
        unit_aggregation="mean"
    )


class Migration(migrations.Migration):
    dependencies = [("experiments", "0007_metric_unit_aggregation")]

    operations = [migrations.RunPython(rating_by_mean, migrations.RunPython.noop)]

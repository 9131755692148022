"""Drop the cached configuration whenever an experiment or a variant is saved
or deleted by any path (admin included), once the change is committed."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from experiments import config_cache
from experiments.models import Experiment, Variant


@receiver([post_save, post_delete], sender=Experiment)
def _experiment_changed(sender, instance: Experiment, **kwargs) -> None:
    key = instance.key
    transaction.on_commit(lambda: config_cache.invalidate(key))


@receiver([post_save, post_delete], sender=Variant)
def _variant_changed(sender, instance: Variant, **kwargs) -> None:
    experiment_id = instance.experiment_id

    def drop() -> None:
        key = Experiment.objects.filter(id=experiment_id).values_list("key", flat=True).first()
        if key:
            config_cache.invalidate(key)

    transaction.on_commit(drop)

"""The beat job's fan-out runs on a real worker and stores a snapshot."""

import numpy as np
import pytest

from experiments.models import Experiment, Snapshot
from tests.experiments.seeding import plant
from tests.factories import make_experiment, make_metric
from tests.integration.test_celery_worker import _producer
from tests.integration.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_worker_analyses_every_running_experiment(redis_url, tmp_path):
    make_metric("session_duration", kind="mean")
    experiment = make_experiment("rec-v2", metrics=("session_duration",))
    Experiment.objects.filter(id=experiment.id).update(cuped_lookback_days=0)
    rng = np.random.default_rng(4)
    plant(
        experiment,
        experiment.metrics.get().metric,
        {"control": rng.normal(10, 2, 300), "treatment": rng.normal(11, 2, 300)},
    )
    producer = _producer(broker_url=redis_url)
    with celery_worker(redis_url=redis_url, data_dir=tmp_path):
        producer.send_task("experiments.analyse_running_experiments")
        assert wait_for(lambda: Snapshot.objects.filter(experiment=experiment).exists(), timeout=60)
    snapshot = Snapshot.objects.get(experiment=experiment)
    assert snapshot.trigger == "schedule"
    assert snapshot.units == 600
    assert snapshot.metrics[0]["comparisons"][0]["significant"] is True

"""Offline evaluation on a time-based split of the interaction log: precision@k, recall@k,
NDCG@k and catalogue coverage of popularity, CF, content and the ensemble, printed as a
table and stored with the active model versions."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommendations.engines.evaluation import format_table
from recommendations.services import training


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--k", type=int, default=training.DEFAULT_K)
        parser.add_argument(
            "--test-fraction",
            type=float,
            default=training.DEFAULT_TEST_FRACTION,
            help="share of the log (by time) held out as the test period",
        )
        parser.add_argument(
            "--max-users",
            type=int,
            default=training.DEFAULT_MAX_EVAL_USERS,
            help="evaluate a fixed sample of at most this many test users",
        )
        parser.add_argument("--no-store", action="store_true", help="print only")

    def handle(self, *args, **options) -> None:
        if options["k"] < 1 or not 0 < options["test_fraction"] < 1:
            raise CommandError("--k must be ≥ 1 and --test-fraction in (0, 1)")
        evaluation = training.evaluate_from_database(
            k=options["k"], test_fraction=options["test_fraction"], max_users=options["max_users"]
        )
        if evaluation.skipped:
            raise CommandError(f"nothing to evaluate: {evaluation.skipped}")
        self.stdout.write(
            f"time split at {evaluation.split_cutoff}: {evaluation.train_interactions} train "
            f"interactions, {evaluation.evaluated_users} of {evaluation.test_users} test users"
        )
        self.stdout.write(format_table(evaluation.results))
        if options["no_store"]:
            return
        stored = training.store_evaluation(evaluation=evaluation)
        if stored:
            labels = ", ".join(v.label for v in stored)
            self.stdout.write(f"stored with {labels}")
        else:
            self.stdout.write("no active model version: nothing stored (train first)")

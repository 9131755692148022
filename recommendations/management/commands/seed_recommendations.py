"""Load the demo mentoring catalogue and interactions (seeded, idempotent), then train."""

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from recommendations.engines.evaluation import format_table
from recommendations.services import demo, training


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--users", type=int, default=800)
        parser.add_argument("--items-per-cluster", type=int, default=12, help="× 30 clusters")
        parser.add_argument("--days", type=int, default=60)
        parser.add_argument(
            "--reset", action="store_true", help="replace the demo catalogue's interactions"
        )
        parser.add_argument("--no-train", action="store_true", help="load only, do not train")

    def handle(self, *args, **options) -> None:
        quiet = options["verbosity"] == 0
        with tqdm(desc="seeding", unit="rows", disable=quiet, file=self.stderr) as bar:
            result = demo.seed_demo(
                seed=options["seed"],
                n_users=options["users"],
                items_per_cluster=options["items_per_cluster"],
                days=options["days"],
                reset=options["reset"],
                progress=bar.update,
            )
        self.stdout.write(
            f"items: {result.items_created} created, {result.items_updated} updated; "
            + (
                "interactions already loaded (use --reset to replace them)"
                if result.interactions_skipped
                else f"interactions: {result.interactions_created} created"
            )
        )
        if options["no_train"]:
            return
        trained = training.train_models()
        labels = ", ".join(v.label for v in trained.versions.values())
        self.stdout.write(f"trained and activated {labels} in {trained.timings['total']:.1f} s")
        if trained.evaluation.results:
            self.stdout.write(format_table(trained.evaluation.results))

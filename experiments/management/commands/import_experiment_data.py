"""Import exposures and events from CSV files through the same ingestion
service as the REST endpoints: same validation, same exactly-once rule."""

import contextlib
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from experiments.services.ingestion import (
    MAX_EVENTS_PER_BATCH,
    IngestResult,
    ingest_events,
    ingest_exposures,
)

EVENT_COLUMNS = {"unit_id", "metric"}
EXPOSURE_COLUMNS = {"experiment", "unit_id", "variant"}


def _rows(path: Path, required: set[str], kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise CommandError(
                f"{path}: the {kind} file lacks column(s) {', '.join(sorted(missing))}"
            )
        for line, row in enumerate(reader, start=2):
            yield line, {k: v for k, v in row.items() if v not in ("", None)}


def _event(row: dict[str, Any]) -> dict[str, Any]:
    if "value" in row:
        # Text that is not a number stays text: the service rejects it with its message.
        with contextlib.suppress(ValueError):
            row["value"] = float(row["value"])
    return row


class Command(BaseCommand):
    help = "Import exposures and/or events from CSV files (header row required)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--exposures", type=Path, help="CSV: experiment,unit_id,variant[,timestamp]"
        )
        parser.add_argument(
            "--events", type=Path, help="CSV: [event_id,]unit_id,metric[,value][,timestamp]"
        )
        parser.add_argument("--batch-size", type=int, default=MAX_EVENTS_PER_BATCH)
        parser.add_argument("--show-rejected", type=int, default=10, help="print the first N")

    def handle(self, *args, exposures=None, events=None, batch_size=10_000, show_rejected=10, **kw):
        if not exposures and not events:
            raise CommandError("Give --exposures and/or --events.")
        if not 1 <= batch_size <= MAX_EVENTS_PER_BATCH:
            raise CommandError(f"--batch-size must be between 1 and {MAX_EVENTS_PER_BATCH}.")
        for path, kind, columns, ingest, convert in (
            (exposures, "exposures", EXPOSURE_COLUMNS, ingest_exposures, dict),
            (events, "events", EVENT_COLUMNS, ingest_events, _event),
        ):
            if path is None:
                continue
            if not path.exists():
                raise CommandError(f"{path}: no such file")
            total = self._import(path, kind, columns, ingest, convert, batch_size, show_rejected)
            self.stdout.write(
                f"{kind}: {total.accepted} accepted, {total.duplicates} duplicates, "
                f"{len(total.rejected)} rejected"
            )

    def _import(self, path, kind, columns, ingest, convert, batch_size, show_rejected):
        total = IngestResult()
        batch: list[dict[str, Any]] = []
        lines: list[int] = []

        def flush() -> None:
            result = ingest(batch)
            total.accepted += result.accepted
            total.duplicates += result.duplicates
            for rejected in result.rejected:
                line = lines[rejected["index"]]
                total.rejected.append({"line": line, "errors": rejected["errors"]})
                if len(total.rejected) <= show_rejected:
                    self.stderr.write(f"{path}:{line}: {rejected['errors']}")
            batch.clear()
            lines.clear()

        with tqdm(desc=f"{kind} from {path.name}", unit=" rows", disable=None) as progress:
            for line, row in _rows(path, columns, kind):
                batch.append(convert(row))
                lines.append(line)
                if len(batch) >= batch_size:
                    flush()
                    progress.update(batch_size)
            if batch:
                size = len(batch)
                flush()
                progress.update(size)
        return total

"""The embedded default's broker: kombu's filesystem transport against its
SQLAlchemy transport on a SQLite file, both needing no server. Publisher
processes and one consumer process run at once, as the web server, beat and
the worker do; every message carries a unique id, so the consumer can count
what arrived, what arrived twice, and what it could not read.

    .venv/bin/python bench/bench_embedded_broker.py [--publishers 2] [--messages 2000] [--size 4096]

Prints, per transport: messages published per second (all publishers), the
consumer's drain rate, delivered / lost / doubled, and read errors (a
JSONDecodeError when the filesystem transport's consumer reads a message file
that its publisher has created but not yet written: a race, rare per message).
"""

import argparse
import json
import multiprocessing
import queue
import sys
import tempfile
import time
from pathlib import Path

from kombu import Connection

QUEUE = "bench"


def connection(transport: str, folder: Path) -> Connection:
    if transport == "filesystem":
        box = folder / "queue"
        box.mkdir(exist_ok=True)
        return Connection(
            "filesystem://",
            transport_options={
                "data_folder_in": str(box),
                "data_folder_out": str(box),
                "control_folder": str(folder / "control"),
                "store_processed": False,
            },
        )
    # As config/settings.py configures the embedded default.
    return Connection(
        f"sqla+sqlite:///{folder / 'broker.sqlite3'}",
        transport_options={"connect_args": {"timeout": 20}},
    )


def publish(transport: str, folder: str, publisher: int, count: int, size: int, out) -> None:
    filler = "x" * size
    started = time.perf_counter()
    with connection(transport, Path(folder)) as conn:
        box = conn.SimpleQueue(QUEUE)
        for i in range(count):
            box.put({"id": f"{publisher}-{i}", "filler": filler})
        box.close()
    out.put(time.perf_counter() - started)


def consume(transport: str, folder: str, expected: int, idle_s: float, out) -> None:
    seen: dict[str, int] = {}
    errors: dict[str, int] = {}
    started = time.perf_counter()
    last = started
    with connection(transport, Path(folder)) as conn:
        box = conn.SimpleQueue(QUEUE)
        while len(seen) < expected and time.perf_counter() - last < idle_s:
            try:
                message = box.get(timeout=0.5)
            except queue.Empty:
                continue
            except Exception as exc:  # what a worker would die of
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
                continue
            message.ack()
            key = message.payload["id"]
            seen[key] = seen.get(key, 0) + 1
            last = time.perf_counter()
        box.close()
    out.put(
        {
            "seconds": last - started,
            "delivered": len(seen),
            "doubled": sum(1 for n in seen.values() if n > 1),
            "errors": errors,
        }
    )


def run(transport: str, publishers: int, messages: int, size: int) -> dict:
    folder = tempfile.mkdtemp(prefix=f"bench-broker-{transport}-")
    with connection(transport, Path(folder)) as conn:  # create the queue (and tables)
        conn.SimpleQueue(QUEUE).close()
    out: multiprocessing.Queue = multiprocessing.Queue()
    expected = publishers * messages
    consumer = multiprocessing.Process(
        target=consume, args=(transport, folder, expected, 15.0, out)
    )
    consumer.start()
    senders = [
        multiprocessing.Process(target=publish, args=(transport, folder, p, messages, size, out))
        for p in range(publishers)
    ]
    started = time.perf_counter()
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    published_in = time.perf_counter() - started
    consumer.join()
    results = [out.get() for _ in range(publishers + 1)]
    consumed = next(r for r in results if isinstance(r, dict))
    return {
        "transport": transport,
        "published_per_s": round(expected / published_in),
        "consumed_per_s": round(consumed["delivered"] / max(consumed["seconds"], 1e-9)),
        "published": expected,
        "delivered": consumed["delivered"],
        "lost": expected - consumed["delivered"],
        "doubled": consumed["doubled"],
        "read_errors": consumed["errors"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--messages", type=int, default=2000, help="per publisher")
    parser.add_argument("--size", type=int, default=4096, help="bytes of filler per message")
    args = parser.parse_args()
    for transport in ("filesystem", "sqlalchemy"):
        print(json.dumps(run(transport, args.publishers, args.messages, args.size)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The webhook receiver alone (granian, no worker): signed events posted to it, latency per sender count.

Run: python -m bench.receiver [--events 1000] [--clients 4 16]. Prints one JSON object. Shares
bench.ingest's private database and Redis namespace (created, migrated and dropped). Read it beside
bench.ingest, whose end-to-end latency includes the workers competing for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from bench import ingest

# The target for the receiver's 99th percentile.
TARGET_P99_MS = 25.0


def main() -> int:
    args = _parse()
    env = ingest._environment()
    ingest._prepare_database(env["DATABASE_URL"])
    os.environ.update(env)
    receiver = None
    try:
        events = ingest._seed(args.events * len(args.clients))
        port = ingest._free_port()
        from workers.run import (
            WEBHOOK_THREADS,
            webhooks_argv,
        )  # imports the broker: after the environment is set

        receiver = ingest._start(webhooks_argv("127.0.0.1", port, args.receiver_workers), env)
        ingest._wait_healthy(port)
        bodies = [json.dumps(e).encode() for e in events]
        runs = {}
        for n, clients in enumerate(args.clients):
            runs[str(clients)] = _post_all(port, bodies[n * args.events : (n + 1) * args.events], clients)
        met = all(r["p99_under_target"] and r["accepted"] == args.events for r in runs.values())
        print(
            json.dumps(
                {
                    "events_per_run": args.events,
                    "receiver_workers": args.receiver_workers,
                    "receiver_threads": WEBHOOK_THREADS,
                    "by_concurrent_senders": runs,
                    "target_p99_ms": TARGET_P99_MS,
                    "target_met": met,
                    "cpus": os.cpu_count(),
                }
            )
        )
        return 0 if met else 1
    finally:
        if receiver is not None:
            ingest._stop(receiver)
        ingest._cleanup(env)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events posted per sender count")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[4, 16], help="concurrent senders, one run each"
    )
    parser.add_argument("--receiver-workers", type=int, default=2)
    return parser.parse_args()


def _post_all(port: int, bodies: list[bytes], clients: int) -> dict:
    statuses, latencies, elapsed = ingest.post_signed(port, bodies, clients)
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return {
        "accepted": statuses.count(200),
        "events_per_s": round(len(bodies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(p99, 2),
        "p99_under_target": p99 < TARGET_P99_MS,
    }


if __name__ == "__main__":
    sys.exit(main())

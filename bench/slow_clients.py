"""Signed deliveries while slow clients trickle bodies at 1 byte/s: the receiver (granian) must not starve.

Run: python -m bench.slow_clients [--events 1000] [--clients 8] [--slow-clients 16]. Prints one JSON
object: the same signed deliveries posted first with no slow client (the baseline), then while
`--slow-clients` connections each announce a 100 KB body and send it one byte a second, reconnecting
whenever the receiver cuts them off (as an attacker would); the deliveries start once each has been
cut off and come back. Target: deliveries keep at least
TARGET_RATE_RATIO of the baseline's rate, all accepted. Under the WSGI receiver 8 such clients stopped
every delivery. Shares bench.ingest's private database and Redis namespace (created, migrated, dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time

from bench import ingest

# "Their normal rate": the run with slow clients keeps at least this share of the baseline's events/s.
TARGET_RATE_RATIO = 0.8
ANNOUNCED_BODY_BYTES = 100_000


def main() -> None:
    args = _parse()
    env = ingest._environment()
    env["WEBHOOK_BODY_TIMEOUT_SECONDS"] = str(args.body_timeout)
    ingest._prepare_database(env["DATABASE_URL"])
    os.environ.update(env)
    receiver = None
    try:
        events = ingest._seed(args.events * 2)
        bodies = [json.dumps(e).encode() for e in events]
        port = ingest._free_port()
        # workers.run imports the broker: after the environment is set
        from workers.run import webhooks_argv

        receiver = ingest._start(webhooks_argv("127.0.0.1", port, args.receiver_workers), env)
        ingest._wait_healthy(port)
        baseline = _post(port, bodies[: args.events], args.clients)
        trickle = _Trickle(port, args.slow_clients)
        trickle.start(settle_s=args.body_timeout + 1)  # each cut off once and back, trickling again
        try:
            under_attack = _post(port, bodies[args.events :], args.clients)
        finally:
            slow = trickle.stop()
        ratio = under_attack["events_per_s"] / baseline["events_per_s"]
        print(
            json.dumps(
                {
                    "events_per_run": args.events,
                    "clients": args.clients,
                    "receiver_workers": args.receiver_workers,
                    "body_timeout_s": args.body_timeout,
                    "baseline": baseline,
                    "with_slow_clients": {**under_attack, "slow_clients": slow},
                    "rate_ratio": round(ratio, 3),
                    "target": {"rate_ratio_at_least": TARGET_RATE_RATIO, "all_accepted": True},
                    "target_met": ratio >= TARGET_RATE_RATIO
                    and under_attack["accepted"] == args.events == baseline["accepted"],
                    "cpus": os.cpu_count(),
                }
            )
        )
    finally:
        if receiver is not None:
            ingest._stop(receiver)
        ingest._cleanup(env)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="signed events posted per run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent signed senders")
    parser.add_argument("--slow-clients", type=int, default=16, help="connections trickling 1 byte/s")
    parser.add_argument("--receiver-workers", type=int, default=2)
    parser.add_argument("--body-timeout", type=float, default=5, help="WEBHOOK_BODY_TIMEOUT_SECONDS")
    return parser.parse_args()


def _post(port: int, bodies: list[bytes], clients: int) -> dict:
    statuses, latencies, elapsed = ingest.post_signed(port, bodies, clients)
    return {
        "accepted": statuses.count(200),
        "events_per_s": round(len(bodies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 2),
    }


class _Trickle:
    """`count` connections sending a body one byte a second, on an event loop of their own thread."""

    def __init__(self, port: int, count: int) -> None:
        self._port, self._count = port, count
        self._stopping = threading.Event()
        self._counts = {"connections": 0, "bytes_sent": 0, "answered": {}}
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self, settle_s: float) -> None:
        self._thread.start()
        time.sleep(settle_s)

    def stop(self) -> dict:
        self._stopping.set()
        self._thread.join(timeout=30)
        return self._counts

    async def _run(self) -> None:
        await asyncio.gather(*(self._client() for _ in range(self._count)))

    async def _client(self) -> None:
        while not self._stopping.is_set():
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
            self._counts["connections"] += 1
            writer.write(
                f"POST /stripe/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: {ANNOUNCED_BODY_BYTES}\r\n"
                f"Stripe-Signature: t=1,v1=00\r\n\r\n".encode()
            )
            answer = asyncio.ensure_future(reader.readline())
            try:
                while not self._stopping.is_set() and not answer.done():
                    writer.write(b"{")
                    await writer.drain()
                    self._counts["bytes_sent"] += 1
                    await asyncio.wait([answer], timeout=1.0)
            except OSError:
                pass
            if answer.done() and not answer.exception():
                status = (answer.result().split() or [b"closed"])[1:2] or [b"closed"]
                key = status[0].decode()
                self._counts["answered"][key] = self._counts["answered"].get(key, 0) + 1
            else:
                answer.cancel()
            writer.close()


if __name__ == "__main__":
    main()

"""Idle pickup: from a payment's request returning to its Stripe call, beside raw Dramatiq's no-op pickup.

    .venv/bin/python -m bench.pickup [--samples 40] [--gap-seconds 1.0 2.0] [--idle-seconds 10]

Three phases on one private redis-server (started by the bench, so its counters are the workers' alone):

- remit_money: `remit worker money`'s Dramatiq workers (its queues, prefetch and poll timeout, from
  workers/run.py) execute real payments against the Stripe emulator; a sample is the time from
  tasks.api.pay_invoices returning to the emulator receiving the payment's first Stripe request.
- raw_dramatiq: a Dramatiq worker with Dramatiq's defaults runs an actor that only notes when it started;
  a sample is the time from sending its message to that moment.
- raw_dramatiq_same_timeout: the same, at the money group's poll timeout.

Each sample follows an idle gap drawn from --gap-seconds, long enough for the consumers to have backed off
to their longest poll, as a quiet worker is when a customer presses Pay. Before the samples each phase
measures its idle cost over --idle-seconds: the worker processes' CPU, and the Redis server's commands
and CPU.

Prints one JSON object on stdout (target: remit_money p50 under 50 ms); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    EmulatorProcess,
    Stack,
    Workers,
    clear_redis,
    create_database,
    log,
    percentile_ms,
    release_stack,
    stack_environ,
)

API_KEY = "sk_test_bench"
# The target: a payment sent to an idle money worker reaches Stripe within this, at the median.
TARGET_P50_MS = 50.0
# Uncounted payments first, so connection pools and caches exist before the first sample.
WARMUP_SAMPLES = 3
# Between an idle window's end and the first sample the consumers have long reached their longest poll.
SETTLE_SECONDS = 2.0
# How often the bench asks the emulator whether the payment's request has arrived; the emulator stamps
# the request on receipt, so this only costs the wait, not accuracy.
EMULATOR_POLL_SECONDS = 0.01
# A sample that takes longer than this is a broken worker, not a slow one.
SAMPLE_TIMEOUT_SECONDS = 15.0
# redis-server with no persistence answers within milliseconds.
REDIS_START_TIMEOUT_SECONDS = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pickup", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40, help="timed pickups per phase")
    parser.add_argument(
        "--gap-seconds",
        type=float,
        nargs=2,
        default=(1.0, 2.0),
        metavar=("MIN", "MAX"),
        help="idle time before each sample, drawn uniformly (Dramatiq's 1 s poll is reached in about 1 s)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="the window each phase's idle cost is measured over"
    )
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process (the Procfile's)")
    parser.add_argument(
        "--worker-log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "remit-bench-pickup-workers.log",
        help="where the workers' output goes (truncated at the start of a run)",
    )
    parser.add_argument("--database", default="remit_bench_pickup")
    parser.add_argument(
        "--admin-url",
        default=None,
        help="a PostgreSQL URL allowed to create databases (default: the local or embedded server)",
    )
    parser.add_argument("--namespace", default="remit-bench-pickup")
    return parser.parse_args(argv)


class RedisServer:
    """A private redis-server on a free port: its counters see the bench's workers and nothing else."""

    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> RedisServer:
        import redis

        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: redis-server did not answer on port {self.port}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def counters(self) -> tuple[int, int, float]:
        """Commands processed so far (a script's own commands included), script calls (Dramatiq's fetch,
        ack and heartbeat are one each), and the server's CPU seconds (user + system)."""
        import redis

        client = redis.Redis(port=self.port)
        try:
            stats, cpu, commands = client.info("stats"), client.info("cpu"), client.info("commandstats")
        finally:
            client.close()
        scripts = sum(commands.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))
        return stats["total_commands_processed"], scripts, cpu["used_cpu_user"] + cpu["used_cpu_sys"]

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def _worker_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process's Dramatiq descendants, read from /proc."""
    parents, total = {}, 0.0
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue  # ended while we looked
        parents[int(entry)] = int(fields[1])
        stats[int(entry)] = (int(fields[11]) + int(fields[12]), b"dramatiq" in cmdline)
    me = os.getpid()
    for pid, (ticks, is_worker) in stats.items():
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me and is_worker:
            total += ticks / _CLOCK_TICKS
    return total


def _idle_cost(redis_server: RedisServer, seconds: float) -> dict:
    """What the phase's workers cost while no message arrives: their CPU and the broker's."""
    time.sleep(SETTLE_SECONDS)
    commands0, scripts0, redis_cpu0 = redis_server.counters()
    worker_cpu0, started = _worker_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    commands1, scripts1, redis_cpu1 = redis_server.counters()
    worker_cpu1, elapsed = _worker_cpu_seconds(), time.monotonic() - started
    return {
        "seconds": round(elapsed, 1),
        # Percent of one core, all the phase's worker processes together.
        "worker_cpu_percent": round(100 * (worker_cpu1 - worker_cpu0) / elapsed, 2),
        "redis_round_trips_per_second": round((scripts1 - scripts0) / elapsed, 1),
        # Less the three INFO calls the bench itself sends per reading.
        "redis_commands_per_second": round((commands1 - commands0 - 3) / elapsed, 1),
        "redis_cpu_percent": round(100 * (redis_cpu1 - redis_cpu0) / elapsed, 2),
    }


def _summary(latencies: list[float], gaps: tuple[float, float]) -> dict:
    return {
        "samples": len(latencies),
        "p50_ms": percentile_ms(latencies, 50),
        "p95_ms": percentile_ms(latencies, 95),
        "max_ms": percentile_ms(latencies, 100),
        "idle_gap_seconds": list(gaps),
    }


def _remit_phase(args, stack: Stack, emulator, redis_server: RedisServer, orders: list) -> dict:
    """The money group's workers as `remit worker money` starts them; pay_invoices returned -> Stripe call."""
    from tasks.api import pay_invoices
    from workers.run import GROUPS, worker_environ

    environ = stack_environ(stack, emulator.url, API_KEY, 1000, worker_environ("money", args.threads))
    workers = Workers(environ, 1, args.threads, GROUPS["money"], args.worker_log)
    seen = 0

    def pay_and_time(index: int) -> float:
        nonlocal seen
        order = orders[index]
        pay_invoices(order.account_id, [order.invoice_id], order.method_id, f"bench-pickup-{index}")
        returned = time.time()
        deadline = time.monotonic() + SAMPLE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            records = emulator.requests()
            first = next(
                (r for r in records[seen:] if r["path"].startswith("/v1/") and r["at"] >= returned), None
            )
            if first is not None:
                seen = len(records)
                return first["at"] - returned
            time.sleep(EMULATOR_POLL_SECONDS)
        raise RuntimeError(f"payment {index} made no Stripe request within {SAMPLE_TIMEOUT_SECONDS:.0f}s")

    try:
        workers.wait_ready()
        for index in range(WARMUP_SAMPLES):
            pay_and_time(index)
        idle = _idle_cost(redis_server, args.idle_seconds)
        latencies = []
        for index in range(WARMUP_SAMPLES, WARMUP_SAMPLES + args.samples):
            time.sleep(random.uniform(*args.gap_seconds))
            latencies.append(pay_and_time(index))
        log(f"remit_money: {len(latencies)} samples")
    finally:
        workers.stop()
    return {
        **_summary(latencies, args.gap_seconds),
        "poll_timeout_ms": int(environ["dramatiq_worker_timeout"]),
        "queues": list(GROUPS["money"]),
        "idle": idle,
    }


def _raw_phase(name: str, args, stack: Stack, redis_server: RedisServer, timeout_ms: int | None) -> dict:
    """Dramatiq alone: an actor that notes when it started; send -> start."""
    import redis

    from bench.pickup_actor import PICKUP_QUEUE, stamp

    environ = {k: v for k, v in os.environ.items() if k not in ("dramatiq_worker_timeout", "SENTRY_DSN")}
    if timeout_ms is not None:
        environ["dramatiq_worker_timeout"] = str(timeout_ms)
    workers = Workers(environ, 1, args.threads, (PICKUP_QUEUE,), args.worker_log, module="bench.pickup_actor")
    key = f"{stack.namespace}:pickup:{name}"
    client = redis.Redis.from_url(stack.redis_url)

    def send_and_time() -> float:
        sent = time.time()
        stamp.send(key)
        popped = client.blpop([key], timeout=SAMPLE_TIMEOUT_SECONDS)
        if popped is None:
            raise RuntimeError(f"{name}: the actor did not start within {SAMPLE_TIMEOUT_SECONDS:.0f}s")
        return float(popped[1]) - sent

    try:
        workers.wait_ready()
        for _ in range(WARMUP_SAMPLES):
            send_and_time()
        idle = _idle_cost(redis_server, args.idle_seconds)
        latencies = []
        for _ in range(args.samples):
            time.sleep(random.uniform(*args.gap_seconds))
            latencies.append(send_and_time())
        log(f"{name}: {len(latencies)} samples")
    finally:
        workers.stop()
        client.close()
    return {
        **_summary(latencies, args.gap_seconds),
        "poll_timeout_ms": timeout_ms if timeout_ms is not None else _dramatiq_default_timeout_ms(),
        "queues": [PICKUP_QUEUE],
        "idle": idle,
    }


def _dramatiq_default_timeout_ms() -> int:
    import dramatiq.worker

    return dramatiq.worker.Worker.__init__.__kwdefaults__["worker_timeout"]


def run(args: argparse.Namespace) -> dict:
    """Set up a private stack (database, emulator, redis-server), run the three phases, tear it down."""
    from bench.payments import seed

    args.worker_log.write_text("")
    redis_server = RedisServer().start()
    stack = Stack(
        database=args.database,
        redis_url=redis_server.url,
        namespace=args.namespace,
        admin_url=args.admin_url or _admin_url(),
    )
    emulator = EmulatorProcess().start()
    # Settings are read once per process: the environment must be right before tasks or workers are imported.
    os.environ.update(stack_environ(stack, emulator.url, API_KEY, 1000))
    try:
        create_database(stack)
        clear_redis(stack)
        orders = seed(WARMUP_SAMPLES + args.samples)
        from workers.run import POLL_TIMEOUT_MS

        report = {
            "target": {"remit_money_p50_ms_below": TARGET_P50_MS},
            "threads": args.threads,
            "remit_money": _remit_phase(args, stack, emulator, redis_server, orders),
            "raw_dramatiq": _raw_phase("raw_dramatiq", args, stack, redis_server, None),
            "raw_dramatiq_same_timeout": _raw_phase(
                "raw_dramatiq_same_timeout", args, stack, redis_server, POLL_TIMEOUT_MS["money"]
            ),
        }
        remit_p50 = report["remit_money"]["p50_ms"]
        report["target_met"] = remit_p50 is not None and remit_p50 < TARGET_P50_MS
        return report
    finally:
        emulator.stop()
        release_stack(stack, keys=False)  # the private redis-server goes with its process
        redis_server.stop()


def _admin_url() -> str:
    """The local or embedded PostgreSQL server's admin database, found or started like `make run` does."""
    from sandbox.services import ensure_services, libpq_url

    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    services = ensure_services(
        root=Path(__file__).resolve().parent.parent / ".remit", environ=environ, database="postgres"
    )
    return libpq_url(services.database_url)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

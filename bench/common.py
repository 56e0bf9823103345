"""Shared bench plumbing: a private database, a private Redis namespace, real worker processes, numbers."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Dramatiq needs a second or two to fork and import; past this the workers are broken, not slow.
WORKER_START_TIMEOUT_SECONDS = 30.0
# SIGTERM lets Dramatiq finish in-flight messages; after this it is killed.
WORKER_STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Stack:
    """Where one bench run keeps its state."""

    database: str
    redis_url: str
    namespace: str
    admin_url: str = ADMIN_DATABASE_URL

    @property
    def database_url(self) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + self.database


def stack_environ(
    stack: Stack,
    stripe_url: str,
    api_key: str,
    requests_per_second: float,
    extra: dict[str, str] | None = None,
    endpoint_rps: float | None = None,
) -> dict[str, str]:
    """The environment Remit's settings read, for this process and the workers.

    endpoint_rps: Stripe's per-endpoint limit (search included); None lets every endpoint use the whole
    budget, as if Stripe had raised each endpoint's limit to the account's.
    """
    environ = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
    environ.update(
        DATABASE_URL=stack.database_url,
        BROKER_URL=stack.redis_url,
        BROKER_NAMESPACE=stack.namespace,
        STRIPE_API_KEY=api_key,
        STRIPE_API_BASE=stripe_url,
        STRIPE_WEBHOOK_SECRETS="whsec_bench",
        STRIPE_REQUESTS_PER_SECOND=str(requests_per_second),
        STRIPE_ENDPOINT_REQUESTS_PER_SECOND=str(endpoint_rps or requests_per_second),
        STRIPE_SEARCH_REQUESTS_PER_SECOND=str(endpoint_rps or requests_per_second),
        REMIT_ENV="bench",
    )
    environ.update(extra or {})
    return environ


def add_database_arguments(
    parser, database: str, redis_use: str = "settings need one; this bench never uses it"
):
    """--database (default: database), --admin-url and --redis-url, as run_on_own_database reads them."""
    parser.add_argument("--database", default=database)
    parser.add_argument("--admin-url", default=None, help="a PostgreSQL URL allowed to create databases")
    parser.add_argument("--redis-url", default=None, help=f"a Redis URL ({redis_use})")


def run_on_own_database(args, namespace: str, progress: str, seed, measure) -> dict:
    """A database bench's run: its own database (args.database, on the server _servers finds), seed(args)
    into it, measure(args, libpq url, what seed returned); the database is dropped afterwards."""
    from bench.payments import _servers
    from db.session import reset_engine

    admin_url, redis_url = _servers(args)
    stack = Stack(database=args.database, redis_url=redis_url, namespace=namespace, admin_url=admin_url)
    # Settings are read once per process: the environment must be right before tasks is imported.
    os.environ.update(stack_environ(stack, "http://127.0.0.1:9", "sk_test_bench", 100))
    try:
        create_database(stack)
        log(progress)
        return measure(args, stack.database_url, seed(args))
    finally:
        reset_engine()
        drop_database(stack)


# The machine's speed, measured the same way before each run of bench.all: bench figures from machines of
# different speed (or a noisy neighbour's hour) are read beside it. Best of three of each, in milliseconds.
PROBE_LOOP = 5_000_000
PROBE_SERIES = 2_000_000


def machine_speed(admin_url: str = ADMIN_DATABASE_URL) -> dict:
    """{python_loop_ms: a 5,000,000-step Python loop, postgres_series_ms: PostgreSQL counting 2,000,000
    generated rows (None when the server cannot be reached), cpus}: best of three each."""

    def loop() -> float:
        started, total = time.perf_counter(), 0
        for n in range(PROBE_LOOP):
            total += n
        return time.perf_counter() - started

    report = {"python_loop_ms": round(min(loop() for _ in range(3)) * 1000, 1), "postgres_series_ms": None}
    try:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
            spent = []
            for _ in range(3):
                started = time.perf_counter()
                connection.execute("SELECT count(*) FROM generate_series(1, %s)", (PROBE_SERIES,)).fetchone()
                spent.append(time.perf_counter() - started)
        report["postgres_series_ms"] = round(min(spent) * 1000, 1)
    except Exception as exc:  # noqa: BLE001 - a probe that cannot reach PostgreSQL says so, and the run goes on
        log(f"machine probe: PostgreSQL not measured: {exc!r}")
    report["cpus"] = os.cpu_count()
    return report


def print_report(report: dict) -> int:
    """The report as JSON on stdout; the exit status says whether every target was met."""
    import json

    print(json.dumps(report, indent=2))
    return 0 if report["target_met"] else 1


def create_database(stack: Stack) -> None:
    """Drop and create the bench database, then migrate it to head."""
    import psycopg

    from db.migrate import upgrade

    with psycopg.connect(stack.admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{stack.database}"')
    upgrade("postgresql+psycopg://" + stack.database_url.split("://", 1)[1])


def analyze_database(stack: Stack) -> None:
    """ANALYZE the bench database after seeding, as autovacuum would have on a production database.

    This machine's PostgreSQL runs with autovacuum off: without statistics the planner takes a table of
    10,000 seeded invoices for a few hundred rows and joins a receipt's lines by scanning all of them.
    """
    import psycopg

    with psycopg.connect(stack.database_url, autocommit=True) as connection:
        connection.execute("ANALYZE")


def drop_database(stack: Stack) -> None:
    import psycopg

    with psycopg.connect(stack.admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)')


def release_stack(stack: Stack, *, keys: bool = True) -> None:
    """After a run: forget the engine, drop the bench's database and (unless keys=False) its Redis keys.

    A failure is logged, never raised: cleanup must not hide the run's own error.
    """
    from db.session import reset_engine

    try:
        reset_engine()
        drop_database(stack)
        if keys:
            clear_redis(stack)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log(f"cleanup failed: {exc!r}")


def clear_redis(stack: Stack) -> int:
    """Delete the bench's queues, heartbeats and the limiter's booking; return keys deleted."""
    import redis

    client = redis.Redis.from_url(stack.redis_url)
    # The namespace covers the queues and the Stripe limiter's key ("<namespace>:stripe:limiter").
    keys = list(client.scan_iter(match=f"{stack.namespace}:*", count=1000))
    deleted = client.delete(*keys) if keys else 0
    client.close()
    return deleted


class Workers:
    """`python -m dramatiq workers.actors` (or another actors module) as a child process group."""

    def __init__(
        self,
        environ: dict[str, str],
        processes: int,
        threads: int,
        queues: tuple[str, ...],
        log_path: Path,
        module: str = "workers.actors",
    ):
        argv = [
            sys.executable,
            "-m",
            "dramatiq",
            module,
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--queues",
            *queues,
        ]
        self.processes = processes
        self.namespace = environ["BROKER_NAMESPACE"]
        self.redis_url = environ["BROKER_URL"]
        # A file, not a pipe: retries log warnings, and an unread pipe would block the workers when full.
        self.log_path = log_path
        from workers.settings import process_kind_environ

        # Sized as `remit worker` sizes its processes (a database connection kept per thread).
        environ = {**process_kind_environ("worker", threads), **environ}
        with open(log_path, "ab") as sink:
            self._proc = subprocess.Popen(
                argv, env=environ, cwd=ROOT, stdout=sink, stderr=sink, start_new_session=True
            )

    def wait_ready(self, timeout_s: float = WORKER_START_TIMEOUT_SECONDS) -> None:
        """Block until every worker process has polled the broker once (its heartbeat is in Redis)."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout_s
        try:
            while client.zcard(f"{self.namespace}:__heartbeats__") < self.processes:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"workers exited with {self._proc.returncode}: {self._stderr_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"workers not ready after {timeout_s:.0f}s: {self._stderr_tail()}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it if it lingers."""
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(WORKER_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()

    def _stderr_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]


def percentile_ms(seconds: list[float], q: float) -> float | None:
    """Nearest-rank percentile of durations in seconds, in milliseconds."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 1)


def timings(seconds: list[float]) -> dict:
    """p50 and p95 of some timed calls, in milliseconds."""
    return {"p50_ms": percentile_ms(seconds, 50), "p95_ms": percentile_ms(seconds, 95)}


def request_rate(times: list[float]) -> float:
    """Requests per second between the first and the last: (n - 1) intervals over the span."""
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else 0.0


def busiest_second(times: list[float]) -> int:
    """The most requests in any sliding one-second window, as the emulator counts them."""
    ordered, start, best = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class EmulatorProcess:
    """The Stripe emulator in its own process, driven over its /_emulator control API.

    In-process, its request handling would share the GIL with the bench's own submitters.
    """

    def __init__(self):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.stripe_emulator", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self, timeout_s: float = WORKER_START_TIMEOUT_SECONDS) -> EmulatorProcess:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self._control("GET", "now")
                return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"bench: the emulator did not answer on {self.url} within {timeout_s:.0f}s")

    def set_rate_limit(self, requests_per_second: float | None, endpoint_rps: float | None = None) -> None:
        """Stripe's limits at the emulator: the account's and (if given) each endpoint's, search included."""
        limits = {"endpoint_requests_per_second": endpoint_rps}
        self._control("POST", "rate_limit", {"requests_per_second": requests_per_second, **limits})

    def reset(self) -> None:
        """Forget every object, idempotency key, fault, logged request and the rate limit."""
        self._control("POST", "reset", {})

    def requests(self) -> list[dict]:
        return self._control("GET", "requests")["data"]

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)

    def _control(self, method: str, name: str, body: dict | None = None) -> dict:
        return emulator_control(self.url, method, name, body)


def emulator_control(url: str, method: str, name: str, body: dict | None = None, timeout: float = 30) -> dict:
    """One call of the Stripe emulator's /_emulator control API, its JSON answer."""
    import json
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}/_emulator/{name}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())

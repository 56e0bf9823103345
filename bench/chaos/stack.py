"""Everything a chaos run starts and owns: PostgreSQL, Redis, the Stripe emulator, SMTP capture, Procfile."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.chaos.postgres import Cluster
from bench.chaos.processes import ROOT, Proc, Supervisor, procfile
from bench.chaos.redis_server import RedisServer
from bench.common import emulator_control
from sandbox.ports import HOST, ServiceError, free_port, wait_for_port
from sandbox.smtp_capture import SmtpCapture

API_KEY = "sk_test_chaos"
WEBHOOK_SECRET = "whsec_chaos"
DATABASE = "remit_chaos"
# A Stripe call hung by a fault is abandoned after this long (STRIPE_TIMEOUT_SECONDS). The emulator finishes
# a hung request three times later: past the client's timeout, its one retry (409, key in use) and the job's
# first retry, which must replay the same key rather than charge anew.
STRIPE_TIMEOUT_S = 4
HANG_S = 12
# ACH debits settle after this many real seconds instead of four business days, so they finish in a run.
ACH_SETTLE_S = 3
# The emulator's webhook retries, stretched so a receiver down for a few seconds is retried into.
WEBHOOK_RETRY_DELAYS_S = [0.5, 1, 2, 4, 8]
# The emulator prints its URL once it listens; it imports nothing heavy.
EMULATOR_START_TIMEOUT_S = 30


@dataclass
class Emulator:
    """The emulator's process and its /_emulator control API."""

    proc: subprocess.Popen
    url: str

    def control(self, method: str, name: str, body: dict | None = None, timeout: float = 30) -> dict:
        return emulator_control(self.url, method, name, body, timeout)

    def listed(self, name: str) -> list[dict]:
        return self.control("GET", name)["data"]


class Stack:
    """Start with `up()`, stop everything with `down()`; `environ` is what every Remit process reads."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.postgres = Cluster(directory / "postgres")
        self.redis = RedisServer(directory / "redis")
        self.smtp = SmtpCapture(port=free_port(), maildir=None)
        self.webhook_port = free_port()
        self.emulator_port = free_port()
        self.emulator: Emulator | None = None
        self.supervisor: Supervisor | None = None
        self.environ = self._environ()

    def up(self) -> Stack:
        """Start the servers, create and migrate the database. The caller has put `environ` in os.environ."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.postgres.init()
        self._create_database()
        self.redis.start()
        self.smtp.start()
        self.emulator = self._start_emulator()
        from db.migrate import upgrade

        upgrade(self.postgres.url(DATABASE))
        return self

    def start_processes(self) -> None:
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        procs = {
            name: Proc(name, argv, self.environ, logs / f"{name}.log")
            for name, argv in procfile(self.webhook_port).items()
        }
        self.supervisor = Supervisor(procs)
        self.supervisor.start()
        if not wait_for_port(HOST, self.webhook_port, EMULATOR_START_TIMEOUT_S):
            raise ServiceError(f"the webhook receiver did not listen on {self.webhook_port}; see {logs}")

    def extra_proc(self, name: str, argv: list[str]) -> Proc:
        return Proc(name, argv, self.environ, self.directory / "logs" / f"{name}.log")

    def down(self) -> None:
        if self.supervisor:
            self.supervisor.stop_all()
        if self.emulator:
            self.emulator.proc.kill()
            self.emulator.proc.wait()
        self.smtp.stop()
        self.redis.stop()
        self.postgres.destroy()

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.postgres.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')

    def _start_emulator(self) -> Emulator:
        port = self.emulator_port
        hook = f"http://{HOST}:{self.webhook_port}/stripe/webhooks"
        argv = [
            sys.executable,
            "-m",
            "sandbox.stripe_emulator",
            "--port",
            str(port),
            "--webhook-url",
            hook,
            "--webhook-secret",
            WEBHOOK_SECRET,
        ]
        log = (self.directory / "emulator.log").open("a")
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_for_port(HOST, port, EMULATOR_START_TIMEOUT_S):
            raise ServiceError("the Stripe emulator did not start")
        emulator = Emulator(proc, f"http://{HOST}:{port}")
        emulator.control(
            "POST",
            "settings",
            {
                "ach_settle_after_seconds": ACH_SETTLE_S,
                "hang_seconds": HANG_S,
                "webhook_retry_delays": WEBHOOK_RETRY_DELAYS_S,
            },
        )
        return emulator

    def _environ(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}
        environ.update(
            PYTHONPATH=str(ROOT),
            DATABASE_URL=self.postgres.url(DATABASE),
            BROKER_URL=self.redis.url,
            BROKER_NAMESPACE="chaos",
            STRIPE_API_KEY=API_KEY,
            STRIPE_API_BASE=f"http://{HOST}:{self.emulator_port}",
            STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
            STRIPE_TIMEOUT_SECONDS=str(STRIPE_TIMEOUT_S),
            SMTP_URL=self.smtp.url,
            REMIT_ENV="chaos",
        )
        return environ

"""`make run`: the whole offline stack in the foreground until Ctrl-C, SIGTERM or SIGHUP stops all of it.

Its settings are written to `.env.sandbox`, so a second terminal runs `remit --env .env.sandbox ...`
against the same stack.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from sandbox.services import HOST, _die_with_parent, ensure_services
from sandbox.stopping import Stopped, stop_on_signals
from workers.cli import CommandError

SANDBOX_API_KEY = "sk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_local"
# Only for the local sandbox; production sets its own DASHBOARD_TOKEN.
SANDBOX_DASHBOARD_TOKEN = "sandbox-dashboard-token"
# Workers and the receiver take a few seconds to boot; the demo waits for them.
DEMO_DELAY_S = 6
# honcho gives its processes 5 s after SIGTERM before SIGKILL; past this we kill what is left ourselves.
STOP_TIMEOUT_S = 15
ENV_FILE = ".env.sandbox"


@dataclass(frozen=True)
class Port:
    variable: str
    default: int
    what: str


# Fixed ports so the README can name them; each variable moves one (tests use free ones).
PORTS = {
    "stripe": Port("SANDBOX_STRIPE_PORT", 12111, "Stripe emulator"),
    "smtp": Port("SANDBOX_SMTP_PORT", 1025, "SMTP capture"),
    "mail": Port("SANDBOX_MAIL_PORT", 8025, "captured mail pages"),
    "webhooks": Port("WEBHOOK_PORT", 8001, "webhook receiver"),
    "dashboard": Port("DASHBOARD_PORT", 8002, "ops dashboard"),
}


def root() -> Path:
    return Path.cwd() / ".remit"


def chosen_ports(environ=os.environ) -> dict[str, int]:
    """Each port from its variable or default; raise naming the first one taken, before anything runs."""
    ports = {}
    for name, port in PORTS.items():
        raw = environ.get(port.variable, "").strip() or str(port.default)
        if not raw.isdigit():
            raise CommandError(f"{port.variable} is malformed: {raw[:20]!r} is not a port number")
        ports[name] = int(raw)
        if not _free(int(raw)):
            raise CommandError(
                f"port {raw} ({port.what}, {port.variable}) is already in use on {HOST}: "
                f"stop what holds it (another `make run`?) or set {port.variable}"
            )
    return ports


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _processes(procfile: Path = Path("Procfile")) -> list[str]:
    """Every Procfile process but `release`, whose migration run_dev has already done."""
    names = [line.split(":", 1)[0].strip() for line in procfile.read_text().splitlines() if ":" in line]
    return [name for name in names if name and name != "release"]


def run_dev(reset: bool = False) -> int:
    """Check ports, find or start Postgres and Redis, start the stand-ins, migrate, seed, run the Procfile."""
    ports = chosen_ports()
    stop_on_signals()
    try:
        if reset:
            from sandbox.reset import reset_sandbox

            reset_sandbox(root(), say=_say)
        return _run_stack(ports)
    except (Stopped, KeyboardInterrupt):
        return 0


def _run_stack(ports: dict[str, int]) -> int:
    from sandbox.erp import start_erp
    from sandbox.mail_page import MailPage
    from sandbox.smtp_capture import SmtpCapture
    from sandbox.stripe_emulator import Emulator

    root().mkdir(exist_ok=True)
    _say("finding or starting PostgreSQL and Redis ...")
    services = ensure_services(root=root())
    for line in services.found + services.started:
        _say(f"  {line}")
    stops = [services.stop]
    try:
        emulator = Emulator(api_key=SANDBOX_API_KEY, state_file=str(root() / "stripe-emulator.json"))
        stops.append(emulator.start(port=ports["stripe"]).stop)
        smtp = SmtpCapture(port=ports["smtp"], maildir=root() / "mail").start()
        stops.append(smtp.stop)
        mail = MailPage(root() / "mail", ports["mail"]).start()
        stops.append(mail.stop)
        start_erp()  # the reference ERP receiver the demo's ledger feed goes to (a thread of this process)
        emulator.add_webhook_endpoint(
            f"http://{HOST}:{ports['webhooks']}/stripe/webhooks", [SANDBOX_WEBHOOK_SECRET]
        )
        settings = _settings(services, emulator.url, smtp.url, ports)
        os.environ.update(settings)
        _write_env_file(settings)
        _prepare_database()
        _say(f"Stripe emulator {emulator.url}   SMTP capture {smtp.url}   captured mail {mail.url}")
        _say(f"ops dashboard http://{HOST}:{ports['dashboard']} (token {SANDBOX_DASHBOARD_TOKEN})")
        _say(f"settings in {ENV_FILE}: in another terminal, `remit --env {ENV_FILE} queues` (or any command)")
        _say(f"starting {', '.join(_processes())}; Ctrl-C stops everything")
        return _run_procfile(emulator)
    finally:
        for stop in reversed(stops):
            stop()


def _settings(services, stripe_url: str, smtp_url: str, ports: dict[str, int]) -> dict[str, str]:
    namespace = os.environ.get("BROKER_NAMESPACE", "").strip()
    return {
        **({"BROKER_NAMESPACE": namespace} if namespace else {}),
        "DATABASE_URL": services.database_url,
        "BROKER_URL": services.broker_url,
        "STRIPE_API_KEY": SANDBOX_API_KEY,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_WEBHOOK_SECRETS": SANDBOX_WEBHOOK_SECRET,
        "SMTP_URL": smtp_url,
        "WEBHOOK_PORT": str(ports["webhooks"]),
        "WEBHOOK_HOST": HOST,
        "WEBHOOK_WORKERS": "1",  # one receiver process (4 connections) is plenty for a sandbox
        "REMIT_ENV": "sandbox",
        "DASHBOARD_TOKEN": SANDBOX_DASHBOARD_TOKEN,
        "DASHBOARD_PORT": str(ports["dashboard"]),
        "DASHBOARD_HOST": HOST,
        "DASHBOARD_HTTPS": "false",  # served over plain http on loopback
    }


def _write_env_file(settings: dict[str, str]) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    lines = [f"# Written by `make run` at {stamp}: the sandbox's settings. `remit --env {ENV_FILE} COMMAND`."]
    lines += [f"{name}={value}" for name, value in settings.items()]
    Path(ENV_FILE).write_text("\n".join(lines) + "\n")


def _prepare_database() -> None:
    from db.migrate import upgrade
    from sandbox.seed import seed_demo
    from workers.settings import get_settings

    get_settings.cache_clear()  # read again now that the sandbox's settings are in the environment
    settings = get_settings()
    _say("migrating the database ...")
    upgrade(settings.database_url)
    _say(seed_demo(settings, only_if_empty=True))


def _run_procfile(emulator) -> int:
    """honcho in its own session, so only we decide when it stops; every process it started stops with it."""
    honcho = Path(sys.executable).with_name("honcho")
    command = [str(honcho), "start", "-f", "Procfile", *_processes()]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    child = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent())
    if os.environ.get("REMIT_DEMO", "1") != "0":
        threading.Thread(target=_demo, args=(emulator, child), daemon=True).start()
    try:
        return child.wait()
    finally:
        stop_tree(child)


def stop_tree(child: subprocess.Popen) -> None:
    """SIGTERM honcho (it stops its processes, killing them after 5 s), then kill what is left of its tree."""
    try:
        tree = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    if child.poll() is None:
        _say("stopping every process ...")
        child.terminate()
    _, alive = psutil.wait_procs(tree, timeout=STOP_TIMEOUT_S)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)
    child.wait()


def _demo(emulator, child: subprocess.Popen) -> None:
    """Once the workers are up, make a round of demo payments and report how each ended."""
    from sandbox.demo import run_demo

    time.sleep(DEMO_DELAY_S)
    if child.poll() is None:
        run_demo(emulator, say=_say)
        _say("demo done; the stack keeps running (Ctrl-C stops it)")


def _say(line: str) -> None:
    print(f"remit: {line}", flush=True)

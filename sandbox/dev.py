"""`make run`: the whole offline stack in the foreground until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sandbox.services import ensure_services, port_answers

ROOT = Path.cwd() / ".remit"
SANDBOX_API_KEY = "sk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_local"
# Fixed ports so the README can name them; a taken port falls back to a free one.
STRIPE_PORT = 12111
SMTP_PORT = 1025
WEBHOOK_PORT = 8001
DASHBOARD_PORT = 8002
# Only for the local sandbox; production sets its own DASHBOARD_TOKEN.
SANDBOX_DASHBOARD_TOKEN = "sandbox-dashboard-token"
# Workers and the receiver take a few seconds to boot; the demo waits for them.
DEMO_DELAY_S = 6


def _port(preferred: int) -> int:
    return 0 if port_answers("127.0.0.1", preferred) else preferred


def _processes(procfile: Path = Path("Procfile")) -> list[str]:
    """Every Procfile process but `release`, whose migration run_dev has already done."""
    names = [line.split(":", 1)[0].strip() for line in procfile.read_text().splitlines() if ":" in line]
    return [name for name in names if name and name != "release"]


def run_dev() -> int:
    """Find or start Postgres and Redis, start the emulator and SMTP capture, migrate, seed, run Procfile."""
    from sandbox.smtp_capture import SmtpCapture
    from sandbox.stripe_emulator import Emulator

    ROOT.mkdir(exist_ok=True)
    print("remit: finding or starting PostgreSQL and Redis ...", flush=True)
    services = ensure_services(root=ROOT)
    for line in services.found + services.started:
        print(f"remit:   {line}", flush=True)
    emulator = Emulator(api_key=SANDBOX_API_KEY, state_file=str(ROOT / "stripe-emulator.json")).start(
        port=_port(STRIPE_PORT)
    )
    smtp = SmtpCapture(port=_port(SMTP_PORT), maildir=ROOT / "mail").start()
    __import__("sandbox.erp").erp.start_erp()  # the reference ERP receiver the demo's feed goes to
    emulator.add_webhook_endpoint(
        f"http://127.0.0.1:{WEBHOOK_PORT}/stripe/webhooks", [SANDBOX_WEBHOOK_SECRET]
    )
    os.environ.update(
        DATABASE_URL=services.database_url,
        BROKER_URL=services.broker_url,
        STRIPE_API_KEY=SANDBOX_API_KEY,
        STRIPE_API_BASE=emulator.url,
        STRIPE_WEBHOOK_SECRETS=SANDBOX_WEBHOOK_SECRET,
        SMTP_URL=smtp.url,
        WEBHOOK_PORT=str(WEBHOOK_PORT),
        WEBHOOK_HOST="127.0.0.1",
        REMIT_ENV="sandbox",
        DASHBOARD_TOKEN=SANDBOX_DASHBOARD_TOKEN,
        DASHBOARD_PORT=str(DASHBOARD_PORT),
        DASHBOARD_HOST="127.0.0.1",
        DASHBOARD_HTTPS="false",  # served over plain http on loopback
    )
    try:
        _prepare_database()
        print(
            f"remit: Stripe emulator {emulator.url}   SMTP capture {smtp.url} (mail in .remit/mail)",
            flush=True,
        )
        print(
            f"remit: ops dashboard http://127.0.0.1:{DASHBOARD_PORT} (token {SANDBOX_DASHBOARD_TOKEN})",
            flush=True,
        )
        print(f"remit: starting {', '.join(_processes())}; Ctrl-C stops everything", flush=True)
        return _run_procfile(emulator)
    finally:
        emulator.stop()
        smtp.stop()
        services.stop()


def _prepare_database() -> None:
    from db.migrate import upgrade
    from sandbox.seed import seed_demo
    from workers.settings import get_settings

    settings = get_settings()
    print("remit: migrating the database ...", flush=True)
    upgrade(settings.database_url)
    print(f"remit: {seed_demo(settings, only_if_empty=True)}", flush=True)


def _run_procfile(emulator) -> int:
    honcho = Path(sys.executable).with_name("honcho")
    command = [str(honcho), "start", "-f", "Procfile", *_processes()]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    child = subprocess.Popen(command, env=env)
    if os.environ.get("REMIT_DEMO", "1") != "0":
        threading.Thread(target=_demo, args=(emulator, child), daemon=True).start()
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        child.wait()
        return 0


def _demo(emulator, child: subprocess.Popen) -> None:
    """Once the workers are up, make a round of demo payments and report how each ended."""
    from sandbox.demo import run_demo

    time.sleep(DEMO_DELAY_S)
    if child.poll() is None:
        run_demo(emulator, say=lambda line: print(f"remit: {line}", flush=True))
        print("remit: demo done; the stack keeps running (Ctrl-C stops it)", flush=True)

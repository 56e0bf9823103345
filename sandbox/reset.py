"""`make reset`: drop the sandbox's database, Redis keys, emulator state, captured mail and .env.sandbox."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql

from db.session import libpq_url
from sandbox.services import ensure_services
from workers.cli import CommandError

# The sandbox is local: a database anywhere else is never the sandbox's, whatever DATABASE_URL says.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def reset_sandbox(
    root: Path, environ: Mapping[str, str] = os.environ, say: Callable[[str], None] = print
) -> None:
    """Drop what `make run` keeps between runs; the next run starts empty and seeds the demo again."""
    services = ensure_services(root=root, environ=environ)
    try:
        _drop_database(services.database_url, say)
        _drop_keys(services.broker_url, environ.get("BROKER_NAMESPACE", "").strip() or "remit", say)
    finally:
        services.stop()
    for path in (root / "stripe-emulator.json", root / "mail", Path(".env.sandbox")):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        say(f"removed {path}")


def _drop_database(url: str, say: Callable[[str], None]) -> None:
    libpq = libpq_url(url)
    parts = urlsplit(libpq)
    if (parts.hostname or "") not in LOCAL_HOSTS:
        raise CommandError(
            f"refusing to drop a database on {parts.hostname}: the sandbox's is on this machine"
        )
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    say(f"dropped database {name} on {parts.hostname}:{parts.port or 5432}")


def _drop_keys(broker_url: str, namespace: str, say: Callable[[str], None]) -> None:
    if not broker_url.startswith("redis"):
        return
    client = redis.Redis.from_url(broker_url)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    say(f"deleted {len(keys)} Redis key(s) under {namespace}:")

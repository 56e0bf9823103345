"""`python -m sandbox reset` (make reset) drops the sandbox's database, its Redis keys and its files."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import redis

from db.session import libpq_url

ROOT = Path(__file__).resolve().parents[2]


def sandbox(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_reset_drops_the_database_the_redis_keys_and_the_state_files(tmp_path, scratch_database):
    namespace = f"reset-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(os.environ["BROKER_URL"])
    client.set(f"{namespace}:payments", "x")
    client.set(f"other-{namespace}:payments", "kept")
    (tmp_path / ".remit" / "mail").mkdir(parents=True)
    (tmp_path / ".remit" / "mail" / "one.eml").write_text("Subject: hi\n\nhello\n")
    (tmp_path / ".remit" / "stripe-emulator.json").write_text("{}")
    (tmp_path / ".env.sandbox").write_text("DATABASE_URL=x\n")

    done = sandbox(tmp_path, "reset", DATABASE_URL=scratch_database, BROKER_NAMESPACE=namespace)

    assert done.returncode == 0, done.stderr
    name = scratch_database.rsplit("/", 1)[1]
    assert f"sandbox: dropped database {name} on 127.0.0.1:" in done.stdout
    assert f"deleted 1 Redis key(s) under {namespace}:" in done.stdout
    with psycopg.connect(libpq_url(scratch_database).rsplit("/", 1)[0] + "/postgres") as connection:
        assert connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None
    assert client.get(f"{namespace}:payments") is None
    assert client.get(f"other-{namespace}:payments") == b"kept"
    assert not (tmp_path / ".remit" / "mail").exists() and not (tmp_path / ".env.sandbox").exists()
    assert not (tmp_path / ".remit" / "stripe-emulator.json").exists()
    client.delete(f"other-{namespace}:payments")


def test_reset_refuses_a_database_that_is_not_on_this_machine(tmp_path):
    done = sandbox(tmp_path, "reset", DATABASE_URL="postgresql://app@db.example.com:5432/remit")
    assert done.returncode == 2
    assert (
        done.stderr
        == "sandbox: refusing to drop a database on db.example.com: the sandbox's is on this machine\n"
    )

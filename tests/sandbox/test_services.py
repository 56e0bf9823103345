"""ensure_services finds configured or local servers, else starts embedded ones, against real servers."""

import socket
import time
import uuid

import psycopg
import pytest
import redis
from psycopg import sql

from sandbox.services import (
    ServiceError,
    ensure_services,
    libpq_url,
    normalise_database_url,
    port_answers,
    wait_for_port,
)
from sandbox.smtp_capture import SmtpCapture

# Embedded servers shut down in well under a second; this only bounds a hung shutdown.
STOP_TIMEOUT_S = 10


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on, standing in for an absent PostgreSQL or Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _select_one(database_url: str) -> int:
    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone()[0]


def _ping(broker_url: str) -> bool:
    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    try:
        return client.ping()
    finally:
        client.close()


def _port(url: str) -> int:
    return int(url.split("@")[-1].split("//")[-1].split("/")[0].split(":")[1])


def _stops_answering(port: int) -> bool:
    """Poll until nothing answers on port any more."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not port_answers("127.0.0.1", port):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("postgres://u:p@db.example:5432/remit", "postgresql+psycopg://u:p@db.example:5432/remit"),
        ("postgresql://u@db.example/remit", "postgresql+psycopg://u@db.example/remit"),
        ("postgresql+psycopg://u@db.example/remit", "postgresql+psycopg://u@db.example/remit"),
    ],
)
def test_database_url_is_normalised_to_the_psycopg_driver(configured, expected):
    assert normalise_database_url(configured) == expected


def test_configured_urls_are_used_unchanged_and_nothing_is_started(tmp_path, closed_port):
    environ = {
        "DATABASE_URL": "postgres://app@db.example:5432/remit",
        "BROKER_URL": "amqp://guest@mq.example:5672//",
    }

    services = ensure_services(tmp_path, environ, pg_probe_port=closed_port, redis_probe_port=closed_port)
    services.stop()

    assert services.database_url == "postgresql+psycopg://app@db.example:5432/remit"
    assert services.broker_url == "amqp://guest@mq.example:5672//"
    assert services.started == []
    assert len(services.found) == 2
    assert list(tmp_path.iterdir()) == []


def test_local_servers_are_found_and_the_named_database_is_created(tmp_path):
    if not (port_answers("127.0.0.1", 5432) and port_answers("127.0.0.1", 6379)):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379")
    database = f"remit_test_{uuid.uuid4().hex[:12]}"
    try:
        services = ensure_services(tmp_path, {}, database)
        again = ensure_services(tmp_path, {}, database)  # an existing database is reused, not an error
        services.stop()
        again.stop()

        assert services.database_url == f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
        assert services.broker_url == "redis://127.0.0.1:6379/0"
        assert services.started == []
        assert _select_one(services.database_url) == 1
        assert port_answers("127.0.0.1", 5432) and _ping(services.broker_url)
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def test_embedded_servers_start_when_nothing_answers_and_stop_on_stop(tmp_path, closed_port):
    services = ensure_services(
        tmp_path, {}, "sandbox", pg_probe_port=closed_port, redis_probe_port=closed_port
    )
    try:
        assert services.database_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        assert services.database_url.endswith("/sandbox")
        assert services.broker_url.startswith("redis://127.0.0.1:")
        assert _select_one(services.database_url) == 1
        assert _ping(services.broker_url)
        assert [line.split(" on ")[0] for line in services.started] == [
            "embedded PostgreSQL",
            "embedded Redis",
        ]
        assert services.found == []
    finally:
        services.stop()

    assert _stops_answering(_port(services.database_url))
    assert _stops_answering(_port(services.broker_url))


def test_embedded_postgres_keeps_data_across_restarts(tmp_path, closed_port):
    first = ensure_services(tmp_path, {}, pg_probe_port=closed_port, redis_probe_port=closed_port)
    try:
        with psycopg.connect(libpq_url(first.database_url)) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    finally:
        first.stop()

    second = ensure_services(tmp_path, {}, pg_probe_port=closed_port, redis_probe_port=closed_port)
    try:
        with psycopg.connect(libpq_url(second.database_url)) as conn:
            assert conn.execute("SELECT id FROM kept").fetchone() == (42,)
    finally:
        second.stop()


def test_a_second_user_shares_the_embedded_postgres_until_the_last_one_stops(tmp_path, closed_port):
    environ = {"BROKER_URL": "redis://unused.example:6379/0"}
    first = ensure_services(tmp_path, environ, pg_probe_port=closed_port)
    second = ensure_services(tmp_path, environ, pg_probe_port=closed_port)
    try:
        assert second.database_url == first.database_url
        assert second.started == [] and "shared" in second.found[0]

        first.stop()

        assert _select_one(second.database_url) == 1
    finally:
        first.stop()
        second.stop()

    assert _stops_answering(_port(first.database_url))


def test_a_broken_embedded_postgres_raises_service_error_naming_its_log(tmp_path, closed_port):
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")  # looks initialised, but holds no cluster

    with pytest.raises(ServiceError, match=r"see .*postgres\.log"):
        ensure_services(tmp_path, {}, pg_probe_port=closed_port, redis_probe_port=closed_port)


def test_something_on_the_postgres_port_that_is_not_postgres_raises_service_error(tmp_path, closed_port):
    with SmtpCapture() as impostor:
        with pytest.raises(ServiceError, match="cannot create database"):
            ensure_services(tmp_path, {}, pg_probe_port=impostor.port, redis_probe_port=closed_port)


def test_wait_for_port_sees_a_listener_and_gives_up_on_a_closed_port(closed_port):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        assert wait_for_port("127.0.0.1", listener.getsockname()[1], timeout_s=1)
    assert not wait_for_port("127.0.0.1", closed_port, timeout_s=0.2)

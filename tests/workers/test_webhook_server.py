"""`remit webhooks` serves the receiver from a real granian process: the Procfile's `webhooks` line."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from db.models import StripeEvent
from tests.tasks.handlers.support import body_of, make_event, sign
from workers.webhook_app import MAX_BODY_BYTES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def server(db, broker):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "webhooks",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.1)
    else:
        pytest.fail("the receiver did not answer /healthz")
    yield port
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def oversized_answer(port: int) -> bytes:
    """The answer to a body over the limit, read before the body is sent (the receiver never reads it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /stripe/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n"
            f"Stripe-Signature: t=1,v1=00\r\n\r\n".encode()
        )
        return sock.recv(4096)


def stored_ids(db) -> list[str]:
    with db() as session:
        return session.scalars(select(StripeEvent.id).order_by(StripeEvent.id)).all()


def test_a_signed_event_is_stored_and_enqueued_and_bad_requests_store_nothing(db, broker, server):
    event = make_event(
        "payment_intent.succeeded", {"id": "pi_srv", "object": "payment_intent"}, event_id="evt_server_1"
    )
    body = body_of(event)
    assert request(server, "POST", "/stripe/webhooks", body, {"Stripe-Signature": sign(body)})[0] == 200
    assert request(server, "POST", "/stripe/webhooks", body, {"Stripe-Signature": sign(body)})[0] == 200
    assert broker.client.hlen(f"{broker.namespace}:webhooks.msgs") == 2  # a waiting event is re-sent

    forged = body_of(make_event("payment_intent.succeeded", {"id": "pi_srv"}, event_id="evt_server_2"))
    status, answer = request(server, "POST", "/stripe/webhooks", forged, {"Stripe-Signature": sign(b"other")})
    assert status == 400 and b"signature" in answer
    assert oversized_answer(server).startswith(b"HTTP/1.1 413")
    assert request(server, "GET", "/stripe/webhooks")[0] == 405
    assert request(server, "GET", "/nowhere")[0] == 404
    assert stored_ids(db) == ["evt_server_1"]

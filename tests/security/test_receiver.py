"""Attacks on the webhook receiver, replayed on a real granian process: none stores anything or stalls it.

Signed bodies Python's parser mishandles (too deep, NaN, 1e5000, huge integers), bodies over the size
limit, clients trickling their bodies, and events from the other Stripe mode.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from sqlalchemy import select

from db.models import StripeEvent
from tests.receiver_server import receiver_process, request
from tests.tasks.handlers.support import body_of, make_event, sign

BODY_TIMEOUT_S = 2


@pytest.fixture()
def port(db, broker):
    with receiver_process({"WEBHOOK_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S)}) as port:
        yield port


def stored_ids(db) -> list[str]:
    with db() as session:
        return session.scalars(select(StripeEvent.id).order_by(StripeEvent.id)).all()


def deliver(port: int, body: bytes) -> tuple[int, dict]:
    status, answer = request(port, "POST", "/stripe/webhooks", body, {"Stripe-Signature": sign(body)})
    return status, json.loads(answer)


def event_text(event_id: str, data_object: str = '{"id": "pi_1", "object": "payment_intent"}') -> bytes:
    """A signed-looking event whose data.object is given as raw JSON text (to carry what json.dumps won't)."""
    return (
        f'{{"id": "{event_id}", "object": "event", "type": "payment_intent.succeeded", "created": '
        f'{int(time.time())}, "livemode": false, "data": {{"object": {data_object}}}}}'
    ).encode()


@pytest.mark.parametrize(
    ("data_object", "reason"),
    [
        ('{"id": "pi_1", "deep": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper"),
        ('{"id": "pi_1", "amount": 1e5000}', "out of range"),
        ('{"id": "pi_1", "amount": -1e5000}', "out of range"),
        ('{"id": "pi_1", "amount": NaN}', "NaN"),
        ('{"id": "pi_1", "amount": Infinity}', "Infinity"),
        ('{"id": "pi_1", "amount": -Infinity}', "Infinity"),
        ('{"id": "pi_1", "amount": 123456789012345678901234567890}', "out of range"),
        ('{"id": "pi_1", "amount": 1' + "0" * 5000 + "}", "out of range"),
        ('{"id": "pi_1", "rate": 1e300}', "out of range"),
    ],
    ids=["5000-deep", "1e5000", "-1e5000", "NaN", "Infinity", "-Infinity", "30-digit", "5001-digit", "1e300"],
)
def test_signed_json_the_workers_could_not_read_is_refused_400_and_not_stored(
    db, broker, port, data_object, reason
):
    status, answer = deliver(port, event_text("evt_poison", data_object))
    assert status == 400 and reason in answer["reason"], answer
    assert stored_ids(db) == []
    assert broker.client.hlen(f"{broker.namespace}:webhooks.msgs") == 0


def test_json_within_the_limits_is_still_stored(db, broker, port):
    nested = '{"id": "pi_1", "a": ' + "[" * 40 + "1.5, -9007199254740992" + "]" * 40 + ', "s": "[[[[{{{{"}'
    status, answer = deliver(port, event_text("evt_fine", nested))
    assert (status, answer["reason"]) == (200, "stored")
    assert stored_ids(db) == ["evt_fine"]


def raw_exchange(port: int, head: str, body_parts: list[bytes], pause_s: float = 0.0) -> bytes:
    """Send a request head and body parts (pausing between them); return what the receiver answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # answered and closed before the body was complete
                break
            time.sleep(pause_s)
        return _read_answer(sock)


def _read_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_body_over_the_limit_is_refused_413_from_its_headers_or_while_reading_and_not_stored(
    db, broker, port
):
    from workers.webhook_app import MAX_BODY_BYTES

    head = "POST /stripe/webhooks HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\n"
    announced = raw_exchange(port, head + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n", [])
    assert announced.startswith(b"HTTP/1.1 413"), announced
    # Chunked: no Content-Length to check, so the reading stops as soon as it passes the limit.
    chunk = b"x" * 65536
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * (MAX_BODY_BYTES // len(chunk) + 2)
    chunked = raw_exchange(port, head + "Transfer-Encoding: chunked\r\n\r\n", [*parts, b"0\r\n\r\n"])
    assert chunked.startswith(b"HTTP/1.1 413"), chunked
    bad_length = raw_exchange(port, head + "Content-Length: 12abc\r\n\r\n", [])
    assert bad_length.startswith(b"HTTP/1.1 400"), bad_length
    assert stored_ids(db) == []


def test_a_body_that_stops_arriving_is_answered_408_and_not_stored(db, broker, port):
    body = body_of(make_event("payment_intent.succeeded", {"id": "pi_1"}, event_id="evt_slow"))
    head = (
        f"POST /stripe/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Stripe-Signature: {sign(body)}\r\n\r\n"
    )
    answer = raw_exchange(port, head, [body[:10]])  # and then nothing more
    assert answer.startswith(b"HTTP/1.1 408") and b"body not received" in answer, answer
    assert stored_ids(db) == []


def test_signed_deliveries_and_healthz_go_through_while_16_clients_trickle_their_bodies(db, broker, port):
    """Under WSGI each trickling client held a serving thread: 8 of them stopped every delivery."""
    stop = threading.Event()
    answers: list[bytes] = []

    def trickle() -> None:
        head = (
            "POST /stripe/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
            "Stripe-Signature: t=1\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head.encode())
            sock.settimeout(0.2)
            while not stop.is_set():
                try:
                    sock.sendall(b"{")
                    answers.append(_read_answer(sock))  # the receiver gave up on this body
                    return
                except TimeoutError:
                    continue  # not answered yet: one more byte
                except OSError:
                    answers.append(b"closed")
                    return

    trickling = [threading.Thread(target=trickle) for _ in range(16)]
    for thread in trickling:
        thread.start()
    try:
        time.sleep(0.5)  # every trickler connected and sending
        events = [
            make_event("payment_intent.succeeded", {"id": f"pi_{n}"}, event_id=f"evt_during_{n:02d}")
            for n in range(20)
        ]
        statuses = [deliver(port, body_of(event))[0] for event in events]
        assert statuses == [200] * 20
        assert request(port, "GET", "/healthz")[0] == 200
    finally:
        deadline = time.monotonic() + BODY_TIMEOUT_S + 20
        for thread in trickling:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stop.set()
        for thread in trickling:
            thread.join()
    # Each trickler was cut off by the body deadline: its thread in the receiver was never held.
    assert len(answers) == 16 and all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:2]
    assert stored_ids(db) == [event["id"] for event in events]


@pytest.mark.parametrize(
    ("key", "mode"), [("sk_test_remit_tests", "test"), ("sk_live_remit_tests", "live")], ids=["test", "live"]
)
def test_an_event_from_the_other_stripe_mode_is_refused_400_and_not_stored(db, broker, key, mode):
    live = mode == "live"
    with receiver_process({"STRIPE_API_KEY": key}) as port:
        for n, livemode in enumerate([not live, None, "false", 0]):
            event = make_event("payment_intent.succeeded", {"id": "pi_1"}, event_id=f"evt_other_mode_{n}")
            if livemode is None:
                del event["livemode"]
            else:
                event["livemode"] = livemode
            status, answer = deliver(port, body_of(event))
            assert status == 400 and f"contradicts the API key's {mode} mode" in answer["reason"], answer
        assert stored_ids(db) == []
        same = make_event("payment_intent.succeeded", {"id": "pi_1"}, event_id="evt_same_mode")
        same["livemode"] = live
        assert deliver(port, body_of(same))[0] == 200
    assert stored_ids(db) == ["evt_same_mode"]


@pytest.mark.parametrize(
    ("key", "live"),
    [("sk_test_x", False), ("rk_test_x", False), ("sk_live_x", True), ("rk_live_x", True), ("sk_x", False)],
)
def test_the_key_says_which_stripe_mode_events_must_come_from(key, live):
    from workers.settings import load_settings

    environ = {
        "DATABASE_URL": "postgresql://remit@127.0.0.1/remit",
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "STRIPE_API_KEY": key,
        "STRIPE_WEBHOOK_SECRETS": "whsec_x",
    }
    assert load_settings(environ).stripe_livemode is live


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"s": "[[[[{{{{", "t": "\\"[[[["}', 1),  # brackets inside strings, an escaped quote
        (b'"[[["', 0),
        (b"[" * 100 + b"]" * 100, 100),
    ],
)
def test_nesting_depth_counts_arrays_and_objects_but_not_brackets_inside_strings(text, depth):
    from workers.strict_json import nesting_depth

    assert nesting_depth(text) == depth


def test_a_client_that_never_finishes_its_headers_is_disconnected(db, broker, port):
    """granian's header deadline is set to 5 s (its default, 30 s, let a slow-headers client sit for long)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"POST /stripe/webhooks HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        answer = _read_answer(sock)  # raises TimeoutError if the receiver waits on for 20 s
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    assert request(port, "GET", "/healthz")[0] == 200
    assert stored_ids(db) == []

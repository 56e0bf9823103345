"""The wire to Stripe: one kept-alive connection per thread and host, failures reported as retryable,
every call in a limiter slot and a 429 retried in place."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from tasks.domain.errors import StripeUnavailable
from tasks.gateways.stripe import StripeGateway
from tasks.gateways.stripe_transport import RATE_LIMITED_RETRIES, KeepAliveClient, build_limiter, send


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        server.connections.add(self.client_address)
        server.bodies.append(body)
        if server.mode == "drop":
            # Read the request, then hang up without a word: what a crash after the charge looks like.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        reply = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("Stripe-Should-Retry", "false")
        if server.mode == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.daemon_threads = True
    httpd.connections, httpd.bodies, httpd.mode = set(), [], "keep"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _post(client: KeepAliveClient, server, body: str = "amount=100"):
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/payment_intents"
    return client.request("post", url, {"Content-Type": "application/x-www-form-urlencoded"}, body)


def test_calls_from_one_thread_share_one_connection(server):
    client = KeepAliveClient(timeout_s=5)

    answers = [_post(client, server, f"amount={n}") for n in range(5)]

    assert [status for _, status, _ in answers] == [200] * 5
    assert [b for b in server.bodies] == [f"amount={n}".encode() for n in range(5)]
    assert len(server.connections) == 1
    client.close()


def test_headers_are_case_insensitive_as_the_sdk_reads_them(server):
    content, status, headers = _post(KeepAliveClient(timeout_s=5), server)

    assert (content, status) == (b'{"ok": true}', 200)
    assert "stripe-should-retry" in headers and headers["stripe-should-retry"] == "false"


def test_a_connection_the_server_closes_is_replaced(server):
    client = KeepAliveClient(timeout_s=5)
    server.mode = "close"
    _post(client, server)
    server.mode = "keep"

    _, status, _ = _post(client, server)
    _post(client, server)

    assert status == 200
    assert len(server.connections) == 2


def test_a_dropped_answer_is_a_retryable_connection_error_and_the_next_call_reconnects(server):
    client = KeepAliveClient(timeout_s=5)
    _post(client, server)
    server.mode = "drop"

    with pytest.raises(stripe.APIConnectionError) as raised:
        _post(client, server)
    server.mode = "keep"
    _, status, _ = _post(client, server)

    assert raised.value.should_retry is True
    assert status == 200
    assert len(server.connections) == 2


def test_each_thread_has_its_own_connection(server):
    client = KeepAliveClient(timeout_s=5)
    threads = [threading.Thread(target=lambda: [_post(client, server) for _ in range(3)]) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(server.bodies) == 9
    assert len(server.connections) == 3


def test_a_server_that_never_answers_times_out_as_retryable():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        client = KeepAliveClient(timeout_s=0.2)
        with pytest.raises(stripe.APIConnectionError) as raised:
            client.request("post", f"http://127.0.0.1:{listener.getsockname()[1]}/v1/customers", {}, "a=1")
        assert raised.value.should_retry is True
    finally:
        listener.close()


class _CountingLimiter:
    def __init__(self):
        self.slots = 0

    def acquire(self, endpoint: str) -> float:
        self.slots += 1
        return 0.0


class _RateLimitedFor:
    """A Stripe call answering 429 the given number of times, then succeeding."""

    def __init__(self, times: int):
        self.left, self.calls = times, 0

    def __call__(self, params: dict, options: dict) -> dict:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise stripe.RateLimitError("Too many requests", http_status=429)
        return {"ok": True, "params": params, "options": options}


def test_each_call_takes_a_limiter_slot_and_gets_params_and_options():
    limiter = _CountingLimiter()

    answer = send(limiter, _RateLimitedFor(0), {"amount": 100}, {"idempotency_key": "k"})

    assert answer == {"ok": True, "params": {"amount": 100}, "options": {"idempotency_key": "k"}}
    assert limiter.slots == 1


def test_a_429_is_retried_in_place_on_a_fresh_slot():
    limiter, call = _CountingLimiter(), _RateLimitedFor(RATE_LIMITED_RETRIES)

    assert send(limiter, call, {}, {})["ok"] is True
    assert (call.calls, limiter.slots) == (RATE_LIMITED_RETRIES + 1, RATE_LIMITED_RETRIES + 1)


class _AlwaysRateLimitedClient:
    """An SDK client whose PaymentIntent retrieve always answers 429."""

    def __init__(self):
        self.v1, self.payment_intents, self.calls = self, self, 0

    def retrieve(self, intent_id: str, params: dict, options: dict):
        self.calls += 1
        raise stripe.RateLimitError("Too many requests", http_status=429)


def test_a_429_past_the_retries_reaches_the_job_as_stripe_unavailable():
    client, limiter = _AlwaysRateLimitedClient(), _CountingLimiter()

    with pytest.raises(StripeUnavailable, match="^RateLimitError: Too many requests$"):
        StripeGateway(client, limiter).retrieve_payment_intent("pi_1")
    assert (client.calls, limiter.slots) == (RATE_LIMITED_RETRIES + 1, RATE_LIMITED_RETRIES + 1)


def test_without_redis_calls_go_unspaced():
    assert build_limiter(None, 25, "remit") is None

"""Fixtures for the Stripe emulator tests: one server per module, reset before each test."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from sandbox.stripe_emulator import Emulator

EMULATOR_KEY = "sk_test_emulator"


@pytest.fixture(scope="module")
def emulator_server():
    emu = Emulator(api_key=EMULATOR_KEY).start(port=0)
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator_server):
    emulator_server.reset()
    # Settings survive reset() by design, so put back the defaults a previous test may have changed.
    emulator_server.hang_seconds = 30
    emulator_server.ach_settle_after_seconds = 4 * 86400
    emulator_server.key_ttl_seconds = 86400
    emulator_server.set_rate_limit(None)
    yield emulator_server
    emulator_server.reset()


@pytest.fixture
def make_client(emu):
    def make(retries=0, timeout=None):
        http_client = stripe.RequestsClient(timeout=timeout) if timeout else None
        return stripe.StripeClient(
            EMULATOR_KEY,
            base_addresses={"api": emu.url},
            max_network_retries=retries,
            http_client=http_client,
        )

    return make


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def customer(client):
    return client.v1.customers.create({"email": "ap@example.com", "name": "Acme"})


class Receiver:
    """A local webhook endpoint that records each POST and can be told to fail the first N."""

    def __init__(self):
        self.received = []
        self.fail_next = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= 1 if failing else 0
                    receiver.received.append(
                        {
                            "body": body,
                            "signature": self.headers["Stripe-Signature"],
                            "answered": 500 if failing else 200,
                        }
                    )
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"

    def events(self):
        """Event payloads received, in arrival order."""
        with self._lock:
            return [json.loads(r["body"]) for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()

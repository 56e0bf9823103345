"""With SENTRY_DSN set, Sentry is initialised before the broker and a failing job reaches it."""

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SCRIPT = """
import dramatiq
from workers import broker
from tasks import payments  # noqa: F401  (a real actor module, loaded like a worker loads it)

import sentry_sdk
assert sentry_sdk.get_client().is_active(), "Sentry was not initialised"

@dramatiq.actor(queue_name="maintenance", max_retries=0)
def explode():
    raise RuntimeError("invariant broken: sentry must hear this")

worker = dramatiq.Worker(broker.broker, worker_threads=1, worker_timeout=100)
worker.start()
explode.send()
broker.broker.join("maintenance", timeout=10_000)
worker.join()
worker.stop()
sentry_sdk.flush(5)
"""


class _Capture(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "br":  # sentry-sdk prefers brotli once it is installed
            import brotli  # WeasyPrint's fonttools brings it

            body = brotli.decompress(body)
        _Capture.received.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture()
def sentry_server():
    _Capture.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_a_failed_job_is_reported_to_sentry(migrated, broker, sentry_server):
    dsn = f"http://publickey@127.0.0.1:{sentry_server.server_address[1]}/1"
    env = {**os.environ, "SENTRY_DSN": dsn}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    deadline = time.monotonic() + 10
    while not _Capture.received and time.monotonic() < deadline:
        time.sleep(0.05)
    payloads = b"\n".join(_Capture.received).decode(errors="replace")
    assert "invariant broken: sentry must hear this" in payloads
    assert "explode" in payloads
    events = [
        json.loads(line) for line in payloads.splitlines() if line.startswith("{") and '"exception"' in line
    ]
    assert events and events[0]["exception"]["values"][-1]["type"] == "RuntimeError"
